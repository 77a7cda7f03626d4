package mysql_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"google.golang.org/grpc/codes"

	"github.com/datapulse/datapulse/plugins/builtin/mysql"
	"github.com/datapulse/datapulse/plugins/sdk"
	"github.com/datapulse/datapulse/plugins/sdk/sdktest"
)

// env is a throw-away database and a user that may read it (and, to show
// that the server refuses writes anyway, holds write privileges on it).
type env struct {
	admin    *sql.DB
	db       string
	user     string
	password string
	host     string
	port     int
	adminCfg string
	probe    string
}

func setup(t *testing.T) *env {
	t.Helper()
	dsn := os.Getenv("DATAPULSE_TEST_MYSQL_DSN")
	if dsn == "" {
		t.Skip("DATAPULSE_TEST_MYSQL_DSN is not set: no MySQL/MariaDB to test against (e.g. root@tcp(127.0.0.1:3306)/test)")
	}
	dc, err := mysqldrv.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	sfx := hex.EncodeToString(b)
	host, portS, _ := net.SplitHostPort(dc.Addr)
	port, _ := strconv.Atoi(portS)
	e := &env{admin: admin, db: "dp_conn_" + sfx, user: "dp_conn_" + sfx, password: "pw-" + sfx + "'\"\\x",
		host: host, port: port, probe: filepath.Join(os.TempDir(), "dp_my_probe_"+sfx)}
	ac, _ := json.Marshal(map[string]any{"host": host, "port": port, "database": dc.DBName, "user": dc.User, "tls": "disable"})
	e.adminCfg = string(ac)
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := admin.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE USER '" + e.user + "'@'%' IDENTIFIED BY '" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(e.password) + "'")
	t.Cleanup(func() {
		admin.Exec("DROP DATABASE IF EXISTS " + e.db)
		admin.Exec("DROP USER IF EXISTS '" + e.user + "'@'%'")
		os.Remove(e.probe)
	})
	d := e.db
	for _, q := range []string{
		"CREATE DATABASE " + d,
		"CREATE TABLE " + d + ".t (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL, score DOUBLE)",
		"INSERT INTO " + d + ".t VALUES (1, 'ada', 1.5), (2, 'grace', NULL), (3, 'o''brien', -2)",
		"CREATE TABLE " + d + ".big (id BIGINT, label VARCHAR(20))",
		"INSERT INTO " + d + ".big SELECT n, CONCAT('row ', n) FROM (SELECT a.x + 10 * b.x + 100 * c.x + 1000 * e.x AS n FROM " + digits + " a, " + digits + " b, " + digits + " c, " + digits + " e) s WHERE n < 5000",
		"CREATE VIEW " + d + ".v AS SELECT id, name FROM " + d + ".t WHERE score IS NOT NULL",
		"CREATE TABLE " + d + ".typed (i TINYINT, ub BIGINT UNSIGNED, f FLOAT, dbl DOUBLE, dec1 DECIMAL(10,2), tx TEXT, d DATE, dt DATETIME(6), ts TIMESTAMP NULL, bl BLOB, bt BIT(8), j JSON, e ENUM('a','b'))",
		"INSERT INTO " + d + ".typed VALUES (-5, 18446744073709551615, 1.5, 2.25, 12345678.91, 'text', '2024-02-29', '2024-05-06 07:08:09.123456', '2024-05-06 07:08:09', x'00ff', b'101', '{\"a\": 1}', 'b'), (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
		"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, CREATE TEMPORARY TABLES, LOCK TABLES ON " + d + ".* TO '" + e.user + "'@'%'",
	} {
		exec(q)
	}
	return e
}

const digits = "(SELECT 0 x UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)"

func (e *env) config() string {
	b, _ := json.Marshal(map[string]any{"host": e.host, "port": e.port, "database": e.db, "user": e.user, "tls": "disable"})
	return string(b)
}

func (e *env) secrets() map[string]string { return map[string]string{"password": e.password} }

