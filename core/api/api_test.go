package api_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/api"
	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/store/storetest"
)

// expectedRoutes is every route of the API with who may call it. A route
// added to the router without an entry here fails TestRouteTable, so no route
// reaches production without its access rule being reviewed.
var expectedRoutes = map[string]api.Access{
	"GET /healthz":                              api.Public,
	"GET /readyz":                               api.Public,
	"POST /api/v1/auth/login":                   api.Public,
	"POST /api/v1/auth/refresh":                 api.Public,
	"POST /api/v1/auth/logout":                  api.Optional,
	"GET /api/v1/me":                            api.Authenticated,
	"PATCH /api/v1/me":                          api.Authenticated,
	"POST /api/v1/me/password":                  api.Authenticated,
	"GET /api/v1/me/profile":                    api.Authenticated,
	"PUT /api/v1/me/profile":                    api.Authenticated,
	"POST /api/v1/tokens":                       api.Authenticated,
	"GET /api/v1/tokens":                        api.Authenticated,
	"DELETE /api/v1/tokens/{id}":                api.Authenticated,
	"POST /api/v1/users":                        api.Admin,
	"GET /api/v1/users":                         api.Admin,
	"GET /api/v1/users/{id}":                    api.Admin,
	"PATCH /api/v1/users/{id}":                  api.Admin,
	"DELETE /api/v1/users/{id}":                 api.Admin,
	"GET /api/v1/users/{id}/roles":              api.Admin,
	"POST /api/v1/users/{id}/roles":             api.Admin,
	"DELETE /api/v1/users/{id}/roles/{role_id}": api.Admin,
	"POST /api/v1/departments":                  api.Admin,
	"GET /api/v1/departments":                   api.Admin,
	"GET /api/v1/departments/{id}":              api.Admin,
	"PATCH /api/v1/departments/{id}":            api.Admin,
	"DELETE /api/v1/departments/{id}":           api.Admin,
	"POST /api/v1/roles":                        api.Admin,
	"GET /api/v1/roles":                         api.Admin,
	"GET /api/v1/roles/{id}":                    api.Admin,
	"PATCH /api/v1/roles/{id}":                  api.Admin,
	"DELETE /api/v1/roles/{id}":                 api.Admin,
	// Dashboards: any signed-in caller reaches them; the service decides per
	// object (see TestAuthorizationMatrix).
	"POST /api/v1/dashboards":                            api.Authenticated,
	"GET /api/v1/dashboards":                             api.Authenticated,
	"POST /api/v1/dashboards/import":                     api.Authenticated,
	"GET /api/v1/dashboards/{id}":                        api.Authenticated,
	"PATCH /api/v1/dashboards/{id}":                      api.Authenticated,
	"DELETE /api/v1/dashboards/{id}":                     api.Authenticated,
	"POST /api/v1/dashboards/{id}/duplicate":             api.Authenticated,
	"GET /api/v1/dashboards/{id}/export":                 api.Authenticated,
	"POST /api/v1/dashboards/{id}/widgets":               api.Authenticated,
	"GET /api/v1/dashboards/{id}/widgets":                api.Authenticated,
	"GET /api/v1/dashboards/{id}/widgets/{widget_id}":    api.Authenticated,
	"PATCH /api/v1/dashboards/{id}/widgets/{widget_id}":  api.Authenticated,
	"DELETE /api/v1/dashboards/{id}/widgets/{widget_id}": api.Authenticated,
	"PUT /api/v1/dashboards/{id}/layout":                 api.Authenticated,
	"GET /api/v1/dashboards/{id}/shares":                 api.Authenticated,
	"PUT /api/v1/dashboards/{id}/shares/{user_id}":       api.Authenticated,
	"DELETE /api/v1/dashboards/{id}/shares/{user_id}":    api.Authenticated,
	// Connectors, data sources and queries: the services decide by role
	// (datasources:manage, queries:run, queries:create) and ownership.
	"GET /api/v1/connectors":                               api.Authenticated,
	"POST /api/v1/connectors/{name}/reload":                api.Admin,
	"POST /api/v1/data-sources":                            api.Authenticated,
	"GET /api/v1/data-sources":                             api.Authenticated,
	"GET /api/v1/data-sources/{id}":                        api.Authenticated,
	"PATCH /api/v1/data-sources/{id}":                      api.Authenticated,
	"DELETE /api/v1/data-sources/{id}":                     api.Authenticated,
	"POST /api/v1/data-sources/{id}/health":                api.Authenticated,
	"GET /api/v1/data-sources/{id}/schema":                 api.Authenticated,
	"POST /api/v1/data-sources/{id}/query":                 api.Authenticated,
	"POST /api/v1/queries":                                 api.Authenticated,
	"GET /api/v1/queries":                                  api.Authenticated,
	"GET /api/v1/queries/{id}":                             api.Authenticated,
	"PATCH /api/v1/queries/{id}":                           api.Authenticated,
	"DELETE /api/v1/queries/{id}":                          api.Authenticated,
	"POST /api/v1/queries/{id}/run":                        api.Authenticated,
	"POST /api/v1/data-sources/{id}/cache/invalidate":      api.Authenticated,
	"POST /api/v1/data-models":                             api.Authenticated,
	"GET /api/v1/data-models":                              api.Authenticated,
	"GET /api/v1/data-models/{id}":                         api.Authenticated,
	"PATCH /api/v1/data-models/{id}":                       api.Authenticated,
	"DELETE /api/v1/data-models/{id}":                      api.Authenticated,
	"GET /api/v1/data-models/{id}/check":                   api.Authenticated,
	"POST /api/v1/data-models/{id}/query":                  api.Authenticated,
	"GET /api/v1/dashboards/{id}/data":                     api.Authenticated,
	"GET /api/v1/dashboards/{id}/widgets/{widget_id}/data": api.Authenticated,
}

