package models

// TestDialectsExecute runs the same model queries on a real PostgreSQL, a
// real MySQL/MariaDB and SQLite (in memory), each seeded with the same rows
// in a schema (database) of its own, and checks that every dialect returns
// what a plain Go evaluation of the request over those rows gives, and so
// that the dialects agree with each other.
//
// Servers: DATAPULSE_TEST_POSTGRES_URL (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable) and
// DATAPULSE_TEST_MYSQL_DSN (default root@tcp(127.0.0.1:3306)/test). A server
// named by its variable must answer; a default one is skipped when it does
// not, except on CI (CI set), where every server must answer.
//
// The tables use binary collations (PostgreSQL COLLATE "C", MySQL
// utf8mb4_bin) so that string comparison, grouping and ordering are by code
// point everywhere: with a case-insensitive collation (MariaDB's default
// utf8mb4_general_ci) MySQL compares, groups and searches (contains)
// strings case-insensitively, which is the database's rule, not the
// compiler's. SQLite's lower/upper fold ASCII only, so the expression
// dimensions here fold ASCII values.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

const (
	xPostgresEnv     = "DATAPULSE_TEST_POSTGRES_URL"
	xPostgresDefault = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	xMySQLEnv        = "DATAPULSE_TEST_MYSQL_DSN"
	xMySQLDefault    = "root@tcp(127.0.0.1:3306)/test"
	xSavedQueryID    = "2b1f8c3e-6f0a-4a8e-8d4c-1e2f3a4b5c6d"
	xLayout          = "2006-01-02 15:04:05" // seeded and compared times
)

// ---- the seeded rows ----

type xCustomer struct {
	id                    int64
	name, region, country any // string or nil
}

type xCountry struct{ code, name string }

type xOrder struct {
	id       int64
	customer any // int64 or nil
	status   string
	note     any       // string or nil
	created  time.Time // wall clock, UTC location
	shipped  any       // time.Time or nil
	paid     any       // bool or nil
	amount   any       // float64 or nil (numeric(10,2))
	qty      any       // float64 or nil (integer column)
}

func xts(s string) time.Time {
	t, err := time.Parse(xLayout, s)
	if err != nil {
		panic(err)
	}
	return t
}

func xtsp(s string) any {
	if s == "" {
		return nil
	}
	return xts(s)
}

const (
	xNoteQuoted  = `it's "fine" \o/`
	xNoteUnicode = "Zoë 🚀 東京"
	xNoteHostile = "'; DROP TABLE orders; --"
	xCustQuoted  = `D'Angelo "Dee"`
	xCustUnicode = "Łódź Ltd 🚀"
)

var xCustomers = []xCustomer{
	{1, "Ada", "EU", "FR"},
	{2, "Björn", "EU", nil},
	{3, xCustQuoted, "US", "US"},
	{4, xCustUnicode, "EEA", "NO"},
	{5, "Nobody", nil, nil},
	{6, "Orphan", "APAC", "JP"}, // no countries row
}

var xCountries = []xCountry{
	{"FR", "France"}, {"US", "United States"}, {"NO", "Norge — Noreg"}, {"DE", "Deutschland"},
}

// Times are relative to testNow, 2026-03-18 15:04:05 UTC, a Wednesday.
var xOrders = []xOrder{
	{1, int64(1), "paid", nil, xts("2026-03-18 00:00:00"), nil, true, 10.0, 1.0},
	{2, int64(1), "paid", xNoteQuoted, xts("2026-03-18 09:00:00"), xtsp("2026-03-18 10:30:00"), true, 20.5, 2.0},
	{3, int64(2), "open", xNoteUnicode, xts("2026-03-18 15:04:04"), nil, false, 5.25, 3.0},
	{4, int64(3), "paid", "100% _off_", xts("2026-03-18 15:04:05"), nil, true, 7.75, 1.0}, // = now
	{5, int64(4), "void", nil, xts("2026-03-18 23:59:59"), nil, nil, nil, nil},
	{6, int64(2), "paid", "a,b;c", xts("2026-03-17 00:00:00"), xtsp("2026-03-17 12:00:00"), true, 100.0, 4.0},
	{7, int64(5), "open", "", xts("2026-03-17 10:00:00"), nil, false, 3.5, 2.0},
	{8, nil, "open", "no customer", xts("2026-03-17 23:59:59"), nil, nil, 1.25, 1.0},
	{9, int64(6), "paid", nil, xts("2026-03-16 00:00:00"), xtsp("2026-03-19 08:00:00"), true, 42.0, 5.0},
	{10, int64(1), "refunded", "O'Brien", xts("2026-03-15 23:59:59"), xtsp("2026-03-16 09:00:00"), true, -10.0, 1.0},
	{11, int64(3), "paid", nil, xts("2026-03-11 15:04:05"), nil, true, 12.5, 2.0}, // now - 7 days
	{12, int64(3), "open", nil, xts("2026-03-11 15:04:04"), nil, false, 8.0, nil},
	{13, int64(4), "paid", "tab\there", xts("2026-03-01 00:00:00"), xtsp("2026-03-02 00:00:00"), true, 30.0, 3.0},
	{14, int64(2), "void", nil, xts("2026-02-28 23:59:59"), nil, false, 0.0, 0.0},
	{15, int64(1), "paid", nil, xts("2026-02-10 12:00:00"), xtsp("2026-02-11 12:00:00"), true, 100.0, 10.0},
	{16, int64(5), "paid", nil, xts("2026-01-01 00:00:00"), nil, true, 15.25, 1.0},
	{17, int64(6), "open", nil, xts("2025-12-31 23:59:59"), nil, false, 2.0, 1.0},
	{18, int64(3), "paid", nil, xts("2025-10-01 00:00:00"), xtsp("2025-10-05 00:00:00"), true, 60.0, 6.0},
	{19, int64(3), "paid", "Ünïcödé ✓", xts("2025-09-30 23:00:00"), nil, true, 9.75, 1.0},
	{20, int64(2), "refunded", nil, xts("2025-06-15 08:30:00"), nil, false, 25.0, 2.0},
	{21, int64(1), "paid", nil, xts("2025-01-01 06:00:00"), nil, true, 11.0, 1.0}, // week of 2024-12-30
	{22, int64(4), "paid", nil, xts("2024-12-30 00:00:00"), nil, true, 13.0, 1.0},
	{23, int64(4), "open", nil, xts("2024-02-29 12:00:00"), nil, nil, nil, 2.0},
	{24, int64(6), "paid", nil, xts("2026-04-02 10:00:00"), nil, true, 50.0, 1.0}, // future
	{25, int64(1), "open", "PAID", xts("2026-03-18 09:45:00"), nil, false, 4.0, 1.0},
	{26, int64(2), "paid", nil, xts("2026-03-04 09:00:00"), nil, true, 6.5, 3.0},
	{27, int64(3), "void", xNoteHostile, xts("2026-03-09 00:00:00"), nil, false, 1.0, 1.0},
	{28, int64(5), "paid", nil, xts("2026-03-14 18:00:00"), nil, true, 22.25, 2.0},
}

// ---- the model, with a Go evaluation of each field ----

type xRow struct {
	o *xOrder
	c *xCustomer
	k *xCountry
}