func (e *env) corpus() []string {
	d := e.db
	return []string{
		"WITH x AS (SELECT 1) DELETE FROM " + d + ".t",
		"DELETE FROM " + d + ".t",
		"SELECT 1; DROP TABLE " + d + ".t",
		"INSERT INTO " + d + ".t VALUES (99, 'x', 0)",
		"UPDATE " + d + ".t SET name = 'x'",
		"REPLACE INTO " + d + ".t VALUES (1, 'x', 0)",
		"TRUNCATE TABLE " + d + ".big",
		"DROP TABLE " + d + ".big",
		"CREATE TABLE " + d + ".z (a INT)",
		"CREATE TEMPORARY TABLE " + d + ".z (a INT)",
		"ALTER TABLE " + d + ".t ADD COLUMN c INT",
		"CREATE INDEX i ON " + d + ".t (name)",
		"SELECT 1 INTO OUTFILE '" + e.probe + "'",
		"SELECT 1 INTO DUMPFILE '" + e.probe + "'",
		"LOAD DATA INFILE '/etc/hostname' INTO TABLE " + d + ".t",
		"LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE " + d + ".t",
		"GRANT ALL ON *.* TO CURRENT_USER",
		"SET GLOBAL read_only = 0",
	}
}

func (e *env) checkUnchanged(t *testing.T) {
	t.Helper()
	var n, big int
	var names string
	if err := e.admin.QueryRow("SELECT (SELECT COUNT(*) FROM "+e.db+".t), (SELECT COUNT(*) FROM "+e.db+".big), (SELECT GROUP_CONCAT(name ORDER BY id) FROM "+e.db+".t)").Scan(&n, &big, &names); err != nil {
		t.Fatal(err)
	}
	if n != 3 || big != 5000 || names != "ada,grace,o'brien" {
		t.Errorf("data changed: %d %d %s", n, big, names)
	}
	var tables int
	e.admin.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", e.db).Scan(&tables)
	if tables != 4 {
		t.Errorf("%d tables, want 4", tables)
	}
	var cols int
	e.admin.QueryRow("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 't'", e.db).Scan(&cols)
	if cols != 3 {
		t.Errorf("t has %d columns", cols)
	}
	if _, err := os.Stat(e.probe); err == nil {
		t.Errorf("the server wrote %s", e.probe)
	}
}

func TestConformance(t *testing.T) {
	e := setup(t)
	d := e.db
	sdktest.Run(t, mysql.New(), sdktest.Config{
		ValidConfig:     e.config(),
		ValidSecrets:    e.secrets(),
		InvalidConfig:   `{"host": "/var/run/mysqld/mysqld.sock", "database": "x", "user": "u", "tls": "bogus", "allowAllFiles": true}`,
		InvalidSecrets:  map[string]string{"password": "invalid-secret"},
		KnownQuery:      "SELECT id, name, score FROM " + d + ".t ORDER BY id",
		KnownRows:       [][]any{{1, "ada", 1.5}, {2, "grace", nil}, {3, "o'brien", -2.0}},
		EchoQuery:       "SELECT CAST(? AS CHAR)",
		ManyRowsQuery:   "SELECT id, label FROM " + d + ".big ORDER BY id",
		SlowQuery:       "SELECT SLEEP(60)",
		WriteStatements: e.corpus(),
		Tables:          []sdk.TableRef{{Namespace: d, Name: "t"}, {Namespace: d, Name: "big"}, {Namespace: d, Name: "v"}},
		MissingTable:    &sdk.TableRef{Namespace: d, Name: "no_such_table"},
	})
	e.checkUnchanged(t)
}

func TestBypassCorpus(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	h := sdktest.Start(t, mysql.New(), e.config(), e.secrets())
	for _, q := range e.corpus() {
		if _, err := h.Query(ctx, q); err == nil {
			t.Errorf("accepted: %s", q)
		} else if c := sdktest.Code(err); c != codes.PermissionDenied && c != codes.InvalidArgument {
			t.Errorf("%s: %v", q, err)
		}
	}
	// Session changes a query may make do not make later queries writable.
	for _, q := range []string{"SET SESSION TRANSACTION READ WRITE", "SET SESSION tx_read_only = 0", "COMMIT", "LOCK TABLES " + e.db + ".t WRITE", "SET autocommit = 1"} {
		_, err := h.Query(ctx, q)
		t.Logf("%s: %v", q, err)
		for _, w := range []string{"DELETE FROM " + e.db + ".t", "DROP TABLE " + e.db + ".big"} {
			if _, err := h.Query(ctx, w); err == nil {
				t.Errorf("after %q, %q was accepted", q, w)
			}
		}
	}
	e.checkUnchanged(t)
}