func concrete(path string) string {
	for _, param := range []string{"{id}", "{role_id}", "{widget_id}", "{user_id}", "{name}"} {
		path = strings.ReplaceAll(path, param, uuid.NewString())
	}
	return path
}

func hasBody(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
}

func TestRouteTable(t *testing.T) {
	srv := api.New(api.Deps{})
	seen := map[string]bool{}
	for _, r := range srv.Routes() {
		key := r.Method + " " + r.Path
		seen[key] = true
		want, ok := expectedRoutes[key]
		if !ok {
			t.Errorf("route %s is not in expectedRoutes: add it with its access level", key)
			continue
		}
		if r.Access != want {
			t.Errorf("route %s has access %s, expected %s", key, r.Access, want)
		}
	}
	for key := range expectedRoutes {
		if !seen[key] {
			t.Errorf("expectedRoutes lists %s, which the router does not serve", key)
		}
	}
}

// TestEveryRoute checks, for every route of the router, anonymous and
// non-admin access and malformed bodies.
func TestEveryRoute(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg)
		_, userTok := e.createUser("plain@example.com", "user")
		for _, r := range e.srv.Routes() {
			path := concrete(r.Path)
			name := r.Method + " " + r.Path
			var body any
			if hasBody(r.Method) {
				body = map[string]any{}
			}
			anon := e.do(r.Method, path, "", body)
			switch r.Access {
			case api.Authenticated, api.Admin:
				if anon.status != 401 {
					t.Errorf("%s anonymous: %d, want 401", name, anon.status)
				}
				if bad := e.do(r.Method, path, "not-a-token", body); bad.status != 401 {
					t.Errorf("%s garbage token: %d, want 401", name, bad.status)
				}
			default:
				if anon.status == 401 && r.Access == api.Public {
					t.Errorf("%s is public but answered 401", name)
				}
			}
			if r.Access == api.Admin {
				if got := e.do(r.Method, path, userTok, body); got.status != 403 {
					t.Errorf("%s as non-admin: %d, want 403", name, got.status)
				}
			}
			if hasBody(r.Method) {
				for _, raw := range []string{`{bad json`, `{"zz_unknown_field": 1}`, `[]`} {
					got := e.do(r.Method, path, e.admin, raw)
					if got.status != 400 && !(got.status == 404 && strings.Contains(r.Path, "{")) {
						t.Errorf("%s with body %s: %d, want 400: %s", name, raw, got.status, got.raw)
					}
				}
			}
		}
	})
}

