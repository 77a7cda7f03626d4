package models

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/errs"
)

func TestParseFilter(t *testing.T) {
	ok := []struct {
		in   string
		want Filter
	}{
		{"region = 'EU'", Filter{"region", OpEq, "EU"}},
		{"region <> 'it''s'", Filter{"region", OpNe, "it's"}},
		{"amount>=10.5", Filter{"amount", OpGe, 10.5}},
		{"amount < -3", Filter{"amount", OpLt, int64(-3)}},
		{"paid = TRUE", Filter{"paid", OpEq, true}},
		{"amount between 10 and 20", Filter{"amount", OpBetween, []any{int64(10), int64(20)}}},
		{"country IN ('FR', 'DE')", Filter{"country", OpIn, []any{"FR", "DE"}}},
		{"country not in ('FR')", Filter{"country", OpNotIn, []any{"FR"}}},
		{"name contains 'acme'", Filter{"name", OpContains, "acme"}},
		{"closed_at is null", Filter{"closed_at", OpIsNull, nil}},
		{"closed_at IS NOT NULL", Filter{"closed_at", OpIsNotNull, nil}},
		{"created_at last 7 days", Filter{"created_at", OpLast, "7 days"}},
		{"created_at last 1 month", Filter{"created_at", OpLast, "1 months"}},
		{"created_at this quarter", Filter{"created_at", OpThis, "quarter"}},
		{"created_at today", Filter{"created_at", OpToday, nil}},
		{"created_at.month yesterday", Filter{"created_at.month", OpYesterday, nil}},
	}
	for _, tc := range ok {
		got, err := ParseFilter(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %#v want %#v", tc.in, got, tc.want)
		}
	}
	bad := []string{"", "region", "region =", "region = EU", "region = 'EU", "region == 'EU'", "region = 'EU' or 1=1",
		"region = 'EU'; DROP TABLE x", "region in ()", "region in ('a',)", "amount between 1", "name contains 5",
		"x is", "x is not", "created_at last days", "created_at last 0 days", "created_at last 7 years", "created_at this decade",
		"1region = 1", "region.month.x = 1", "region.fortnight = 1", "region = 1e999", "\"region\" = 1", "region = 'a' 'b'"}
	for _, in := range bad {
		if f, err := ParseFilter(in); err == nil {
			t.Errorf("%q parsed as %#v", in, f)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"region = 'EU'", "amount between 10 and 20", "created_at last 7 days", "country not in ('FR', 'D''E', 3, -1.5e3, true)",
		"x is not null", "d this month", "name contains '%_'", "a >= -.5", "t.day today", "a <> 'é'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(s)
		if err != nil {
			return
		}
		// What parses round-trips through String.
		again, err := ParseFilter(flt.String())
		if err != nil {
			t.Fatalf("%q → %q does not parse: %v", s, flt.String(), err)
		}
		if !reflect.DeepEqual(flt, again) {
			t.Fatalf("%q → %#v → %q → %#v", s, flt, flt.String(), again)
		}
	})
}

var dialects = []string{DialectPostgres, DialectMySQL, DialectSQLite}

// FuzzCompileJSON feeds arbitrary JSON configs and requests to Validate and
// Compile: never a panic; what compiles has one bound value per placeholder.
func FuzzCompileJSON(f *testing.F) {
	cfg, _ := json.Marshal(testConfig())
	for _, tc := range goldenCases {
		req, _ := json.Marshal(tc.req)
		f.Add(cfg, req, uint8(0))
	}
	f.Add([]byte(`{"data_source_id":"7f0c2b9e-3c1a-4b7e-9a53-0d2f1c6e8a10","table":{"name":"t"},"dimensions":[{"name":"d","expr":{"fn":"date_trunc","args":[{"literal":"day"},{"column":"x"}]},"type":"time"}],"measures":[{"name":"m","agg":"count","filter":[{"field":"d","op":"last","value":"3 weeks"}]}]}`),
		[]byte(`{"measures":["m"],"dimensions":["d.month"],"filters":[{"field":"d","op":"between","value":["2020-01-01","2021-01-01"]}]}`), uint8(1))
	f.Fuzz(func(t *testing.T, cfgJSON, reqJSON []byte, d uint8) {
		var cfg Config
		var req Request
		if json.Unmarshal(cfgJSON, &cfg) != nil || json.Unmarshal(reqJSON, &req) != nil {
			return
		}
		// Whatever a client sends is either accepted or refused as invalid
		// input (a 400 naming the field), never another kind of failure.
		if err := Validate(cfg); err != nil && !errors.Is(err, errs.ErrInvalid) {
			t.Fatalf("Validate: %v is not an invalid-input error", err)
		}
		dialect := dialects[int(d)%len(dialects)]
		sql, args, err := Compile(cfg, req, dialect, testNow)
		if err == nil {
			checkPlaceholders(t, dialect, sql, args, 0)
		} else if !errors.Is(err, errs.ErrInvalid) {
			t.Fatalf("Compile: %v is not an invalid-input error", err)
		}
	})
}