func (r xRow) cust(f func(*xCustomer) any) any {
	if r.c == nil {
		return nil
	}
	return f(r.c)
}

type xDim struct {
	Dimension
	eval func(xRow) any
}

type xMeas struct {
	Measure
	typ  string         // value type of min/max; number otherwise
	eval func(xRow) any // the aggregated column; nil for count(*)
}

func coalesceAny(vs ...any) any {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

func concatText(vs ...any) string {
	var b strings.Builder
	for _, v := range vs {
		switch x := v.(type) {
		case nil:
		case float64:
			b.WriteString(strconv.FormatFloat(x, 'f', -1, 64))
		default:
			fmt.Fprint(&b, x)
		}
	}
	return b.String()
}

func xDims() []xDim {
	region := func(r xRow) any { return r.cust(func(c *xCustomer) any { return c.region }) }
	return []xDim{
		{Dimension{Name: "status", Column: "status", Type: TypeString}, func(r xRow) any { return r.o.status }},
		{Dimension{Name: "note", Column: "note", Type: TypeString}, func(r xRow) any { return r.o.note }},
		{Dimension{Name: "region", Column: "c.region", Type: TypeString}, region},
		{Dimension{Name: "customer", Column: "c.name", Type: TypeString}, func(r xRow) any { return r.cust(func(c *xCustomer) any { return c.name }) }},
		{Dimension{Name: "country_name", Column: "k.name", Type: TypeString}, func(r xRow) any {
			if r.k == nil {
				return nil
			}
			return r.k.name
		}},
		{Dimension{Name: "created_at", Column: "created_at", Type: TypeTime}, func(r xRow) any { return r.o.created }},
		{Dimension{Name: "shipped_at", Column: "shipped_at", Type: TypeTime, Grains: []string{"day", "week", "month"}}, func(r xRow) any { return r.o.shipped }},
		{Dimension{Name: "paid", Column: "paid", Type: TypeBoolean}, func(r xRow) any { return r.o.paid }},
		{Dimension{Name: "amount", Column: "amount", Type: TypeNumber}, func(r xRow) any { return r.o.amount }},
		{Dimension{Name: "qty", Column: "qty", Type: TypeNumber}, func(r xRow) any { return r.o.qty }},
		{Dimension{Name: "region_lc", Expr: &Expr{Fn: FnLower, Args: []ExprArg{{Column: "c.region"}}}, Type: TypeString}, func(r xRow) any {
			if v := region(r); v != nil {
				return strings.ToLower(v.(string))
			}
			return nil
		}},
		{Dimension{Name: "status_uc", Expr: &Expr{Fn: FnUpper, Args: []ExprArg{{Column: "status"}}}, Type: TypeString}, func(r xRow) any { return strings.ToUpper(r.o.status) }},
		{Dimension{Name: "label", Expr: &Expr{Fn: FnConcat, Args: []ExprArg{{Column: "status"}, {Literal: "/"}, {Column: "c.region"}}}, Type: TypeString}, func(r xRow) any {
			return concatText(r.o.status, "/", region(r))
		}},
		{Dimension{Name: "tag", Expr: &Expr{Fn: FnConcat, Args: []ExprArg{{Literal: "«"}, {Column: "status"}, {Literal: `» it's "x" `}, {Column: "qty"}}}, Type: TypeString}, func(r xRow) any {
			return concatText("«", r.o.status, `» it's "x" `, r.o.qty)
		}},
		{Dimension{Name: "country", Expr: &Expr{Fn: FnCoalesce, Args: []ExprArg{{Column: "c.country"}, {Literal: "??"}}}, Type: TypeString}, func(r xRow) any {
			return coalesceAny(r.cust(func(c *xCustomer) any { return c.country }), "??")
		}},
		{Dimension{Name: "amount_or_zero", Expr: &Expr{Fn: FnCoalesce, Args: []ExprArg{{Column: "amount"}, {Literal: 0}}}, Type: TypeNumber}, func(r xRow) any {
			return coalesceAny(r.o.amount, 0.0)
		}},
		{Dimension{Name: "shipped_or_created", Expr: &Expr{Fn: FnCoalesce, Args: []ExprArg{{Column: "shipped_at"}, {Column: "created_at"}}}, Type: TypeTime}, func(r xRow) any {
			return coalesceAny(r.o.shipped, r.o.created)
		}},
		{Dimension{Name: "shipped_or_2000", Expr: &Expr{Fn: FnCoalesce, Args: []ExprArg{{Column: "shipped_at"}, {Literal: "2000-01-01"}}}, Type: TypeTime}, func(r xRow) any {
			return coalesceAny(r.o.shipped, xts("2000-01-01 00:00:00"))
		}},
		{Dimension{Name: "qty_or_zero", Expr: &Expr{Fn: FnCoalesce, Args: []ExprArg{{Column: "qty"}, {Literal: 0}}}, Type: TypeNumber}, func(r xRow) any {
			return coalesceAny(r.o.qty, 0.0)
		}},
		{Dimension{Name: "order_week", Expr: &Expr{Fn: FnDateTrunc, Args: []ExprArg{{Literal: "week"}, {Column: "created_at"}}}, Type: TypeTime}, func(r xRow) any {
			return xTrunc("week", r.o.created)
		}},
		{Dimension{Name: "order_month", Expr: &Expr{Fn: FnDateTrunc, Args: []ExprArg{{Literal: "month"}, {Column: "created_at"}}}, Type: TypeTime}, func(r xRow) any {
			return xTrunc("month", r.o.created)
		}},
	}
}

func xMeasures() []xMeas {
	amount := func(r xRow) any { return r.o.amount }
	custID := func(r xRow) any { return r.o.customer }
	return []xMeas{
		{Measure{Name: "orders", Agg: AggCount}, TypeNumber, nil},
		{Measure{Name: "orders_with_amount", Agg: AggCount, Column: "amount"}, TypeNumber, amount},
		{Measure{Name: "customers", Agg: AggCountDistinct, Column: "customer_id"}, TypeNumber, custID},
		{Measure{Name: "countries", Agg: AggCountDistinct, Column: "c.country"}, TypeNumber, func(r xRow) any { return r.cust(func(c *xCustomer) any { return c.country }) }},
		{Measure{Name: "revenue", Agg: AggSum, Column: "amount"}, TypeNumber, amount},
		{Measure{Name: "total_qty", Agg: AggSum, Column: "qty"}, TypeNumber, func(r xRow) any { return r.o.qty }},
		{Measure{Name: "avg_amount", Agg: AggAvg, Column: "amount"}, TypeNumber, amount},
		{Measure{Name: "avg_qty", Agg: AggAvg, Column: "qty"}, TypeNumber, func(r xRow) any { return r.o.qty }},
		{Measure{Name: "min_amount", Agg: AggMin, Column: "amount"}, TypeNumber, amount},
		{Measure{Name: "max_amount", Agg: AggMax, Column: "amount"}, TypeNumber, amount},
		{Measure{Name: "first_order", Agg: AggMin, Column: "created_at"}, TypeTime, func(r xRow) any { return r.o.created }},
		{Measure{Name: "last_shipped", Agg: AggMax, Column: "shipped_at"}, TypeTime, func(r xRow) any { return r.o.shipped }},
		{Measure{Name: "min_status", Agg: AggMin, Column: "status"}, TypeString, func(r xRow) any { return r.o.status }},
		{Measure{Name: "max_note", Agg: AggMax, Column: "note"}, TypeString, func(r xRow) any { return r.o.note }},
		{Measure{Name: "paid_revenue", Agg: AggSum, Column: "amount", Filter: []Filter{{"paid", OpEq, true}}}, TypeNumber, amount},
		{Measure{Name: "eu_orders", Agg: AggCount, Filter: []Filter{{"region", OpIn, []any{"EU", "EEA"}}}}, TypeNumber, nil},
		{Measure{Name: "eu_customers", Agg: AggCountDistinct, Column: "customer_id", Filter: []Filter{{"region", OpEq, "EU"}}}, TypeNumber, custID},
		{Measure{Name: "recent_revenue", Agg: AggSum, Column: "amount", Filter: []Filter{{"created_at", OpLast, "7 days"}}}, TypeNumber, amount},
		{Measure{Name: "unshipped", Agg: AggCount, Filter: []Filter{{"shipped_at", OpIsNull, nil}}}, TypeNumber, nil},
		{Measure{Name: "big_avg", Agg: AggAvg, Column: "amount", Filter: []Filter{{"amount", OpGe, 10}, {"status", OpNe, "void"}}}, TypeNumber, amount},
		{Measure{Name: "quoted_orders", Agg: AggCount, Filter: []Filter{{"note", OpContains, "'"}}}, TypeNumber, nil},
		{Measure{Name: "max_paid_qty", Agg: AggMax, Column: "qty", Filter: []Filter{{"paid", OpNe, false}}}, TypeNumber, func(r xRow) any { return r.o.qty }},
	}
}

// xSetup says how a case's model is built: join types and whether its base
// is a saved query (orders minus void ones and one note, with bound values).
type xSetup struct {
	custJoin, countryJoin string // "" is left
	derived               bool
}

func xConfig(ns string, s xSetup) Config {
	cfg := Config{
		DataSourceID: "7f0c2b9e-3c1a-4b7e-9a53-0d2f1c6e8a10",
		Joins: []Join{
			{Table: TableRef{Namespace: ns, Name: "customers"}, Alias: "c", Type: orLeft(s.custJoin), On: []JoinKey{{Left: "customer_id", Right: "id"}}},
			{Table: TableRef{Namespace: ns, Name: "countries"}, Alias: "k", Type: orLeft(s.countryJoin), On: []JoinKey{{Left: "c.country", Right: "code"}}},
		},
		DefaultSort: []string{"-revenue"},
	}
	if s.derived {
		cfg.SavedQueryID = xSavedQueryID
	} else {
		cfg.Table = &TableRef{Namespace: ns, Name: "orders"}
	}
	for _, d := range xDims() {
		cfg.Dimensions = append(cfg.Dimensions, d.Dimension)
	}
	for _, m := range xMeasures() {
		cfg.Measures = append(cfg.Measures, m.Measure)
	}
	return cfg
}

func orLeft(s string) string {
	if s == "" {
		return "left"
	}
	return s
}

// The saved query a derived model stands on, and its bound values.
var xDerivedArgs = []any{"void", xNoteQuoted}

func xDerivedKeeps(o *xOrder) bool { return o.status != "void" && o.note != xNoteQuoted }

func xDerived(dialect, ns string) *DerivedTable {
	q := func(id string) string { return `"` + id + `"` }
	p1, p2 := "?", "?"
	switch dialect {
	case DialectPostgres:
		p1, p2 = "$1", "$2"
	case DialectMySQL:
		q = func(id string) string { return "`" + id + "`" }
	}
	return &DerivedTable{
		SQL:  "SELECT * FROM " + q(ns) + "." + q("orders") + " WHERE " + q("status") + " <> " + p1 + " AND (" + q("note") + " IS NULL OR " + q("note") + " <> " + p2 + ")",
		Args: xDerivedArgs,
	}
}

// ---- evaluation in Go ----

type xModel struct {
	dims  map[string]*xDim
	meas  map[string]*xMeas
	rows  []xRow
	order []string // default sort
}

func newXModel(s xSetup) *xModel {
	m := &xModel{dims: map[string]*xDim{}, meas: map[string]*xMeas{}, order: []string{"-revenue"}}
	for _, d := range xDims() {
		m.dims[d.Name] = &d
	}
	for _, ms := range xMeasures() {
		m.meas[ms.Name] = &ms
	}
	for i := range xOrders {
		o := &xOrders[i]
		if s.derived && !xDerivedKeeps(o) {
			continue
		}
		r := xRow{o: o}
		for j := range xCustomers {
			if o.customer != nil && xCustomers[j].id == o.customer.(int64) {
				r.c = &xCustomers[j]
			}
		}
		if r.c == nil && s.custJoin == "inner" {
			continue
		}
		if r.c != nil && r.c.country != nil {
			for j := range xCountries {
				if xCountries[j].code == r.c.country.(string) {
					r.k = &xCountries[j]
				}
			}
		}
		if r.k == nil && s.countryJoin == "inner" {
			continue
		}
		m.rows = append(m.rows, r)
	}
	return m
}

// xTrunc truncates a wall-clock time to a grain; weeks start on Monday.
func xTrunc(grain string, v any) any {
	if v == nil {
		return nil
	}
	t := v.(time.Time)
	y, mo, d := t.Date()
	switch grain {
	case "hour":
		return time.Date(y, mo, d, t.Hour(), 0, 0, 0, time.UTC)
	case "day":
		return time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
	case "week":
		back := (int(t.Weekday()) + 6) % 7
		return time.Date(y, mo, d-back, 0, 0, 0, 0, time.UTC)
	case "month":
		return time.Date(y, mo, 1, 0, 0, 0, 0, time.UTC)
	case "quarter":
		return time.Date(y, (mo-1)/3*3+1, 1, 0, 0, 0, 0, time.UTC)
	case "year":
		return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	panic("grain " + grain)
}

// dim resolves "name" or "name.grain" to its type and per-row value.
func (m *xModel) dim(ref, defGrain string) (string, func(xRow) any) {
	name, grain, _ := strings.Cut(ref, ".")
	d := m.dims[name]
	if d == nil {
		panic("no dimension " + name)
	}
	if grain == "" && d.Type == TypeTime {
		grain = defGrain
	}
	if grain == "" {
		return d.Type, d.eval
	}
	return d.Type, func(r xRow) any { return xTrunc(grain, d.eval(r)) }
}

// xValue reads a filter value as the evaluation's types: float64 numbers,
// wall-clock times.
func xValue(v any, typ string) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case string:
		if typ == TypeTime {
			for _, l := range []string{xLayout, "2006-01-02", time.RFC3339} {
				if t, err := time.Parse(l, x); err == nil {
					return t
				}
			}
			panic("bad time " + x)
		}
	}
	return v
}