func TestAuthentication(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg)
		_, _ = e.createUser("carol@example.com", "user")

		t.Run("same answer for wrong password and unknown email", func(t *testing.T) {
			wrong := e.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "carol@example.com", "password": "not the password"})
			unknown := e.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "nobody@example.com", "password": "not the password"})
			if wrong.status != 401 || unknown.status != 401 || wrong.str("error", "message") != unknown.str("error", "message") {
				t.Fatalf("wrong password %d %q vs unknown email %d %q", wrong.status, wrong.str("error", "message"), unknown.status, unknown.str("error", "message"))
			}
		})

		t.Run("email is case-insensitive", func(t *testing.T) {
			e.login("CAROL@Example.com", "user password 123")
		})

		t.Run("refresh rotates and reuse revokes the session", func(t *testing.T) {
			r := e.want(e.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "carol@example.com", "password": "user password 123"}), 200, "login")
			if r.str("token_type") != "Bearer" || r.body["expires_in"].(float64) <= 0 {
				t.Fatalf("token response: %s", r.raw)
			}
			first := r.str("refresh_token")
			r2 := e.want(e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": first}), 200, "refresh")
			second, access2 := r2.str("refresh_token"), r2.str("access_token")
			if second == first {
				t.Fatal("refresh token did not rotate")
			}
			e.want(e.do("GET", "/api/v1/me", access2, nil), 200, "me with refreshed token")
			// The first token again: theft suspected, the session dies.
			e.want(e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": first}), 401, "reuse")
			e.want(e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": second}), 401, "after reuse")
			e.want(e.do("GET", "/api/v1/me", access2, nil), 401, "access token of revoked session")
		})

		t.Run("logout revokes the access token", func(t *testing.T) {
			tok := e.login("carol@example.com", "user password 123")
			e.want(e.do("GET", "/api/v1/me", tok, nil), 200, "before logout")
			e.want(e.do("POST", "/api/v1/auth/logout", tok, nil), 204, "logout")
			e.want(e.do("GET", "/api/v1/me", tok, nil), 401, "after logout")
		})

		t.Run("logout by refresh token", func(t *testing.T) {
			r := e.want(e.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "carol@example.com", "password": "user password 123"}), 200, "login")
			e.want(e.do("POST", "/api/v1/auth/logout", "", map[string]string{"refresh_token": r.str("refresh_token")}), 204, "logout")
			e.want(e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": r.str("refresh_token")}), 401, "refresh after logout")
			e.want(e.do("POST", "/api/v1/auth/logout", "", map[string]string{"refresh_token": "dpr_garbage"}), 401, "bad refresh token")
		})

		t.Run("expired and forged access tokens", func(t *testing.T) {
			past, err := identity.New(e.store.Client, identity.Options{SigningKey: signingKey, Argon2: fastArgon,
				Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
			if err != nil {
				t.Fatal(err)
			}
			old, err := past.Login(context.Background(), identity.LoginInput{Email: "carol@example.com", Password: "user password 123", ClientIP: "test"})
			if err != nil {
				t.Fatal(err)
			}
			e.want(e.do("GET", "/api/v1/me", old.AccessToken, nil), 401, "expired")
			other, err := identity.New(e.store.Client, identity.Options{SigningKey: []byte("another key that is 32 bytes long!!"), Argon2: fastArgon})
			if err != nil {
				t.Fatal(err)
			}
			forged, err := other.Login(context.Background(), identity.LoginInput{Email: "carol@example.com", Password: "user password 123", ClientIP: "test"})
			if err != nil {
				t.Fatal(err)
			}
			e.want(e.do("GET", "/api/v1/me", forged.AccessToken, nil), 401, "signed with another key")
			r := e.want(e.do("GET", "/api/v1/me", "", nil), 401, "no token")
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: %v", r.header)
			}
		})

		t.Run("login is rate limited per account", func(t *testing.T) {
			var last resp
			for i := 0; i < 12; i++ {
				last = e.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "victim@example.com", "password": fmt.Sprintf("guess %d guess guess", i)})
				if last.status == 429 {
					break
				}
			}
			if last.status != 429 || last.header.Get("Retry-After") == "" {
				t.Fatalf("no 429 with Retry-After after repeated failures: %d %v", last.status, last.header)
			}
			// Another account is not affected.
			e.login("carol@example.com", "user password 123")
		})
	})
}

func TestAPITokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg)
		_, dave := e.createUser("dave@example.com", "user")
		_, erin := e.createUser("erin@example.com", "user")

		r := e.want(e.do("POST", "/api/v1/tokens", dave, map[string]any{"name": "ci"}), 201, "create token")
		tok := r.str("token")
		if !strings.HasPrefix(tok, identity.APITokenPrefix) || !strings.HasPrefix(tok, r.str("prefix")) {
			t.Fatalf("token %q prefix %q", tok, r.str("prefix"))
		}
		tokID := r.str("id")
		me := e.want(e.do("GET", "/api/v1/me", tok, nil), 200, "me by API token")
		if me.str("email") != "dave@example.com" {
			t.Fatalf("token acts as %s", me.str("email"))
		}
		list := e.want(e.do("GET", "/api/v1/tokens", dave, nil), 200, "list tokens")
		if strings.Contains(string(list.raw), tok) || strings.Contains(string(list.raw), "hash") {
			t.Fatalf("token list reveals the secret: %s", list.raw)
		}
		e.want(e.do("POST", "/api/v1/tokens", tok, map[string]any{"name": "minted by token"}), 403, "token minting a token")
		e.want(e.do("DELETE", "/api/v1/tokens/"+tokID, erin, nil), 404, "another user's token")

		ro := e.want(e.do("POST", "/api/v1/tokens", dave, map[string]any{"name": "read only", "scopes": []string{"read"}}), 201, "read-only token").str("token")
		e.want(e.do("GET", "/api/v1/me", ro, nil), 200, "read with read-only token")
		e.want(e.do("PATCH", "/api/v1/me", ro, map[string]any{"name": "x"}), 403, "write with read-only token")

		e.want(e.do("POST", "/api/v1/tokens", dave, map[string]any{"name": "bad", "scopes": []string{"root"}}), 400, "unknown scope")
		e.want(e.do("POST", "/api/v1/tokens", dave, map[string]any{"name": "old", "expires_at": time.Now().Add(-time.Hour)}), 400, "expiry in the past")

		e.want(e.do("DELETE", "/api/v1/tokens/"+tokID, dave, nil), 204, "revoke")
		e.want(e.do("GET", "/api/v1/me", tok, nil), 401, "revoked token")
		e.want(e.do("DELETE", "/api/v1/tokens/"+tokID, dave, nil), 404, "revoke twice")
	})
}

