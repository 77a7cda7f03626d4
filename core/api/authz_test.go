package api_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/alerting"
	"github.com/datapulse/datapulse/core/api"
	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/ent/dashboardshare"
	"github.com/datapulse/datapulse/ent/schema/types"
	"github.com/datapulse/datapulse/policy"
)

var updateAuthz = flag.Bool("update-authz", false, "rewrite testdata/authz_matrix.txt from the observed statuses")

const matrixFile = "testdata/authz_matrix.txt"

// The actors of the authorization matrix. Each signed-in actor also appears
// as "<actor>+token", calling with a personal API token instead of a session.
var matrixActors = []string{"anonymous", "viewer", "viewer_shared", "editor_shared", "owner", "other_editor", "admin"}

// matrixStates are the object states every route is tried in: the objects
// named by the path exist (the dashboard shared as the actors say), or the
// ids are unknown.
var matrixStates = []string{"present", "missing"}

type actor struct {
	name  string
	id    uuid.UUID
	token string
}

// fixture is one fresh set of objects a single request may use up.
type fixture struct {
	dashboard, widget, subject, role, department, token uuid.UUID
	dataSource, query, model                            uuid.UUID
	subjectEmail, subjectRefresh                        string
	// An alert of the owner on the model, and a notification of it whose
	// recipient is editor_shared; link acknowledges it.
	alert, notification uuid.UUID
	link                string
}

const subjectPassword = "subject password 1"

