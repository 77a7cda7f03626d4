package queries_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/queries"
	"github.com/datapulse/datapulse/ent/schema/types"
)

func TestCompile(t *testing.T) {
	vals := map[string]any{"region": "EU", "min": int64(10), "ids": []any{int64(1), int64(2), int64(3)}, "evil": "'; DROP TABLE t; --"}
	cases := []struct {
		name, sql, dialect string
		want               string
		args               []any
		err                string
	}{
		{"postgres numbering", "SELECT * FROM s WHERE region = {{region}} AND n > {{ min }}", queries.DialectPostgres,
			"SELECT * FROM s WHERE region = $1 AND n > $2", []any{"EU", int64(10)}, ""},
		{"question marks", "SELECT * FROM s WHERE region = {{region}} AND n > {{min}}", queries.DialectSQLite,
			"SELECT * FROM s WHERE region = ? AND n > ?", []any{"EU", int64(10)}, ""},
		{"list expands", "SELECT * FROM s WHERE id IN ({{ids}}) AND r = {{region}}", queries.DialectPostgres,
			"SELECT * FROM s WHERE id IN ($1, $2, $3) AND r = $4", []any{int64(1), int64(2), int64(3), "EU"}, ""},
		{"repeat binds twice", "SELECT {{min}}, {{min}}", queries.DialectMySQL, "SELECT ?, ?", []any{int64(10), int64(10)}, ""},
		{"evil value stays data", "SELECT {{evil}}", queries.DialectPostgres, "SELECT $1", []any{"'; DROP TABLE t; --"}, ""},
		{"literal untouched", "SELECT 'it''s {x}', \"col\" FROM t -- {not a param}\n", queries.DialectPostgres,
			"SELECT 'it''s {x}', \"col\" FROM t -- {not a param}\n", nil, ""},
		{"dollar quote untouched", "SELECT $fn$ a { b $fn$, col$1 FROM t", queries.DialectPostgres,
			"SELECT $fn$ a { b $fn$, col$1 FROM t", nil, ""},
		{"placeholder in literal", "SELECT '{{region}}'", queries.DialectPostgres, "", nil, "inside quotes"},
		{"placeholder in dollar quote", "SELECT $$ {{region}} $$", queries.DialectPostgres, "", nil, "dollar-quoted"},
		{"raw $1 refused", "SELECT * FROM t WHERE a = $1", queries.DialectPostgres, "", nil, "not $1"},
		{"raw ? refused", "SELECT * FROM t WHERE a = ?", queries.DialectSQLite, "", nil, "not ?"},
		{"missing value", "SELECT {{nope}}", queries.DialectPostgres, "", nil, "no value"},
		{"bad name", "SELECT {{1x}}", queries.DialectPostgres, "", nil, "not a parameter name"},
		{"unterminated", "SELECT {{region", queries.DialectPostgres, "", nil, "unterminated"},
		{"unterminated quote", "SELECT 'abc", queries.DialectPostgres, "", nil, "unterminated"},
		{"comment block", "SELECT /* {{x}} */ {{min}}", queries.DialectPostgres, "SELECT /* {{x}} */ $1", []any{int64(10)}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := queries.Compile(c.sql, c.dialect, vals)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, errs.ErrInvalid) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.SQL != c.want || !reflect.DeepEqual(got.Args, c.args) {
				t.Fatalf("got %q %v\nwant %q %v", got.SQL, got.Args, c.want, c.args)
			}
		})
	}
	if _, err := queries.Compile("SELECT {{ids}}", queries.DialectPostgres, map[string]any{"ids": []any{}}); err == nil {
		t.Error("empty list accepted")
	}
}

