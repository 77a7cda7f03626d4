package models

import (
	"database/sql"
	"fmt"
	"reflect"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// TestSQLiteExecutes runs compiled queries against an in-memory SQLite
// database (pure Go, no server) and checks the numbers.
func TestSQLiteExecutes(t *testing.T) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, s := range []string{
		`CREATE TABLE customers (id INTEGER PRIMARY KEY, region TEXT, country TEXT)`,
		`CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, status TEXT, created_at TEXT, shipped_at TEXT, paid INTEGER, amount REAL)`,
		`INSERT INTO customers VALUES (1, 'EU', 'FR'), (2, 'EU', NULL), (3, 'US', 'US')`,
		`INSERT INTO orders VALUES
			(1, 1, 'paid',    '2026-03-18 09:00:00', NULL, 1, 10),
			(2, 1, 'paid',    '2026-03-17 10:00:00', '2026-03-18 08:00:00', 1, 20),
			(3, 2, 'open',    '2026-03-02 11:00:00', NULL, 0, 5),
			(4, 3, 'paid',    '2026-02-10 12:00:00', NULL, 1, 100),
			(5, 3, 'void',    '2025-12-31 23:00:00', NULL, 0, 7),
			(6, 2, 'paid',    '2026-03-16 00:00:00', NULL, 1, 1)`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig()
	cfg.Table.Namespace = "main"
	cfg.Joins[0].Table.Namespace = "main"

	run := func(req Request) [][]string {
		t.Helper()
		q, args, err := Compile(cfg, req, DialectSQLite, testNow)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.Query(q, args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var out [][]string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			row := make([]string, len(cols))
			for i, v := range vals {
				row[i] = fmt.Sprint(v)
			}
			out = append(out, row)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	cases := []struct {
		name string
		req  Request
		want string
	}{
		{"revenue by month and region", Request{Measures: []string{"revenue", "orders"}, Dimensions: []string{"created_at.month", "region"}, Sort: []string{"created_at.month", "region"}},
			"2025-12-01 00:00:00 US 7 1|2026-02-01 00:00:00 US 100 1|2026-03-01 00:00:00 EU 36 4"},
		{"week and quarter", Request{Measures: []string{"orders"}, Dimensions: []string{"created_at.week", "created_at.quarter"}, Sort: []string{"created_at.week"}},
			"2025-12-29 00:00:00 2025-10-01 00:00:00 1|2026-02-09 00:00:00 2026-01-01 00:00:00 1|2026-03-02 00:00:00 2026-01-01 00:00:00 1|2026-03-16 00:00:00 2026-01-01 00:00:00 3"},
		{"last 7 days EU", Request{Measures: []string{"revenue"}, Filters: []Filter{{Field: "created_at", Op: OpLast, Value: "7 days"}, {Field: "region", Op: OpEq, Value: "EU"}}},
			"31"},
		{"this month", Request{Measures: []string{"orders"}, Dimensions: []string{"status"}, Filters: []Filter{{Field: "created_at", Op: OpThis, Value: "month"}}, Sort: []string{"status"}},
			"open 1|paid 3"},
		{"measure filters and having", Request{Measures: []string{"paid_revenue", "eu_orders", "eu_customers"}, Dimensions: []string{"status"},
			Filters: []Filter{{Field: "eu_orders", Op: OpGe, Value: 1}}, Sort: []string{"status"}},
			"open <nil> 1 1|paid 131 3 2"},
		{"expressions", Request{Measures: []string{"orders"}, Dimensions: []string{"label", "country", "region_lc"}, Filters: []Filter{{Field: "label", Op: OpContains, Value: "/EU"}}, Sort: []string{"label", "country"}},
			"open/EU unknown eu 1|paid/EU FR eu 2|paid/EU unknown eu 1"},
		{"hostile values are data", Request{Measures: []string{"orders"}, Filters: []Filter{{Field: "status", Op: OpIn, Value: []any{hostile, "void"}}, {Field: "label", Op: OpContains, Value: hostile}}},
			"0"},
		{"between and null", Request{Measures: []string{"orders"}, Filters: []Filter{{Field: "amount", Op: OpBetween, Value: []any{5, 20}}, {Field: "shipped_at", Op: OpIsNull}}},
			"3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rows := run(tc.req)
			var parts []string
			for _, r := range rows {
				parts = append(parts, strings.Join(r, " "))
			}
			if got := strings.Join(parts, "|"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