// TestAuthorizationMatrix runs every route of the router for every actor in
// every object state and compares the statuses with testdata/authz_matrix.txt.
// A route, actor or state missing from the file fails the test: new routes
// cannot slip in unchecked. After a deliberate change, review the diff of
// `go test ./core/api -run TestAuthorizationMatrix -update-authz`.
func TestAuthorizationMatrix(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		if testing.Short() {
			// CI's race pass: the matrix sends its ~1,400 requests one after
			// another (nothing concurrent to race) and logs a user in for
			// each (argon2, very slow under -race); the main pass ran it.
			t.Skip("the authorization matrix runs without -short")
		}
		// One connector ("fake") for the connector routes; the data sources
		// below use a type no connector serves.
		e := newEnv(t, tg, withFakeConnector(t))
		// Fixtures are written directly, as the system, bypassing the API.
		ctx := principal.System(context.Background())
		c := e.store.Client
		mkUser := func(email, role string) actor {
			id, tok := e.createUser(email, "user")
			if role != "" {
				r := c.Role.Query().Where().AllX(ctx)
				for _, rr := range r {
					if rr.Name == role {
						e.want(e.do("POST", "/api/v1/users/"+id+"/roles", e.admin, map[string]any{"role_id": rr.ID.String()}), 201, "role for "+email)
					}
				}
			}
			return actor{id: uuid.MustParse(id), token: tok}
		}
		actors := map[string]actor{
			"anonymous":     {},
			"viewer":        mkUser("viewer@example.com", policy.RoleViewer),
			"viewer_shared": mkUser("viewer-shared@example.com", policy.RoleViewer),
			"editor_shared": mkUser("editor-shared@example.com", ""),
			"owner":         mkUser("owner@example.com", ""),
			"other_editor":  mkUser("other-editor@example.com", ""),
		}
		adminID := e.want(e.do("GET", "/api/v1/me", e.admin, nil), 200, "me").str("id")
		actors["admin"] = actor{id: uuid.MustParse(adminID), token: e.admin}
		columns := []string{}
		for _, name := range matrixActors {
			a := actors[name]
			a.name = name
			actors[name] = a
			columns = append(columns, name)
			if name == "anonymous" {
				continue
			}
			tok := e.want(e.do("POST", "/api/v1/tokens", a.token, map[string]any{"name": "matrix"}), 201, "token for "+name).str("token")
			actors[name+"+token"] = actor{name: name + "+token", id: a.id, token: tok}
			columns = append(columns, name+"+token")
		}
		ro := e.want(e.do("POST", "/api/v1/tokens", actors["owner"].token, map[string]any{"name": "ro", "scopes": []string{"read"}}), 201, "read-only token").str("token")
		actors["owner+readonly"] = actor{name: "owner+readonly", id: actors["owner"].id, token: ro}
		columns = append(columns, "owner+readonly")

		seq := 0
		newFixture := func(needToken bool) fixture {
			seq++
			owner := actors["owner"].id
			d := c.Dashboard.Create().SetOwnerID(owner).SetName(fmt.Sprintf("D%d", seq)).SaveX(ctx)
			w := c.Widget.Create().SetDashboardID(d.ID).SetType("text").SetConfig(map[string]any{"content": "x"}).
				SetPosition(types.Position{X: 0, Y: 0, W: 4, H: 2}).SaveX(ctx)
			e.facts.SetOwner(policy.KindDashboard, d.ID, owner)
			share := func(u uuid.UUID, level string) {
				c.DashboardShare.Create().SetDashboardID(d.ID).SetUserID(u).SetPermissionLevel(dashboardshare.PermissionLevel(level)).ExecX(ctx)
				e.facts.SetShare(d.ID, u, policy.ParseLevel(level))
			}
			share(actors["viewer_shared"].id, "view")
			share(actors["editor_shared"].id, "edit")
			hash, err := identity.HashPassword(subjectPassword, fastArgon)
			if err != nil {
				t.Fatal(err)
			}
			email := fmt.Sprintf("subject%d@example.com", seq)
			s := c.User.Create().SetEmail(email).SetPassword(hash).SaveX(ctx)
			e.facts.SetUser(s.ID, false, nil)
			share(s.ID, "view") // for DELETE …/shares/{user_id}
			r := c.Role.Create().SetName(fmt.Sprintf("matrix-role-%d", seq)).SetPermissions([]string{"dashboards:read"}).SaveX(ctx)
			e.facts.SetRole(r.Name, r.Permissions)
			c.UserRole.Create().SetUserID(s.ID).SetRoleID(r.ID).ExecX(ctx)
			e.facts.AddUserRole(s.ID, r.Name)
			dep := c.Department.Create().SetName(fmt.Sprintf("Dept %d", seq)).SaveX(ctx)
			// No connector is installed in this test: the source's calls fail
			// after authorization, which is what the matrix looks at.
			src := c.DataSource.Create().SetName(fmt.Sprintf("Source %d", seq)).SetType("none").SaveX(ctx)
			q := c.SavedQuery.Create().SetUserID(owner).SetName(fmt.Sprintf("Q%d", seq)).SetSQL("SELECT 1").SetDataSourceID(src.ID).SaveX(ctx)
			m := c.DataModel.Create().SetUserID(owner).SetName(fmt.Sprintf("M%d", seq)).SetConfig(matrixModelConfig(src.ID)).SaveX(ctx)
			e.facts.SetOwner(policy.KindQuery, q.ID, owner)
			e.facts.SetOwner(policy.KindModel, m.ID, owner)
			al := c.Alert.Create().SetUserID(owner).SetMetric(fmt.Sprintf("A%d", seq)).SetThresholdType("above").SetThresholdValue(1).
				SetSource(&types.AlertSource{ModelID: m.ID.String(), Measure: "orders"}).SaveX(ctx)
			e.facts.SetOwner(policy.KindAlert, al.ID, owner)
			inst := c.AlertInstance.Create().SetAlertID(al.ID).SetState("alerting").SetVersion(1).SaveX(ctx)
			ev := c.AlertEvent.Create().SetAlertID(al.ID).SetInstanceID(inst.ID).SetFromState("normal").SetToState("alerting").
				SetThresholdValue(1).SetSeq(1).SaveX(ctx)
			nt := c.AlertNotification.Create().SetAlertID(al.ID).SetUserID(actors["editor_shared"].id).SetInstanceID(inst.ID).SetEventID(ev.ID).SaveX(ctx)
			login, err := e.id.Login(ctx, identity.LoginInput{Email: email, Password: subjectPassword, ClientIP: "fixture"})
			if err != nil {
				t.Fatal(err)
			}
			f := fixture{dashboard: d.ID, widget: w.ID, subject: s.ID, role: r.ID, department: dep.ID, dataSource: src.ID, query: q.ID, model: m.ID,
				subjectEmail: email, subjectRefresh: login.RefreshToken,
				alert: al.ID, notification: nt.ID, link: e.alerts.LinkFor(nt.ID, actors["editor_shared"].id, alerting.ActionAcknowledge, time.Hour)}
			if needToken { // tokens per user are capped: make one only when the route needs it
				ownerCtx := principal.With(ctx, &principal.Principal{UserID: owner, Role: identity.RoleUser})
				tok, err := e.id.CreateAPIToken(ownerCtx, fmt.Sprintf("victim %d", seq), nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				f.token = tok.ID
			}
			return f
		}

		observed := map[string]map[string]int{}
		for _, r := range e.srv.Routes() {
			for _, state := range matrixStates {
				key := fmt.Sprintf("%s %s [%s]", r.Method, r.Path, state)
				observed[key] = map[string]int{}
				for _, col := range columns {
					f := newFixture(strings.Contains(r.Path, "/tokens/{id}"))
					path, body := matrixRequest(r, f, state, seq)
					res := e.do(r.Method, path, actors[col].token, body)
					observed[key][col] = res.status
				}
			}
		}
		// Finding A6: widget sources on a dashboard owned by an admin (who may
		// read every query). The caller adding or changing the widget must
		// read the source under their own rights; another user's private
		// query answers as an unknown id does.
		stranger := mkUser("stranger@example.com", "")
		admin := actors["admin"].id
		for _, r := range e.srv.Routes() {
			rk := r.Method + " " + r.Path
			if rk != "POST /api/v1/dashboards/{id}/widgets" && rk != "PATCH /api/v1/dashboards/{id}/widgets/{widget_id}" {
				continue
			}
			for _, src := range []string{"stranger's query", "unknown query", "own query"} {
				key := fmt.Sprintf("%s [admin-owned dashboard, %s]", rk, src)
				observed[key] = map[string]int{}
				for _, col := range columns {
					seq++
					d := c.Dashboard.Create().SetOwnerID(admin).SetName(fmt.Sprintf("A%d", seq)).SaveX(ctx)
					e.facts.SetOwner(policy.KindDashboard, d.ID, admin)
					for name, level := range map[string]string{"viewer_shared": "view", "editor_shared": "edit"} {
						c.DashboardShare.Create().SetDashboardID(d.ID).SetUserID(actors[name].id).SetPermissionLevel(dashboardshare.PermissionLevel(level)).ExecX(ctx)
						e.facts.SetShare(d.ID, actors[name].id, policy.ParseLevel(level))
					}
					w := c.Widget.Create().SetDashboardID(d.ID).SetType("text").SetConfig(map[string]any{"content": "x"}).
						SetPosition(types.Position{X: 0, Y: 0, W: 4, H: 2}).SaveX(ctx)
					q := uuid.New() // unknown
					owner := map[string]uuid.UUID{"stranger's query": stranger.id, "own query": actors[col].id}[src]
					if owner != uuid.Nil {
						sq := c.SavedQuery.Create().SetUserID(owner).SetName(fmt.Sprintf("Q%d", seq)).SetSQL("SELECT 1").SaveX(ctx)
						e.facts.SetOwner(policy.KindQuery, sq.ID, owner)
						q = sq.ID
					}
					cfg := map[string]any{"query_id": q.String()}
					path := "/api/v1/dashboards/" + d.ID.String() + "/widgets"
					body := map[string]any{"type": "table", "config": cfg, "position": map[string]int{"x": 0, "y": 1, "w": 6, "h": 3}}
					if r.Method == "PATCH" {
						path += "/" + w.ID.String()
						body = map[string]any{"type": "table", "config": cfg}
					}
					observed[key][col] = e.do(r.Method, path, actors[col].token, body).status
				}
			}
		}
		checkInvariants(t, observed, columns)
		compareMatrix(t, tg.Name, observed, columns)
	})
}