// xCmp orders two non-null values of one type.
func xCmp(a, b any) int {
	switch x := a.(type) {
	case float64:
		y := b.(float64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case string:
		return strings.Compare(x, b.(string)) // bytes: code points
	case time.Time:
		return x.Compare(b.(time.Time))
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	}
	panic(fmt.Sprintf("cannot compare %T", a))
}

// xRange is [from, to) of a relative date filter as wall-clock times: days
// begin at midnight in now's location, weeks on Monday; "last N" ends at now.
func xRange(f Filter, now time.Time) (from, to time.Time) {
	y, mo, d := now.Date()
	loc := now.Location()
	today := time.Date(y, mo, d, 0, 0, 0, 0, loc)
	switch f.Op {
	case OpToday:
		from, to = today, today.AddDate(0, 0, 1)
	case OpYesterday:
		from, to = today.AddDate(0, 0, -1), today
	case OpThis:
		switch f.Value {
		case "week":
			from = today.AddDate(0, 0, -((int(today.Weekday()) + 6) % 7))
			to = from.AddDate(0, 0, 7)
		case "month":
			from = time.Date(y, mo, 1, 0, 0, 0, 0, loc)
			to = from.AddDate(0, 1, 0)
		case "quarter":
			from = time.Date(y, (mo-1)/3*3+1, 1, 0, 0, 0, 0, loc)
			to = from.AddDate(0, 3, 0)
		case "year":
			from = time.Date(y, 1, 1, 0, 0, 0, 0, loc)
			to = from.AddDate(1, 0, 0)
		}
	case OpLast:
		var n int
		var unit string
		fmt.Sscanf(f.Value.(string), "%d %s", &n, &unit)
		switch unit {
		case "days":
			from = now.AddDate(0, 0, -n)
		case "weeks":
			from = now.AddDate(0, 0, -7*n)
		case "months":
			from = now.AddDate(0, -n, 0)
		}
		to = now
	}
	wall := func(t time.Time) time.Time {
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1000*1000, time.UTC)
	}
	if from.IsZero() {
		panic(fmt.Sprintf("relative filter %v", f))
	}
	return wall(from), wall(to)
}