func TestDefinitionsAndBind(t *testing.T) {
	sql := "SELECT * FROM s WHERE r = {{region}} AND d >= {{since}} AND t < {{until}} AND n > {{min}} AND f = {{flag}} AND id IN ({{ids}}) AND c = {{color}} AND x = {{label}}"
	defs := []types.QueryParameter{
		{Name: "region", Type: "text", Default: "EU"},
		{Name: "since", Type: "date", Required: true},
		{Name: "until", Type: "datetime", Required: true},
		{Name: "min", Type: "number", Default: 0.0},
		{Name: "flag", Type: "boolean", Default: false},
		{Name: "ids", Type: "list", ItemType: "number", Required: true},
		{Name: "color", Type: "enum", Options: []string{"red", "green"}, Default: "red"},
		{Name: "label", Type: "text", Required: true},
	}
	if err := queries.CheckDefinitions(sql, defs); err != nil {
		t.Fatal(err)
	}
	got, err := queries.Bind(defs, map[string]any{
		"since": "2026-01-01", "until": "2026-02-01T10:00:00+01:00", "ids": []any{1.0, 2.0},
		"min": 2.5, "label": "'; DROP TABLE s; --",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got["region"] != "EU" || got["min"] != 2.5 || got["flag"] != false || got["color"] != "red" ||
		!got["since"].(queries.Date).Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) ||
		!got["until"].(time.Time).Equal(time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)) ||
		!reflect.DeepEqual(got["ids"], []any{int64(1), int64(2)}) || got["label"] != "'; DROP TABLE s; --" {
		t.Fatalf("bound: %#v", got)
	}
	bad := []map[string]any{
		{"since": "01/02/2026", "until": "2026-02-01T10:00:00Z", "ids": []any{1.0}, "label": "x"},
		{"since": "2026-01-01", "until": "yesterday", "ids": []any{1.0}, "label": "x"},
		{"since": "2026-01-01", "until": "2026-02-01T10:00:00Z", "ids": []any{"one"}, "label": "x"},
		{"since": "2026-01-01", "until": "2026-02-01T10:00:00Z", "ids": []any{}, "label": "x"},
		{"since": "2026-01-01", "until": "2026-02-01T10:00:00Z", "ids": []any{1.0}, "label": "x", "color": "blue"},
		{"since": "2026-01-01", "until": "2026-02-01T10:00:00Z", "ids": []any{1.0}, "label": 5.0},
		{"since": "2026-01-01", "until": "2026-02-01T10:00:00Z", "ids": []any{1.0}, "label": "x", "flag": "yes"},
		{"since": "2026-01-01", "until": "2026-02-01T10:00:00Z", "ids": []any{1.0}, "label": "x", "unknown": 1.0},
		{"since": "2026-01-01", "until": "2026-02-01T10:00:00Z", "ids": []any{1.0}},
	}
	for i, b := range bad {
		if _, err := queries.Bind(defs, b); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("bad values %d accepted: %v", i, err)
		}
	}
	for _, d := range []struct {
		sql  string
		defs []types.QueryParameter
	}{
		{"SELECT {{a}}", nil},
		{"SELECT 1", []types.QueryParameter{{Name: "a", Type: "text"}}},
		{"SELECT {{a}}", []types.QueryParameter{{Name: "a", Type: "blob"}}},
		{"SELECT {{a}}", []types.QueryParameter{{Name: "a", Type: "enum"}}},
		{"SELECT {{a}}", []types.QueryParameter{{Name: "a", Type: "list", ItemType: "list"}}},
		{"SELECT {{a}}", []types.QueryParameter{{Name: "a", Type: "number", Default: "x"}}},
		{"SELECT {{a}}", []types.QueryParameter{{Name: "a", Type: "text"}, {Name: "a", Type: "text"}}},
	} {
		if err := queries.CheckDefinitions(d.sql, d.defs); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("definitions %v for %q accepted: %v", d.defs, d.sql, err)
		}
	}
}

// FuzzCompile: whatever the SQL text, compiling never panics, never leaves a
// placeholder's value in the text, and binds as many values as it emits
// placeholders.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{"SELECT {{a}}", "SELECT '{{a}}'", "SELECT $x$ {{a}} $x$", "-- {{a}}\n{{a}}", "/* */ {{ a }} IN ({{l}})", "'", "{{", "$1", "?"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, sql string, pg bool) {
		d := queries.DialectSQLite
		if pg {
			d = queries.DialectPostgres
		}
		const secret = "VALUE-7f3a"
		c, err := queries.Compile(sql, d, map[string]any{"a": secret, "l": []any{secret, secret}})
		if err != nil {
			return
		}
		if strings.Contains(c.SQL, secret) && !strings.Contains(sql, secret) {
			t.Fatalf("value spliced into SQL: %q", c.SQL)
		}
		marks := strings.Count(c.SQL, "?") - strings.Count(sql, "?")
		if !pg && marks != len(c.Args) {
			t.Fatalf("%d placeholders for %d args in %q", marks, len(c.Args), c.SQL)
		}
	})
}