// matrixRequest fills a route's path parameters from the fixture (or with
// unknown ids) and gives it a body that succeeds for an authorized caller.
func matrixRequest(r api.Route, f fixture, state string, seq int) (string, any) {
	id := func(u uuid.UUID) string {
		if state == "missing" {
			return uuid.NewString()
		}
		return u.String()
	}
	path := r.Path
	switch {
	case strings.HasPrefix(path, "/api/v1/dashboards/{id}"):
		path = strings.Replace(path, "{id}", id(f.dashboard), 1)
	case strings.HasPrefix(path, "/api/v1/users/{id}"):
		path = strings.Replace(path, "{id}", id(f.subject), 1)
	case strings.HasPrefix(path, "/api/v1/roles/{id}"):
		path = strings.Replace(path, "{id}", id(f.role), 1)
	case strings.HasPrefix(path, "/api/v1/departments/{id}"):
		path = strings.Replace(path, "{id}", id(f.department), 1)
	case strings.HasPrefix(path, "/api/v1/tokens/{id}"):
		path = strings.Replace(path, "{id}", id(f.token), 1)
	case strings.HasPrefix(path, "/api/v1/data-sources/{id}"):
		path = strings.Replace(path, "{id}", id(f.dataSource), 1)
	case strings.HasPrefix(path, "/api/v1/queries/{id}"):
		path = strings.Replace(path, "{id}", id(f.query), 1)
	case strings.HasPrefix(path, "/api/v1/data-models/{id}"):
		path = strings.Replace(path, "{id}", id(f.model), 1)
	case strings.HasPrefix(path, "/api/v1/alerts/{id}"):
		path = strings.Replace(path, "{id}", id(f.alert), 1)
	case strings.HasPrefix(path, "/api/v1/alert-notifications/{id}"):
		path = strings.Replace(path, "{id}", id(f.notification), 1)
	case strings.HasPrefix(path, "/api/v1/alert-links/{token}"):
		tok := f.link
		if state == "missing" {
			tok = "AAAA.BBBB"
		}
		path = strings.Replace(path, "{token}", tok, 1)
	}
	if state == "missing" {
		path = strings.Replace(path, "{name}", "no-such-connector", 1)
	} else {
		path = strings.Replace(path, "{name}", "fake", 1)
	}
	path = strings.Replace(path, "{widget_id}", id(f.widget), 1)
	path = strings.Replace(path, "{user_id}", id(f.subject), 1)
	path = strings.Replace(path, "{role_id}", id(f.role), 1)

	p := map[string]int{"x": 0, "y": 1, "w": 6, "h": 3}
	n := strconv.Itoa(seq)
	bodies := map[string]any{
		"POST /api/v1/auth/login":                           map[string]any{"email": f.subjectEmail, "password": subjectPassword},
		"POST /api/v1/auth/refresh":                         map[string]any{"refresh_token": f.subjectRefresh},
		"POST /api/v1/auth/logout":                          map[string]any{"refresh_token": f.subjectRefresh},
		"PATCH /api/v1/me":                                  map[string]any{"name": "Renamed"},
		"POST /api/v1/me/password":                          map[string]any{"current_password": "not the password", "new_password": "whatever password 1"},
		"PUT /api/v1/me/profile":                            map[string]any{"bio": "hello"},
		"POST /api/v1/tokens":                               map[string]any{"name": "t" + n},
		"POST /api/v1/users":                                map[string]any{"email": "new" + n + "@example.com", "password": "new user password"},
		"PATCH /api/v1/users/{id}":                          map[string]any{"name": "Renamed"},
		"POST /api/v1/users/{id}/roles":                     map[string]any{"role_id": uuid.NewString()},
		"POST /api/v1/departments":                          map[string]any{"name": "New dept " + n},
		"PATCH /api/v1/departments/{id}":                    map[string]any{"description": "changed"},
		"POST /api/v1/roles":                                map[string]any{"name": "new-role-" + n},
		"PATCH /api/v1/roles/{id}":                          map[string]any{"description": "changed"},
		"POST /api/v1/dashboards":                           map[string]any{"name": "New"},
		"POST /api/v1/dashboards/import":                    map[string]any{"version": 1, "name": "Imported", "widgets": []any{}},
		"PATCH /api/v1/dashboards/{id}":                     map[string]any{"name": "Renamed"},
		"POST /api/v1/dashboards/{id}/duplicate":            map[string]any{"name": "Copy"},
		"POST /api/v1/dashboards/{id}/widgets":              map[string]any{"type": "text", "config": map[string]any{"content": "hi"}, "position": p},
		"PATCH /api/v1/dashboards/{id}/widgets/{widget_id}": map[string]any{"position": p},
		"PUT /api/v1/dashboards/{id}/layout":                map[string]any{"widgets": []any{map[string]any{"id": id(f.widget), "position": p}}},
		"PUT /api/v1/dashboards/{id}/shares/{user_id}":      map[string]any{"permission_level": "edit"},
		"POST /api/v1/data-sources":                         map[string]any{"name": "New source " + n, "type": "none", "config": map[string]any{}},
		"PATCH /api/v1/data-sources/{id}":                   map[string]any{"name": "Renamed " + n},
		"POST /api/v1/data-sources/{id}/query":              map[string]any{"sql": "SELECT 1"},
		"POST /api/v1/queries":                              map[string]any{"name": "New", "sql": "SELECT 1"},
		"PATCH /api/v1/queries/{id}":                        map[string]any{"name": "Renamed"},
		"POST /api/v1/queries/{id}/run":                     map[string]any{"parameters": map[string]any{}},
		"POST /api/v1/data-models":                          map[string]any{"name": "New model", "config": matrixModelConfig(f.dataSource)},
		"PATCH /api/v1/data-models/{id}":                    map[string]any{"name": "Renamed"},
		"POST /api/v1/data-models/{id}/query":               map[string]any{"measures": []string{"orders"}, "dimensions": []string{}},
		"POST /api/v1/alerts": map[string]any{"metric": "New", "threshold_type": "above", "threshold_value": 1,
			"source": map[string]any{"model_id": f.model.String(), "measure": "orders"}},
		"PATCH /api/v1/alerts/{id}":       map[string]any{"metric": "Renamed"},
		"POST /api/v1/alerts/{id}/snooze": map[string]any{"until": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)},
	}
	body := bodies[r.Method+" "+r.Path]
	if r.Method+" "+r.Path == "POST /api/v1/users/{id}/roles" {
		// Assign a role the subject does not hold yet.
		body = map[string]any{"role_id": builtinViewerID}
	}
	return path, body
}