// xMatch is a filter's truth on a value, as SQL has it: any comparison with
// NULL is not true.
func xMatch(v any, typ string, f Filter, now time.Time) bool {
	switch f.Op {
	case OpIsNull:
		return v == nil
	case OpIsNotNull:
		return v != nil
	}
	if v == nil {
		return false
	}
	switch f.Op {
	case OpEq:
		return xCmp(v, xValue(f.Value, typ)) == 0
	case OpNe:
		return xCmp(v, xValue(f.Value, typ)) != 0
	case OpGt:
		return xCmp(v, xValue(f.Value, typ)) > 0
	case OpGe:
		return xCmp(v, xValue(f.Value, typ)) >= 0
	case OpLt:
		return xCmp(v, xValue(f.Value, typ)) < 0
	case OpLe:
		return xCmp(v, xValue(f.Value, typ)) <= 0
	case OpIn, OpNotIn:
		in := false
		for _, x := range f.Value.([]any) {
			in = in || xCmp(v, xValue(x, typ)) == 0
		}
		return in == (f.Op == OpIn)
	case OpBetween:
		l := f.Value.([]any)
		return xCmp(v, xValue(l[0], typ)) >= 0 && xCmp(v, xValue(l[1], typ)) <= 0
	case OpContains:
		return strings.Contains(v.(string), f.Value.(string))
	case OpLast, OpThis, OpToday, OpYesterday:
		from, to := xRange(f, now)
		t := v.(time.Time)
		return !t.Before(from) && t.Before(to)
	}
	panic("op " + f.Op)
}

func (m *xModel) aggregate(ms *xMeas, rows []xRow, now time.Time) any {
	var vals []any
	for _, r := range rows {
		keep := true
		for _, f := range ms.Filter {
			typ, ev := m.dim(f.Field, "")
			keep = keep && xMatch(ev(r), typ, f, now)
		}
		if !keep {
			continue
		}
		if ms.eval == nil {
			vals = append(vals, 1.0)
		} else if v := ms.eval(r); v != nil {
			vals = append(vals, v)
		}
	}
	switch ms.Agg {
	case AggCount:
		return float64(len(vals))
	case AggCountDistinct:
		seen := map[string]bool{}
		for _, v := range vals {
			seen[fmt.Sprint(v)] = true
		}
		return float64(len(seen))
	}
	if len(vals) == 0 {
		return nil
	}
	switch ms.Agg {
	case AggSum, AggAvg:
		s := 0.0
		for _, v := range vals {
			s += v.(float64)
		}
		if ms.Agg == AggAvg {
			s /= float64(len(vals))
		}
		return s
	}
	best := vals[0]
	for _, v := range vals[1:] {
		if c := xCmp(v, best); (ms.Agg == AggMin && c < 0) || (ms.Agg == AggMax && c > 0) {
			best = v
		}
	}
	return best
}

// xResult is a query's rows with the value type of each column.
type xResult struct {
	types []string
	rows  [][]any
	sort  []xSortKey
}

type xSortKey struct {
	col  int
	desc bool
}

// types lists the value types of the requested columns: dimensions, then
// measures (as compiled).
func (m *xModel) types(req Request) []string {
	var ts []string
	for _, ref := range req.Dimensions {
		typ, _ := m.dim(ref, req.TimeGrain)
		ts = append(ts, typ)
	}
	for _, name := range req.Measures {
		ts = append(ts, m.meas[name].typ)
	}
	return ts
}

// sortKeys is the request's sort (or the model's default sort) as columns.
func (m *xModel) sortKeys(req Request) []xSortKey {
	cols := append(append([]string(nil), req.Dimensions...), req.Measures...)
	idx := map[string]int{}
	for i, c := range cols {
		idx[c] = i
	}
	sorts := req.Sort
	if len(sorts) == 0 {
		for _, s := range m.order {
			if _, ok := idx[strings.TrimPrefix(s, "-")]; ok {
				sorts = append(sorts, s)
			}
		}
	}
	var keys []xSortKey
	for _, s := range sorts {
		name, desc := strings.CutPrefix(s, "-")
		keys = append(keys, xSortKey{idx[name], desc})
	}
	return keys
}

