package api_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/policy"
)

// errorOf is a refusal as a client sees it, without its request id.
func errorOf(t *testing.T, r resp) string {
	t.Helper()
	e, _ := r.body["error"].(map[string]any)
	if e == nil {
		t.Fatalf("no error envelope: %s", r.raw)
	}
	c := map[string]any{}
	for k, v := range e {
		if k != "request_id" {
			c[k] = v
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAuthzWidgetSources is finding A6: whoever adds or changes a widget must
// be able to read its source under their own rights. An editor with an edit
// share on an admin-owned dashboard (the owner may read every query) cannot
// bind a widget to another user's private saved query, and the refusal is
// the one a made-up id gets, so ids cannot be probed; their own query binds.
func TestAuthzWidgetSources(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg)
		editorID, editor := e.createUser("a6-editor@example.com", "user")
		_, other := e.createUser("a6-other@example.com", "user")
		pos := map[string]int{"x": 0, "y": 0, "w": 6, "h": 3}
		query := func(token, name string) string {
			return e.want(e.do("POST", "/api/v1/queries", token, map[string]any{"name": name, "sql": "SELECT 1"}), 201, "query "+name).str("id")
		}
		private := query(other, "other's private query")
		own := query(editor, "editor's own query")
		fake := uuid.NewString()

		board := e.want(e.do("POST", "/api/v1/dashboards", e.admin, map[string]any{"name": "Admin board"}), 201, "admin dashboard").str("id")
		e.want(e.do("PUT", "/api/v1/dashboards/"+board+"/shares/"+editorID, e.admin, map[string]any{"permission_level": "edit"}), 200, "edit share")
		widgets := "/api/v1/dashboards/" + board + "/widgets"
		bind := func(q string) map[string]any {
			return map[string]any{"type": "table", "config": map[string]any{"query_id": q}, "position": pos}
		}

		// Adding a widget.
		foreign := e.do("POST", widgets, editor, bind(private))
		unknown := e.do("POST", widgets, editor, bind(fake))
		if foreign.status != 400 || unknown.status != 400 {
			t.Fatalf("bind to another user's query: %d %s; to an unknown id: %d %s; want 400 for both", foreign.status, foreign.raw, unknown.status, unknown.raw)
		}
		if a, b := errorOf(t, foreign), errorOf(t, unknown); a != b {
			t.Errorf("another user's query and an unknown id answer differently:\n  %s\n  %s", a, b)
		}
		w := e.want(e.do("POST", widgets, editor, bind(own)), 201, "bind the editor's own query").str("id")

		// Changing a widget.
		foreign = e.do("PATCH", widgets+"/"+w, editor, map[string]any{"config": map[string]any{"query_id": private}})
		unknown = e.do("PATCH", widgets+"/"+w, editor, map[string]any{"config": map[string]any{"query_id": fake}})
		if foreign.status != 400 || unknown.status != 400 {
			t.Fatalf("rebind to another user's query: %d %s; to an unknown id: %d %s; want 400 for both", foreign.status, foreign.raw, unknown.status, unknown.raw)
		}
		if a, b := errorOf(t, foreign), errorOf(t, unknown); a != b {
			t.Errorf("rebinding: another user's query and an unknown id answer differently:\n  %s\n  %s", a, b)
		}

		// Nothing of the private query reached the dashboard.
		list := e.want(e.do("GET", widgets, editor, nil), 200, "widgets")
		items, _ := list.body["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("%d widgets, want the editor's one: %s", len(items), list.raw)
		}
		if cfg := items[0].(map[string]any)["config"].(map[string]any); cfg["query_id"] != own {
			t.Errorf("widget bound to %v, want the editor's own query %s", cfg["query_id"], own)
		}
		// The admin owner, who may read every query, still binds it.
		e.want(e.do("POST", widgets, e.admin, bind(private)), 201, "admin binds any query")

		// Models are read by role (queries:run or models:manage): a caller
		// whose role reads none cannot bind one, and a real model answers
		// as a made-up id does; an editor binds it.
		ctx := principal.System(context.Background())
		c := e.store.Client
		src := c.DataSource.Create().SetName("A6 source").SetType("none").SaveX(ctx)
		admin := uuid.MustParse(e.want(e.do("GET", "/api/v1/me", e.admin, nil), 200, "me").str("id"))
		model := c.DataModel.Create().SetUserID(admin).SetName("A6 model").SetConfig(matrixModelConfig(src.ID)).SaveX(ctx)
		e.facts.SetOwner(policy.KindModel, model.ID, admin)
		role := e.want(e.do("POST", "/api/v1/roles", e.admin, map[string]any{"name": "a6-designer",
			"permissions": []string{"dashboards:read", "dashboards:edit"}}), 201, "designer role").str("id")
		designerID, designer := e.createUser("a6-designer@example.com", "user")
		e.want(e.do("POST", "/api/v1/users/"+designerID+"/roles", e.admin, map[string]any{"role_id": role}), 201, "designer's role")
		e.want(e.do("PUT", "/api/v1/dashboards/"+board+"/shares/"+designerID, e.admin, map[string]any{"permission_level": "edit"}), 200, "designer's edit share")
		bindModel := func(m string) map[string]any {
			return map[string]any{"type": "table", "position": pos, "config": map[string]any{"model_id": m,
				"model_query": map[string]any{"measures": []string{"orders"}, "dimensions": []string{"region"}}}}
		}
		foreign = e.do("POST", widgets, designer, bindModel(model.ID.String()))
		unknown = e.do("POST", widgets, designer, bindModel(fake))
		if foreign.status != 400 || unknown.status != 400 {
			t.Fatalf("designer binds a model: %d %s; an unknown id: %d %s; want 400 for both", foreign.status, foreign.raw, unknown.status, unknown.raw)
		}
		if a, b := errorOf(t, foreign), errorOf(t, unknown); a != b {
			t.Errorf("a model the caller may not read and an unknown id answer differently:\n  %s\n  %s", a, b)
		}
		e.want(e.do("POST", widgets, editor, bindModel(model.ID.String())), 201, "the editor binds the model")
	})
}
