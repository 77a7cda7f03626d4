package api_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/datapulse/datapulse/core/api"
	"github.com/datapulse/datapulse/core/dashboards"
	"github.com/datapulse/datapulse/core/datamodels"
	"github.com/datapulse/datapulse/core/datasources"
	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/queries"
	"github.com/datapulse/datapulse/core/rendering"
	"github.com/datapulse/datapulse/core/resultcache"
	"github.com/datapulse/datapulse/core/secrets"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/ent/session"
	"github.com/datapulse/datapulse/plugins/builtin"
	"github.com/datapulse/datapulse/plugins/host"
	"github.com/datapulse/datapulse/plugins/sdk"
	"github.com/datapulse/datapulse/policy"
)

// The contract test runs a real server with the builtin sqlite connector:
// the host starts connectors as `<executable> plugin serve <name>`, and the
// executable here is this test binary, which serves the connector instead of
// running tests when called that way.
func init() {
	if len(os.Args) >= 4 && os.Args[1] == "plugin" && os.Args[2] == "serve" {
		factory, ok := builtin.Connectors[os.Args[3]]
		if !ok {
			fmt.Fprintln(os.Stderr, "no builtin connector", os.Args[3])
			os.Exit(2)
		}
		sdk.Serve(factory())
		os.Exit(0)
	}
}

