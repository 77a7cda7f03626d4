package models

import (
	"errors"
	"reflect"
	"testing"

	"github.com/datapulse/datapulse/core/errs"
)

// The text form of filters (Request.Where) compiles exactly like the same
// filters given as objects.
func TestWhereTextFilters(t *testing.T) {
	cases := []struct {
		where   []string
		filters []Filter
	}{
		{[]string{"region = 'EU'"}, []Filter{{Field: "region", Op: OpEq, Value: "EU"}}},
		{[]string{"region in ('EU', 'it''s')", "amount between 10 and 20.5"},
			[]Filter{{Field: "region", Op: OpIn, Value: []any{"EU", "it's"}}, {Field: "amount", Op: OpBetween, Value: []any{int64(10), 20.5}}}},
		{[]string{"created_at last 7 days", "status is not null"},
			[]Filter{{Field: "created_at", Op: OpLast, Value: "7 days"}, {Field: "status", Op: OpIsNotNull}}},
		{[]string{"revenue > 100"}, []Filter{{Field: "revenue", Op: OpGt, Value: int64(100)}}},
	}
	for _, c := range cases {
		for _, d := range dialects {
			base := Request{Measures: []string{"revenue"}, Dimensions: []string{"region"}}
			text, objects := base, base
			text.Where, objects.Filters = c.where, c.filters
			s1, a1, err1 := Compile(testConfig(), text, d, testNow)
			s2, a2, err2 := Compile(testConfig(), objects, d, testNow)
			if err1 != nil || err2 != nil || s1 != s2 || !reflect.DeepEqual(a1, a2) {
				t.Errorf("%s %q: text form gives %q %v (%v), objects %q %v (%v)", d, c.where, s1, a1, err1, s2, a2, err2)
			}
		}
	}
	for _, bad := range [][]string{{"region ="}, {"1 = 1"}, {"region = 'EU'; DROP TABLE x"}, {"nosuch = 1"}} {
		_, _, err := Compile(testConfig(), Request{Measures: []string{"revenue"}, Where: bad}, DialectPostgres, testNow)
		var e *errs.Error
		if !errors.As(err, &e) || !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("where %q: err %v, want invalid input", bad, err)
		}
	}
}
