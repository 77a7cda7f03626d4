package csv_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/datapulse/datapulse/plugins/builtin/csv"
	"github.com/datapulse/datapulse/plugins/sdk"
	"github.com/datapulse/datapulse/plugins/sdk/sdktest"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func fixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "people.csv"), "\uFEFFid,name,score,joined,active,zip\n"+
		"1,ada,1.5,2024-01-02T03:04:05Z,true,02134\n"+
		"2,\"grace, rear admiral\",,2024-02-03,false,10001\n"+
		"3,\"o'brien\nsecond line\",-2,2024-03-04 05:06:07,TRUE,\n")
	var b strings.Builder
	b.WriteString("id,label\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "%d,row %d\n", i, i)
	}
	write(t, filepath.Join(dir, "big.csv"), b.String())
	write(t, filepath.Join(dir, "empty.csv"), "a,b\n")
	write(t, filepath.Join(dir, "notes.txt"), "not a table\n")
	return dir
}

func cfgJSON(dir string, extra ...string) string {
	m := map[string]any{"directory": dir}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func sums(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = sha256.Sum256(b)
	}
	return out
}

func bypassCorpus(dir string) []string {
	return []string{
		`DELETE FROM people`,
		`WITH x AS (SELECT 1) DELETE FROM people`,
		`WITH x AS (DELETE FROM people RETURNING *) SELECT * FROM x`,
		`SELECT 1; DROP TABLE people`,
		`INSERT INTO people (id) VALUES (99)`,
		`UPDATE people SET name = 'x'`,
		`DROP TABLE big`,
		`CREATE TABLE z (a)`,
		`CREATE TEMP TABLE z (a)`,
		`ATTACH DATABASE '` + filepath.Join(dir, "evil.db") + `' AS e`,
		`ATTACH DATABASE 'file:/other?vfs=memdb' AS e`,
		`VACUUM INTO '` + filepath.Join(dir, "copy.db") + `'`,
		`PRAGMA query_only = 0; DELETE FROM people`,
		`PRAGMA writable_schema = 1`,
		`BEGIN IMMEDIATE`,
		`SELECT load_extension('x')`,
	}
}

func TestConformance(t *testing.T) {
	dir := fixture(t)
	before := sums(t, dir)
	sdktest.Run(t, csv.NewWithOptions(csv.Options{}), sdktest.Config{
		ValidConfig:   cfgJSON(dir),
		InvalidConfig: `{"directory": "relative/dir", "delimiter": "x"}`,
		KnownQuery:    "SELECT id, name, score FROM people ORDER BY id",
		KnownRows: [][]any{
			{1, "ada", 1.5},
			{2, "grace, rear admiral", nil},
			{3, "o'brien\nsecond line", -2.0},
		},
		EchoQuery:       "SELECT ?",
		ManyRowsQuery:   "SELECT id, label FROM big ORDER BY id",
		SlowQuery:       "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
		WriteStatements: bypassCorpus(dir),
		Tables:          []sdk.TableRef{{Namespace: "main", Name: "people"}, {Namespace: "main", Name: "big"}, {Namespace: "main", Name: "empty"}},
	})
	after := sums(t, dir)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("the directory changed:\n%v\n%v", before, after)
	}
}

func TestBypassCorpusChangesNothing(t *testing.T) {
	ctx := context.Background()
	dir := fixture(t)
	before := sums(t, dir)
	h := sdktest.Start(t, csv.NewWithOptions(csv.Options{}), cfgJSON(dir), nil)
	for _, stmt := range bypassCorpus(dir) {
		if _, err := h.Query(ctx, stmt); err == nil {
			t.Errorf("accepted: %s", stmt)
		} else if c := sdktest.Code(err); c != codes.PermissionDenied && c != codes.InvalidArgument {
			t.Errorf("%s: %v", stmt, err)
		}
		res, err := h.Query(ctx, "SELECT (SELECT count(*) FROM people), (SELECT count(*) FROM big), (SELECT group_concat(name, '|') FROM sqlite_schema)")
		if err != nil {
			t.Fatal(err)
		}
		if ok, diff := sdktest.SameRows(res.Rows, [][]any{{3, 5000, "big|empty|people"}}); !ok {
			t.Fatalf("after %q: %s", stmt, diff)
		}
	}
	if after := sums(t, dir); fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("the directory changed:\n%v\n%v", before, after)
	}
}