// byteGen draws choices from fuzz bytes.
type byteGen struct {
	b []byte
	i int
}

func (g *byteGen) n(k int) int {
	if g.i >= len(g.b) || k <= 0 {
		return 0
	}
	v := int(g.b[g.i]) % k
	g.i++
	return v
}

func pick[T any](g *byteGen, xs ...T) T { return xs[g.n(len(xs))] }

var (
	fzNames   = []string{"a", "b", "region", "created_at", "total", "x_1", "", "a b", hostile, "base", "c", "a.month", "-a"}
	fzColumns = []string{"a", "b", "c.a", "j.b", "x\"y", "x`y", hostile, "", "a?b", "base.a"}
	fzTypes   = []string{TypeString, TypeNumber, TypeBoolean, TypeTime, "text"}
	fzGrains  = []string{"hour", "day", "week", "month", "quarter", "year", "minute", ""}
	fzAggs    = []string{AggCount, AggCountDistinct, AggSum, AggAvg, AggMin, AggMax, "median"}
	fzFns     = []string{FnLower, FnUpper, FnCoalesce, FnConcat, FnDateTrunc, "pg_sleep"}
	fzOps     = []string{OpEq, OpNe, OpGt, OpGe, OpLt, OpLe, OpIn, OpNotIn, OpBetween, OpContains, OpIsNull, OpIsNotNull, OpLast, OpThis, OpToday, OpYesterday, "like", ""}
	fzValues  = []any{nil, "EU", hostile, int64(3), 2.5, true, "2026-01-01", "7 days", "month", "0 days", []any{"a", hostile}, []any{int64(1), int64(2)}, []any{}, map[string]any{}}
)

// goodFilter is a filter that fits a field of type typ.
func (g *byteGen) goodFilter(name, typ string) Filter {
	switch typ {
	case TypeString:
		return pick(g, Filter{name, OpEq, hostile}, Filter{name, OpIn, []any{"a", hostile}}, Filter{name, OpContains, "x'y"}, Filter{name, OpIsNull, nil}, Filter{name, OpNotIn, []any{"b"}})
	case TypeNumber:
		return pick(g, Filter{name, OpGt, int64(3)}, Filter{name, OpBetween, []any{int64(1), 2.5}}, Filter{name, OpNe, 1.5}, Filter{name, OpIsNotNull, nil})
	case TypeBoolean:
		return pick(g, Filter{name, OpEq, true}, Filter{name, OpNe, false})
	}
	return pick(g, Filter{name, OpLast, "7 days"}, Filter{name, OpThis, "quarter"}, Filter{name, OpToday, nil}, Filter{name, OpYesterday, nil},
		Filter{name, OpGe, "2026-01-01"}, Filter{name, OpBetween, []any{"2026-01-01", "2026-02-01T00:00:00Z"}})
}

func (g *byteGen) filter(fields []string) Filter {
	if len(fields) == 0 {
		fields = []string{"a"}
	}
	return Filter{Field: pick(g, fields...), Op: pick(g, fzOps...), Value: pick(g, fzValues...)}
}

// pv picks from good most of the time and from any otherwise.
func pv[T any](g *byteGen, good []T, any []T) T {
	if g.n(32) == 31 || len(good) == 0 {
		return pick(g, any...)
	}
	return pick(g, good...)
}

