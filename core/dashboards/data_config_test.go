package dashboards_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/dashboards"
	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/ent/schema/types"
)

// recordingChecker stands in for the rendering service's source check (which
// needs connectors); it records what the dashboards service asks.
type recordingChecker struct {
	owner uuid.UUID
	src   dashboards.WidgetSource
	err   error
}

func (r *recordingChecker) CheckWidgetSource(_ context.Context, owner uuid.UUID, _ []types.DashboardFilter, src dashboards.WidgetSource) error {
	r.owner, r.src = owner, src
	return r.err
}

func TestDashboardFiltersAndWidgetSources(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		w := newWorld(t, tg)
		name := "Sales"
		filters := []types.DashboardFilter{{Name: "region", Type: "text", Multiple: true}, {Name: "period", Type: "date", Default: "last 30 days"}}
		ttl := 120
		d, err := w.svc.Create(w.owner, dashboards.Input{Name: &name, Filters: &filters, CacheTTLSeconds: &ttl})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Filters) != 2 || d.CacheTTLSeconds == nil || *d.CacheTTLSeconds != 120 {
			t.Fatalf("filters/ttl not kept: %+v", d)
		}
		badFilters := []struct {
			name    string
			filters []types.DashboardFilter
			field   string
		}{
			{"bad name", []types.DashboardFilter{{Name: "1x", Type: "text"}}, "filters[0].name"},
			{"twice", []types.DashboardFilter{{Name: "a", Type: "text"}, {Name: "a", Type: "text"}}, "filters[1].name"},
			{"bad type", []types.DashboardFilter{{Name: "a", Type: "money"}}, "filters[0].type"},
			{"bad default", []types.DashboardFilter{{Name: "a", Type: "number", Default: "x"}}, "filters[0].default"},
		}
		for _, c := range badFilters {
			_, err := w.svc.Update(w.owner, d.ID, dashboards.Input{Filters: &c.filters})
			var e *errs.Error
			if !errors.As(err, &e) || e.Field != c.field {
				t.Errorf("%s: err = %v, want invalid %s", c.name, err, c.field)
			}
		}

		pos := &types.Position{W: 6, H: 3}
		typ := "number"
		q, m := uuid.NewString(), uuid.NewString()
		// Without a source check installed, data widgets are refused.
		if _, err := w.svc.CreateWidget(w.owner, d.ID, dashboards.WidgetInput{Type: &typ, Position: pos, Config: map[string]any{"query_id": q}}); !errors.Is(err, errs.ErrInvalid) {
			t.Fatalf("data widget without a checker: %v", err)
		}
		chk := &recordingChecker{}
		w.svc.SetSourceChecker(chk)
		bad := []map[string]any{
			{"query_id": q, "model_id": m},
			{"parameters": map[string]any{"a": 1}},
			{"model_id": m},
			{"model_query": map[string]any{"measures": []string{"x"}}},
			{"query_id": q, "filter_map": map[string]any{"country": "country"}}, // not a dashboard filter
			{"query_id": q, "filter_map": map[string]any{"region": "not a name"}},
			{"query_id": "not-a-uuid"},
		}
		for _, cfg := range bad {
			if _, err := w.svc.CreateWidget(w.owner, d.ID, dashboards.WidgetInput{Type: &typ, Position: pos, Config: cfg}); !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("config %v: err = %v, want invalid", cfg, err)
			}
		}
		good := map[string]any{"query_id": q, "parameters": map[string]any{"since": "2026-01-01"}, "filter_map": map[string]any{"region": "region"}}
		wd, err := w.svc.CreateWidget(w.owner, d.ID, dashboards.WidgetInput{Type: &typ, Position: pos, Config: good})
		if err != nil {
			t.Fatal(err)
		}
		if chk.owner != w.ownerID || chk.src.QueryID == nil || chk.src.QueryID.String() != q || chk.src.FilterMap["region"] != "region" {
			t.Fatalf("checker asked about %+v for owner %s", chk.src, chk.owner)
		}
		src, err := dashboards.SourceOf(wd.Config)
		if err != nil || !src.HasData() || src.Parameters["since"] != "2026-01-01" {
			t.Fatalf("stored source %+v, %v", src, err)
		}
		// The checker's verdict is the answer.
		chk.err = errs.Invalid("config.query_id", "the dashboard owner cannot read this saved query")
		if _, err := w.svc.CreateWidget(w.owner, d.ID, dashboards.WidgetInput{Type: &typ, Position: pos, Config: good}); !errors.Is(err, errs.ErrInvalid) {
			t.Fatalf("refused source accepted: %v", err)
		}
		// A position-only change does not re-check the source.
		chk.err = nil
		chk.src = dashboards.WidgetSource{}
		if _, err := w.svc.UpdateWidget(w.owner, d.ID, wd.ID, dashboards.WidgetInput{Position: &types.Position{X: 6, W: 6, H: 3}}); err != nil || chk.src.HasData() {
			t.Fatalf("move: %v (checked %+v)", err, chk.src)
		}
	})
}