var builtinViewerID = policy.BuiltinRoles[2].ID.String()

// checkInvariants holds whatever the table says.
func checkInvariants(t *testing.T, observed map[string]map[string]int, columns []string) {
	t.Helper()
	for key, row := range observed {
		// One-click alert links are signed: they carry their own authority.
		public := strings.Contains(key, "/healthz") || strings.Contains(key, "/readyz") || strings.Contains(key, "/auth/") ||
			strings.Contains(key, "/alert-links/")
		if !public && row["anonymous"] != 401 {
			t.Errorf("%s: anonymous got %d, want 401", key, row["anonymous"])
		}
		for _, col := range columns {
			base, ok := strings.CutSuffix(col, "+token")
			if !ok {
				continue
			}
			// An API token can neither mint tokens nor change its user's
			// password: both need a session from a password login.
			if strings.HasPrefix(key, "POST /api/v1/tokens ") || strings.HasPrefix(key, "POST /api/v1/me/password ") {
				if row[col] != 403 {
					t.Errorf("%s: %s got %d, want 403 for an API token", key, col, row[col])
				}
				continue
			}
			if strings.HasPrefix(key, "POST /api/v1/auth/logout ") {
				continue
			}
			if row[col] != row[base] {
				t.Errorf("%s: %s got %d but %s got %d: a token must act exactly as its user", key, col, row[col], base, row[base])
			}
		}
		if st := row["owner+readonly"]; !strings.HasPrefix(key, "GET ") && !public && st != 403 && st != 401 {
			t.Errorf("%s: read-only token got %d on a write", key, st)
		}
		if base, ok := strings.CutSuffix(key, "[admin-owned dashboard, stranger's query]"); ok {
			// A6: a source the caller may not read answers as an unknown id.
			unknown := observed[base+"[admin-owned dashboard, unknown query]"]
			for _, col := range columns {
				if !strings.HasPrefix(col, "admin") && row[col] != unknown[col] {
					t.Errorf("%s: %s got %d, but %d for an unknown query", key, col, row[col], unknown[col])
				}
			}
		}
		if strings.HasSuffix(key, "[missing]") && strings.Contains(key, "{") {
			for _, col := range columns {
				if st := row[col]; st >= 200 && st < 300 {
					t.Errorf("%s: %s got %d for an object that does not exist", key, col, st)
				}
			}
		}
	}
}

