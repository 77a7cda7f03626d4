package sqlite_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	_ "modernc.org/sqlite"

	"github.com/datapulse/datapulse/plugins/builtin/sqlite"
	"github.com/datapulse/datapulse/plugins/sdk"
	"github.com/datapulse/datapulse/plugins/sdk/sdktest"
)

// fixture creates a database with known contents in a fresh directory.
func fixture(t *testing.T) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "data.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		`CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL)`,
		`INSERT INTO t VALUES (1, 'ada', 1.5), (2, 'grace', NULL), (3, 'o''brien', -2)`,
		`CREATE TABLE big (id INTEGER, label TEXT)`,
		`CREATE INDEX big_id ON big (id)`,
		`WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < 4999) INSERT INTO big SELECT x, 'row ' || x FROM c`,
		`CREATE VIEW v AS SELECT id, name FROM t WHERE score IS NOT NULL`,
		`CREATE TABLE typed (d DATETIME, b BOOLEAN, raw BLOB, n NUMERIC, any_col)`,
		`INSERT INTO typed VALUES ('2024-05-06 07:08:09', 1, x'00ff', 2.5, 'x'), (NULL, 0, NULL, 3, 4)`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	return dir, path
}

func cfgJSON(path string) string {
	b, _ := json.Marshal(map[string]string{"path": path})
	return string(b)
}

func suiteConfig(dir, path string) sdktest.Config {
	return sdktest.Config{
		ValidConfig:   cfgJSON(path),
		InvalidConfig: `{"path": "relative/data.db"}`,
		KnownQuery:    "SELECT id, name, score FROM t ORDER BY id",
		KnownRows: [][]any{
			{1, "ada", 1.5},
			{2, "grace", nil},
			{3, "o'brien", -2.0},
		},
		EchoQuery:       "SELECT ?",
		ManyRowsQuery:   "SELECT id, label FROM big ORDER BY id",
		SlowQuery:       "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
		WriteStatements: bypassCorpus(dir),
		Tables: []sdk.TableRef{
			{Namespace: "main", Name: "t"}, {Namespace: "main", Name: "big"}, {Namespace: "main", Name: "v"},
		},
	}
}

// bypassCorpus holds statements that try to change something. Each must be
// refused by SQLite itself (mode=ro, query_only, the authorizer).
func bypassCorpus(dir string) []string {
	return []string{
		`DELETE FROM t`,
		`WITH x AS (SELECT 1) DELETE FROM t`,
		`WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x`,
		`DELETE FROM t RETURNING id`,
		`SELECT 1; DROP TABLE t`,
		`SELECT * FROM t; DELETE FROM t`,
		`INSERT INTO t (id, name) VALUES (99, 'x')`,
		`UPDATE t SET name = 'x'`,
		`DROP TABLE big`,
		`CREATE TABLE z (a)`,
		`CREATE TEMP TABLE z (a)`,
		`ALTER TABLE t ADD COLUMN c`,
		`ATTACH DATABASE '` + filepath.Join(dir, "evil.db") + `' AS e`,
		`ATTACH DATABASE 'file:` + filepath.Join(dir, "evil2.db") + `?mode=rwc' AS e`,
		`VACUUM INTO '` + filepath.Join(dir, "copy.db") + `'`,
		`VACUUM`,
		`PRAGMA query_only = 0`,
		`PRAGMA query_only = 0; DELETE FROM t`,
		`PRAGMA writable_schema = 1`,
		`PRAGMA journal_mode = DELETE`,
		`BEGIN IMMEDIATE`,
		`REINDEX`,
		`ANALYZE`,
		`SELECT load_extension('` + filepath.Join(dir, "x.so") + `')`,
	}
}