// xOrderCmp compares rows by sort keys; NULL sorts as the smallest value.
func xOrderCmp(keys []xSortKey, a, b []any) int {
	for _, k := range keys {
		x, y := a[k.col], b[k.col]
		c := 0
		switch {
		case x == nil && y == nil:
		case x == nil:
			c = -1
		case y == nil:
			c = 1
		default:
			c = xCmp(x, y)
		}
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

func (m *xModel) eval(req Request, now time.Time) xResult {
	res := xResult{types: m.types(req), sort: m.sortKeys(req)}
	var dimFilters, measFilters []Filter
	for _, f := range req.Filters {
		if _, ok := m.meas[f.Field]; ok {
			measFilters = append(measFilters, f)
		} else {
			dimFilters = append(dimFilters, f)
		}
	}
	var rows []xRow
	for _, r := range m.rows {
		keep := true
		for _, f := range dimFilters {
			typ, ev := m.dim(f.Field, "")
			keep = keep && xMatch(ev(r), typ, f, now)
		}
		if keep {
			rows = append(rows, r)
		}
	}
	type group struct {
		key  []any
		rows []xRow
	}
	var groups []*group
	byKey := map[string]*group{}
	if len(req.Dimensions) == 0 {
		groups = append(groups, &group{}) // an aggregate without GROUP BY has one row
	}
	for _, r := range rows {
		if len(req.Dimensions) == 0 {
			groups[0].rows = append(groups[0].rows, r)
			continue
		}
		var key []any
		for _, ref := range req.Dimensions {
			_, ev := m.dim(ref, req.TimeGrain)
			key = append(key, ev(r))
		}
		k := fmt.Sprintf("%#v", key)
		g := byKey[k]
		if g == nil {
			g = &group{key: key}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.rows = append(g.rows, r)
	}
	for _, g := range groups {
		row := append([]any(nil), g.key...)
		for _, name := range req.Measures {
			row = append(row, m.aggregate(m.meas[name], g.rows, now))
		}
		keep := true
		for _, f := range measFilters {
			v := m.aggregate(m.meas[f.Field], g.rows, now)
			keep = keep && xMatch(v, TypeNumber, f, now)
		}
		if keep {
			res.rows = append(res.rows, row)
		}
	}
	sort.SliceStable(res.rows, func(i, j int) bool { return xOrderCmp(res.sort, res.rows[i], res.rows[j]) < 0 })
	if req.Limit > 0 && len(res.rows) > req.Limit {
		res.rows = res.rows[:req.Limit]
	}
	return res
}

// ---- comparing results ----

// xNorm turns a scanned value into the evaluation's types.
func xNorm(v any, typ string) (any, error) {
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	if v == nil {
		return nil, nil
	}
	switch typ {
	case TypeNumber:
		switch x := v.(type) {
		case int64:
			return float64(x), nil
		case int32:
			return float64(x), nil
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		case string:
			return strconv.ParseFloat(x, 64)
		}
	case TypeTime:
		switch x := v.(type) {
		case time.Time:
			return time.Date(x.Year(), x.Month(), x.Day(), x.Hour(), x.Minute(), x.Second(), x.Nanosecond(), time.UTC), nil
		case string:
			for _, l := range []string{xLayout, "2006-01-02T15:04:05Z", "2006-01-02", time.RFC3339Nano} {
				if t, err := time.Parse(l, x); err == nil {
					return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC), nil
				}
			}
		}
	case TypeBoolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			return x != 0, nil
		case string:
			return strconv.ParseBool(x)
		}
	case TypeString:
		if s, ok := v.(string); ok {
			return s, nil
		}
	}
	return nil, fmt.Errorf("unexpected %T %v for a %s column", v, v, typ)
}

// xCell is a value in a canonical text form: numbers to 3 decimals (AVG's
// precision differs by database), times as UTC wall clock, strings quoted.
func xCell(v any) string {
	switch x := v.(type) {
	case nil:
		return "∅"
	case float64:
		r := math.Round(x*1000) / 1000
		if r == 0 {
			r = 0 // no -0
		}
		return strconv.FormatFloat(r, 'f', -1, 64)
	case time.Time:
		return x.Format(xLayout)
	case string:
		return strconv.Quote(x)
	}
	return fmt.Sprint(v)
}

func xRowText(r []any) string {
	parts := make([]string, len(r))
	for i, v := range r {
		parts[i] = xCell(v)
	}
	return strings.Join(parts, " ")
}

// xText is rows in canonical form, one per line, in the given order.
func xText(rows [][]any) string {
	lines := make([]string, len(rows))
	for i, r := range rows {
		lines[i] = xRowText(r)
	}
	return strings.Join(lines, "\n")
}

// xSortedText is rows in canonical form, sorted, so that rows whose order
// the request leaves open compare.
func xSortedText(rows [][]any) string {
	lines := strings.Split(xText(rows), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// ---- the cases ----

type xCase struct {
	name  string
	setup xSetup
	now   time.Time // zero: testNow
	req   Request
	want  string // when set, the Go evaluation must give these rows (xText form; sorted when the request leaves the order open): a check on the evaluation itself
}

const xNoRows = "(no rows)"

var xAllPlain = []string{"orders", "orders_with_amount", "customers", "countries", "revenue", "total_qty", "avg_amount", "avg_qty",
	"min_amount", "max_amount", "first_order", "last_shipped", "min_status", "max_note"}

func xCases() []xCase {
	m := func(ms ...string) []string { return ms }
	f := func(field, op string, v any) Filter { return Filter{Field: field, Op: op, Value: v} }
	byStatus := func(fs ...Filter) Request {
		return Request{Measures: m("orders", "revenue"), Dimensions: m("status"), Filters: fs, Sort: m("status")}
	}
	tokyo := time.FixedZone("JST", 9*3600)
	cases := []xCase{
		// aggregations
		{name: "agg/all", req: Request{Measures: xAllPlain},
			want: `28 26 6 4 550.5 58 21.173 2.231 -10 100 2024-02-29 12:00:00 2026-03-19 08:00:00 "open" "Ünïcödé ✓"`},
		{name: "agg/all by status", req: Request{Measures: xAllPlain, Dimensions: m("status"), Sort: m("status")}},
		{name: "agg/filtered by region", req: Request{Dimensions: m("region"), Sort: m("region"),
			Measures: m("paid_revenue", "eu_orders", "eu_customers", "recent_revenue", "unshipped", "big_avg", "quoted_orders", "max_paid_qty")},
			want: "∅ 37.5 0 0 27 4 18.75 0 2\n" +
				`"APAC" 92 0 0 42 2 46 0 5` + "\n" +
				`"EEA" 43 4 0 ∅ 3 21.5 0 3` + "\n" +
				`"EU" 238 11 2 129.75 7 44.417 2 10` + "\n" +
				`"US" 90 0 0 12.5 5 36.25 1 6`},
		{name: "agg/boolean dimension", req: Request{Measures: m("orders", "revenue"), Dimensions: m("paid")}},
		{name: "agg/number dimension", req: Request{Measures: m("orders", "avg_amount"), Dimensions: m("qty"), Filters: []Filter{f("qty", OpIsNotNull, nil)}}},
		{name: "agg/time measures by customer", req: Request{Measures: m("first_order", "last_shipped", "min_status", "max_note"), Dimensions: m("customer")}},

		// grains, one at a time and together
		{name: "grain/all at once", req: Request{Measures: m("orders"), Dimensions: m("created_at.hour", "created_at.day", "created_at.week", "created_at.month", "created_at.quarter", "created_at.year")}},
		{name: "grain/time_grain applies", req: Request{Measures: m("orders"), Dimensions: m("created_at", "shipped_at"), TimeGrain: "month"}},
		{name: "grain/raw time", req: Request{Measures: m("orders"), Dimensions: m("shipped_at")}},
		{name: "grain/on date_trunc expressions", req: Request{Measures: m("orders"), Dimensions: m("order_week", "order_month.quarter", "order_week.month")}},
		{name: "grain/on coalesce of times", req: Request{Measures: m("orders"), Dimensions: m("shipped_or_created.week")}},
		{name: "grain/week spans a year", req: Request{Measures: m("orders"), Dimensions: m("created_at.week"), Filters: []Filter{f("created_at", OpBetween, []any{"2024-12-29", "2025-01-05"})}},
			want: `2024-12-30 00:00:00 2`},

		// expressions
		{name: "expr/lower upper concat coalesce", req: Request{Measures: m("orders"), Dimensions: m("region_lc", "status_uc", "label", "country")}},
		{name: "expr/concat of literals and a number", req: Request{Measures: m("orders"), Dimensions: m("tag")}},
		{name: "expr/coalesce of number and of times", req: Request{Measures: m("orders"), Dimensions: m("amount_or_zero", "shipped_or_created.day")}},
		{name: "expr/filters on expressions", req: Request{Measures: m("orders"), Dimensions: m("label"),
			Filters: []Filter{f("label", OpContains, "/E"), f("country", OpNe, "??"), f("region_lc", OpIn, []any{"eu", "eea"}), f("status_uc", OpNotIn, []any{"VOID"})}},
			want: `"open/EEA" 1` + "\n" + `"open/EU" 1` + "\n" + `"paid/EEA" 2` + "\n" + `"paid/EU" 4` + "\n" + `"refunded/EU" 1`},
		{name: "expr/coalesce of a time and a date literal", req: Request{Measures: m("orders"), Dimensions: m("shipped_or_2000.month"),
			Filters: []Filter{f("shipped_or_2000", OpBetween, []any{"2000-01-01", "2026-03-02"})}},
			want: "2000-01-01 00:00:00 21\n2025-10-01 00:00:00 1\n2026-02-01 00:00:00 1\n2026-03-01 00:00:00 1"},
		{name: "expr/fraction on an integer coalesce", req: Request{Measures: m("orders"), Dimensions: m("qty_or_zero"), Filters: []Filter{f("qty_or_zero", OpLt, 1.5)}},
			want: "0 3\n1 12"},
		{name: "expr/filters on coalesce", req: Request{Measures: m("orders"), Filters: []Filter{f("amount_or_zero", OpEq, 0), f("shipped_or_created", OpGe, "2026-03-18")}},
			want: "1"},

		// joins
		{name: "join/left chain", req: Request{Measures: m("orders", "revenue"), Dimensions: m("customer", "country_name")}},
		{name: "join/inner customers", setup: xSetup{custJoin: "inner"}, req: Request{Measures: m("orders", "revenue", "customers"), Dimensions: m("region")}},
		{name: "join/inner chain", setup: xSetup{custJoin: "inner", countryJoin: "inner"}, req: Request{Measures: m("orders", "revenue"), Dimensions: m("country_name", "customer")}},
		{name: "join/inner then left", setup: xSetup{custJoin: "inner"}, req: Request{Measures: m("orders"), Dimensions: m("country"), Filters: []Filter{f("country_name", OpIsNull, nil)}},
			want: `"??" 8` + "\n" + `"JP" 3`},

		// every filter operator
		{name: "op/= string", req: byStatus(f("region", OpEq, "EU"))},
		{name: "op/= number", req: byStatus(f("amount", OpEq, 100))},
		{name: "op/= fraction", req: byStatus(f("amount", OpEq, 20.5))},
		{name: "op/= bool", req: byStatus(f("paid", OpEq, true))},
		{name: "op/= time", req: byStatus(f("created_at", OpEq, "2026-03-18 09:00:00"))},
		{name: "op/= grain", req: byStatus(f("created_at.month", OpEq, "2026-03-01"))},
		{name: "op/!= string", req: byStatus(f("note", OpNe, "PAID"))},
		{name: "op/!= bool", req: byStatus(f("paid", OpNe, true))},
		{name: "op/> number", req: byStatus(f("amount", OpGt, 20.5))},
		{name: "op/>= number", req: byStatus(f("amount", OpGe, 20.5))},
		{name: "op/< number", req: byStatus(f("amount", OpLt, 5.25))},
		{name: "op/<= number", req: byStatus(f("amount", OpLe, 5.25))},
		{name: "op/> fraction on an integer column", req: byStatus(f("qty", OpGt, 2.5))},
		{name: "op/< fraction on an integer column", req: byStatus(f("qty", OpLt, 1.5))},
		{name: "op/> time", req: byStatus(f("created_at", OpGt, "2026-03-18"))},
		{name: "op/<= time RFC 3339", req: byStatus(f("created_at", OpLe, "2026-03-01T00:00:00Z"))},
		{name: "op/< grain", req: byStatus(f("created_at.year", OpLt, "2026-01-01"))},
		{name: "op/in strings", req: byStatus(f("status", OpIn, []any{"paid", "void", "nope'"}))},
		{name: "op/in numbers", req: byStatus(f("qty", OpIn, []any{1, 3, 2.5}))},
		{name: "op/in grains", req: byStatus(f("created_at.year", OpIn, []any{"2024-01-01", "2026-01-01"}))},
		{name: "op/in bools", req: byStatus(f("paid", OpIn, []any{false}))},
		{name: "op/not in", req: byStatus(f("status", OpNotIn, []any{"paid", "open"}))},
		{name: "op/not in skips nulls", req: byStatus(f("region", OpNotIn, []any{"EU"}))},
		{name: "op/between numbers", req: byStatus(f("amount", OpBetween, []any{5, 20.5}))},
		{name: "op/between fractions on an integer column", req: byStatus(f("qty", OpBetween, []any{1.5, 3.5}))},
		{name: "op/between times", req: byStatus(f("created_at", OpBetween, []any{"2026-03-01", "2026-03-17 23:59:59"}))},
		{name: "op/between weeks", req: byStatus(f("created_at.week", OpBetween, []any{"2026-03-09", "2026-03-16"}))},
		{name: "op/contains", req: byStatus(f("label", OpContains, "paid/"))},
		{name: "op/contains a quote", req: byStatus(f("note", OpContains, "'"))},
		{name: "op/contains unicode", req: byStatus(f("note", OpContains, "🚀"))},
		{name: "op/contains % and _ literally", req: byStatus(f("note", OpContains, "% _"))},
		{name: "op/contains on a join", req: byStatus(f("customer", OpContains, "ód"))},
		{name: "op/is null", req: byStatus(f("shipped_at", OpIsNull, nil))},
		{name: "op/is not null", req: byStatus(f("shipped_at", OpIsNotNull, nil))},
		{name: "op/is null on a join", req: Request{Measures: m("orders"), Dimensions: m("customer"), Filters: []Filter{f("region", OpIsNull, nil)}}},
		{name: "op/is null on a grain", req: byStatus(f("shipped_at.day", OpIsNull, nil))},
		{name: "op/last 7 days", req: Request{Measures: m("orders", "revenue"), Dimensions: m("created_at.day"), Filters: []Filter{f("created_at", OpLast, "7 days")}}},
		{name: "op/last 2 weeks", req: byStatus(f("created_at", OpLast, "2 weeks"))},
		{name: "op/last 1 months", req: byStatus(f("created_at", OpLast, "1 months"))},
		{name: "op/last 3 days on another column", req: byStatus(f("shipped_at", OpLast, "3 days"))},
		{name: "op/last 2 months on date_trunc", req: byStatus(f("order_week", OpLast, "2 months"))},
		{name: "op/this week", req: byStatus(f("created_at", OpThis, "week"))},
		{name: "op/this month", req: byStatus(f("created_at", OpThis, "month"))},
		{name: "op/this quarter", req: byStatus(f("created_at", OpThis, "quarter"))},
		{name: "op/this year", req: byStatus(f("created_at", OpThis, "year"))},
		{name: "op/this month on a grain", req: byStatus(f("created_at.day", OpThis, "month"))},
		{name: "op/today", req: Request{Measures: m("orders", "revenue"), Dimensions: m("created_at.hour"), Filters: []Filter{f("created_at", OpToday, nil)}},
			want: "2026-03-18 09:00:00 2 24.5\n2026-03-18 15:00:00 2 13\n2026-03-18 00:00:00 1 10\n2026-03-18 23:00:00 1 ∅"}, // default sort -revenue
		{name: "op/yesterday", req: byStatus(f("created_at", OpYesterday, nil)),
			want: `"open" 2 4.75` + "\n" + `"paid" 1 100`},
		{name: "op/yesterday in now's zone", now: testNow.In(tokyo), req: byStatus(f("created_at", OpYesterday, nil))},
		{name: "op/today in now's zone", now: testNow.In(tokyo), req: byStatus(f("shipped_at", OpToday, nil))},
		{name: "op/measure filters are having", req: Request{Measures: m("revenue", "orders", "eu_orders"), Dimensions: m("customer"),
			Filters: []Filter{f("status", OpNe, "void"), f("revenue", OpGt, 20), f("eu_orders", OpGe, 1), f("orders", OpBetween, []any{2, 10})}}},
		{name: "op/having with a fraction on a count", req: Request{Measures: m("orders"), Dimensions: m("status"), Filters: []Filter{f("orders", OpGe, 2.5)}},
			want: `"open" 7` + "\n" + `"paid" 16` + "\n" + `"void" 3`},
		{name: "op/last 7 days, now with a fraction", now: testNow.Add(500 * time.Millisecond),
			req:  Request{Measures: m("orders"), Dimensions: m("created_at"), Filters: []Filter{f("created_at", OpLast, "7 days"), f("created_at", OpIn, []any{"2026-03-18 15:04:05", "2026-03-11 15:04:05", "2026-03-18 09:00:00"})}},
			want: "2026-03-18 09:00:00 1\n2026-03-18 15:04:05 1"},
		{name: "op/having without dimensions", req: Request{Measures: m("orders"), Filters: []Filter{f("revenue", OpGt, 1000)}}, want: xNoRows},

		// sort and limit
		{name: "sort/-revenue limit 3", req: Request{Measures: m("revenue", "orders"), Dimensions: m("customer"), Sort: m("-revenue"), Limit: 3}},
		{name: "sort/nulls first ascending", req: Request{Measures: m("orders"), Dimensions: m("region"), Sort: m("region"), Limit: 2},
			want: "∅ 4\n" + `"APAC" 3`},
		{name: "sort/nulls last descending", req: Request{Measures: m("orders"), Dimensions: m("region"), Sort: m("-region"), Limit: 2},
			want: `"US" 6` + "\n" + `"EU" 11`},
		{name: "sort/null measure", req: Request{Measures: m("recent_revenue"), Dimensions: m("region"), Sort: m("recent_revenue", "region"), Limit: 3}},
		{name: "sort/grain desc limit", req: Request{Measures: m("orders"), Dimensions: m("created_at.month"), Sort: m("-created_at.month"), Limit: 3}},
		{name: "sort/default sort", req: Request{Measures: m("orders", "revenue"), Dimensions: m("status"), Limit: 2}},
		{name: "sort/two keys", req: Request{Measures: m("orders"), Dimensions: m("status", "paid"), Sort: m("status", "-orders", "paid")}},

		// a saved query as base: its values bind before or after the model's
		{name: "derived/label, filter, join", setup: xSetup{derived: true}, req: Request{Measures: m("orders", "revenue"), Dimensions: m("label", "region"),
			Filters: []Filter{f("status", OpNe, "refunded"), f("note", OpNe, "no customer")}, Sort: m("-revenue"), Limit: 4}},
		{name: "derived/grains and relative dates", setup: xSetup{derived: true}, req: Request{Measures: m("revenue", "eu_orders", "recent_revenue"), Dimensions: m("created_at.month"),
			Filters: []Filter{f("created_at", OpThis, "year"), f("tag", OpContains, "'")}}},
		{name: "derived/inner joins", setup: xSetup{derived: true, custJoin: "inner", countryJoin: "inner"}, req: Request{Measures: m("orders", "countries"), Dimensions: m("country_name")}},

		// values with quotes and unicode are bound and come back intact
		{name: "values/group by note", req: Request{Measures: m("orders"), Dimensions: m("note"), Sort: m("note")}},
		{name: "values/in a hostile list", req: Request{Measures: m("orders"), Dimensions: m("note"),
			Filters: []Filter{f("note", OpIn, []any{xNoteQuoted, xNoteUnicode, xNoteHostile, "tab\there", hostile})}}},
		{name: "values/equal with quotes", req: Request{Measures: m("orders"), Dimensions: m("customer"), Filters: []Filter{f("customer", OpEq, xCustQuoted)}},
			want: `"D'Angelo \"Dee\"" 6`},
		{name: "values/unicode on a join", req: Request{Measures: m("orders"), Dimensions: m("customer", "country_name"), Filters: []Filter{f("country_name", OpEq, "Norge — Noreg")}}},
		{name: "values/empty string is not null", req: Request{Measures: m("orders"), Filters: []Filter{f("note", OpEq, "")}}, want: "1"},
	}
	for _, g := range Grains {
		cases = append(cases, xCase{name: "grain/" + g, req: Request{Measures: m("orders", "revenue"), Dimensions: m("created_at." + g), Sort: m("created_at." + g)}})
	}
	return cases
}

// ---- the databases ----

func xInCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "0" && v != "false"
}

func xRandName() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return "dp_models_" + hex.EncodeToString(b)
}

// xConnect pings db; a server named by its environment variable, or any on
// CI, must answer; the default one may be absent.
func xConnect(t *testing.T, db *sql.DB, what, env string, explicit bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		if explicit || xInCI() {
			t.Fatalf("%s (%s) does not answer: %v", what, env, err)
		}
		t.Skipf("no %s to test against (%v); set %s", what, err, env)
	}
}