func TestUsers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg)
		dept := e.want(e.do("POST", "/api/v1/departments", e.admin, map[string]any{"name": "Finance"}), 201, "department").str("id")

		cases := []struct {
			name   string
			body   map[string]any
			status int
			field  string
		}{
			{"valid", map[string]any{"email": "Frank@Example.com", "password": "secret phrase 11", "name": "Frank", "department_id": dept}, 201, ""},
			{"duplicate email, other case", map[string]any{"email": "frank@example.COM", "password": "secret phrase 11"}, 409, ""},
			{"bad email", map[string]any{"email": "not-an-email", "password": "secret phrase 11"}, 400, "email"},
			{"short password", map[string]any{"email": "g@example.com", "password": "short"}, 400, "password"},
			{"bad role", map[string]any{"email": "g@example.com", "password": "secret phrase 11", "role": "root"}, 400, "role"},
			{"unknown department", map[string]any{"email": "g@example.com", "password": "secret phrase 11", "department_id": uuid.NewString()}, 400, "department_id"},
			{"id in body", map[string]any{"id": uuid.NewString(), "email": "g@example.com", "password": "secret phrase 11"}, 400, ""},
			{"created_at in body", map[string]any{"created_at": "2020-01-01T00:00:00Z", "email": "g@example.com", "password": "secret phrase 11"}, 400, ""},
			{"missing password", map[string]any{"email": "g@example.com"}, 400, ""},
		}
		var frank string
		for _, c := range cases {
			r := e.do("POST", "/api/v1/users", e.admin, c.body)
			if r.status != c.status {
				t.Errorf("%s: %d, want %d: %s", c.name, r.status, c.status, r.raw)
				continue
			}
			if c.field != "" && !strings.Contains(string(r.raw), `"field":"`+c.field+`"`) {
				t.Errorf("%s: details do not name field %s: %s", c.name, c.field, r.raw)
			}
			if r.status == 201 {
				frank = r.str("id")
				if r.str("email") != "frank@example.com" || r.str("department_id") != dept || r.str("role") != "user" {
					t.Errorf("created user: %s", r.raw)
				}
			}
			if strings.Contains(string(r.raw), "password") && r.status == 201 {
				t.Errorf("response mentions the password: %s", r.raw)
			}
		}
		for i := 0; i < 4; i++ {
			e.want(e.do("POST", "/api/v1/users", e.admin, map[string]any{"email": fmt.Sprintf("u%d@example.com", i), "password": "some password 12", "name": fmt.Sprintf("Zed %d", i)}), 201, "bulk")
		}

		list := e.want(e.do("GET", "/api/v1/users?per_page=2&page=2&sort=email", e.admin, nil), 200, "list")
		if list.body["total"].(float64) != 6 || list.body["per_page"].(float64) != 2 || list.body["page"].(float64) != 2 || len(list.body["items"].([]any)) != 2 {
			t.Errorf("page 2 of 3: %s", list.raw)
		}
		first := list.body["items"].([]any)[0].(map[string]any)["email"]
		if first != "u0@example.com" {
			t.Errorf("sorted by email, page 2 starts with %v", first)
		}
		q := e.want(e.do("GET", "/api/v1/users?q=zed&sort=-name", e.admin, nil), 200, "search")
		if q.body["total"].(float64) != 4 || q.body["items"].([]any)[0].(map[string]any)["name"] != "Zed 3" {
			t.Errorf("search by name, descending: %s", q.raw)
		}
		byDept := e.want(e.do("GET", "/api/v1/users?department_id="+dept, e.admin, nil), 200, "filter")
		if byDept.body["total"].(float64) != 1 {
			t.Errorf("filter by department: %s", byDept.raw)
		}
		for _, bad := range []string{"per_page=501", "per_page=0", "page=0", "sort=password", "page=abc", "role=root"} {
			e.want(e.do("GET", "/api/v1/users?"+bad, e.admin, nil), 400, "list with "+bad)
		}

		e.want(e.do("GET", "/api/v1/users/"+frank, e.admin, nil), 200, "get")
		e.want(e.do("GET", "/api/v1/users/"+uuid.NewString(), e.admin, nil), 404, "get unknown")
		e.want(e.do("GET", "/api/v1/users/not-a-uuid", e.admin, nil), 404, "get malformed id")

		up := e.want(e.do("PATCH", "/api/v1/users/"+frank, e.admin, map[string]any{"name": "Franklin", "role": "admin", "department_id": ""}), 200, "update")
		if up.str("name") != "Franklin" || up.str("role") != "admin" || up.body["department_id"] != nil {
			t.Errorf("update: %s", up.raw)
		}
		e.want(e.do("PATCH", "/api/v1/users/"+frank, e.admin, map[string]any{"email": adminEmail}), 409, "email taken")

		// Password reset by an admin ends the user's sessions.
		frankTok := e.login("frank@example.com", "secret phrase 11")
		e.want(e.do("PATCH", "/api/v1/users/"+frank, e.admin, map[string]any{"password": "a new password 99"}), 200, "reset password")
		e.want(e.do("GET", "/api/v1/me", frankTok, nil), 401, "session after reset")
		frankTok = e.login("frank@example.com", "a new password 99")

		// Last-admin and self protections.
		adminID := e.want(e.do("GET", "/api/v1/me", e.admin, nil), 200, "me").str("id")
		e.want(e.do("DELETE", "/api/v1/users/"+adminID, e.admin, nil), 409, "delete self")
		e.want(e.do("PATCH", "/api/v1/users/"+frank, e.admin, map[string]any{"role": "user"}), 200, "demote frank")
		e.want(e.do("PATCH", "/api/v1/users/"+adminID, e.admin, map[string]any{"role": "user"}), 409, "demote last admin")

		e.want(e.do("DELETE", "/api/v1/users/"+frank, e.admin, nil), 204, "delete")
		e.want(e.do("GET", "/api/v1/users/"+frank, e.admin, nil), 404, "deleted")
		e.want(e.do("GET", "/api/v1/me", frankTok, nil), 401, "deleted user's token")
		e.want(e.do("DELETE", "/api/v1/users/"+frank, e.admin, nil), 404, "delete twice")
	})
}