func TestConformance(t *testing.T) {
	dir, path := fixture(t)
	sum := fileSum(t, path)
	sdktest.Run(t, sqlite.NewWithOptions(sqlite.Options{}), suiteConfig(dir, path))
	assertUnchanged(t, dir, path, sum)
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// assertUnchanged: the database file has the same bytes and no other file
// appeared in its directory (no ATTACHed or VACUUMed copies, no journal).
func assertUnchanged(t *testing.T, dir, path string, sum [32]byte) {
	t.Helper()
	if fileSum(t, path) != sum {
		t.Error("the database file changed")
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		if n != "data.db" && n != "meta.db" && n != "links" {
			t.Errorf("a file appeared next to the database: %v", names)
			break
		}
	}
}

// Every statement of the bypass corpus is refused, changes nothing and
// creates no file, with all layers on; with the authorizer off, mode=ro and
// query_only still refuse everything that would change the database.
func TestBypassCorpus(t *testing.T) {
	ctx := context.Background()
	dir, path := fixture(t)
	sum := fileSum(t, path)
	for _, tc := range []struct {
		name string
		c    sdk.Connector
	}{
		{"all layers", sqlite.NewWithOptions(sqlite.Options{})},
		{"without the authorizer", sqlite.NewUnprotected()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := sdktest.Start(t, tc.c, cfgJSON(path), nil)
			for _, stmt := range bypassCorpus(dir) {
				_, err := h.Query(ctx, stmt)
				if tc.name == "all layers" {
					if err == nil {
						t.Errorf("accepted: %s", stmt)
					} else if c := sdktest.Code(err); c != codes.PermissionDenied && c != codes.InvalidArgument {
						t.Errorf("%s: %v", stmt, err)
					}
				}
				// Every statement, accepted or not, leaves the data as it was.
				res, err := h.Query(ctx, "SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM big), (SELECT count(*) FROM sqlite_schema)")
				if err != nil {
					t.Fatal(err)
				}
				if got := res.Rows[0]; got[0] != int64(3) || got[1] != int64(5000) || got[2] != int64(5) {
					t.Fatalf("after %q: counts %v", stmt, got)
				}
			}
			if tc.name == "without the authorizer" {
				// The layers below still refuse each data change.
				for _, stmt := range []string{`DELETE FROM t`, `SELECT 1; DROP TABLE t`, `PRAGMA query_only = 0; DELETE FROM t`, `INSERT INTO t (id, name) VALUES (99, 'x')`, `CREATE TABLE z (a)`} {
					if _, err := h.Query(ctx, stmt); err == nil {
						t.Errorf("mode=ro/query_only accepted: %s", stmt)
					}
				}
				return
			}
			assertUnchanged(t, dir, path, sum)
		})
	}
	if fileSum(t, path) != sum {
		t.Error("the database file changed")
	}
}

