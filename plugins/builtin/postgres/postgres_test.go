package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"

	"github.com/datapulse/datapulse/plugins/builtin/postgres"
	"github.com/datapulse/datapulse/plugins/sdk"
	"github.com/datapulse/datapulse/plugins/sdk/sdktest"
)

// env is a throw-away schema and a login role that may read it, created on
// the PostgreSQL of DATAPULSE_TEST_POSTGRES_URL by its (super)user.
type env struct {
	admin    *pgxpool.Pool
	schema   string
	role     string
	password string
	host     string
	port     int
	database string
	adminCfg string // a connector config as the admin (a superuser)
	probe    string // a path COPY … TO PROGRAM would create
}

func setup(t testing.TB) *env {
	t.Helper()
	raw := os.Getenv("DATAPULSE_TEST_POSTGRES_URL")
	if raw == "" {
		t.Skip("DATAPULSE_TEST_POSTGRES_URL is not set: no PostgreSQL to test against (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	ctx := context.Background()
	admin, err := pgxpool.New(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	e := &env{
		admin:    admin,
		schema:   "dp_conn_" + suffix,
		role:     "dp_conn_" + suffix,
		password: "pw-" + suffix + "-'\\\"x",
		host:     u.Hostname(),
		port:     5432,
		database: strings.TrimPrefix(u.Path, "/"),
		probe:    filepath.Join(os.TempDir(), "dp_pg_probe_"+suffix),
	}
	if p := u.Port(); p != "" {
		e.port = atoi(t, p)
	}
	adminUser := u.User.Username()
	ac, _ := json.Marshal(map[string]any{"host": e.host, "port": e.port, "database": e.database, "user": adminUser, "sslmode": "disable"})
	e.adminCfg = string(ac)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := admin.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE ROLE ` + e.role + ` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '` + strings.ReplaceAll(e.password, "'", "''") + `'`)
	t.Cleanup(func() {
		c := context.Background()
		admin.Exec(c, `DROP SCHEMA IF EXISTS `+e.schema+` CASCADE`)
		admin.Exec(c, `DROP OWNED BY `+e.role)
		admin.Exec(c, `DROP ROLE IF EXISTS `+e.role)
		os.Remove(e.probe)
	})
	s := e.schema
	for _, stmt := range []string{
		`CREATE SCHEMA ` + s,
		`CREATE TABLE ` + s + `.t (id int4 PRIMARY KEY, name text NOT NULL, score float8)`,
		`INSERT INTO ` + s + `.t VALUES (1, 'ada', 1.5), (2, 'grace', NULL), (3, 'o''brien', -2)`,
		`CREATE TABLE ` + s + `.big (id int8, label text)`,
		`INSERT INTO ` + s + `.big SELECT g, 'row ' || g FROM generate_series(0, 4999) g`,
		`CREATE VIEW ` + s + `.v AS SELECT id, name FROM ` + s + `.t WHERE score IS NOT NULL`,
		`CREATE SEQUENCE ` + s + `.seq`,
		`CREATE TABLE ` + s + `.typed (
			i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, n numeric(10,2), nu numeric,
			tx text, vc varchar(10), bp char(3), b bool, ts timestamp, tstz timestamptz, d date,
			u uuid, j json, jb jsonb, by bytea, arr int4[], iv interval)`,
		`INSERT INTO ` + s + `.typed VALUES (
			-2, 40000, 9000000000, 1.5, 2.25, 12345678.91, 3.14159265358979323846264338327950288419716939937510,
			'text', 'varchar', 'ab', true, '2024-05-06 07:08:09.123456', '2024-05-06 07:08:09.5+02', '2024-02-29',
			'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '{"b": true}', '\x00ff', '{1,2,3}', '1 day 2 hours'),
			(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'infinity', '-infinity', 'infinity',
			NULL, NULL, NULL, NULL, NULL, NULL)`,
		`GRANT USAGE ON SCHEMA ` + s + ` TO ` + e.role,
		`GRANT SELECT ON ALL TABLES IN SCHEMA ` + s + ` TO ` + e.role,
		`GRANT USAGE, SELECT ON SEQUENCE ` + s + `.seq TO ` + e.role,
	} {
		exec(stmt)
	}
	return e
}

// grantWrites gives the role privileges a read-only transaction must still
// stop (the connector refuses such a role: only a connector built with
// postgres.NewAllowingWriters works as it).
func (e *env) grantWrites(t testing.TB) {
	t.Helper()
	s := e.schema
	for _, stmt := range []string{
		`GRANT UPDATE ON SEQUENCE ` + s + `.seq TO ` + e.role,
		`GRANT INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA ` + s + ` TO ` + e.role,
		`GRANT CREATE ON SCHEMA ` + s + ` TO ` + e.role,
	} {
		if _, err := e.admin.Exec(context.Background(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			t.Fatalf("bad port %q", s)
		}
		n = n*10 + int(r-'0')
	}
	return n
}

func (e *env) config(extra map[string]any) string {
	m := map[string]any{"host": e.host, "port": e.port, "database": e.database, "user": e.role, "sslmode": "disable", "application_name": "dp-test-" + e.role}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func (e *env) secrets() map[string]string { return map[string]string{"password": e.password} }

func (e *env) corpus() []string {
	s := e.schema
	return []string{
		`WITH x AS (DELETE FROM ` + s + `.t RETURNING *) SELECT * FROM x`,
		`WITH x AS (UPDATE ` + s + `.t SET name = 'x' RETURNING *) SELECT count(*) FROM x`,
		`SELECT 1; DROP TABLE ` + s + `.t`,
		`DELETE FROM ` + s + `.t`,
		`INSERT INTO ` + s + `.t VALUES (99, 'x', 0)`,
		`UPDATE ` + s + `.t SET name = 'x'`,
		`TRUNCATE ` + s + `.big`,
		`DROP TABLE ` + s + `.big`,
		`CREATE TABLE ` + s + `.z (a int)`,
		`CREATE TEMP TABLE z (a int)`,
		`SELECT nextval('` + s + `.seq')`,
		`COPY (SELECT 1) TO PROGRAM 'touch ` + e.probe + `'`,
		`COPY (SELECT 1) TO '` + e.probe + `'`,
		`COPY ` + s + `.t FROM PROGRAM 'echo 7,x,1'`,
		`SELECT lo_import('/etc/hostname')`,
		`SET TRANSACTION READ WRITE`,
		`DO $$ BEGIN EXECUTE 'DELETE FROM ` + s + `.t'; END $$`,
		`ALTER ROLE CURRENT_USER SET default_transaction_read_only = off`,
		`GRANT pg_execute_server_program TO CURRENT_USER`,
		`VACUUM ` + s + `.t`,
		`PREPARE TRANSACTION 'x'`,
	}
}

// sessionCorpus holds statements PostgreSQL may accept (they change no
// data) but that try to weaken the session for later queries on the same
// pooled connection. None may: later queries stay read-only.
func (e *env) sessionCorpus() []string {
	s := e.schema
	return []string{
		`SELECT set_config('default_transaction_read_only', 'off', false)`,
		`SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE`,
		`SET default_transaction_read_only = off`,
		`COMMIT`,
		`ROLLBACK`,
		`LOCK TABLE ` + s + `.t IN ACCESS EXCLUSIVE MODE`,
		`RESET ALL`,
		`DISCARD ALL`,
		`DEALLOCATE ALL`,
		`SELECT pg_advisory_lock(42)`,
	}
}

// checkUnchanged: the data is as created and the COPY probe file was not
// written.
func (e *env) checkUnchanged(t *testing.T) {
	t.Helper()
	var tCount, bigCount int
	var names string
	err := e.admin.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM `+e.schema+`.t), (SELECT count(*) FROM `+e.schema+`.big),
		(SELECT string_agg(name, ',' ORDER BY id) FROM `+e.schema+`.t)`).Scan(&tCount, &bigCount, &names)
	if err != nil {
		t.Fatal(err)
	}
	if tCount != 3 || bigCount != 5000 || names != "ada,grace,o'brien" {
		t.Errorf("data changed: t=%d big=%d names=%s", tCount, bigCount, names)
	}
	var tables int
	e.admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE schemaname = $1`, e.schema).Scan(&tables)
	if tables != 3 {
		t.Errorf("%d tables in the schema, want 3", tables)
	}
	var seq int64
	e.admin.QueryRow(context.Background(), `SELECT last_value FROM `+e.schema+`.seq`).Scan(&seq)
	var called bool
	e.admin.QueryRow(context.Background(), `SELECT is_called FROM `+e.schema+`.seq`).Scan(&called)
	if called {
		t.Errorf("the sequence advanced to %d", seq)
	}
	if _, err := os.Stat(e.probe); err == nil {
		t.Errorf("COPY wrote %s", e.probe)
	}
}

func TestConformance(t *testing.T) {
	e := setup(t)
	s := e.schema
	sdktest.Run(t, postgres.New(), sdktest.Config{
		ValidConfig:    e.config(nil),
		ValidSecrets:   e.secrets(),
		InvalidConfig:  `{"host": "/var/run/postgresql", "database": "test", "user": "x", "sslmode": "bogus", "options": "-c default_transaction_read_only=off"}`,
		InvalidSecrets: map[string]string{"password": "invalid-secret"},
		KnownQuery:     "SELECT id, name, score FROM " + s + ".t ORDER BY id",
		KnownRows: [][]any{
			{1, "ada", 1.5},
			{2, "grace", nil},
			{3, "o'brien", -2.0},
		},
		EchoQuery:       "SELECT $1::text",
		ManyRowsQuery:   "SELECT id, label FROM " + s + ".big ORDER BY id",
		SlowQuery:       "SELECT pg_sleep(60)",
		WriteStatements: e.corpus(),
		Tables:          []sdk.TableRef{{Namespace: s, Name: "t"}, {Namespace: s, Name: "big"}, {Namespace: s, Name: "v"}},
		MissingTable:    &sdk.TableRef{Namespace: s, Name: "no_such_table"},
	})
	e.checkUnchanged(t)
}

// Each statement of the bypass corpus is refused by PostgreSQL and changes
// nothing, including COPY … TO PROGRAM (the role may not run it) and SET
// commands (rolled back with the transaction).
//
// The role holds write privileges here (which the connector refuses on its
// own) to show that the read-only transaction stops them even so.
func TestBypassCorpus(t *testing.T) {
	e := setup(t)
	e.grantWrites(t)
	ctx := context.Background()
	h := sdktest.Start(t, postgres.NewAllowingWriters(), e.config(nil), e.secrets())
	for _, stmt := range e.corpus() {
		_, err := h.Query(ctx, stmt)
		if err == nil {
			t.Errorf("accepted: %s", stmt)
			continue
		}
		if c := sdktest.Code(err); c != codes.PermissionDenied && c != codes.InvalidArgument {
			t.Errorf("%s: %v", stmt, err)
		}
		// The next query on the pool is still read-only and sees the data.
		res, err := h.Query(ctx, "SELECT current_setting('default_transaction_read_only'), current_setting('transaction_read_only'), count(*) FROM "+e.schema+".t")
		if err != nil {
			t.Fatal(err)
		}
		if ok, diff := sdktest.SameRows(res.Rows, [][]any{{"on", "on", 3}}); !ok {
			t.Fatalf("after %q: %s", stmt, diff)
		}
	}
	// One connection, so every statement lands on the same session.
	one := postgres.NewAllowingWriters()
	one.MaxConns = 1
	h1 := sdktest.Start(t, one, e.config(nil), e.secrets())
	for _, stmt := range e.sessionCorpus() {
		_, err := h1.Query(ctx, stmt)
		t.Logf("%s: %v", stmt, err)
		for _, w := range []string{`DELETE FROM ` + e.schema + `.t`, `CREATE TABLE ` + e.schema + `.z (a int)`} {
			if _, err := h1.Query(ctx, w); err == nil {
				t.Errorf("after %q, %q was accepted", stmt, w)
			}
		}
		var locks int
		e.admin.QueryRow(ctx, `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND a.usename = $1`, e.role).Scan(&locks)
		if locks != 0 {
			t.Errorf("after %q the pooled session holds %d advisory locks", stmt, locks)
		}
		res, err := h1.Query(ctx, "SELECT current_setting('default_transaction_read_only'), current_setting('transaction_read_only')")
		if err != nil {
			t.Fatalf("after %q: %v", stmt, err)
		}
		if ok, diff := sdktest.SameRows(res.Rows, [][]any{{"on", "on"}}); !ok {
			t.Errorf("after %q: %s", stmt, diff)
		}
	}
	e.checkUnchanged(t)
}

// A superuser can escape a read-only transaction (COPY … TO PROGRAM works
// in one: see the package comment), so the connector refuses to work as one.
func TestSuperuserRefused(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	var super bool
	if err := e.admin.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || !super {
		t.Skipf("the test URL's user is not a superuser (%v)", err)
	}
	h := sdktest.Start(t, postgres.New(), e.adminCfg, nil)
	hr, err := h.CheckHealth(ctx)
	if err != nil || hr.OK || !strings.Contains(hr.Message, "superuser") {
		t.Fatalf("health as a superuser: %+v %v", hr, err)
	}
	_, err = h.Query(ctx, `COPY (SELECT 1) TO PROGRAM 'touch `+e.probe+`'`)
	if sdktest.Code(err) != codes.PermissionDenied {
		t.Fatalf("query as a superuser: %v", err)
	}
	// A role that is merely a member of a superuser role is refused too.
	if _, err := e.admin.Exec(ctx, "GRANT "+quoteIdent(mustUser(t, e))+" TO "+e.role); err != nil {
		t.Fatal(err)
	}
	defer e.admin.Exec(ctx, "REVOKE "+quoteIdent(mustUser(t, e))+" FROM "+e.role)
	hm := sdktest.Start(t, postgres.New(), e.config(nil), e.secrets())
	if _, err := hm.Query(ctx, "SELECT 1"); sdktest.Code(err) != codes.PermissionDenied {
		t.Fatalf("member of a superuser role: %v", err)
	}
	e.checkUnchanged(t)
}

func mustUser(t *testing.T, e *env) string {
	var u string
	if err := e.admin.QueryRow(context.Background(), "SELECT current_user").Scan(&u); err != nil {
		t.Fatal(err)
	}
	return u
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func TestTypes(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	h := sdktest.Start(t, postgres.New(), e.config(nil), e.secrets())
	res, err := h.Query(ctx, "SELECT * FROM "+e.schema+".typed ORDER BY i2 NULLS LAST")
	if err != nil {
		t.Fatal(err)
	}
	querySchema := res.Schema
	var types []string
	for _, f := range res.Schema.Fields() {
		types = append(types, f.Name+":"+f.Type.String())
	}
	want := "i2:int16 i4:int32 i8:int64 f4:float32 f8:float64 n:decimal(10, 2) nu:utf8 tx:utf8 vc:utf8 bp:utf8 b:bool " +
		"ts:timestamp[us] tstz:timestamp[us, tz=UTC] d:date32 u:utf8 j:utf8 jb:utf8 by:binary arr:utf8 iv:utf8"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("types\n%s\nwant\n%s", got, want)
	}
	row := res.Rows[0]
	wantRow := []any{
		int64(-2), int64(40000), int64(9000000000), 1.5, 2.25, "12345678.91",
		"3.14159265358979323846264338327950288419716939937510", "text", "varchar", "ab ", true,
		time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC), time.Date(2024, 5, 6, 5, 8, 9, 500000000, time.UTC),
		sdk.Date{Year: 2024, Month: 2, Day: 29}, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", `{"a": [1, 2]}`, `{"b": true}`,
		[]byte{0, 0xff},
	}
	if ok, diff := sdktest.SameRows([][]any{row[:len(wantRow)]}, [][]any{wantRow}); !ok {
		t.Fatalf("%s\n%#v", diff, row)
	}
	if row[18] == nil || !strings.Contains(row[18].(string), "1") || row[19] == nil {
		t.Fatalf("array/interval as text: %#v %#v", row[18], row[19])
	}
	// NULLs, and ±infinity as NULL.
	for i, v := range res.Rows[1] {
		if v != nil {
			t.Errorf("column %s: %#v, want NULL", res.Schema.Field(i).Name, v)
		}
	}

	// Parameters of every type bind (as values, never as text in the SQL).
	res, err = h.Query(ctx, "SELECT $1::int8, $2::float8, $3::bool, $4::text, $5::timestamptz, $6::date, $7::text IS NULL, $8::int8[] @> ARRAY[2::int8], 3 = ANY($9::text[]::int[])",
		int64(7), 2.5, true, "x'y", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), sdk.Date{Year: 2024, Month: 2, Day: 29}, nil, []any{int64(1), int64(2)}, []any{"3", "4"})
	if err != nil {
		t.Fatal(err)
	}
	if ok, diff := sdktest.SameRows(res.Rows, [][]any{{7, 2.5, true, "x'y", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), sdk.Date{Year: 2024, Month: 2, Day: 29}, true, true, true}}); !ok {
		t.Fatalf("%s: %v", diff, res.Rows)
	}

	// Describe gives the same Arrow types as Query.
	infos, err := h.DescribeTables(ctx, sdk.TableRef{Namespace: e.schema, Name: "typed"})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range infos[0].Columns {
		if c.ArrowType != querySchema.Field(i).Type.String() {
			t.Errorf("describe %s: %s (%s), query gives %s", c.Name, c.ArrowType, c.NativeType, querySchema.Field(i).Type)
		}
	}
	if infos[0].Columns[5].NativeType != "numeric(10,2)" {
		t.Errorf("native type %q", infos[0].Columns[5].NativeType)
	}
}