func TestTypeInference(t *testing.T) {
	ctx := context.Background()
	dir := fixture(t)
	h := sdktest.Start(t, csv.NewWithOptions(csv.Options{}), cfgJSON(dir), nil)
	infos, err := h.DescribeTables(ctx, sdk.TableRef{Namespace: "main", Name: "people"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range infos[0].Columns {
		got = append(got, c.Name+":"+c.NativeType+":"+c.ArrowType)
	}
	want := "id:INTEGER:int64 name:TEXT:utf8 score:REAL:float64 joined:DATETIME:timestamp[us, tz=UTC] active:BOOLEAN:bool zip:TEXT:utf8"
	if strings.Join(got, " ") != want {
		t.Fatalf("columns\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
	if infos[0].Ref.Kind != sdk.KindFile {
		t.Errorf("kind %v", infos[0].Ref.Kind)
	}
	res, err := h.Query(ctx, "SELECT joined, active, zip, strftime('%Y', joined) FROM people ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	wantRows := [][]any{
		{time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), true, "02134", "2024"},
		{time.Date(2024, 2, 3, 0, 0, 0, 0, time.UTC), false, "10001", "2024"},
		{time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC), true, nil, "2024"},
	}
	if ok, diff := sdktest.SameRows(res.Rows, wantRows); !ok {
		t.Fatalf("%s: %v", diff, res.Rows)
	}
	// Parameters bind against typed columns.
	res, err = h.Query(ctx, "SELECT name FROM people WHERE id = ? OR (active = ? AND zip = ?) ORDER BY id", int64(1), false, "10001")
	if err != nil {
		t.Fatal(err)
	}
	if ok, diff := sdktest.SameRows(res.Rows, [][]any{{"ada"}, {"grace, rear admiral"}}); !ok {
		t.Fatalf("%s: %v", diff, res.Rows)
	}

	// Other layouts: no header, semicolons, ragged rows, mixed numbers.
	dir2 := t.TempDir()
	write(t, filepath.Join(dir2, "m.csv"), "1;2.5;x\n2;3\n3;NaN;\n")
	h2 := h.With(cfgJSON(dir2, "delimiter", ";", "header", "x"), nil)
	if fes, _ := h2.ValidateConfig(ctx); len(fes) == 0 {
		t.Fatal(`"header": "x" accepted`)
	}
	h2 = h.With(`{"directory": "`+dir2+`", "delimiter": ";", "header": false}`, nil)
	res, err = h2.Query(ctx, "SELECT * FROM m ORDER BY column_1")
	if err != nil {
		t.Fatal(err)
	}
	if ok, diff := sdktest.SameRows(res.Rows, [][]any{{1, "2.5", "x"}, {2, "3", nil}, {3, "NaN", nil}}); !ok {
		t.Fatalf("%s: %v (schema %s)", diff, res.Rows, res.Schema)
	}
	write(t, filepath.Join(dir2, "m.csv"), "a,b\n1,2\n1,2,3\n")
	_, err = h.With(cfgJSON(dir2), nil).Query(ctx, "SELECT * FROM m")
	if sdktest.Code(err) != codes.InvalidArgument || !strings.Contains(sdktest.Message(err), "m.csv, line 3") {
		t.Fatalf("ragged: %v", err)
	}
}

func TestReloadOnChange(t *testing.T) {
	ctx := context.Background()
	dir := fixture(t)
	h := sdktest.Start(t, csv.NewWithOptions(csv.Options{}), cfgJSON(dir), nil)
	count := func() any {
		t.Helper()
		res, err := h.Query(ctx, "SELECT count(*) FROM people")
		if err != nil {
			t.Fatal(err)
		}
		return res.Rows[0][0]
	}
	if c := count(); c != int64(3) {
		t.Fatalf("count %v", c)
	}
	write(t, filepath.Join(dir, "people.csv"), "id,name\n1,a\n2,b\n3,c\n4,d\n")
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(filepath.Join(dir, "people.csv"), later, later); err != nil {
		t.Fatal(err)
	}
	if c := count(); c != int64(4) {
		t.Fatalf("after the file changed, count %v", c)
	}
	write(t, filepath.Join(dir, "added.csv"), "x\n1\n")
	if _, err := h.Query(ctx, "SELECT x FROM added"); err != nil {
		t.Fatalf("a new file: %v", err)
	}
}

func TestLimitsAndLinks(t *testing.T) {
	ctx := context.Background()
	dir := fixture(t)

	small := csv.NewWithOptions(csv.Options{Limits: csv.Limits{MaxFileBytes: 1000}})
	h := sdktest.Start(t, small, cfgJSON(dir), nil)
	if _, err := h.Query(ctx, "SELECT 1"); sdktest.Code(err) != codes.ResourceExhausted {
		t.Fatalf("file size limit: %v", err)
	}
	total := csv.NewWithOptions(csv.Options{Limits: csv.Limits{MaxTotalBytes: 10000}})
	if _, err := sdktest.Start(t, total, cfgJSON(dir), nil).Query(ctx, "SELECT 1"); sdktest.Code(err) != codes.ResourceExhausted {
		t.Fatalf("total size limit: %v", err)
	}

	// A link to a file outside the directory is refused.
	outside := t.TempDir()
	write(t, filepath.Join(outside, "secret.csv"), "k\nv\n")
	linked := t.TempDir()
	if err := os.Symlink(filepath.Join(outside, "secret.csv"), filepath.Join(linked, "s.csv")); err != nil {
		t.Fatal(err)
	}
	hl := sdktest.Start(t, csv.NewWithOptions(csv.Options{}), cfgJSON(linked), nil)
	if _, err := hl.Query(ctx, "SELECT * FROM s"); sdktest.Code(err) != codes.PermissionDenied {
		t.Fatalf("link outside: %v", err)
	}

	// A forbidden directory is refused, also through a symlink.
	if err := os.Symlink(dir, filepath.Join(outside, "dirlink")); err != nil {
		t.Fatal(err)
	}
	hf := sdktest.Start(t, csv.NewWithOptions(csv.Options{Forbidden: []string{dir}}), cfgJSON(filepath.Join(outside, "dirlink")), nil)
	if fes, _ := hf.ValidateConfig(ctx); len(fes) == 0 || fes[0].Field != "/directory" {
		t.Fatalf("forbidden directory: %v", fes)
	}
}