type xDB struct {
	dialect string
	db      *sql.DB
	ns      string
}

func xOpenPostgres(t *testing.T) *xDB {
	url, explicit := os.LookupEnv(xPostgresEnv)
	if !explicit || url == "" {
		url, explicit = xPostgresDefault, false
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	xConnect(t, db, "PostgreSQL", xPostgresEnv, explicit)
	t.Cleanup(func() { db.Close() })
	ns := xRandName()
	if _, err := db.Exec(`CREATE SCHEMA ` + ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec(`DROP SCHEMA ` + ns + ` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", ns, err)
		}
	})
	return &xDB{DialectPostgres, db, ns}
}

func xOpenMySQL(t *testing.T) *xDB {
	dsn, explicit := os.LookupEnv(xMySQLEnv)
	if !explicit || dsn == "" {
		dsn, explicit = xMySQLDefault, false
	}
	cfg, err := mysqldrv.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("%s: %v", xMySQLEnv, err)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	// MySQL 8's default mode (MariaDB's lacks ONLY_FULL_GROUP_BY).
	cfg.Params["sql_mode"] = "'ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"
	cfg.Params["time_zone"] = "'+00:00'"
	conn, err := mysqldrv.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	xConnect(t, db, "MySQL/MariaDB", xMySQLEnv, explicit)
	t.Cleanup(func() { db.Close() })
	ns := xRandName()
	if _, err := db.Exec("CREATE DATABASE `" + ns + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec("DROP DATABASE `" + ns + "`"); err != nil {
			t.Errorf("drop database %s: %v", ns, err)
		}
	})
	return &xDB{DialectMySQL, db, ns}
}