func TestPrivilegedUserRefused(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	h := sdktest.Start(t, mysql.New(), e.adminCfg, nil)
	hr, err := h.CheckHealth(ctx)
	if err != nil || hr.OK || !strings.Contains(hr.Message, "FILE or SUPER") {
		t.Skipf("the test DSN's user is not refused (%+v %v): it lacks FILE/SUPER", hr, err)
	}
	if _, err := h.Query(ctx, "SELECT 1 INTO OUTFILE '"+e.probe+"'"); sdktest.Code(err) != codes.PermissionDenied {
		t.Fatalf("got %v", err)
	}
	e.checkUnchanged(t)
}

func TestTypes(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	h := sdktest.Start(t, mysql.New(), e.config(), e.secrets())
	for _, withParam := range []bool{false, true} {
		q := "SELECT * FROM " + e.db + ".typed ORDER BY i IS NULL"
		var params []any
		if withParam { // the binary protocol (a prepared statement)
			q = "SELECT * FROM " + e.db + ".typed WHERE ? = 1 ORDER BY i IS NULL"
			params = []any{int64(1)}
		}
		res, err := h.Query(ctx, q, params...)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, f := range res.Schema.Fields() {
			types = append(types, f.Name+":"+f.Type.String())
		}
		want := "i:int64 ub:uint64 f:float32 dbl:float64 dec1:decimal(10, 2) tx:utf8 d:date32 dt:timestamp[us] ts:timestamp[us, tz=UTC] bl:binary bt:int64 j:utf8 e:utf8"
		if got := strings.Join(types, " "); got != want {
			t.Fatalf("params %v: types\n%s\nwant\n%s", withParam, got, want)
		}
		wantRow := []any{int64(-5), uint64(18446744073709551615), 1.5, 2.25, "12345678.91", "text", sdk.Date{Year: 2024, Month: 2, Day: 29},
			time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC), time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), []byte{0, 0xff}, int64(5), `{"a": 1}`, "b"}
		if ok, diff := sdktest.SameRows(res.Rows[:1], [][]any{wantRow}); !ok {
			t.Fatalf("params %v: %s\n%#v", withParam, diff, res.Rows[0])
		}
		for i, v := range res.Rows[1] {
			if v != nil {
				t.Errorf("column %d: %#v, want NULL", i, v)
			}
		}
	}
	if _, err := h.Query(ctx, "SELECT ?", []any{int64(1)}); sdktest.Code(err) != codes.InvalidArgument {
		t.Fatalf("list: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	c := mysql.New()
	ctx := context.Background()
	for name, tc := range map[string]struct{ json, field string }{
		"socket":        {`{"host": "/tmp/mysql.sock", "database": "d", "user": "u"}`, "/host"},
		"dsn injection": {`{"host": "h)/d?allowAllFiles=true&x=(", "database": "d", "user": "u"}`, "/host"},
		"params":        {`{"host": "h", "database": "d", "user": "u", "params": {"allowAllFiles": "true"}}`, "/params"},
		"database":      {`{"host": "h", "database": "../d", "user": "u"}`, "/database"},
		"tls":           {`{"host": "h", "database": "d", "user": "u", "tls": "custom"}`, "/tls"},
	} {
		found := false
		for _, fe := range c.ValidateConfig(ctx, sdk.Config{JSON: []byte(tc.json)}) {
			found = found || fe.Field == tc.field
		}
		if !found {
			t.Errorf("%s: no error on %s", name, tc.field)
		}
	}
}

// A query whose deadline passes is killed on the server, not only abandoned
// by the driver.
func TestDeadlineKillsServerQuery(t *testing.T) {
	e := setup(t)
	h := sdktest.Start(t, mysql.New(), e.config(), e.secrets())
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := h.Query(ctx, "SELECT SLEEP(30)"); sdktest.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("got %v", err)
	}
	for {
		var n int
		e.admin.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ? AND INFO LIKE 'SELECT SLEEP%'", e.user).Scan(&n)
		if n == 0 {
			break
		}
		if time.Since(start) > 3*time.Second {
			t.Fatal("SLEEP still running on the server 2 s after the deadline")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("server query gone %v after the start (deadline 700 ms)", time.Since(start).Round(time.Millisecond))
}