func randomModel(data []byte) (Config, Request) {
	g := &byteGen{b: data}
	cfg := Config{DataSourceID: pv(g, []string{"7f0c2b9e-3c1a-4b7e-9a53-0d2f1c6e8a10"}, []string{"x", ""})}
	if g.n(4) == 0 {
		cfg.SavedQueryID = "2b1f8c3e-6f0a-4a8e-8d4c-1e2f3a4b5c6d"
	} else {
		cfg.Table = &TableRef{Namespace: pick(g, "", "public", hostile), Name: pv(g, []string{"t", "orders", hostile}, []string{""})}
	}
	goodCols := []string{"a", "b", "x\"y", "x`y", hostile}
	for i, n := 0, g.n(3); i < n; i++ {
		alias := pv(g, []string{"j" + string(rune('0'+i))}, []string{"base", hostile, "j"})
		j := Join{Table: TableRef{Name: pick(g, "u", hostile)}, Alias: alias, Type: pv(g, []string{"left", "inner"}, []string{"cross"})}
		for k, m := 0, 1+g.n(2); k < m; k++ {
			j.On = append(j.On, JoinKey{Left: pv(g, goodCols, fzColumns), Right: pv(g, goodCols, fzColumns)})
		}
		cfg.Joins = append(cfg.Joins, j)
		goodCols = append(goodCols, alias+".a")
	}
	var fields, dimNames, timeNames []string
	uniq := func(i int) string {
		if g.n(32) == 31 {
			return pick(g, fzNames...)
		}
		return pick(g, "d", "m", "f_", "x") + string(rune('0'+i))
	}
	for i, n := 0, 1+g.n(6); i < n; i++ {
		d := Dimension{Name: uniq(i), Type: pv(g, fzTypes[:4], fzTypes)}
		if g.n(3) == 0 {
			d.Expr = &Expr{Fn: pv(g, fzFns[:5], fzFns)}
			if d.Expr.Fn == FnDateTrunc && g.n(4) != 0 {
				d.Type = TypeTime
				d.Expr.Args = []ExprArg{{Literal: pick(g, fzGrains[:6]...)}, {Column: pick(g, goodCols...)}}
			} else {
				switch d.Expr.Fn {
				case FnLower, FnUpper, FnConcat:
					d.Type = pv(g, []string{TypeString}, fzTypes)
				}
				nargs := 2 + g.n(2)
				if d.Expr.Fn == FnLower || d.Expr.Fn == FnUpper {
					nargs = 1
				}
				nargs = pv(g, []int{nargs}, []int{0, 1, 2, 3})
				for k := 0; k < nargs; k++ {
					if g.n(2) == 0 {
						d.Expr.Args = append(d.Expr.Args, ExprArg{Column: pv(g, goodCols, fzColumns)})
					} else {
						d.Expr.Args = append(d.Expr.Args, ExprArg{Literal: pv(g, []any{"x", hostile, int64(1), 2.5, true}, fzValues)})
					}
				}
			}
		} else {
			d.Column = pv(g, goodCols, fzColumns)
		}
		if d.Type == TypeTime || g.n(32) == 31 {
			for k, m := 0, g.n(3); k < m; k++ {
				d.Grains = append(d.Grains, pv(g, fzGrains[:6], fzGrains))
			}
			timeNames = append(timeNames, d.Name, d.Name+"."+pick(g, fzGrains[:6]...))
		}
		cfg.Dimensions = append(cfg.Dimensions, d)
		dimNames = append(dimNames, d.Name)
	}
	fields = append(fields, dimNames...)
	for i, n := 0, 1+g.n(4); i < n; i++ {
		m := Measure{Name: uniq(i + 5), Agg: pv(g, fzAggs[:6], fzAggs)}
		if m.Agg != AggCount || g.n(2) == 0 {
			m.Column = pv(g, goodCols, fzColumns)
		}
		for k, c := 0, g.n(2); k < c; k++ {
			if g.n(8) == 7 {
				m.Filter = append(m.Filter, g.filter(dimNames))
			} else {
				d := cfg.Dimensions[g.n(len(cfg.Dimensions))]
				m.Filter = append(m.Filter, g.goodFilter(d.Name, d.Type))
			}
		}
		cfg.Measures = append(cfg.Measures, m)
		fields = append(fields, m.Name)
	}
	if g.n(2) == 0 {
		cfg.DefaultSort = []string{pick(g, "-", "") + pick(g, fields...)}
	}
	all := append(append([]string(nil), fields...), timeNames...)
	all = append(all, "created_at.month", hostile)
	var req Request
	for i, n := 0, g.n(3); i < n; i++ {
		if g.n(4) == 3 {
			req.Dimensions = append(req.Dimensions, pv(g, timeNames, all))
		} else {
			req.Dimensions = append(req.Dimensions, pv(g, dimNames[i%len(dimNames):][:1], all))
		}
	}
	ms := fields[len(dimNames):]
	for i, n := 0, 1+g.n(3); i < n && i < len(ms); i++ {
		req.Measures = append(req.Measures, pv(g, ms[i:i+1], all))
	}
	for i, n := 0, g.n(4); i < n; i++ {
		if g.n(8) == 7 {
			req.Filters = append(req.Filters, g.filter(all))
		} else if g.n(4) == 3 {
			req.Filters = append(req.Filters, g.goodFilter(ms[g.n(len(ms))], TypeNumber))
		} else {
			d := cfg.Dimensions[g.n(len(cfg.Dimensions))]
			req.Filters = append(req.Filters, g.goodFilter(d.Name, d.Type))
		}
	}
	for i, n := 0, g.n(3); i < n; i++ {
		req.Sort = append(req.Sort, pick(g, "-", "")+pv(g, append(req.Dimensions, req.Measures...), all))
	}
	req.TimeGrain = pv(g, fzGrains[:6], fzGrains)
	req.Limit = pv(g, []int{0, 10, MaxLimit}, []int{-1, MaxLimit + 1})
	return cfg, req
}

