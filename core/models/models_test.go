package models

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/errs"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var testNow = time.Date(2026, 3, 18, 15, 4, 5, 0, time.UTC) // a Wednesday

func testConfig() Config {
	return Config{
		DataSourceID: "7f0c2b9e-3c1a-4b7e-9a53-0d2f1c6e8a10",
		Table:        &TableRef{Namespace: "public", Name: "orders"},
		Joins: []Join{{
			Table: TableRef{Namespace: "public", Name: "customers"},
			Alias: "c", Type: "left",
			On: []JoinKey{{Left: "customer_id", Right: "id"}},
		}},
		Dimensions: []Dimension{
			{Name: "region", Column: "c.region", Type: TypeString},
			{Name: "status", Column: "status", Type: TypeString},
			{Name: "created_at", Column: "created_at", Type: TypeTime},
			{Name: "shipped_at", Column: "shipped_at", Type: TypeTime, Grains: []string{"day", "month"}},
			{Name: "region_lc", Expr: &Expr{Fn: FnLower, Args: []ExprArg{{Column: "c.region"}}}, Type: TypeString},
			{Name: "label", Expr: &Expr{Fn: FnConcat, Args: []ExprArg{{Column: "status"}, {Literal: "/"}, {Column: "c.region"}}}, Type: TypeString},
			{Name: "country", Expr: &Expr{Fn: FnCoalesce, Args: []ExprArg{{Column: "c.country"}, {Literal: "unknown"}}}, Type: TypeString},
			{Name: "order_week", Expr: &Expr{Fn: FnDateTrunc, Args: []ExprArg{{Literal: "week"}, {Column: "created_at"}}}, Type: TypeTime},
			{Name: "paid", Column: "paid", Type: TypeBoolean},
			{Name: "amount", Column: "amount", Type: TypeNumber},
		},
		Measures: []Measure{
			{Name: "orders", Agg: AggCount},
			{Name: "customers", Agg: AggCountDistinct, Column: "customer_id"},
			{Name: "revenue", Agg: AggSum, Column: "amount"},
			{Name: "avg_amount", Agg: AggAvg, Column: "amount"},
			{Name: "max_amount", Agg: AggMax, Column: "amount"},
			{Name: "paid_revenue", Agg: AggSum, Column: "amount", Filter: []Filter{{Field: "paid", Op: OpEq, Value: true}}},
			{Name: "eu_orders", Agg: AggCount, Filter: []Filter{{Field: "region", Op: OpIn, Value: []any{"EU", "EEA"}}}},
			{Name: "eu_customers", Agg: AggCountDistinct, Column: "customer_id", Filter: []Filter{{Field: "region", Op: OpEq, Value: "EU"}}},
		},
		DefaultSort: []string{"-revenue"},
	}
}

var goldenCases = []struct {
	name string
	req  Request
}{
	{"revenue_by_month_eu_last_7_days", Request{
		Measures: []string{"revenue", "orders"}, Dimensions: []string{"created_at.month", "region"},
		Filters: []Filter{{Field: "region", Op: OpEq, Value: "EU"}, {Field: "created_at", Op: OpLast, Value: "7 days"}},
		Sort:    []string{"created_at.month", "-revenue"}, Limit: 100,
	}},
	{"time_grain_and_default_sort", Request{
		Measures: []string{"revenue"}, Dimensions: []string{"created_at", "shipped_at"}, TimeGrain: "day",
	}},
	{"all_grains", Request{
		Dimensions: []string{"created_at.hour", "created_at.day", "created_at.week", "created_at.month", "created_at.quarter", "created_at.year"},
		Measures:   []string{"orders"},
	}},
	{"expressions_and_operators", Request{
		Measures: []string{"orders", "customers", "avg_amount", "max_amount"}, Dimensions: []string{"region_lc", "label", "country", "order_week"},
		Filters: []Filter{
			{Field: "status", Op: OpNotIn, Value: []any{"void", "test"}},
			{Field: "amount", Op: OpBetween, Value: []any{int64(10), 20.5}},
			{Field: "label", Op: OpContains, Value: "paid"},
			{Field: "shipped_at", Op: OpIsNull},
			{Field: "paid", Op: OpNe, Value: false},
			{Field: "created_at", Op: OpGe, Value: "2026-01-01"},
		},
		Sort: []string{"-orders", "region_lc"}, Limit: 50,
	}},
	{"measure_filters_and_having", Request{
		Measures: []string{"paid_revenue", "eu_orders", "eu_customers"}, Dimensions: []string{"status"},
		Filters: []Filter{
			{Field: "eu_orders", Op: OpGt, Value: int64(5)},
			{Field: "created_at", Op: OpThis, Value: "quarter"},
			{Field: "country", Op: OpIsNotNull},
		},
	}},
	{"relative_dates", Request{
		Measures: []string{"orders"},
		Filters: []Filter{
			{Field: "created_at", Op: OpToday}, {Field: "shipped_at", Op: OpYesterday},
			{Field: "order_week", Op: OpLast, Value: "2 months"}, {Field: "created_at", Op: OpThis, Value: "week"},
		},
	}},
}