// The metadata database is refused by any name: symlinks, URIs, dot
// segments, escaped characters, hard links, its side files, a forbidden
// directory.
func TestForbiddenPaths(t *testing.T) {
	ctx := context.Background()
	dir, path := fixture(t)
	meta := filepath.Join(dir, "meta.db")
	copyFile(t, path, meta)
	if err := os.WriteFile(meta+"-wal", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	links := filepath.Join(dir, "links")
	if err := os.Mkdir(links, 0o700); err != nil {
		t.Fatal(err)
	}
	must(t, os.Symlink(meta, filepath.Join(links, "sym.db")))
	must(t, os.Symlink(dir, filepath.Join(links, "dirlink")))
	must(t, os.Symlink(filepath.Join(links, "sym.db"), filepath.Join(links, "chain.db")))
	hard := filepath.Join(links, "hard.db")
	if err := os.Link(meta, hard); err != nil {
		t.Logf("no hard links here: %v", err)
		hard = ""
	}
	c := sqlite.NewWithOptions(sqlite.Options{Forbidden: []string{meta}})
	h := sdktest.Start(t, c, cfgJSON(path), nil)

	refused := []string{
		meta,
		meta + "-wal",
		filepath.Join(dir, ".", "meta.db"),
		filepath.Join(links, "..", "meta.db"),
		dir + "/links/../meta.db",
		filepath.Join(links, "sym.db"),
		filepath.Join(links, "chain.db"),
		filepath.Join(links, "dirlink", "meta.db"),
		"file:" + meta,
		"file://" + meta,
		"file://localhost" + meta,
		"FILE:" + meta,
		"file:" + strings.ReplaceAll(meta, "meta", "%6Deta"),
		"file:" + dir + "/links/..%2Fmeta.db",
		"file:" + meta + "?mode=rw",
		"file:" + meta + "?vfs=unix-none",
		"file:" + meta + "#x",
		"file:" + path + "?_pragma=query_only(0)",
		"file://otherhost" + path,
		"relative.db",
		":memory:",
		"file::memory:",
		"",
		path + "?mode=rw",
	}
	if hard != "" {
		refused = append(refused, hard)
	}
	for _, p := range refused {
		ch := h.With(cfgJSON(p), nil)
		fes, err := ch.ValidateConfig(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(fes) == 0 || fes[0].Field != "/path" {
			t.Errorf("%q: ValidateConfig gave %v", p, fes)
		}
		ch.DataSourceID = "ds-" + url.QueryEscape(p)
		if _, err := ch.Query(ctx, "SELECT count(*) FROM sqlite_schema"); sdktest.Code(err) != codes.InvalidArgument {
			t.Errorf("%q: query gave %v", p, err)
		}
		hr, err := ch.CheckHealth(ctx)
		if err == nil && hr.OK {
			t.Errorf("%q: healthy", p)
		}
	}

	// A forbidden directory covers everything under it, by any name.
	private := filepath.Join(dir, "private")
	must(t, os.Mkdir(private, 0o700))
	copyFile(t, path, filepath.Join(private, "x.db"))
	cd := sqlite.NewWithOptions(sqlite.Options{Forbidden: []string{private}})
	for _, p := range []string{filepath.Join(private, "x.db"), filepath.Join(links, "dirlink", "private", "x.db"), "file:" + private + "/x.db"} {
		hd := sdktest.Start(t, cd, cfgJSON(p), nil)
		if fes, _ := hd.ValidateConfig(ctx); len(fes) == 0 {
			t.Errorf("%s under a forbidden directory was accepted", p)
		}
	}

	// The allowed database next to it still works, by path and by URI.
	for _, p := range []string{path, "file:" + path, "file://" + path} {
		ch := h.With(cfgJSON(p), nil)
		if fes, _ := ch.ValidateConfig(ctx); len(fes) != 0 {
			t.Errorf("%q: %v", p, fes)
		}
	}

	// The environment variable is how the host passes the list.
	t.Setenv(sqlite.EnvForbiddenPaths, "/nonexistent"+string(os.PathListSeparator)+meta)
	he := sdktest.Start(t, sqlite.New(), cfgJSON(filepath.Join(links, "sym.db")), nil)
	if fes, _ := he.ValidateConfig(ctx); len(fes) == 0 {
		t.Error("New() ignored " + sqlite.EnvForbiddenPaths)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	must(t, err)
	must(t, os.WriteFile(to, b, 0o600))
}

func TestTypesAndParams(t *testing.T) {
	ctx := context.Background()
	_, path := fixture(t)
	h := sdktest.Start(t, sqlite.NewWithOptions(sqlite.Options{}), cfgJSON(path), nil)

	res, err := h.Query(ctx, "SELECT d, b, raw, n, any_col FROM typed ORDER BY rowid")
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, f := range res.Schema.Fields() {
		types = append(types, f.Type.String())
	}
	if got := strings.Join(types, ","); got != "timestamp[us, tz=UTC],bool,binary,float64,utf8" {
		t.Fatalf("types %s", got)
	}
	want := [][]any{
		{time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), true, []byte{0, 0xff}, 2.5, "x"},
		{nil, false, nil, 3.0, "4"},
	}
	if ok, diff := sdktest.SameRows(res.Rows, want); !ok {
		t.Fatalf("%s: %v", diff, res.Rows)
	}

	res, err = h.Query(ctx, "SELECT ? AS i, ? AS f, ? AS b, ? AS n, ? AS ts, ? AS d, typeof(?) AS tn",
		int64(7), 2.5, true, nil, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), sdk.Date{Year: 2024, Month: 2, Day: 29}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, diff := sdktest.SameRows(res.Rows, [][]any{{7, 2.5, 1, nil, "2024-01-02 03:04:05", "2024-02-29", "null"}}); !ok {
		t.Fatalf("%s: %v", diff, res.Rows)
	}

	if _, err := h.Query(ctx, "SELECT ?", []any{1, 2}); sdktest.Code(err) != codes.InvalidArgument {
		t.Fatalf("list parameter: %v", err)
	}

	// A value that does not fit the type decided from the first rows.
	_, err = h.Query(ctx, "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) SELECT CASE WHEN x < 1500 THEN x ELSE 'text' END FROM c")
	if sdktest.Code(err) != codes.InvalidArgument || !strings.Contains(sdktest.Message(err), "CAST") {
		t.Fatalf("mixed column: %v", err)
	}

	// Duplicate column names are made unique.
	res, err = h.Query(ctx, "SELECT 1 AS a, 2 AS a")
	if err != nil || res.Schema.Field(1).Name != "a_2" {
		t.Fatalf("%v %v", res, err)
	}

	// Describe uses the declared types.
	infos, err := h.DescribeTables(ctx, sdk.TableRef{Namespace: "main", Name: "typed"}, sdk.TableRef{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, c := range infos[0].Columns {
		got = append(got, c.Name+":"+c.NativeType+":"+c.ArrowType)
	}
	if strings.Join(got, " ") != "d:DATETIME:timestamp[us, tz=UTC] b:BOOLEAN:bool raw:BLOB:binary n:NUMERIC:float64 any_col:ANY:utf8" {
		t.Fatalf("describe %v", got)
	}
	if c := infos[1].Columns[1]; c.Name != "name" || c.Nullable {
		t.Fatalf("t.name %+v", c)
	}
	if _, err := h.ListTables(ctx, "temp", 10, ""); sdktest.Code(err) != codes.NotFound {
		t.Fatalf("unknown namespace: %v", err)
	}
}

func TestNotADatabase(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "notes.txt")
	must(t, os.WriteFile(p, []byte(strings.Repeat("not sqlite\n", 100)), 0o600))
	h := sdktest.Start(t, sqlite.NewWithOptions(sqlite.Options{}), cfgJSON(p), nil)
	hr, err := h.CheckHealth(context.Background())
	if err != nil || hr.OK || !strings.Contains(hr.Message, "not a usable SQLite database") {
		t.Fatalf("%+v %v", hr, err)
	}
	if fes, _ := h.With(cfgJSON(dir), nil).ValidateConfig(context.Background()); len(fes) == 0 {
		t.Fatal("a directory was accepted")
	}
}