func formatRow(row map[string]int, columns []string) string {
	parts := make([]string, len(columns))
	for i, c := range columns {
		parts[i] = fmt.Sprintf("%s=%d", c, row[c])
	}
	return strings.Join(parts, " ")
}

func compareMatrix(t *testing.T, target string, observed map[string]map[string]int, columns []string) {
	t.Helper()
	keys := make([]string, 0, len(observed))
	for k := range observed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if *updateAuthz && target == "sqlite" {
		var b strings.Builder
		b.WriteString("# Expected HTTP status of every route for every actor and object state.\n")
		b.WriteString("# Checked by TestAuthorizationMatrix on SQLite and PostgreSQL; regenerate with\n")
		b.WriteString("# go test ./core/api -run TestAuthorizationMatrix -update-authz, then review the diff line by line.\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "%s | %s\n", k, formatRow(observed[k], columns))
		}
		if err := os.MkdirAll(filepath.Dir(matrixFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(matrixFile, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d rows)", matrixFile, len(keys))
		return
	}
	f, err := os.Open(matrixFile)
	if err != nil {
		t.Fatalf("%v: generate it with -update-authz", err)
	}
	defer f.Close()
	expected := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, " | ")
		if !ok {
			t.Fatalf("%s: malformed line %q", matrixFile, line)
		}
		expected[k] = v
	}
	for _, k := range keys {
		want, ok := expected[k]
		if !ok {
			t.Errorf("%s is not in %s: add its expected statuses (run with -update-authz and review)", k, matrixFile)
			continue
		}
		if got := formatRow(observed[k], columns); got != want {
			t.Errorf("%s:\n  got  %s\n  want %s", k, got, want)
		}
	}
	for k := range expected {
		if _, ok := observed[k]; !ok {
			t.Errorf("%s lists %s, which the router no longer serves", matrixFile, k)
		}
	}
}

func matrixModelConfig(source uuid.UUID) map[string]any {
	return map[string]any{"data_source_id": source.String(), "table": map[string]any{"name": "orders"},
		"dimensions": []any{map[string]any{"name": "region", "column": "region", "type": "string"}},
		"measures":   []any{map[string]any{"name": "orders", "agg": "count"}}}
}