func TestDepartmentsAndRoles(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg)
		d := e.want(e.do("POST", "/api/v1/departments", e.admin, map[string]any{"name": "Sales", "description": "EMEA"}), 201, "create").str("id")
		e.want(e.do("POST", "/api/v1/departments", e.admin, map[string]any{"name": "Sales"}), 409, "duplicate")
		e.want(e.do("POST", "/api/v1/departments", e.admin, map[string]any{"name": ""}), 400, "empty name")
		e.want(e.do("POST", "/api/v1/departments", e.admin, map[string]any{"name": strings.Repeat("x", 101)}), 400, "long name")
		e.want(e.do("POST", "/api/v1/departments", e.admin, map[string]any{"name": "Ops"}), 201, "second")
		e.want(e.do("PATCH", "/api/v1/departments/"+d, e.admin, map[string]any{"name": "Ops"}), 409, "rename onto another")
		r := e.want(e.do("PATCH", "/api/v1/departments/"+d, e.admin, map[string]any{"name": "Sales EMEA"}), 200, "rename")
		if r.str("name") != "Sales EMEA" || r.str("description") != "EMEA" {
			t.Errorf("rename: %s", r.raw)
		}
		l := e.want(e.do("GET", "/api/v1/departments?q=emea", e.admin, nil), 200, "search")
		if l.body["total"].(float64) != 1 {
			t.Errorf("search: %s", l.raw)
		}
		e.want(e.do("GET", "/api/v1/departments/"+d, e.admin, nil), 200, "get")

		uid, _ := e.createUser("gina@example.com", "user")
		e.want(e.do("PATCH", "/api/v1/users/"+uid, e.admin, map[string]any{"department_id": d}), 200, "join department")
		e.want(e.do("DELETE", "/api/v1/departments/"+d, e.admin, nil), 204, "delete department")
		u := e.want(e.do("GET", "/api/v1/users/"+uid, e.admin, nil), 200, "user after department delete")
		if u.body["department_id"] != nil {
			t.Errorf("department_id not cleared: %s", u.raw)
		}
		e.want(e.do("GET", "/api/v1/departments/"+d, e.admin, nil), 404, "deleted department")

		role := e.want(e.do("POST", "/api/v1/roles", e.admin, map[string]any{"name": "analyst", "permissions": []string{"queries:run", "dashboards:read", "queries:run"}}), 201, "role")
		if got := role.body["permissions"].([]any); len(got) != 2 {
			t.Errorf("permissions not de-duplicated: %s", role.raw)
		}
		rid := role.str("id")
		e.want(e.do("POST", "/api/v1/roles", e.admin, map[string]any{"name": "analyst"}), 409, "duplicate role")
		e.want(e.do("POST", "/api/v1/roles", e.admin, map[string]any{"name": "hacker", "permissions": []string{"root:all"}}), 400, "unknown permission")
		e.want(e.do("POST", "/api/v1/roles", e.admin, map[string]any{"name": "Bad Name!"}), 400, "bad role name")
		e.want(e.do("PATCH", "/api/v1/roles/"+rid, e.admin, map[string]any{"permissions": []string{"alerts:manage"}}), 200, "update role")
		e.want(e.do("GET", "/api/v1/roles?sort=-name", e.admin, nil), 200, "list roles")

		a := e.want(e.do("POST", "/api/v1/users/"+uid+"/roles", e.admin, map[string]any{"role_id": rid}), 201, "assign")
		adminID := e.want(e.do("GET", "/api/v1/me", e.admin, nil), 200, "me").str("id")
		if a.str("assigned_by") != adminID {
			t.Errorf("assigned_by not recorded: %s", a.raw)
		}
		e.want(e.do("POST", "/api/v1/users/"+uid+"/roles", e.admin, map[string]any{"role_id": rid}), 409, "assign twice")
		e.want(e.do("POST", "/api/v1/users/"+uid+"/roles", e.admin, map[string]any{"role_id": uuid.NewString()}), 404, "unknown role")
		e.want(e.do("POST", "/api/v1/users/"+uuid.NewString()+"/roles", e.admin, map[string]any{"role_id": rid}), 404, "unknown user")
		rs := e.want(e.do("GET", "/api/v1/users/"+uid+"/roles", e.admin, nil), 200, "user roles")
		if items := rs.body["items"].([]any); len(items) != 1 {
			t.Errorf("user roles: %s", rs.raw)
		}
		e.want(e.do("DELETE", "/api/v1/users/"+uid+"/roles/"+rid, e.admin, nil), 204, "unassign")
		e.want(e.do("DELETE", "/api/v1/users/"+uid+"/roles/"+rid, e.admin, nil), 404, "unassign twice")
		e.want(e.do("DELETE", "/api/v1/roles/"+rid, e.admin, nil), 204, "delete role")
		e.want(e.do("GET", "/api/v1/roles/"+rid, e.admin, nil), 404, "deleted role")
	})
}

