package models

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/errs"
)

// The ansi dialect: what a connector with its own engine must parse.
func TestCompileANSI(t *testing.T) {
	req := Request{
		Measures:   []string{"paid_revenue", "orders"},
		Dimensions: []string{"label", "region"},
		Filters: []Filter{
			{Field: "status", Op: OpContains, Value: "50%_off!"},
			{Field: "created_at", Op: OpLast, Value: "7 days"},
			{Field: "orders", Op: OpGt, Value: 2},
		},
		Sort:  []string{"-orders", "region"},
		Limit: 10,
	}
	sql, args, err := Compile(testConfig(), req, DialectANSI, testNow)
	if err != nil {
		t.Fatal(err)
	}
	want := `SELECT (COALESCE("base"."status", '') || COALESCE(?, '') || COALESCE("c"."region", '')) AS "label", "c"."region" AS "region", ` +
		`SUM(CASE WHEN "base"."paid" = ? THEN "base"."amount" END) AS "paid_revenue", COUNT(*) AS "orders" ` +
		`FROM "public"."orders" AS "base" LEFT JOIN "public"."customers" AS "c" ON "base"."customer_id" = "c"."id" ` +
		`WHERE ("base"."status" LIKE ? ESCAPE '!') AND ("base"."created_at" >= ? AND "base"."created_at" < ?) ` +
		`GROUP BY 1, 2 HAVING (COUNT(*) > ?) ORDER BY "orders" DESC NULLS LAST, "region" ASC NULLS FIRST FETCH FIRST 10 ROWS ONLY`
	if sql != want {
		t.Errorf("sql:\n got %s\nwant %s", sql, want)
	}
	if n := strings.Count(sql, "?"); n != len(args) {
		t.Fatalf("%d placeholders, %d args: %#v", n, len(args), args)
	}
	if args[0] != "/" || args[1] != true || args[2] != "%50!%!_off!!%" || args[5] != int64(2) {
		t.Errorf("args: %#v", args)
	}
	// Times are bound as times (the protocol's timestamp parameters), not
	// as the text mysql and sqlite compare with.
	for _, i := range []int{3, 4} {
		if _, ok := args[i].(time.Time); !ok {
			t.Errorf("arg %d is %T, want time.Time", i, args[i])
		}
	}
}

// The subset has no date truncation: a grain is refused, naming the field.
func TestCompileANSIRefusesTimeGrains(t *testing.T) {
	for _, tc := range []struct {
		req   Request
		field string
	}{
		{Request{Measures: []string{"orders"}, Dimensions: []string{"created_at.month"}}, "dimensions[0]"},
		{Request{Measures: []string{"orders"}, Dimensions: []string{"region", "created_at"}, TimeGrain: "day"}, "dimensions[1]"},
		{Request{Measures: []string{"orders"}, Dimensions: []string{"order_week"}}, "dimensions[0]"},
	} {
		_, _, err := Compile(testConfig(), tc.req, DialectANSI, testNow)
		var e *errs.Error
		if !errors.As(err, &e) || !errors.Is(err, errs.ErrInvalid) || e.Field != tc.field || !strings.Contains(e.Error(), "ansi") {
			t.Errorf("%+v: got %v, want an invalid %s naming the ansi dialect", tc.req, err, tc.field)
		}
	}
	// Without a grain, a time dimension is its column.
	sql, _, err := Compile(testConfig(), Request{Measures: []string{"orders"}, Dimensions: []string{"created_at"}}, DialectANSI, testNow)
	if err != nil || !strings.Contains(sql, `"base"."created_at" AS "created_at"`) {
		t.Errorf("time dimension without a grain: %v %s", err, sql)
	}
}

func TestDialectsListsEveryKnownDialect(t *testing.T) {
	for _, d := range Dialects {
		if _, _, err := Compile(testConfig(), Request{Measures: []string{"orders"}}, d, testNow); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
	if !reflect.DeepEqual(Dialects, []string{"postgres", "mysql", "sqlite", "ansi"}) {
		t.Errorf("Dialects = %v", Dialects)
	}
	if _, _, err := Compile(testConfig(), Request{Measures: []string{"orders"}}, "acme", testNow); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("unknown dialect: %v", err)
	}
}
