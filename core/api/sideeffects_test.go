package api_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/datasources"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/store/storetest"
)

// A data source changed or deleted by a Go caller (no HTTP handler in
// between) must drop its cached results just as an API call does: the
// service owns that side effect.
func TestSourceChangeByGoCallerForgetsCachedResults(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg, withFakeConnector(t))
		id := e.fakeSource("cached")
		q := e.want(e.do("POST", "/api/v1/queries", e.admin, map[string]any{"name": "three rows", "sql": "rows 3", "data_source_id": id}), 201, "save query")
		path := "/api/v1/queries/" + q.str("id") + "/run"
		run := func(want string) {
			t.Helper()
			r := e.want(e.do("POST", path, e.admin, map[string]any{}), 200, "run")
			if got := r.header.Get("X-DataPulse-Cache"); got != want {
				t.Fatalf("X-DataPulse-Cache = %q, want %q", got, want)
			}
		}
		run("miss")
		run("hit")
		sys := principal.System(context.Background())
		ttl := 120
		if _, err := e.ds.Update(sys, uuid.MustParse(id), datasources.Input{CacheTTLSeconds: &ttl}); err != nil {
			t.Fatal(err)
		}
		run("miss") // the change dropped the cached result
		run("hit")
		if err := e.ds.Delete(sys, uuid.MustParse(id)); err != nil {
			t.Fatal(err)
		}
		if r := e.do("POST", path, e.admin, map[string]any{}); r.status == 200 {
			t.Fatalf("query on a deleted source answered 200 %s (a cached result must not answer)", r.raw)
		}
	})
}