func TestMe(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg)
		_, tok := e.createUser("hank@example.com", "user")
		r := e.want(e.do("PATCH", "/api/v1/me", tok, map[string]any{"name": "  Hank  "}), 200, "rename")
		if r.str("name") != "Hank" {
			t.Errorf("name not trimmed: %s", r.raw)
		}
		for _, body := range []map[string]any{{"role": "admin"}, {"email": "x@example.com"}, {"email_verified_at": "2020-01-01T00:00:00Z"}, {"id": uuid.NewString()}} {
			e.want(e.do("PATCH", "/api/v1/me", tok, body), 400, fmt.Sprintf("PATCH /me %v", body))
		}
		if me := e.want(e.do("GET", "/api/v1/me", tok, nil), 200, "me"); me.str("role") != "user" || me.str("email") != "hank@example.com" || me.body["email_verified_at"] != nil {
			t.Errorf("mass assignment changed the account: %s", me.raw)
		}

		p := e.want(e.do("GET", "/api/v1/me/profile", tok, nil), 200, "empty profile")
		if p.body["bio"] != nil {
			t.Errorf("new profile not empty: %s", p.raw)
		}
		p = e.want(e.do("PUT", "/api/v1/me/profile", tok, map[string]any{"avatar": "https://img.example.com/h.png", "bio": "hi", "phone": "+1 555 0100"}), 200, "put profile")
		if p.str("bio") != "hi" || p.str("phone") != "+1 555 0100" {
			t.Errorf("profile: %s", p.raw)
		}
		p = e.want(e.do("PUT", "/api/v1/me/profile", tok, map[string]any{"bio": "replaced"}), 200, "replace profile")
		if p.body["avatar"] != nil || p.str("bio") != "replaced" {
			t.Errorf("PUT must replace: %s", p.raw)
		}
		for _, bad := range []map[string]any{{"avatar": "javascript:alert(1)"}, {"phone": "call me"}, {"user_id": uuid.NewString()}} {
			e.want(e.do("PUT", "/api/v1/me/profile", tok, bad), 400, fmt.Sprintf("profile %v", bad))
		}

		other := e.login("hank@example.com", "user password 123")
		e.want(e.do("POST", "/api/v1/me/password", tok, map[string]any{"current_password": "wrong password 1", "new_password": "brand new password"}), 400, "wrong current")
		e.want(e.do("POST", "/api/v1/me/password", tok, map[string]any{"current_password": "user password 123", "new_password": "short"}), 400, "weak new")
		e.want(e.do("POST", "/api/v1/me/password", tok, map[string]any{"current_password": "user password 123", "new_password": "brand new password"}), 204, "change")
		e.want(e.do("GET", "/api/v1/me", tok, nil), 200, "own session survives")
		e.want(e.do("GET", "/api/v1/me", other, nil), 401, "other session ends")
		e.login("hank@example.com", "brand new password")
	})
}

