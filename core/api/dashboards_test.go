package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/store/storetest"
)

func pos(x, y, w, h int) map[string]int { return map[string]int{"x": x, "y": y, "w": w, "h": h} }

func TestDashboards(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg)
		ownerID, owner := e.createUser("owner@example.com", "user")
		viewerID, viewer := e.createUser("viewer@example.com", "user")
		_, stranger := e.createUser("stranger@example.com", "user")

		d := e.want(e.do("POST", "/api/v1/dashboards", owner, map[string]any{"name": "Revenue", "description": "monthly"}), 201, "create")
		id := d.str("id")
		if d.str("owner_id") != ownerID || d.str("permission") != "owner" {
			t.Fatalf("created dashboard: %s", d.raw)
		}
		// Mass assignment: owner and ids come from the caller, never the body.
		for _, body := range []map[string]any{
			{"name": "x", "owner_id": viewerID}, {"name": "x", "id": uuid.NewString()}, {"name": "x", "created_at": "2020-01-01T00:00:00Z"},
		} {
			e.want(e.do("POST", "/api/v1/dashboards", owner, body), 400, fmt.Sprintf("create with %v", body))
		}
		e.want(e.do("PATCH", "/api/v1/dashboards/"+id, owner, map[string]any{"owner_id": viewerID}), 400, "patch owner_id")
		e.want(e.do("POST", "/api/v1/dashboards", owner, map[string]any{"name": "   "}), 400, "blank name")

		t.Run("widgets", func(t *testing.T) {
			good := []map[string]any{
				{"type": "text", "config": map[string]any{"content": "# Hello", "format": "markdown"}, "position": pos(0, 0, 24, 2)},
				{"type": "number", "config": map[string]any{"title": "MRR", "column": "mrr", "prefix": "$", "decimals": 2}, "position": pos(0, 2, 6, 4)},
				{"type": "line", "config": map[string]any{"x": "month", "y": []string{"revenue", "cost"}}, "position": pos(6, 2, 18, 8)},
				{"type": "bar", "position": pos(0, 10, 12, 6)},
				{"type": "area", "config": map[string]any{"stacked": true}, "position": pos(12, 10, 12, 6)},
				{"type": "pie", "config": map[string]any{"label": "region", "value": "sales"}, "position": pos(0, 16, 8, 8)},
				{"type": "table", "config": map[string]any{"columns": []string{"a", "b"}, "page_size": 50}, "position": pos(8, 16, 16, 8)},
			}
			for _, w := range good {
				e.want(e.do("POST", "/api/v1/dashboards/"+id+"/widgets", owner, w), 201, fmt.Sprintf("widget %v", w["type"]))
			}
			bad := []struct {
				name string
				body map[string]any
			}{
				{"unknown type", map[string]any{"type": "gauge3d", "position": pos(0, 0, 4, 4)}},
				{"unknown config field", map[string]any{"type": "text", "config": map[string]any{"content": "x", "script": "alert(1)"}, "position": pos(0, 0, 4, 4)}},
				{"config wrong type", map[string]any{"type": "number", "config": map[string]any{"decimals": "two"}, "position": pos(0, 0, 4, 4)}},
				{"config out of range", map[string]any{"type": "number", "config": map[string]any{"decimals": 99}, "position": pos(0, 0, 4, 4)}},
				{"nested config", map[string]any{"type": "table", "config": map[string]any{"columns": []any{map[string]any{"deep": []any{1}}}}, "position": pos(0, 0, 4, 4)}},
				{"x out of grid", map[string]any{"type": "text", "config": map[string]any{"content": "x"}, "position": pos(24, 0, 1, 1)}},
				{"too wide", map[string]any{"type": "text", "config": map[string]any{"content": "x"}, "position": pos(20, 0, 5, 1)}},
				{"zero height", map[string]any{"type": "text", "config": map[string]any{"content": "x"}, "position": pos(0, 0, 4, 0)}},
				{"negative y", map[string]any{"type": "text", "config": map[string]any{"content": "x"}, "position": pos(0, -1, 4, 1)}},
				{"missing position", map[string]any{"type": "text", "config": map[string]any{"content": "x"}}},
				{"extra position field", map[string]any{"type": "text", "config": map[string]any{"content": "x"}, "position": map[string]int{"x": 0, "y": 0, "w": 1, "h": 1, "z": 3}}},
			}
			for _, b := range bad {
				r := e.do("POST", "/api/v1/dashboards/"+id+"/widgets", owner, b.body)
				if r.status != 400 {
					t.Errorf("%s: %d, want 400: %s", b.name, r.status, r.raw)
				}
			}
			list := e.want(e.do("GET", "/api/v1/dashboards/"+id+"/widgets", owner, nil), 200, "list widgets")
			items := list.body["items"].([]any)
			if len(items) != len(good) {
				t.Fatalf("%d widgets, want %d", len(items), len(good))
			}
			w0 := items[0].(map[string]any)["id"].(string)
			w1 := items[1].(map[string]any)["id"].(string)
			e.want(e.do("GET", "/api/v1/dashboards/"+id+"/widgets/"+w0, owner, nil), 200, "get widget")
			e.want(e.do("PATCH", "/api/v1/dashboards/"+id+"/widgets/"+w1, owner, map[string]any{"config": map[string]any{"column": "arr", "suffix": " €"}}), 200, "patch widget")
			e.want(e.do("PATCH", "/api/v1/dashboards/"+id+"/widgets/"+w1, owner, map[string]any{"type": "pie", "config": map[string]any{"column": "arr"}}), 400, "change type with a config of another type")
			// A widget id under another dashboard's path is not found.
			other := e.want(e.do("POST", "/api/v1/dashboards", owner, map[string]any{"name": "Other"}), 201, "second dashboard").str("id")
			e.want(e.do("GET", "/api/v1/dashboards/"+other+"/widgets/"+w0, owner, nil), 404, "widget via other dashboard")
			e.want(e.do("PATCH", "/api/v1/dashboards/"+other+"/widgets/"+w0, owner, map[string]any{"position": pos(0, 0, 1, 1)}), 404, "patch via other dashboard")
			e.want(e.do("DELETE", "/api/v1/dashboards/"+other+"/widgets/"+w0, owner, nil), 404, "delete via other dashboard")
			e.want(e.do("PUT", "/api/v1/dashboards/"+other+"/layout", owner, map[string]any{"widgets": []any{map[string]any{"id": w0, "position": pos(0, 0, 1, 1)}}}), 400, "layout with a foreign widget")

			lay := e.want(e.do("PUT", "/api/v1/dashboards/"+id+"/layout", owner, map[string]any{"widgets": []any{
				map[string]any{"id": w0, "position": pos(0, 30, 12, 3)},
				map[string]any{"id": w1, "position": pos(12, 30, 12, 3)},
			}}), 200, "layout")
			moved := 0
			for _, it := range lay.body["items"].([]any) {
				if it.(map[string]any)["position"].(map[string]any)["y"].(float64) == 30 {
					moved++
				}
			}
			if moved != 2 {
				t.Errorf("layout moved %d widgets: %s", moved, lay.raw)
			}
			// All or nothing: one bad position moves none.
			e.want(e.do("PUT", "/api/v1/dashboards/"+id+"/layout", owner, map[string]any{"widgets": []any{
				map[string]any{"id": w0, "position": pos(0, 40, 12, 3)},
				map[string]any{"id": w1, "position": pos(20, 40, 12, 3)},
			}}), 400, "layout with one bad position")
			if g := e.want(e.do("GET", "/api/v1/dashboards/"+id+"/widgets/"+w0, owner, nil), 200, "get"); g.body["position"].(map[string]any)["y"].(float64) != 30 {
				t.Errorf("a rejected layout moved a widget: %s", g.raw)
			}
			e.want(e.do("DELETE", "/api/v1/dashboards/"+id+"/widgets/"+w0, owner, nil), 204, "delete widget")
			e.want(e.do("GET", "/api/v1/dashboards/"+id+"/widgets/"+w0, owner, nil), 404, "deleted widget")
		})

		t.Run("shares", func(t *testing.T) {
			e.want(e.do("GET", "/api/v1/dashboards/"+id, viewer, nil), 404, "not shared yet")
			e.want(e.do("PUT", "/api/v1/dashboards/"+id+"/shares/"+ownerID, owner, map[string]any{"permission_level": "view"}), 400, "share with yourself")
			e.want(e.do("PUT", "/api/v1/dashboards/"+id+"/shares/"+uuid.NewString(), owner, map[string]any{"permission_level": "view"}), 404, "share with nobody")
			e.want(e.do("PUT", "/api/v1/dashboards/"+id+"/shares/"+viewerID, owner, map[string]any{"permission_level": "owner"}), 400, "grant above the levels")
			e.want(e.do("PUT", "/api/v1/dashboards/"+id+"/shares/"+viewerID, owner, map[string]any{"permission_level": "view"}), 200, "share")
			g := e.want(e.do("GET", "/api/v1/dashboards/"+id, viewer, nil), 200, "shared view")
			if g.str("permission") != "view" || len(g.body["widgets"].([]any)) == 0 {
				t.Errorf("viewer's dashboard: %s", g.raw)
			}
			e.want(e.do("PATCH", "/api/v1/dashboards/"+id, viewer, map[string]any{"name": "mine now"}), 403, "view share edits")
			e.want(e.do("GET", "/api/v1/dashboards/"+id+"/shares", viewer, nil), 403, "view share lists shares")
			e.want(e.do("PUT", "/api/v1/dashboards/"+id+"/shares/"+viewerID, viewer, map[string]any{"permission_level": "edit"}), 403, "raise own share")
			e.want(e.do("PUT", "/api/v1/dashboards/"+id+"/shares/"+viewerID, owner, map[string]any{"permission_level": "edit"}), 200, "upgrade")
			e.want(e.do("PATCH", "/api/v1/dashboards/"+id, viewer, map[string]any{"name": "Revenue v2"}), 200, "edit share edits")
			e.want(e.do("DELETE", "/api/v1/dashboards/"+id, viewer, nil), 403, "edit share deletes")
			sh := e.want(e.do("GET", "/api/v1/dashboards/"+id+"/shares", owner, nil), 200, "list shares")
			if items := sh.body["items"].([]any); len(items) != 1 || items[0].(map[string]any)["email"] != "viewer@example.com" || items[0].(map[string]any)["permission_level"] != "edit" {
				t.Errorf("shares: %s", sh.raw)
			}
			e.want(e.do("GET", "/api/v1/dashboards/"+id, stranger, nil), 404, "stranger")

			l := e.want(e.do("GET", "/api/v1/dashboards?shared_with_me=true", viewer, nil), 200, "shared with me")
			if l.body["total"].(float64) != 1 {
				t.Errorf("shared_with_me: %s", l.raw)
			}
			if l := e.want(e.do("GET", "/api/v1/dashboards?owned=true", viewer, nil), 200, "owned"); l.body["total"].(float64) != 0 {
				t.Errorf("owned: %s", l.raw)
			}
			if l := e.want(e.do("GET", "/api/v1/dashboards", stranger, nil), 200, "stranger list"); l.body["total"].(float64) != 0 {
				t.Errorf("stranger sees: %s", l.raw)
			}
			if l := e.want(e.do("GET", "/api/v1/dashboards?q=revenue", e.admin, nil), 200, "admin list"); l.body["total"].(float64) != 1 {
				t.Errorf("admin search: %s", l.raw)
			}

			e.want(e.do("DELETE", "/api/v1/dashboards/"+id+"/shares/"+viewerID, owner, nil), 204, "unshare")
			e.want(e.do("GET", "/api/v1/dashboards/"+id, viewer, nil), 404, "after unshare")
			e.want(e.do("DELETE", "/api/v1/dashboards/"+id+"/shares/"+viewerID, owner, nil), 404, "unshare twice")
		})

		t.Run("roles decide what shares allow", func(t *testing.T) {
			// A viewer-role user may read what is shared, never create.
			vid, vtok := e.createUser("pure-viewer@example.com", "user")
			viewerRole := e.want(e.do("GET", "/api/v1/roles?per_page=500", e.admin, nil), 200, "roles")
			var roleID string
			for _, r := range viewerRole.body["items"].([]any) {
				if r.(map[string]any)["name"] == "viewer" {
					roleID = r.(map[string]any)["id"].(string)
				}
			}
			e.want(e.do("POST", "/api/v1/users/"+vid+"/roles", e.admin, map[string]any{"role_id": roleID}), 201, "make viewer")
			e.want(e.do("POST", "/api/v1/dashboards", vtok, map[string]any{"name": "nope"}), 403, "viewer creates")
			e.want(e.do("PUT", "/api/v1/dashboards/"+id+"/shares/"+vid, owner, map[string]any{"permission_level": "edit"}), 200, "edit share to a viewer")
			e.want(e.do("GET", "/api/v1/dashboards/"+id, vtok, nil), 200, "viewer reads")
			e.want(e.do("PATCH", "/api/v1/dashboards/"+id, vtok, map[string]any{"name": "x"}), 403, "viewer role cannot edit even with an edit share")
			// Taking the role away returns the user to the default role (editor).
			e.want(e.do("DELETE", "/api/v1/users/"+vid+"/roles/"+roleID, e.admin, nil), 204, "unassign")
			e.want(e.do("PATCH", "/api/v1/dashboards/"+id, vtok, map[string]any{"name": "Revenue v3"}), 200, "default editor with edit share")
		})

		t.Run("duplicate export import", func(t *testing.T) {
			dup := e.want(e.do("POST", "/api/v1/dashboards/"+id+"/duplicate", owner, nil), 201, "duplicate")
			if !strings.HasPrefix(dup.str("name"), "Copy of ") || dup.str("owner_id") != ownerID || len(dup.body["widgets"].([]any)) == 0 {
				t.Errorf("duplicate: %s", dup.raw)
			}
			exp := e.want(e.do("GET", "/api/v1/dashboards/"+id+"/export", owner, nil), 200, "export")
			raw := string(exp.raw)
			for _, leak := range []string{id, ownerID, "owner_id", "created_at", `"id"`} {
				if strings.Contains(raw, leak) {
					t.Errorf("export contains %q: %s", leak, raw)
				}
			}
			imp := e.want(e.do("POST", "/api/v1/dashboards/import", stranger, exp.body), 201, "import")
			if imp.str("permission") != "owner" || len(imp.body["widgets"].([]any)) != len(exp.body["widgets"].([]any)) {
				t.Errorf("import: %s", imp.raw)
			}
			many := make([]any, 201)
			for i := range many {
				many[i] = map[string]any{"type": "text", "config": map[string]any{"content": "x"}, "position": pos(0, i, 1, 1)}
			}
			e.want(e.do("POST", "/api/v1/dashboards/import", owner, map[string]any{"version": 1, "name": "big", "widgets": many}), 400, "too many widgets")
			e.want(e.do("POST", "/api/v1/dashboards/import", owner, map[string]any{"version": 2, "name": "future", "widgets": []any{}}), 400, "unknown version")
			e.want(e.do("POST", "/api/v1/dashboards/import", owner, map[string]any{"version": 1, "name": "evil", "widgets": []any{
				map[string]any{"type": "text", "config": map[string]any{"content": "x", "onload": "steal()"}, "position": pos(0, 0, 1, 1)},
			}}), 400, "import with a bad widget")
			deep := any("x")
			for i := 0; i < 200; i++ {
				deep = []any{deep}
			}
			e.want(e.do("POST", "/api/v1/dashboards/import", owner, map[string]any{"version": 1, "name": "deep", "widgets": []any{
				map[string]any{"type": "table", "config": map[string]any{"columns": deep}, "position": pos(0, 0, 1, 1)},
			}}), 400, "deeply nested config")
			e.want(e.do("POST", "/api/v1/dashboards/"+id+"/duplicate", stranger, nil), 404, "duplicate unseen")
		})

		t.Run("delete cascades", func(t *testing.T) {
			e.want(e.do("DELETE", "/api/v1/dashboards/"+id, stranger, nil), 404, "stranger deletes")
			e.want(e.do("DELETE", "/api/v1/dashboards/"+id, owner, nil), 204, "owner deletes")
			e.want(e.do("GET", "/api/v1/dashboards/"+id, owner, nil), 404, "deleted")
			e.want(e.do("GET", "/api/v1/dashboards/"+id+"/widgets", owner, nil), 404, "widgets of deleted")
		})

		t.Run("read-only token", func(t *testing.T) {
			ro := e.want(e.do("POST", "/api/v1/tokens", owner, map[string]any{"name": "ro", "scopes": []string{"read"}}), 201, "token").str("token")
			e.want(e.do("GET", "/api/v1/dashboards", ro, nil), 200, "read-only lists")
			e.want(e.do("POST", "/api/v1/dashboards", ro, map[string]any{"name": "x"}), 403, "read-only creates")
		})
	})
}