func formatGolden(sql string, args []any) string {
	var b strings.Builder
	b.WriteString(sql + "\n")
	for i, a := range args {
		if t, ok := a.(time.Time); ok {
			fmt.Fprintf(&b, "-- arg %d: time.Time %s\n", i+1, t.Format(time.RFC3339))
			continue
		}
		fmt.Fprintf(&b, "-- arg %d: %T %v\n", i+1, a, a)
	}
	return b.String()
}

func TestCompileGolden(t *testing.T) {
	for _, tc := range goldenCases {
		checkSameBinding(t, testConfig(), tc.req, Options{Now: testNow})
		for _, d := range []string{DialectPostgres, DialectMySQL, DialectSQLite} {
			t.Run(tc.name+"/"+d, func(t *testing.T) {
				sql, args, err := Compile(testConfig(), tc.req, d, testNow)
				if err != nil {
					t.Fatal(err)
				}
				checkPlaceholders(t, d, sql, args, 0)
				got := formatGolden(sql, args)
				path := filepath.Join("testdata", tc.name+"."+d+".golden")
				if *update {
					if err := os.MkdirAll("testdata", 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -update)", err)
				}
				if got != string(want) {
					t.Errorf("%s differs:\n got: %s\nwant: %s", path, got, want)
				}
			})
		}
	}
}

// checkPlaceholders: ? count or highest $n matches the bound values.
func checkPlaceholders(t testing.TB, dialect, sql string, args []any, extra int) {
	t.Helper()
	if dialect == DialectPostgres {
		max := 0
		for i := 0; i < len(sql); i++ {
			if sql[i] == '$' {
				n := 0
				j := i + 1
				for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
					n = n*10 + int(sql[j]-'0')
					j++
				}
				if n > max {
					max = n
				}
			}
		}
		if max != len(args) {
			t.Fatalf("highest placeholder $%d but %d args: %s", max, len(args), sql)
		}
		return
	}
	if n := strings.Count(sql, "?"); n != len(args) {
		t.Fatalf("%d placeholders but %d args: %s", n, len(args), sql)
	}
}