func TestHTTPConventions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg)
		e.want(e.do("GET", "/api/v1/no-such-thing", e.admin, nil), 404, "unknown route")
		e.want(e.do("PUT", "/api/v1/me", e.admin, "{}"), 405, "wrong method")
		big := `{"name":"` + strings.Repeat("a", bodyLimit+1) + `"}`
		e.want(e.do("POST", "/api/v1/departments", e.admin, big), 413, "oversized body")

		h := e.want(e.do("GET", "/healthz", "", nil), 200, "healthz")
		if h.header.Get("X-Request-Id") == "" || h.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("missing request id or security headers: %v", h.header)
		}
		ready := e.want(e.do("GET", "/readyz", "", nil), 200, "readyz")
		if ready.str("checks", "migrations") != "current" {
			t.Errorf("readyz: %s", ready.raw)
		}

		doc := e.want(e.do("GET", "/api/v1/openapi.json", "", nil), 200, "openapi")
		if doc.str("openapi") != "3.1.0" {
			t.Errorf("openapi version: %v", doc.body["openapi"])
		}
		paths := doc.body["paths"].(map[string]any)
		for _, r := range e.srv.Routes() {
			ops, ok := paths[r.Path].(map[string]any)
			if !ok || ops[strings.ToLower(r.Method)] == nil {
				t.Errorf("OpenAPI document lacks %s %s", r.Method, r.Path)
			}
		}

		e.want(e.do("GET", "/metrics", "", nil), 401, "metrics anonymous")
		_, userTok := e.createUser("ivy@example.com", "user")
		e.want(e.do("GET", "/metrics", userTok, nil), 403, "metrics non-admin")
		e.want(e.do("GET", "/api/v1/me", e.admin, nil), 200, "me")
		m := e.want(e.do("GET", "/metrics", e.admin, nil), 200, "metrics admin")
		if !strings.Contains(string(m.raw), `datapulse_http_requests_total{method="GET",route="/api/v1/me",status="200"}`) {
			t.Errorf("metrics lack the request counter by route")
		}
		if !strings.Contains(string(m.raw), "datapulse_result_cache_max_bytes 6.7108864e+07") {
			t.Errorf("metrics lack the result cache's bound")
		}

		// A caller's request id is echoed when plain, replaced when not.
		req, _ := http.NewRequest("GET", e.base+"/healthz", nil)
		req.Header.Set("X-Request-Id", "abc-123")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.Header.Get("X-Request-Id") != "abc-123" {
			t.Errorf("request id not echoed: %q", res.Header.Get("X-Request-Id"))
		}
		req.Header.Set("X-Request-Id", "evil\"id with spaces")
		res, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if slices.Contains([]string{"", "evil\"id with spaces"}, res.Header.Get("X-Request-Id")) {
			t.Errorf("unsafe request id kept: %q", res.Header.Get("X-Request-Id"))
		}
	})
}