func xOpenSQLite(t *testing.T) *xDB {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1) // one in-memory database
	t.Cleanup(func() { db.Close() })
	return &xDB{DialectSQLite, db, "main"}
}

func (x *xDB) q(id string) string {
	if x.dialect == DialectMySQL {
		return "`" + id + "`"
	}
	return `"` + id + `"`
}

func (x *xDB) seed(t *testing.T) {
	t.Helper()
	var ddl []string
	switch x.dialect {
	case DialectPostgres:
		ddl = []string{
			`CREATE TABLE %s.customers (id integer PRIMARY KEY, name text COLLATE "C", region text COLLATE "C", country text COLLATE "C")`,
			`CREATE TABLE %s.countries (code text COLLATE "C" PRIMARY KEY, name text COLLATE "C" NOT NULL)`,
			`CREATE TABLE %s.orders (id integer PRIMARY KEY, customer_id integer, status text COLLATE "C" NOT NULL, note text COLLATE "C",
				created_at timestamp NOT NULL, shipped_at timestamp, paid boolean, amount numeric(10,2), qty integer)`,
		}
	case DialectMySQL:
		ddl = []string{
			`CREATE TABLE %s.customers (id INT PRIMARY KEY, name VARCHAR(100), region VARCHAR(20), country VARCHAR(2))`,
			`CREATE TABLE %s.countries (code VARCHAR(2) PRIMARY KEY, name VARCHAR(100) NOT NULL)`,
			`CREATE TABLE %s.orders (id INT PRIMARY KEY, customer_id INT, status VARCHAR(20) NOT NULL, note VARCHAR(100),
				created_at DATETIME NOT NULL, shipped_at DATETIME NULL, paid BOOLEAN, amount DECIMAL(10,2), qty INT)`,
		}
	default:
		ddl = []string{
			`CREATE TABLE %s.customers (id INTEGER PRIMARY KEY, name TEXT, region TEXT, country TEXT)`,
			`CREATE TABLE %s.countries (code TEXT PRIMARY KEY, name TEXT NOT NULL)`,
			`CREATE TABLE %s.orders (id INTEGER PRIMARY KEY, customer_id INTEGER, status TEXT NOT NULL, note TEXT,
				created_at TEXT NOT NULL, shipped_at TEXT, paid INTEGER, amount REAL, qty INTEGER)`,
		}
	}
	for _, s := range ddl {
		if _, err := x.db.Exec(fmt.Sprintf(s, x.q(x.ns))); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	tx, err := x.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	insert := func(table string, vals ...any) {
		ph := make([]string, len(vals))
		for i, v := range vals {
			ph[i] = "?"
			if x.dialect == DialectPostgres {
				ph[i] = "$" + strconv.Itoa(i+1)
			}
			switch y := v.(type) {
			case time.Time:
				if x.dialect != DialectPostgres {
					vals[i] = y.Format(xLayout)
				}
			}
		}
		q := "INSERT INTO " + x.q(x.ns) + "." + x.q(table) + " VALUES (" + strings.Join(ph, ", ") + ")"
		if _, err := tx.Exec(q, vals...); err != nil {
			t.Fatalf("%s %v: %v", q, vals, err)
		}
	}
	for _, c := range xCustomers {
		insert("customers", c.id, c.name, c.region, c.country)
	}
	for _, c := range xCountries {
		insert("countries", c.code, c.name)
	}
	for _, o := range xOrders {
		qty := o.qty
		if qty != nil {
			qty = int64(qty.(float64))
		}
		insert("orders", o.id, o.customer, o.status, o.note, o.created, o.shipped, o.paid, o.amount, qty)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// run compiles req for x and returns its rows in the evaluation's types.
func (x *xDB) run(t *testing.T, tc xCase, types []string) [][]any {
	t.Helper()
	opt := Options{Dialect: x.dialect, Now: tc.now}
	if tc.setup.derived {
		opt.Derived = xDerived(x.dialect, x.ns)
	}
	cfg := xConfig(x.ns, tc.setup)
	q, args, err := CompileWith(cfg, tc.req, opt)
	if err != nil {
		t.Fatal(err)
	}
	checkPlaceholders(t, x.dialect, q, args, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := x.db.QueryContext(ctx, q, args...)
	if err != nil {
		t.Fatalf("%v\n%s\n%v", err, q, args)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) != len(types) {
		t.Fatalf("%d columns, want %d: %v", len(cols), len(types), cols)
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if vals[i], err = xNorm(v, types[i]); err != nil {
				t.Fatalf("column %s: %v\n%s", cols[i], err, q)
			}
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	return out
}

func TestDialectsExecute(t *testing.T) {
	cases := xCases()
	names := map[string]bool{}
	want := make([]xResult, len(cases))
	for i, tc := range cases {
		if names[tc.name] {
			t.Fatalf("case %q twice", tc.name)
		}
		names[tc.name] = true
		if cases[i].now.IsZero() {
			cases[i].now = testNow
		}
		want[i] = newXModel(tc.setup).eval(tc.req, cases[i].now)
		if tc.want != "" {
			got := xText(want[i].rows)
			if len(want[i].sort) == 0 {
				got = xSortedText(want[i].rows) // in any order: tc.want lists them sorted
			}
			if len(want[i].rows) == 0 {
				got = xNoRows
			}
			if got != tc.want {
				t.Errorf("%s: the Go evaluation gives\n%s\nthe case expects\n%s", tc.name, got, tc.want)
			}
		}
	}
	// got[case][dialect] is a dialect's answer in canonical form.
	got := make([]map[string]string, len(cases))
	for i := range got {
		got[i] = map[string]string{}
	}
	for _, target := range []struct {
		dialect string
		open    func(*testing.T) *xDB
	}{{DialectSQLite, xOpenSQLite}, {DialectPostgres, xOpenPostgres}, {DialectMySQL, xOpenMySQL}} {
		t.Run(target.dialect, func(t *testing.T) {
			x := target.open(t)
			x.seed(t)
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					rows := x.run(t, tc, want[i].types)
					got[i][x.dialect] = xSortedText(rows)
					if g, w := xSortedText(rows), xSortedText(want[i].rows); g != w {
						t.Errorf("rows differ from the Go evaluation\n got:\n%s\nwant:\n%s", g, w)
						return
					}
					// The rows are the expected ones; their order must follow
					// the sort (rows tied on it may come in any order).
					for j := 1; j < len(rows); j++ {
						if xOrderCmp(want[i].sort, rows[j-1], rows[j]) > 0 {
							t.Errorf("rows out of order:\n%s", xText(rows))
							break
						}
					}
				})
			}
		})
	}
	// Every dialect that ran gives the same answer.
	for i, tc := range cases {
		var first, firstD string
		for _, d := range []string{DialectSQLite, DialectPostgres, DialectMySQL} {
			g, ok := got[i][d]
			if !ok {
				continue
			}
			if firstD == "" {
				first, firstD = g, d
			} else if g != first {
				t.Errorf("%s: %s and %s differ:\n%s\n--\n%s", tc.name, firstD, d, first, g)
			}
		}
	}
}