func TestConfigValidation(t *testing.T) {
	c := postgres.New()
	ctx := context.Background()
	valid := `{"host": "db.example.com", "port": 5432, "database": "d", "user": "u"}`
	if fes := c.ValidateConfig(ctx, sdk.Config{JSON: []byte(valid), Secrets: map[string]string{"password": "p"}}); len(fes) != 0 {
		t.Fatalf("valid: %v", fes)
	}
	for name, tc := range map[string]struct{ json, field string }{
		"unix socket":      {`{"host": "/var/run/postgresql", "database": "d", "user": "u"}`, "/host"},
		"host list":        {`{"host": "a,b", "database": "d", "user": "u"}`, "/host"},
		"host injection":   {`{"host": "h dbname=postgres", "database": "d", "user": "u"}`, "/host"},
		"host query":       {`{"host": "h?sslmode=disable", "database": "d", "user": "u"}`, "/host"},
		"url as host":      {`{"host": "postgres://u@h/d", "database": "d", "user": "u"}`, "/host"},
		"port":             {`{"host": "h", "port": 0, "database": "d", "user": "u"}`, "/port"},
		"port type":        {`{"host": "h", "port": "5432", "database": "d", "user": "u"}`, "/port"},
		"sslmode":          {`{"host": "h", "database": "d", "user": "u", "sslmode": "bogus"}`, "/sslmode"},
		"options":          {`{"host": "h", "database": "d", "user": "u", "options": "-c x=y"}`, "/options"},
		"passfile":         {`{"host": "h", "database": "d", "user": "u", "passfile": "/etc/x"}`, "/passfile"},
		"service":          {`{"host": "h", "database": "d", "user": "u", "service": "x"}`, "/service"},
		"sslrootcert":      {`{"host": "h", "database": "d", "user": "u", "sslrootcert": "/etc/passwd"}`, "/sslrootcert"},
		"no database":      {`{"host": "h", "user": "u"}`, "/database"},
		"application name": {`{"host": "h", "database": "d", "user": "u", "application_name": "x\ny"}`, "/application_name"},
		"nul":              {`{"host": "h", "database": "d\u0000", "user": "u"}`, "/database"},
	} {
		fes := c.ValidateConfig(ctx, sdk.Config{JSON: []byte(tc.json)})
		found := false
		for _, fe := range fes {
			found = found || fe.Field == tc.field
		}
		if !found {
			t.Errorf("%s: want an error on %s, got %v", name, tc.field, fes)
		}
	}
}

// A cancelled or timed-out query stops on the server, not only in the
// connector.
func TestCancelStopsServerQuery(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	h := sdktest.Start(t, postgres.New(), e.config(nil), e.secrets())
	active := func() int {
		var n int
		e.admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND state = 'active' AND query LIKE '%pg_sleep%'`, e.role).Scan(&n)
		return n
	}
	qctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := h.Query(qctx, "SELECT pg_sleep(30)")
	if sdktest.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("got %v", err)
	}
	for active() > 0 {
		if time.Since(start) > 3*time.Second {
			t.Fatal("pg_sleep still running on the server 2 s after the deadline")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("server query gone %v after the start (deadline 700 ms)", time.Since(start).Round(time.Millisecond))
}
