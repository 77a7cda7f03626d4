package rendering

import (
	"errors"
	"reflect"
	"testing"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/models"
	"github.com/datapulse/datapulse/core/queries"
	"github.com/datapulse/datapulse/ent/schema/types"
)

func TestResolveFilters(t *testing.T) {
	decl := []types.DashboardFilter{
		{Name: "region", Type: "text", Multiple: true},
		{Name: "period", Type: "date", Default: "last 30 days"},
		{Name: "min", Type: "number"},
		{Name: "paid", Type: "boolean"},
	}
	cases := []struct {
		name    string
		values  map[string]any
		want    map[string]any
		wantErr string // field at fault
	}{
		{"defaults only", nil, map[string]any{"period": "last 30 days"}, ""},
		{"given values win", map[string]any{"region": []any{"EU", "UK"}, "period": "2026-01-01", "min": 10.0, "paid": true},
			map[string]any{"region": []any{"EU", "UK"}, "period": "2026-01-01", "min": 10.0, "paid": true}, ""},
		{"relative dates", map[string]any{"period": "this month"}, map[string]any{"period": "this month"}, ""},
		{"unknown filter", map[string]any{"country": "FR"}, nil, "filters.country"},
		{"wrong type", map[string]any{"min": "ten"}, nil, "filters.min"},
		{"not a date", map[string]any{"period": "soon"}, nil, "filters.period"},
		{"list on a single-value filter", map[string]any{"min": []any{1.0, 2.0}}, nil, "filters.min"},
		{"empty list", map[string]any{"region": []any{}}, nil, "filters.region"},
		{"list of the wrong type", map[string]any{"region": []any{"EU", 3.0}}, nil, "filters.region"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := resolveFilters(decl, c.values)
			if c.wantErr != "" {
				var e *errs.Error
				if !errors.As(err, &e) || !errors.Is(err, errs.ErrInvalid) || e.Field != c.wantErr {
					t.Fatalf("err = %v, want invalid %s", err, c.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

func TestModelFilter(t *testing.T) {
	cases := []struct {
		v    any
		want models.Filter
	}{
		{"EU", models.Filter{Field: "d", Op: models.OpEq, Value: "EU"}},
		{[]any{"EU", "UK"}, models.Filter{Field: "d", Op: models.OpIn, Value: []any{"EU", "UK"}}},
		{12.5, models.Filter{Field: "d", Op: models.OpEq, Value: 12.5}},
		{"last 7 days", models.Filter{Field: "d", Op: models.OpLast, Value: "7 days"}},
		{"this month", models.Filter{Field: "d", Op: models.OpThis, Value: "month"}},
		{"today", models.Filter{Field: "d", Op: models.OpToday}},
		{"2026-01-01", models.Filter{Field: "d", Op: models.OpEq, Value: "2026-01-01"}},
	}
	for _, c := range cases {
		got := modelFilter("d", c.v)
		if got.Field != c.want.Field || got.Op != c.want.Op || !reflect.DeepEqual(got.Value, c.want.Value) {
			t.Errorf("modelFilter(%v) = %+v, want %+v", c.v, got, c.want)
		}
	}
}

func TestDashboardCacheSummary(t *testing.T) {
	w := func(status, cache string) WidgetData { return WidgetData{Status: status, Cache: cache} }
	cases := []struct {
		widgets []WidgetData
		want    string
	}{
		{[]WidgetData{w(StatusOK, queries.CacheHit), w(StatusNoData, "")}, queries.CacheHit},
		{[]WidgetData{w(StatusOK, queries.CacheHit), w(StatusOK, queries.CacheMiss)}, queries.CacheMiss},
		{[]WidgetData{w(StatusOK, queries.CacheHit), w(StatusError, "")}, queries.CacheMiss},
		{[]WidgetData{w(StatusOK, queries.CacheBypass), w(StatusOK, queries.CacheHit)}, queries.CacheBypass},
	}
	for i, c := range cases {
		if got := (DashboardData{Widgets: c.widgets}).Cache(); got != c.want {
			t.Errorf("case %d: Cache() = %s, want %s", i, got, c.want)
		}
	}
}