// newContractEnv is newEnv with the sqlite connector installed.
func newContractEnv(t *testing.T, tg storetest.Target) *env {
	t.Helper()
	st := storetest.Migrated(t, tg)
	facts, err := policy.Load(principal.System(context.Background()), st.Client, policy.RoleEditor)
	if err != nil {
		t.Fatal(err)
	}
	enf, err := policy.NewEnforcer(facts)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.New(st.Client, identity.Options{SigningKey: signingKey, Argon2: fastArgon, Facts: facts, ClientBurst: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := id.BootstrapAdmin(context.Background(), adminEmail, adminPass); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	conns, err := host.New(context.Background(), host.Options{Executable: exe, Builtins: []string{"sqlite"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conns.Close() })
	box, err := secrets.New(signingKey)
	if err != nil {
		t.Fatal(err)
	}
	dsv := datasources.New(st.Client, enf, conns, box, nil)
	qsv := queries.New(st.Client, enf, dsv, conns, queries.Limits{},
		queries.Caching{Cache: resultcache.New[queries.Result](resultcache.Options{MaxBytes: 64 << 20}), DefaultTTL: time.Minute})
	dsh := dashboards.New(st.Client, enf, nil)
	dm := datamodels.New(st.Client, enf, dsv, qsv)
	srv := api.New(api.Deps{Identity: id, Dashboards: dsh, Store: st,
		DataSources: dsv, Queries: qsv, Models: dm, Rendering: rendering.New(dsh, qsv, dm, enf, 8, nil),
		Connectors: conns, Version: "test", BodyLimit: bodyLimit, RequestTimeout: 30 * time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx) //nolint:errcheck
	})
	e := &env{t: t, base: "http://" + ln.Addr().String(), srv: srv, store: st, id: id, facts: facts}
	e.admin = e.login(adminEmail, adminPass)
	return e
}

// contract is the served OpenAPI document with compiled response schemas and
// the (operation, status) pairs seen.
type contract struct {
	t        *testing.T
	doc      map[string]any
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema
	seen     map[string]map[int]int // "METHOD /template" → status → count
}

const docURL = "mem:///openapi.json"

func newContract(t *testing.T, raw []byte) *contract {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("openapi document: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020) // OpenAPI 3.1 schemas are JSON Schema 2020-12
	c.AssertFormat()                     // uuid, date-time… are part of the contract
	if err := c.AddResource(docURL, inst); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return &contract{t: t, doc: doc, compiler: c, schemas: map[string]*jsonschema.Schema{}, seen: map[string]map[int]int{}}
}

func ptrEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// at follows a JSON pointer in the document.
func (c *contract) at(ptr string) any {
	var v any = c.doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[tok]
	}
	return v
}

func (c *contract) schema(ptr string) *jsonschema.Schema {
	if s, ok := c.schemas[ptr]; ok {
		return s
	}
	frag := (&url.URL{Fragment: ptr}).EscapedFragment()
	s, err := c.compiler.Compile(docURL + "#" + frag)
	if err != nil {
		c.t.Fatalf("compiling the schema at %s: %v", ptr, err)
	}
	c.schemas[ptr] = s
	return s
}

// check validates one real answer of operation key ("METHOD /template")
// against the document: its status is declared, its content type is one the
// response lists, and a JSON body is valid against the schema.
func (c *contract) check(key string, r resp) {
	c.t.Helper()
	method, path, _ := strings.Cut(key, " ")
	if c.seen[key] == nil {
		c.seen[key] = map[int]int{}
	}
	c.seen[key][r.status]++
	opPtr := "/paths/" + ptrEscape(path) + "/" + strings.ToLower(method)
	if c.at(opPtr) == nil {
		c.t.Errorf("%s: not in the OpenAPI document", key)
		return
	}
	respPtr := opPtr + "/responses/" + strconv.Itoa(r.status)
	ro, ok := c.at(respPtr).(map[string]any)
	if !ok {
		c.t.Errorf("%s answered %d, which the document does not declare for it: %s", key, r.status, trim(r.raw))
		return
	}
	if ref, ok := ro["$ref"].(string); ok {
		respPtr = strings.TrimPrefix(ref, "#")
		ro, _ = c.at(respPtr).(map[string]any)
	}
	content, _ := ro["content"].(map[string]any)
	if len(content) == 0 {
		if len(r.raw) > 0 {
			c.t.Errorf("%s %d: the document declares no body, got %s", key, r.status, trim(r.raw))
		}
		return
	}
	mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if err != nil {
		c.t.Errorf("%s %d: content type %q: %v", key, r.status, r.header.Get("Content-Type"), err)
		return
	}
	if _, ok := content[mt]; !ok {
		c.t.Errorf("%s %d: content type %s is not declared (declared: %v)", key, r.status, mt, keys(content))
		return
	}
	if mt != "application/json" {
		return // NDJSON and CSV streams are described in prose
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.raw))
	if err != nil {
		c.t.Errorf("%s %d: body is not JSON: %v: %s", key, r.status, err, trim(r.raw))
		return
	}
	if err := c.schema(respPtr + "/content/application~1json/schema").Validate(inst); err != nil {
		c.t.Errorf("%s %d: body does not match the document: %v\nbody: %s", key, r.status, err, trim(r.raw))
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func trim(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

// request is one call of an operation.
type request struct {
	path        string // concrete
	token       string
	body        any // nil, string (raw), []byte (raw) or a value sent as JSON
	contentType string
	header      map[string]string
	// rejectedEarly: the server answers without reading the whole request
	// (413, 431); a connection reset while sending is retried.
	rejectedEarly bool
}

// send performs r like env.do, but with any content type and headers.
func (e *env) send(method string, r request) resp {
	e.t.Helper()
	return e.sendAttempt(method, r, 1)
}

func (e *env) sendAttempt(method string, r request, attempt int) resp {
	e.t.Helper()
	var rd io.Reader
	ct := r.contentType
	switch b := r.body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	if rd != nil && ct == "" {
		ct = "application/json"
	}
	req, err := http.NewRequest(method, e.base+r.path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		if r.rejectedEarly && attempt < 10 {
			// The server answers before reading the whole request and
			// closes; the client, still writing, may see the reset first.
			return e.sendAttempt(method, r, attempt+1)
		}
		e.t.Fatalf("%s %s: %v", method, r.path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 && strings.Contains(res.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(raw, &out.body)
	}
	if out.status >= 400 {
		e.checkEnvelope(method, r.path, out)
	}
	return out
}

// contractFixtures make fresh objects through the API for the success cases.
type contractFixtures struct {
	e      *env
	t      *testing.T
	n      int
	dbPath string // a SQLite file with an orders table, for the sqlite connector
}

func (f *contractFixtures) seq() string { f.n++; return strconv.Itoa(f.n) }

func (f *contractFixtures) post(path string, body any) string {
	f.t.Helper()
	r := f.e.do("POST", path, f.e.admin, body)
	if r.status != 201 && r.status != 200 {
		f.t.Fatalf("fixture POST %s: %d %s", path, r.status, r.raw)
	}
	return r.str("id")
}

func (f *contractFixtures) user() (id, token string) {
	return f.e.createUser("contract"+f.seq()+"@example.com", "user")
}
func (f *contractFixtures) dashboard() string {
	return f.post("/api/v1/dashboards", map[string]any{"name": "Contract " + f.seq()})
}
func (f *contractFixtures) widget(dash string) string {
	return f.post("/api/v1/dashboards/"+dash+"/widgets", map[string]any{"type": "text", "config": map[string]any{"content": "hi"},
		"position": map[string]int{"x": 0, "y": 0, "w": 4, "h": 2}})
}
func (f *contractFixtures) department() string {
	return f.post("/api/v1/departments", map[string]any{"name": "Dept " + f.seq()})
}
func (f *contractFixtures) role() string {
	return f.post("/api/v1/roles", map[string]any{"name": "contract-role-" + f.seq(), "permissions": []string{"dashboards:read"}})
}
func (f *contractFixtures) source() string {
	return f.post("/api/v1/data-sources", map[string]any{"name": "Orders " + f.seq(), "type": "sqlite", "config": map[string]any{"path": f.dbPath}})
}
func (f *contractFixtures) query(src string) string {
	return f.post("/api/v1/queries", map[string]any{"name": "Q " + f.seq(), "sql": "SELECT region, amount FROM orders", "data_source_id": src})
}
func (f *contractFixtures) modelConfig(src string) map[string]any {
	return map[string]any{"data_source_id": src, "table": map[string]any{"name": "orders"},
		"dimensions": []any{map[string]any{"name": "region", "column": "region", "type": "string"}},
		"measures":   []any{map[string]any{"name": "orders", "agg": "count"}, map[string]any{"name": "revenue", "agg": "sum", "column": "amount"}}}
}
func (f *contractFixtures) model(src string) string {
	return f.post("/api/v1/data-models", map[string]any{"name": "M " + f.seq(), "config": f.modelConfig(src)})
}

func writeOrdersDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "orders.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT NOT NULL, amount REAL, created_at TEXT)`,
		`INSERT INTO orders (region, amount, created_at) VALUES ('EU', 10.5, '2026-01-02'), ('US', 20, '2026-02-03'), ('EU', NULL, '2026-03-04')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// successCases gives, per operation id, requests that succeed (2xx). Every
// operation of the router needs one: a new route without an entry fails
// TestContract.
func successCases(f *contractFixtures) map[string]func() []request {
	e := f.e
	admin := e.admin
	p := map[string]int{"x": 0, "y": 4, "w": 6, "h": 3}
	one := func(path string, body any) func() []request {
		return func() []request { return []request{{path: path, token: admin, body: body}} }
	}
	return map[string]func() []request{
		"healthz": one("/healthz", nil),
		"readyz":  one("/readyz", nil),
		"login": func() []request {
			return []request{{path: "/api/v1/auth/login", body: map[string]any{"email": adminEmail, "password": adminPass}}}
		},
		"refresh": func() []request {
			r := e.do("POST", "/api/v1/auth/login", "", map[string]any{"email": adminEmail, "password": adminPass})
			return []request{{path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": r.str("refresh_token")}}}
		},
		"logout": func() []request {
			_, tok := f.user()
			return []request{{path: "/api/v1/auth/logout", token: tok}}
		},
		"getMe":    one("/api/v1/me", nil),
		"updateMe": one("/api/v1/me", map[string]any{"name": "Ada"}),
		"changeMyPassword": func() []request {
			_, tok := f.user()
			return []request{{path: "/api/v1/me/password", token: tok, body: map[string]any{"current_password": "user password 123", "new_password": "a different password 456"}}}
		},
		"getMyProfile": one("/api/v1/me/profile", nil),
		"putMyProfile": one("/api/v1/me/profile", map[string]any{"bio": "hello", "phone": "+49 30 1234"}),
		"createToken":  one("/api/v1/tokens", map[string]any{"name": "contract", "scopes": []string{"read"}, "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}),
		"listTokens":   one("/api/v1/tokens", nil),
		"deleteToken": func() []request {
			id := f.post("/api/v1/tokens", map[string]any{"name": "doomed"})
			return []request{{path: "/api/v1/tokens/" + id, token: admin}}
		},
		"createUser": func() []request {
			dep := f.department()
			return []request{{path: "/api/v1/users", token: admin, body: map[string]any{"email": "made" + f.seq() + "@example.com", "password": "made user password", "name": "Made", "department_id": dep}}}
		},
		"listUsers": one("/api/v1/users?per_page=5&sort=-created_at", nil),
		"getUser": func() []request {
			id, _ := f.user()
			return []request{{path: "/api/v1/users/" + id, token: admin}}
		},
		"updateUser": func() []request {
			id, _ := f.user()
			return []request{{path: "/api/v1/users/" + id, token: admin, body: map[string]any{"name": "Renamed", "department_id": f.department()}}}
		},
		"deleteUser": func() []request {
			id, _ := f.user()
			return []request{{path: "/api/v1/users/" + id, token: admin}}
		},
		"listUserRoles": func() []request {
			id, _ := f.user()
			return []request{{path: "/api/v1/users/" + id + "/roles", token: admin}}
		},
		"assignUserRole": func() []request {
			id, _ := f.user()
			return []request{{path: "/api/v1/users/" + id + "/roles", token: admin, body: map[string]any{"role_id": f.role()}}}
		},
		"unassignUserRole": func() []request {
			id, _ := f.user()
			role := f.role()
			f.post("/api/v1/users/"+id+"/roles", map[string]any{"role_id": role})
			return []request{{path: "/api/v1/users/" + id + "/roles/" + role, token: admin}}
		},
		"createDepartment": func() []request {
			return []request{{path: "/api/v1/departments", token: admin, body: map[string]any{"name": "New dept " + f.seq(), "description": "d"}}}
		},
		"listDepartments": one("/api/v1/departments", nil),
		"getDepartment":   func() []request { return []request{{path: "/api/v1/departments/" + f.department(), token: admin}} },
		"updateDepartment": func() []request {
			return []request{{path: "/api/v1/departments/" + f.department(), token: admin, body: map[string]any{"description": "changed"}}}
		},
		"deleteDepartment": func() []request { return []request{{path: "/api/v1/departments/" + f.department(), token: admin}} },
		"createRole": func() []request {
			return []request{{path: "/api/v1/roles", token: admin, body: map[string]any{"name": "new-role-" + f.seq(), "permissions": []string{"queries:run"}}}}
		},
		"listRoles": one("/api/v1/roles", nil),
		"getRole":   func() []request { return []request{{path: "/api/v1/roles/" + f.role(), token: admin}} },
		"updateRole": func() []request {
			return []request{{path: "/api/v1/roles/" + f.role(), token: admin, body: map[string]any{"description": "changed"}}}
		},
		"deleteRole": func() []request { return []request{{path: "/api/v1/roles/" + f.role(), token: admin}} },

		"createDashboard": one("/api/v1/dashboards", map[string]any{"name": "New", "description": "d", "cache_ttl_seconds": 60,
			"filters": []any{map[string]any{"name": "region", "type": "text", "default": "EU"}}}),
		"listDashboards": one("/api/v1/dashboards?q=Contract", nil),
		"importDashboard": one("/api/v1/dashboards/import", map[string]any{"version": 1, "name": "Imported",
			"widgets": []any{map[string]any{"type": "text", "config": map[string]any{"content": "x"}, "position": p}}}),
		"getDashboard": func() []request {
			d := f.dashboard()
			f.widget(d)
			return []request{{path: "/api/v1/dashboards/" + d, token: admin}}
		},
		"updateDashboard": func() []request {
			return []request{{path: "/api/v1/dashboards/" + f.dashboard(), token: admin, body: map[string]any{"name": "Renamed"}}}
		},
		"deleteDashboard": func() []request { return []request{{path: "/api/v1/dashboards/" + f.dashboard(), token: admin}} },
		"duplicateDashboard": func() []request {
			return []request{{path: "/api/v1/dashboards/" + f.dashboard() + "/duplicate", token: admin}}
		},
		"exportDashboard": func() []request {
			d := f.dashboard()
			f.widget(d)
			return []request{{path: "/api/v1/dashboards/" + d + "/export", token: admin}}
		},
		"createWidget": func() []request {
			return []request{{path: "/api/v1/dashboards/" + f.dashboard() + "/widgets", token: admin, body: map[string]any{"type": "text", "config": map[string]any{"content": "hi"}, "position": p}}}
		},
		"listWidgets": func() []request {
			d := f.dashboard()
			f.widget(d)
			return []request{{path: "/api/v1/dashboards/" + d + "/widgets", token: admin}}
		},
		"getWidget": func() []request {
			d := f.dashboard()
			return []request{{path: "/api/v1/dashboards/" + d + "/widgets/" + f.widget(d), token: admin}}
		},
		"updateWidget": func() []request {
			d := f.dashboard()
			return []request{{path: "/api/v1/dashboards/" + d + "/widgets/" + f.widget(d), token: admin, body: map[string]any{"position": p}}}
		},
		"deleteWidget": func() []request {
			d := f.dashboard()
			return []request{{path: "/api/v1/dashboards/" + d + "/widgets/" + f.widget(d), token: admin}}
		},
		"updateLayout": func() []request {
			d := f.dashboard()
			return []request{{path: "/api/v1/dashboards/" + d + "/layout", token: admin, body: map[string]any{"widgets": []any{map[string]any{"id": f.widget(d), "position": p}}}}}
		},
		"listShares": func() []request {
			d := f.dashboard()
			u, _ := f.user()
			e.do("PUT", "/api/v1/dashboards/"+d+"/shares/"+u, admin, map[string]any{"permission_level": "view"})
			return []request{{path: "/api/v1/dashboards/" + d + "/shares", token: admin}}
		},
		"putShare": func() []request {
			u, _ := f.user()
			return []request{{path: "/api/v1/dashboards/" + f.dashboard() + "/shares/" + u, token: admin, body: map[string]any{"permission_level": "edit"}}}
		},
		"deleteShare": func() []request {
			d := f.dashboard()
			u, _ := f.user()
			e.do("PUT", "/api/v1/dashboards/"+d+"/shares/"+u, admin, map[string]any{"permission_level": "view"})
			return []request{{path: "/api/v1/dashboards/" + d + "/shares/" + u, token: admin}}
		},
		"getDashboardData": func() []request {
			d := f.dashboard()
			f.widget(d)
			q := f.query(f.source())
			f.post("/api/v1/dashboards/"+d+"/widgets", map[string]any{"type": "table", "config": map[string]any{"query_id": q}, "position": p})
			return []request{{path: "/api/v1/dashboards/" + d + "/data", token: admin}}
		},
		"getWidgetData": func() []request {
			d := f.dashboard()
			return []request{{path: "/api/v1/dashboards/" + d + "/widgets/" + f.widget(d) + "/data", token: admin}}
		},

		"listConnectors": one("/api/v1/connectors", nil),
		"createDataSource": func() []request {
			return []request{{path: "/api/v1/data-sources", token: admin, body: map[string]any{"name": "S" + f.seq(), "type": "sqlite", "config": map[string]any{"path": f.dbPath}, "cache_ttl_seconds": 30}}}
		},
		"listDataSources": func() []request { f.source(); return []request{{path: "/api/v1/data-sources", token: admin}} },
		"getDataSource":   func() []request { return []request{{path: "/api/v1/data-sources/" + f.source(), token: admin}} },
		"updateDataSource": func() []request {
			return []request{{path: "/api/v1/data-sources/" + f.source(), token: admin, body: map[string]any{"name": "Renamed " + f.seq()}}}
		},
		"deleteDataSource": func() []request { return []request{{path: "/api/v1/data-sources/" + f.source(), token: admin}} },
		"invalidateDataSourceCache": func() []request {
			return []request{{path: "/api/v1/data-sources/" + f.source() + "/cache/invalidate", token: admin}}
		},
		"checkDataSourceHealth": func() []request {
			return []request{{path: "/api/v1/data-sources/" + f.source() + "/health", token: admin}}
		},
		"getDataSourceSchema": func() []request {
			return []request{{path: "/api/v1/data-sources/" + f.source() + "/schema", token: admin}}
		},
		"queryDataSource": func() []request {
			src := f.source()
			body := map[string]any{"sql": "SELECT region, amount, created_at FROM orders WHERE region = {{r}}", "parameters": map[string]any{"r": "EU"}}
			path := "/api/v1/data-sources/" + src + "/query"
			return []request{{path: path, token: admin, body: body}, {path: path + "?format=csv", token: admin, body: body},
				{path: path, token: admin, body: body, header: map[string]string{"Accept": "application/x-ndjson"}}}
		},
		"createQuery": func() []request {
			return []request{{path: "/api/v1/queries", token: admin, body: map[string]any{"name": "Q", "sql": "SELECT region FROM orders WHERE amount > {{min}}",
				"data_source_id": f.source(), "parameters": []any{map[string]any{"name": "min", "type": "number", "default": 0}}}}}
		},
		"listQueries": func() []request { f.query(f.source()); return []request{{path: "/api/v1/queries", token: admin}} },
		"getQuery":    func() []request { return []request{{path: "/api/v1/queries/" + f.query(f.source()), token: admin}} },
		"updateQuery": func() []request {
			return []request{{path: "/api/v1/queries/" + f.query(f.source()), token: admin, body: map[string]any{"description": "changed"}}}
		},
		"deleteQuery": func() []request { return []request{{path: "/api/v1/queries/" + f.query(f.source()), token: admin}} },
		"runQuery": func() []request {
			path := "/api/v1/queries/" + f.query(f.source()) + "/run"
			return []request{{path: path, token: admin}, {path: path + "?format=ndjson", token: admin}}
		},
		"createDataModel": func() []request {
			return []request{{path: "/api/v1/data-models", token: admin, body: map[string]any{"name": "Model", "config": f.modelConfig(f.source())}}}
		},
		"listDataModels": func() []request { f.model(f.source()); return []request{{path: "/api/v1/data-models", token: admin}} },
		"getDataModel":   func() []request { return []request{{path: "/api/v1/data-models/" + f.model(f.source()), token: admin}} },
		"updateDataModel": func() []request {
			return []request{{path: "/api/v1/data-models/" + f.model(f.source()), token: admin, body: map[string]any{"name": "Renamed"}}}
		},
		"deleteDataModel": func() []request { return []request{{path: "/api/v1/data-models/" + f.model(f.source()), token: admin}} },
		"checkDataModel": func() []request {
			return []request{{path: "/api/v1/data-models/" + f.model(f.source()) + "/check", token: admin}}
		},
		"queryDataModel": func() []request {
			path := "/api/v1/data-models/" + f.model(f.source()) + "/query"
			body := map[string]any{"measures": []string{"orders", "revenue"}, "dimensions": []string{"region"}, "sort": []string{"region"}}
			return []request{{path: path, token: admin, body: body}, {path: path + "?explain=true", token: admin, body: body},
				{path: path + "?format=csv", token: admin, body: body}}
		},
	}
}

var pathParam = regexp.MustCompile(`\{[a-z_]+\}`)

// TestContract calls every operation of the router (success and error paths)
// on a real listener and checks each answer against the served OpenAPI
// document: the status is declared for the operation and the body is valid
// against the declared schema. Operations come from the route table, so a
// new route is covered (and needs a success case) without touching this test.
func TestContract(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newContractEnv(t, tg)
		docResp := e.want(e.do("GET", api.OpenAPIPath+".json", "", nil), 200, "openapi document")
		c := newContract(t, docResp.raw)
		c.check("GET "+api.OpenAPIPath+".json", docResp)
		f := &contractFixtures{e: e, t: t, dbPath: writeOrdersDB(t)}
		success := successCases(f)
		_, userTok := f.user()
		roTok := e.want(e.do("POST", "/api/v1/tokens", userTok, map[string]any{"name": "ro", "scopes": []string{"read"}}), 201, "read-only token").str("token")

		for _, r := range e.srv.Routes() {
			key := r.Method + " " + r.Path
			op, _ := c.at("/paths/" + ptrEscape(r.Path) + "/" + strings.ToLower(r.Method)).(map[string]any)
			if op == nil {
				t.Errorf("%s (%s) is served but not in the OpenAPI document", key, r.OperationID)
				continue
			}
			_, hasBody := op["requestBody"]
			call := func(rq request, want int) resp {
				t.Helper()
				res := e.send(r.Method, rq)
				c.check(key, res)
				if want != 0 && res.status != want {
					t.Errorf("%s %s: status %d, want %d: %s", r.Method, rq.path, res.status, want, trim(res.raw))
				}
				return res
			}

			// Success.
			mk, ok := success[r.OperationID]
			if !ok {
				t.Errorf("%s (%s) has no success case in successCases", key, r.OperationID)
				continue
			}
			reqs := mk()
			var ok2xx request
			for _, rq := range reqs {
				res := call(rq, 0)
				if res.status < 200 || res.status > 299 {
					t.Errorf("%s success case %s: %d %s", key, rq.path, res.status, trim(res.raw))
				}
			}
			ok2xx = reqs[0]
			// A fresh success request for error cases that need real objects.
			fresh := func() request { return mk()[0] }

			// 401: no credentials (or, where they are optional, bad ones).
			switch r.Access {
			case api.Authenticated, api.Admin:
				rq := ok2xx
				rq.token = ""
				call(rq, 401)
				rq.token = "not-a-token"
				call(rq, 401)
			case api.Optional:
				rq := ok2xx
				rq.token = "not-a-token"
				call(rq, 401)
			}
			// 403: not an administrator; a read-only token writing.
			if r.Access == api.Admin {
				rq := ok2xx
				rq.token = userTok
				call(rq, 403)
			}
			if r.Access >= api.Optional && r.Method != http.MethodGet {
				rq := ok2xx
				rq.token = roTok
				call(rq, 403)
			}
			// 404: unknown ids.
			if strings.Contains(r.Path, "{") {
				rq := ok2xx
				rq.path = concrete(r.Path)
				if i := strings.Index(ok2xx.path, "?"); i >= 0 {
					rq.path += ok2xx.path[i:]
				}
				call(rq, 404)
				// 400: a path parameter longer than its limit.
				rq.path = pathParam.ReplaceAllString(r.Path, strings.Repeat("a", 65))
				call(rq, 400)
			}
			// 400: invalid query parameters.
			if params, _ := op["parameters"].([]any); slices.ContainsFunc(params, func(p any) bool { return p.(map[string]any)["name"] == "per_page" }) {
				rq := ok2xx
				rq.path = strings.SplitN(rq.path, "?", 2)[0] + "?per_page=0"
				call(rq, 400)
			}
			if hasBody {
				rq := fresh()
				// 400: malformed JSON, unknown fields, wrong type.
				for _, raw := range []string{`{bad json`, `{"zz_unknown_field": 1}`, `[]`} {
					rq.body = raw
					call(rq, 400)
				}
				// 415: not JSON.
				rq.body, rq.contentType = "name=x", "application/x-www-form-urlencoded"
				call(rq, 415)
				// 413: larger than the body limit.
				// (Expect: 100-continue: the client waits for the server's
				// answer instead of writing into a closed connection.)
				rq.body, rq.contentType = `{"name":"`+strings.Repeat("x", bodyLimit)+`"}`, ""
				rq.header = map[string]string{"Expect": "100-continue"}
				rq.rejectedEarly = true
				call(rq, 413)
			}
			// 431: headers beyond the server's read buffer.
			rq := ok2xx
			rq.header = map[string]string{"X-Padding": strings.Repeat("p", 8<<10)}
			rq.rejectedEarly = true
			call(rq, 431)
		}

		// Statuses particular to some operations.
		particular := func(method, template string, rq request, want int) resp {
			t.Helper()
			res := e.send(method, rq)
			c.check(method+" "+template, res)
			if want != 0 && res.status != want {
				t.Errorf("%s %s: status %d, want %d: %s", method, rq.path, res.status, want, trim(res.raw))
			}
			return res
		}
		particular("POST", "/api/v1/auth/login", request{path: "/api/v1/auth/login", body: map[string]any{"email": adminEmail, "password": "wrong password"}}, 401)
		particular("POST", "/api/v1/auth/refresh", request{path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": "not-a-refresh-token"}}, 401)
		var last resp
		for i := 0; i < 12 && last.status != 429; i++ {
			last = particular("POST", "/api/v1/auth/login", request{path: "/api/v1/auth/login",
				body: map[string]any{"email": "victim@example.com", "password": fmt.Sprintf("guess %d guess guess", i)}}, 0)
		}
		if last.status != 429 {
			t.Errorf("login: no 429 after repeated failures, last %d", last.status)
		}
		// login reads User-Agent from the request (not a declared parameter).
		particular("POST", "/api/v1/auth/login", request{path: "/api/v1/auth/login", body: map[string]any{"email": adminEmail, "password": adminPass},
			header: map[string]string{"User-Agent": "contract-test/1"}}, 200)
		if ok, err := e.store.Client.Session.Query().Where(session.UserAgent("contract-test/1")).Exist(principal.System(context.Background())); err != nil || !ok {
			t.Errorf("login did not record the User-Agent in the session (%v)", err)
		}
		dep := f.department()
		name := e.want(e.do("GET", "/api/v1/departments/"+dep, e.admin, nil), 200, "department").str("name")
		particular("POST", "/api/v1/departments", request{path: "/api/v1/departments", token: e.admin, body: map[string]any{"name": name}}, 409)
		particular("POST", "/api/v1/users", request{path: "/api/v1/users", token: e.admin, body: map[string]any{"email": adminEmail, "password": "some password 123"}}, 409)
		particular("DELETE", "/api/v1/roles/{id}", request{path: "/api/v1/roles/" + policy.BuiltinRoles[0].ID.String(), token: e.admin}, 409)
		// A source whose connector is not installed: 503.
		ctx := principal.System(context.Background())
		adminID := e.want(e.do("GET", "/api/v1/me", e.admin, nil), 200, "me").str("id")
		ghost := e.store.Client.DataSource.Create().SetName("Ghost").SetType("none").SetCreatedBy(uuid.MustParse(adminID)).SaveX(ctx)
		gq := f.query(ghost.ID.String())
		particular("GET", "/api/v1/data-sources/{id}/schema", request{path: "/api/v1/data-sources/" + ghost.ID.String() + "/schema", token: e.admin}, 503)
		particular("POST", "/api/v1/data-sources/{id}/query", request{path: "/api/v1/data-sources/" + ghost.ID.String() + "/query", token: e.admin, body: map[string]any{"sql": "SELECT 1"}}, 503)
		particular("POST", "/api/v1/queries/{id}/run", request{path: "/api/v1/queries/" + gq + "/run", token: e.admin}, 503)
		// SQL the source rejects.
		if res := particular("POST", "/api/v1/data-sources/{id}/query", request{path: "/api/v1/data-sources/" + f.source() + "/query", token: e.admin,
			body: map[string]any{"sql": "SELECT nope FROM no_such_table"}}, 0); res.status < 400 {
			t.Errorf("SQL on a missing table: %d", res.status)
		}

		// Statuses seen per operation, for the log (-v).
		var lines []string
		for key, st := range c.seen {
			codes := make([]int, 0, len(st))
			for code := range st {
				codes = append(codes, code)
			}
			slices.Sort(codes)
			lines = append(lines, fmt.Sprintf("%s %v", key, codes))
		}
		sort.Strings(lines)
		t.Logf("(operation, status) pairs seen:\n%s", strings.Join(lines, "\n"))
	})
}

// TestOpenAPIDocument checks document-wide rules of the contract.
func TestOpenAPIDocument(t *testing.T) {
	srv := api.New(api.Deps{})
	raw, err := srv.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	c := newContract(t, raw)
	if servers, _ := c.doc["servers"].([]any); len(servers) == 0 {
		t.Error("servers is not set")
	}
	generic := regexp.MustCompile(`^(Config|Item|Request|Response|Result|Schema|Document|Filter|Body|Input|Output)$|(Input|Output)Body$|^Page[A-Z]`)
	schemas, _ := c.at("/components/schemas").(map[string]any)
	for name := range schemas {
		if generic.MatchString(name) {
			t.Errorf("schema name %q means nothing to a generated client: name it in schemaNames (core/api/openapi.go)", name)
		}
		c.schema("/components/schemas/" + ptrEscape(name)) // every schema compiles
	}
	public := map[string]bool{"login": true, "refresh": true, "healthz": true, "readyz": true, "getOpenAPI": true}
	paths, _ := c.doc["paths"].(map[string]any)
	n := 0
	for path, item := range paths {
		for method, o := range item.(map[string]any) {
			op := o.(map[string]any)
			id, _ := op["operationId"].(string)
			n++
			sec, hasSec := op["security"].([]any)
			switch {
			case public[id]:
				if !hasSec || len(sec) != 0 {
					t.Errorf("%s %s: public operation without security: []", method, path)
				}
			case !hasSec || len(sec) == 0:
				t.Errorf("%s %s: no bearer security", method, path)
			}
			responses, _ := op["responses"].(map[string]any)
			if _, ok := responses["422"]; ok {
				t.Errorf("%s %s declares 422, which the server never sends (validation is 400)", method, path)
			}
			for code, r := range responses {
				if code[0] != '4' && code[0] != '5' {
					continue
				}
				ref, _ := r.(map[string]any)["$ref"].(string)
				if !strings.HasPrefix(ref, "#/components/responses/") {
					t.Errorf("%s %s %s: not one of the shared error responses", method, path, code)
				}
			}
			for _, p := range asSlice(op["parameters"]) {
				pm := p.(map[string]any)
				if pm["required"] == true && pm["in"] == "header" {
					t.Errorf("%s %s: clients must send header %v", method, path, pm["name"])
				}
				if id == "login" && pm["in"] == "header" {
					t.Errorf("login declares header parameter %v", pm["name"])
				}
			}
		}
	}
	if n < len(srv.Routes())+1 {
		t.Errorf("document has %d operations, the router %d routes (+ the document)", n, len(srv.Routes()))
	}
	// The validator is not vacuous: wrong bodies fail.
	for ptr, bad := range map[string]string{
		"/components/schemas/Error": `{"error": {"message": "no code"}}`,
		"/components/schemas/User":  `{"id": "not-a-uuid", "email": "a@b.c", "name": null, "role": "user", "department_id": null, "email_verified_at": null, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}`,
	} {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		if c.schema(ptr).Validate(inst) == nil {
			t.Errorf("%s accepts %s", ptr, bad)
		}
	}
	// The error envelope.
	env, _ := c.at("/components/schemas/ErrorInfo/required").([]any)
	if !slices.Contains(env, any("code")) || !slices.Contains(env, any("message")) {
		t.Errorf("ErrorInfo requires %v, want code and message", env)
	}
}

func asSlice(v any) []any { s, _ := v.([]any); return s }