func TestCompileDerivedTable(t *testing.T) {
	cfg := testConfig()
	cfg.Table = nil
	cfg.SavedQueryID = "2b1f8c3e-6f0a-4a8e-8d4c-1e2f3a4b5c6d"
	cfg.Dimensions[5].Expr.Args[1] = ExprArg{Literal: "/"} // a bound literal in SELECT before FROM
	req := Request{Measures: []string{"orders"}, Dimensions: []string{"label"}, Filters: []Filter{{Field: "status", Op: OpEq, Value: "paid"}}}
	if _, _, err := Compile(cfg, req, DialectPostgres, testNow); err == nil {
		t.Fatal("unresolved saved query compiled")
	}
	sql, args, err := CompileWith(cfg, req, Options{Dialect: DialectPostgres, Now: testNow,
		Derived: &DerivedTable{SQL: "SELECT * FROM orders WHERE tenant = $1", Args: []any{"acme"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `SELECT concat("base"."status", $2::text, "c"."region") AS "label", COUNT(*) AS "orders" FROM (SELECT * FROM orders WHERE tenant = $1) AS "base" LEFT JOIN "public"."customers" AS "c" ON "base"."customer_id" = "c"."id" WHERE ("base"."status" = $3) GROUP BY 1 LIMIT 100000`
	if sql != want || fmt.Sprint(args) != "[acme / paid]" {
		t.Errorf("got %s %v", sql, args)
	}
	sql, args, err = CompileWith(cfg, req, Options{Dialect: DialectSQLite, Now: testNow,
		Derived: &DerivedTable{SQL: "SELECT * FROM orders WHERE tenant = ?", Args: []any{"acme"}}})
	if err != nil {
		t.Fatal(err)
	}
	want = `SELECT (COALESCE("base"."status", '') || COALESCE(?, '') || COALESCE("c"."region", '')) AS "label", COUNT(*) AS "orders" FROM (SELECT * FROM orders WHERE tenant = ?) AS "base" LEFT JOIN "public"."customers" AS "c" ON "base"."customer_id" = "c"."id" WHERE ("base"."status" = ?) GROUP BY 1 LIMIT 100000`
	if sql != want || fmt.Sprint(args) != "[/ acme paid]" {
		t.Errorf("got %s %v", sql, args)
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name  string
		req   Request
		field string
		msg   string
	}{
		{"empty", Request{}, "measures", "at least one"},
		{"unknown measure", Request{Measures: []string{"profit"}}, "measures[0]", `"profit" is not a measure`},
		{"dimension as measure", Request{Measures: []string{"region"}}, "measures[0]", `"region" is not a measure`},
		{"unknown dimension", Request{Dimensions: []string{"planet"}}, "dimensions[0]", `"planet" is not a dimension`},
		{"grain on string", Request{Dimensions: []string{"region.month"}}, "dimensions[0]", "not a time dimension"},
		{"grain not allowed", Request{Dimensions: []string{"shipped_at.week"}}, "dimensions[0]", `does not allow grain "week"`},
		{"bad grain", Request{Dimensions: []string{"created_at.fortnight"}}, "dimensions[0]", `grain "fortnight"`},
		{"bad time_grain", Request{Dimensions: []string{"created_at"}, TimeGrain: "minute"}, "time_grain", "minute"},
		{"duplicate", Request{Measures: []string{"orders", "orders"}}, "measures[1]", "already requested"},
		{"unknown filter field", Request{Measures: []string{"orders"}, Filters: []Filter{{Field: "secret", Op: OpEq, Value: "x"}}}, "filters[0].field", `"secret"`},
		{"unknown op", Request{Measures: []string{"orders"}, Filters: []Filter{{Field: "region", Op: "like", Value: "x"}}}, "filters[0]", `unknown operator "like"`},
		{"type mismatch", Request{Measures: []string{"orders"}, Filters: []Filter{{Field: "amount", Op: OpGt, Value: "ten"}}}, "filters[0]", "want a number"},
		{"relative on string", Request{Measures: []string{"orders"}, Filters: []Filter{{Field: "region", Op: OpToday}}}, "filters[0]", "time fields only"},
		{"bad last", Request{Measures: []string{"orders"}, Filters: []Filter{{Field: "created_at", Op: OpLast, Value: "7 fortnights"}}}, "filters[0]", "days, weeks or months"},
		{"empty in", Request{Measures: []string{"orders"}, Filters: []Filter{{Field: "region", Op: OpIn, Value: []any{}}}}, "filters[0]", "non-empty list"},
		{"null eq", Request{Measures: []string{"orders"}, Filters: []Filter{{Field: "region", Op: OpEq}}}, "filters[0]", "null"},
		{"bad date", Request{Measures: []string{"orders"}, Filters: []Filter{{Field: "created_at", Op: OpGt, Value: "yesterday-ish"}}}, "filters[0]", "not a date"},
		{"sort unselected", Request{Measures: []string{"orders"}, Sort: []string{"-revenue"}}, "sort", `"-revenue" is not a requested field`},
		{"limit too big", Request{Measures: []string{"orders"}, Limit: MaxLimit + 1}, "limit", "outside"},
		{"negative limit", Request{Measures: []string{"orders"}, Limit: -1}, "limit", "outside"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Compile(testConfig(), tc.req, DialectPostgres, testNow)
			var e *errs.Error
			if !errors.As(err, &e) || !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("want an invalid-input error, got %v", err)
			}
			if e.Field != tc.field || !strings.Contains(e.Message, tc.msg) {
				t.Errorf("got field %q message %q; want %q containing %q", e.Field, e.Message, tc.field, tc.msg)
			}
		})
	}
	if _, _, err := Compile(testConfig(), Request{Measures: []string{"orders"}}, "oracle", testNow); err == nil || !strings.Contains(err.Error(), "oracle") {
		t.Errorf("unknown dialect: %v", err)
	}
}

const hostile = "x'; DROP TABLE users; -- \" ` \\"

func TestHostileValuesAreBound(t *testing.T) {
	req := Request{
		Measures: []string{"orders"}, Dimensions: []string{"region"},
		Filters: []Filter{
			{Field: "region", Op: OpEq, Value: hostile},
			{Field: "status", Op: OpIn, Value: []any{hostile, "a'b"}},
			{Field: "label", Op: OpContains, Value: hostile},
		},
	}
	for _, d := range []string{DialectPostgres, DialectMySQL, DialectSQLite} {
		sql, args, err := Compile(testConfig(), req, d, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(sql, "DROP") || strings.Contains(sql, "a'b") {
			t.Errorf("%s: value spliced into SQL: %s", d, sql)
		}
		checkPlaceholders(t, d, sql, args, 0)
		if len(args) < 4 || args[1] != hostile {
			t.Errorf("%s: args %v", d, args)
		}
	}
}

func TestHostileNames(t *testing.T) {
	// Field names in a request can only name declared fields.
	for _, name := range []string{hostile, `region"; DROP TABLE x; --`, "region`", "revenue) FROM x; --", "created_at.month'"} {
		for _, req := range []Request{
			{Measures: []string{name}}, {Dimensions: []string{name}},
			{Measures: []string{"orders"}, Filters: []Filter{{Field: name, Op: OpEq, Value: "x"}}},
			{Measures: []string{"orders"}, Sort: []string{name}},
		} {
			if _, _, err := Compile(testConfig(), req, DialectMySQL, testNow); err == nil {
				t.Errorf("request naming %q compiled", name)
			} else if !strings.Contains(err.Error(), trunc(name)) && !strings.Contains(err.Error(), fmt.Sprintf("%q", trunc(name))[1:10]) {
				t.Errorf("error does not name the field: %v", err)
			}
		}
	}
	// Field and alias names in a config are identifiers.
	for _, name := range []string{hostile, "a b", "1abc", "", strings.Repeat("a", 64), "région"} {
		cfg := testConfig()
		cfg.Measures[0].Name = name
		if err := Validate(cfg); err == nil || !strings.Contains(err.Error(), "measures[0].name") {
			t.Errorf("measure name %q: %v", name, err)
		}
		cfg = testConfig()
		cfg.Joins[0].Alias = name
		if err := Validate(cfg); err == nil {
			t.Errorf("alias %q accepted", name)
		}
	}
	// Table and column names may be odd but are quoted.
	cfg := testConfig()
	cfg.Table = &TableRef{Namespace: "sch\"ema`", Name: "or`ders\"; DROP TABLE x"}
	cfg.Dimensions[1].Column = "sta\"tus`"
	req := Request{Measures: []string{"orders"}, Dimensions: []string{"status"}}
	sql, _, err := Compile(cfg, req, DialectMySQL, testNow)
	if err != nil {
		t.Fatal(err)
	}
	want := "SELECT `base`.`sta\"tus``` AS `status`, COUNT(*) AS `orders` FROM `sch\"ema```.`or``ders\"; DROP TABLE x` AS `base`"
	if !strings.HasPrefix(sql, want) {
		t.Errorf("mysql:\n got %s\nwant %s…", sql, want)
	}
	sql, _, err = Compile(cfg, req, DialectPostgres, testNow)
	if err != nil {
		t.Fatal(err)
	}
	want = "SELECT \"base\".\"sta\"\"tus`\" AS \"status\", COUNT(*) AS \"orders\" FROM \"sch\"\"ema`\".\"or`ders\"\"; DROP TABLE x\" AS \"base\""
	if !strings.HasPrefix(sql, want) {
		t.Errorf("postgres:\n got %s\nwant %s…", sql, want)
	}
	cfg.Dimensions[1].Column = "a?b"
	if err := Validate(cfg); err == nil {
		t.Error("column with ? accepted")
	}
}

func TestValidate(t *testing.T) {
	if err := Validate(testConfig()); err != nil {
		t.Fatal(err)
	}
	mod := func(f func(*Config)) Config { c := testConfig(); f(&c); return c }
	cases := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"no source", mod(func(c *Config) { c.DataSourceID = "" }), "data_source_id"},
		{"bad source", mod(func(c *Config) { c.DataSourceID = "nope" }), "data_source_id"},
		{"no table", mod(func(c *Config) { c.Table = nil }), "table"},
		{"both", mod(func(c *Config) { c.SavedQueryID = "2b1f8c3e-6f0a-4a8e-8d4c-1e2f3a4b5c6d" }), "table"},
		{"bad saved query", mod(func(c *Config) { c.Table = nil; c.SavedQueryID = "x" }), "saved_query_id"},
		{"dup name", mod(func(c *Config) { c.Measures[0].Name = "region" }), "measures[0].name"},
		{"bad type", mod(func(c *Config) { c.Dimensions[0].Type = "text" }), "dimensions[0].type"},
		{"grains on string", mod(func(c *Config) { c.Dimensions[0].Grains = []string{"day"} }), "dimensions[0].grains"},
		{"bad grain", mod(func(c *Config) { c.Dimensions[3].Grains = []string{"minute"} }), "dimensions[3].grains[0]"},
		{"dup grain", mod(func(c *Config) { c.Dimensions[3].Grains = []string{"day", "day"} }), "dimensions[3].grains[1]"},
		{"column and expr", mod(func(c *Config) { c.Dimensions[4].Column = "x" }), "dimensions[4]"},
		{"neither", mod(func(c *Config) { c.Dimensions[0].Column = "" }), "dimensions[0].column"},
		{"bad fn", mod(func(c *Config) { c.Dimensions[4].Expr.Fn = "pg_sleep" }), "dimensions[4].expr.fn"},
		{"lower arity", mod(func(c *Config) { c.Dimensions[4].Expr.Args = nil }), "dimensions[4].expr.args"},
		{"lower type", mod(func(c *Config) { c.Dimensions[4].Type = TypeNumber }), "dimensions[4].expr"},
		{"trunc grain", mod(func(c *Config) { c.Dimensions[7].Expr.Args[0].Literal = "minute" }), "dimensions[7].expr.args[0]"},
		{"trunc type", mod(func(c *Config) { c.Dimensions[7].Type = TypeString }), "dimensions[7].expr"},
		{"bad literal", mod(func(c *Config) { c.Dimensions[6].Expr.Args[1].Literal = []any{1} }), "dimensions[6].expr.args[1].literal"},
		{"time coalesce literal", mod(func(c *Config) {
			c.Dimensions[6].Type = TypeTime
			c.Dimensions[6].Expr.Args = []ExprArg{{Column: "shipped_at"}, {Literal: "soon"}}
		}), "dimensions[6].expr.args[1].literal"},
		{"bad agg", mod(func(c *Config) { c.Measures[2].Agg = "median" }), "measures[2].agg"},
		{"sum needs column", mod(func(c *Config) { c.Measures[2].Column = "" }), "measures[2].column"},
		{"measure filter field", mod(func(c *Config) { c.Measures[5].Filter[0].Field = "revenue" }), "measures[5].filter[0].field"},
		{"measure filter value", mod(func(c *Config) { c.Measures[5].Filter[0].Value = "yes" }), "measures[5].filter[0]"},
		{"join type", mod(func(c *Config) { c.Joins[0].Type = "cross" }), "joins[0].type"},
		{"join alias base", mod(func(c *Config) { c.Joins[0].Alias = "base" }), "joins[0].alias"},
		{"join no keys", mod(func(c *Config) { c.Joins[0].On = nil }), "joins[0].on"},
		{"join table", mod(func(c *Config) { c.Joins[0].Table.Name = "" }), "joins[0].table.name"},
		{"default sort", mod(func(c *Config) { c.DefaultSort = []string{"-profit"} }), "default_sort[0]"},
		{"too many joins", mod(func(c *Config) {
			for i := 0; i < MaxJoins; i++ {
				c.Joins = append(c.Joins, Join{Table: TableRef{Name: "t"}, Alias: fmt.Sprintf("j%d", i), Type: "inner", On: []JoinKey{{Left: "a", Right: "b"}}})
			}
		}), "joins"},
		{"too many fields", mod(func(c *Config) {
			for i := 0; i < MaxFields; i++ {
				c.Measures = append(c.Measures, Measure{Name: fmt.Sprintf("m%d", i), Agg: AggCount})
			}
		}), "dimensions"},
		{"empty", Config{DataSourceID: "7f0c2b9e-3c1a-4b7e-9a53-0d2f1c6e8a10", Table: &TableRef{Name: "t"}}, "measures"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.cfg)
			var e *errs.Error
			if !errors.As(err, &e) || !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("want invalid, got %v", err)
			}
			found := false
			for _, f := range e.Fields {
				found = found || f.Field == tc.field
			}
			if !found || !strings.Contains(e.Message, tc.field) {
				t.Errorf("want field %q, got %v", tc.field, e.Message)
			}
		})
	}
}