// FuzzCompileRandom builds configs and requests from a structured generator
// (valid and hostile names, types, functions, ops, values): never a panic;
// what compiles binds one value per placeholder and splices no value.
func FuzzCompileRandom(f *testing.F) {
	f.Add([]byte{0, 1, 1, 2, 3, 1, 0, 2, 3, 4, 1, 1, 0, 2, 2, 0, 1, 3, 5, 7, 1, 2, 3})
	f.Add([]byte("the quick brown fox jumps over the lazy dog, twice over: the quick brown fox"))
	f.Add([]byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, req := randomModel(data)
		_ = Validate(cfg)
		checkSameBinding(t, cfg, req, Options{Now: testNow, Derived: &DerivedTable{SQL: "SELECT 1 AS a"}})
		for _, d := range dialects {
			opt := Options{Dialect: d, Now: testNow}
			if cfg.SavedQueryID != "" {
				opt.Derived = &DerivedTable{SQL: "SELECT 1 AS a", Args: nil}
			}
			sql, args, err := CompileWith(cfg, req, opt)
			if err != nil {
				continue
			}
			checkPlaceholders(t, d, sql, args, 0)
			if strings.Contains(withoutIdentifiers(d, sql), "DROP") {
				t.Fatalf("value spliced: %s", sql)
			}
		}
	})
}

// withoutIdentifiers drops quoted identifiers ("x" or `x`, doubled quote
// inside) from sql; what is left holds every spliced value, if any.
func withoutIdentifiers(dialect, sql string) string {
	q := byte('"')
	if dialect == DialectMySQL {
		q = '`'
	}
	var b strings.Builder
	for i := 0; i < len(sql); i++ {
		if sql[i] != q {
			b.WriteByte(sql[i])
			continue
		}
		for i++; i < len(sql); i++ {
			if sql[i] == q {
				if i+1 < len(sql) && sql[i+1] == q {
					i++
					continue
				}
				break
			}
		}
		b.WriteString("ID")
	}
	return b.String()
}

func TestRandomModelsCompile(t *testing.T) {
	// Make sure the generator reaches success often enough to matter.
	ok := 0
	for i := 0; i < 20000; i++ {
		data := make([]byte, 256)
		x := uint32(i*2654435761 + 1)
		for j := range data {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			data[j] = byte(x)
		}
		cfg, req := randomModel(data)
		checkSameBinding(t, cfg, req, Options{Now: testNow, Derived: &DerivedTable{SQL: "SELECT 1 AS a"}})
		for _, d := range dialects {
			opt := Options{Dialect: d, Now: testNow, Derived: &DerivedTable{SQL: "SELECT 1 AS a"}}
			if sql, args, err := CompileWith(cfg, req, opt); err == nil {
				checkPlaceholders(t, d, sql, args, 0)
				if strings.Contains(withoutIdentifiers(d, sql), "DROP") {
					t.Fatalf("value spliced: %s", sql)
				}
				ok++
			}
		}
	}
	t.Logf("%d of 60000 random model queries compiled", ok)
	if ok == 0 {
		t.Error("no random model compiled")
	}
}

// boundSeq lists the bound values in the textual order of their placeholders.
func boundSeq(dialect, sql string, args []any) []any {
	if dialect != DialectPostgres {
		return args
	}
	var out []any
	for i := 0; i < len(sql); i++ {
		if sql[i] != '$' {
			continue
		}
		n, j := 0, i+1
		for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
			n = n*10 + int(sql[j]-'0')
			j++
		}
		if n > 0 && n <= len(args) {
			out = append(out, args[n-1])
		}
	}
	return out
}

// checkSameBinding compiles for every dialect and checks that the values
// meet their placeholders in the same order as postgres's numbered ones,
// where the dialects' SQL has the same shape (mysql week/quarter and sqlite
// quarter truncation repeat their operand, so they are skipped).
func checkSameBinding(t testing.TB, cfg Config, req Request, opt Options) {
	t.Helper()
	opt.Dialect = DialectPostgres
	pg, pgArgs, err := CompileWith(cfg, req, opt)
	if err != nil {
		return
	}
	want := boundSeq(DialectPostgres, pg, pgArgs)
	for i, v := range want {
		if tv, ok := v.(time.Time); ok {
			want[i] = tv.Format(timeLayout) // how mysql and sqlite get times
		}
	}
	for _, d := range []string{DialectMySQL, DialectSQLite} {
		opt.Dialect = d
		sql, args, err := CompileWith(cfg, req, opt)
		if err != nil {
			t.Fatalf("compiles for postgres but not %s: %v", d, err)
		}
		if strings.Contains(sql, "WEEKDAY(") || strings.Contains(sql, "QUARTER(") || strings.Contains(sql, "printf(") {
			continue
		}
		if !reflect.DeepEqual(want, args) {
			t.Fatalf("%s binds %v, postgres %v\n%s\n%s", d, args, want, sql, pg)
		}
	}
}
