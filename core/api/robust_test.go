package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/plugins/host"
)

var (
	fakeOnce sync.Once
	fakeExe  string
	fakeErr  error
)

// withFakeConnector serves the builtin connector "fake" with the host's test
// connector (plugins/host/internal/testconnectors/fakeconn): config
// {path, password (secret)}, and a query language with fault hooks.
func withFakeConnector(t *testing.T) envOption {
	t.Helper()
	fakeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "api-fakeconn-")
		if err != nil {
			fakeErr = err
			return
		}
		fakeExe = filepath.Join(dir, "fakeconn")
		out, err := exec.Command("go", "build", "-o", fakeExe, "github.com/datapulse/datapulse/plugins/host/internal/testconnectors/fakeconn").CombinedOutput()
		if err != nil {
			fakeErr = err
			fakeExe = string(out)
		}
	})
	if fakeErr != nil {
		t.Fatalf("building fakeconn: %v: %s", fakeErr, fakeExe)
	}
	return func(o *host.Options) {
		o.Executable = fakeExe
		o.Builtins = []string{"fake"}
	}
}

// A1: whoever may manage data sources (not an admin) must not be able to
// re-point a source at a server of their own and have the stored password
// sent there by a health check.
func TestRepointingDataSourceNeedsSecretAgain(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg, withFakeConnector(t))
		// The builtin "admin" role grants every action (datasources:manage
		// included) without making its holder an instance administrator.
		uid, editor := e.createUser("editor@example.com", "user")
		e.want(e.do("POST", "/api/v1/users/"+uid+"/roles", e.admin, map[string]any{"role_id": "01930000-0000-7000-8000-000000000001"}), 201, "grant role")
		r := e.want(e.do("POST", "/api/v1/data-sources", e.admin, map[string]any{
			"name": "fake", "type": "fake", "config": map[string]any{"path": "/srv/real", "password": "right-password"}}), 201, "create")
		id := r.str("id")
		path := "/api/v1/data-sources/" + id

		r = e.want(e.do("PATCH", path, editor, map[string]any{"config": map[string]any{"path": "/srv/attacker"}}), 400, "re-point without password")
		if r.str("error", "code") != "validation_failed" || !strings.Contains(r.str("error", "message"), "changing path requires password to be given again") {
			t.Errorf("message: %s", r.raw)
		}
		if !strings.Contains(string(r.raw), `"field":"config/password"`) {
			t.Errorf("the secret field is not named: %s", r.raw)
		}
		// Nothing changed: the health check still reaches the real place.
		if got := e.want(e.do("GET", path, editor, nil), 200, "get").body["config"].(map[string]any)["path"]; got != "/srv/real" {
			t.Fatalf("path after refused update = %v", got)
		}
		// Same value again, or the secret given again: fine.
		e.want(e.do("PATCH", path, editor, map[string]any{"config": map[string]any{"path": "/srv/real"}}), 200, "unchanged path")
		e.want(e.do("PATCH", path, editor, map[string]any{"config": map[string]any{"path": "/srv/other", "password": "right-password"}}), 200, "re-point with password")
		// Removing the secret while re-pointing sends nothing secret anywhere.
		e.want(e.do("PATCH", path, editor, map[string]any{"config": map[string]any{"path": "/srv/third", "password": nil}}), 200, "re-point dropping password")
		e.want(e.do("PATCH", path, e.admin, map[string]any{"config": map[string]any{"password": "right-password"}}), 200, "admin sets password")
		// An instance admin may re-point without repeating it.
		e.want(e.do("PATCH", path, e.admin, map[string]any{"config": map[string]any{"path": "/srv/fourth"}}), 200, "admin re-points")
		h := e.want(e.do("POST", path+"/health", editor, nil), 200, "health")
		if h.body["ok"] != true {
			t.Errorf("health after admin re-point: %s", h.raw)
		}
	})
}

// A13 and D-405: a wrong or unknown method answers in the error envelope:
// 405 with Allow on a known path (also where a parameter route of the same
// shape exists), 404 elsewhere.
func TestWrongMethodsAnswer405InEnvelope(t *testing.T) {
	e := newEnv(t, storetest.Targets()[0])
	cases := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"PROPFIND", "/api/v1/dashboards", 405, "GET, POST"},
		{"MKCOL", "/api/v1/dashboards/import", 405, "POST"},
		{"PROPFIND", "/no/such/path", 404, ""},
		{"GET", "/api/v1/dashboards/import", 405, "POST"},
		{"PUT", "/api/v1/dashboards/import/", 405, "POST"},
		{"DELETE", "/api/v1/dashboards", 405, "GET, POST"},
		{"PUT", "/api/v1/dashboards/01930000-0000-7000-8000-000000000001", 405, "DELETE, GET, PATCH"},
	}
	for _, c := range cases {
		r := e.do(c.method, c.path, e.admin, nil)
		if r.status != c.status {
			t.Errorf("%s %s: status %d, want %d: %s", c.method, c.path, r.status, c.status, r.raw)
			continue
		}
		if got := r.header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
		if want := map[int]string{405: "method_not_allowed", 404: "not_found"}[c.status]; r.str("error", "code") != want {
			t.Errorf("%s %s: code %q, want %q", c.method, c.path, r.str("error", "code"), want)
		}
	}
	// The right method still works.
	e.want(e.do("GET", "/api/v1/dashboards", e.admin, nil), 200, "list")
}

// A13: a client's X-Request-Id is used only when it is plain
// ([A-Za-z0-9._-]) and at most 128 bytes; otherwise the server makes one.
func TestClientRequestIDIsValidated(t *testing.T) {
	e := newEnv(t, storetest.Targets()[0])
	send := func(id string) string {
		req, _ := http.NewRequest("GET", e.base+"/api/v1/openapi.json", nil)
		req.Header.Set("X-Request-Id", id)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.Header.Get("X-Request-Id")
	}
	ok128 := strings.Repeat("a1._-", 25) + "xyz"
	for _, id := range []string{"abc-123_x.y", ok128} {
		if got := send(id); got != id {
			t.Errorf("valid id %q (%d bytes) answered with %q", id, len(id), got)
		}
	}
	for _, id := range []string{ok128 + "z", "a b", "x<script>", "id\"quote", "ünï", "a/b"} {
		got := send(id)
		if got == id || got == "" || strings.ContainsAny(got, " <\"/") || len(got) > 128 {
			t.Errorf("invalid id %q answered with %q", id, got)
		}
	}
}

// A12a: the API's maxLength counts characters; so do the column validators
// (and PostgreSQL's varchar): a name of multi-byte characters at the limit
// is stored, one more is a 400 naming the field, never a 500.
func TestMultiByteNamesAtTheLengthLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg)
		for _, ch := range []string{"é", "😀"} {
			name := strings.Repeat(ch, 255)
			r := e.want(e.do("POST", "/api/v1/dashboards", e.admin, map[string]any{"name": name}), 201, "dashboard "+ch)
			if r.str("name") != name {
				t.Errorf("dashboard name stored as %q", r.str("name"))
			}
			e.want(e.do("PATCH", "/api/v1/dashboards/"+r.str("id"), e.admin, map[string]any{"name": strings.Repeat(ch, 254) + "x"}), 200, "rename "+ch)
			r = e.want(e.do("POST", "/api/v1/dashboards", e.admin, map[string]any{"name": name + ch}), 400, "dashboard over the limit "+ch)
			if !strings.Contains(string(r.raw), `"field":"name"`) {
				t.Errorf("the field is not named: %s", r.raw)
			}
			q := e.want(e.do("POST", "/api/v1/queries", e.admin, map[string]any{"name": name, "sql": "SELECT 1"}), 201, "query "+ch)
			if q.str("name") != name {
				t.Errorf("query name stored as %q", q.str("name"))
			}
			e.want(e.do("POST", "/api/v1/departments", e.admin, map[string]any{"name": strings.Repeat(ch, 100)}), 201, "department "+ch)
			// Descriptions (TEXT columns) count characters too.
			long := strings.Repeat(ch, 10_000)
			e.want(e.do("POST", "/api/v1/dashboards", e.admin, map[string]any{"name": "described " + ch, "description": long}), 201, "dashboard description "+ch)
			e.want(e.do("POST", "/api/v1/queries", e.admin, map[string]any{"name": "described " + ch, "sql": "SELECT 1", "description": long}), 201, "query description "+ch)
			e.want(e.do("POST", "/api/v1/dashboards", e.admin, map[string]any{"name": "too long " + ch, "description": long + ch}), 400, "dashboard description over "+ch)
		}
	})
}

// A12b/c: list parameters are scalars; objects, arrays and repeated keys are
// a 400 naming the parameter, and a page beyond any possible offset is a 400
// naming page (PostgreSQL's OFFSET would overflow).
func TestListParametersMustBeScalarAndBounded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg)
		e.want(e.do("POST", "/api/v1/dashboards", e.admin, map[string]any{"name": "one"}), 201, "dashboard")
		for _, list := range []string{"/api/v1/dashboards", "/api/v1/users", "/api/v1/queries", "/api/v1/data-sources", "/api/v1/departments"} {
			for _, c := range []struct{ query, field string }{
				{"page[x]=1", "page"},
				{"q[]=a", "q"},
				{"per_page[0]=5", "per_page"},
				{"sort[]=name", "sort"},
				{"q=a&q=b", "q"},
				{"page=9223372036854775807", "page"},
				{"page=9223372036854775807&per_page=500", "page"},
				{"page=4611686018427387904&per_page=2", "page"},
				{"page=100000000&per_page=500", "page"},
			} {
				r := e.do("GET", list+"?"+c.query, e.admin, nil)
				if r.status != 400 || r.str("error", "code") != "validation_failed" || !strings.Contains(string(r.raw), `"field":"`+c.field+`"`) {
					t.Errorf("GET %s?%s: %d %s (want 400 naming %s)", list, c.query, r.status, r.raw, c.field)
				}
			}
			// A far but possible page is an empty page.
			r := e.want(e.do("GET", list+"?page=1000&per_page=500", e.admin, nil), 200, list+" far page")
			if items, _ := r.body["items"].([]any); len(items) != 0 {
				t.Errorf("%s far page: %s", list, r.raw)
			}
		}
	})
}

// fakeSource creates a data source on the fake connector and returns its id.
func (e *env) fakeSource(name string) string {
	e.t.Helper()
	return e.want(e.do("POST", "/api/v1/data-sources", e.admin, map[string]any{
		"name": name, "type": "fake", "config": map[string]any{"path": "/srv/" + name, "password": "right-password"}}), 201, "fake source").str("id")
}

// A12d/e: parameter values of a shape no connector can bind, and SQLite's
// own placeholder forms, are a 400 naming the parameter or sql before
// anything reaches the connector (they were 500/502 with Go internals).
func TestQueryParameterShapesAndRawPlaceholders(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg, withFakeConnector(t))
		path := "/api/v1/data-sources/" + e.fakeSource("params") + "/query"
		for _, params := range []map[string]any{
			{"x": []any{1, map[string]any{"a": 1}}},
			{"x": []any{1, "a"}},
			{"x": []any{[]any{1}}},
			{"x": map[string]any{"a": 1}},
		} {
			r := e.do("POST", path, e.admin, map[string]any{"sql": "params {{x}}", "parameters": params})
			if r.status != 400 || !strings.Contains(string(r.raw), `"field":"parameters.x"`) {
				t.Errorf("parameters %v: %d %s (want 400 naming parameters.x)", params, r.status, r.raw)
			}
			if strings.Contains(string(r.raw), "0x") || strings.Contains(string(r.raw), "interface") {
				t.Errorf("parameters %v: Go internals in %s", params, r.raw)
			}
		}
		r := e.want(e.do("POST", path, e.admin, map[string]any{"sql": "params {{x}}", "parameters": map[string]any{"x": []any{1, nil, 2}}}), 200, "list of numbers with a null")
		if rows, _ := r.body["rows"].([]any); len(rows) != 3 {
			t.Errorf("list parameters did not arrive as three values: %s", r.raw)
		}
		// The fake connector speaks SQLite's dialect: $1, :name and @name
		// are placeholders nobody binds.
		for _, sql := range []string{"SELECT $1", "SELECT :name", "SELECT @p", "SELECT ?1"} {
			r := e.want(e.do("POST", path, e.admin, map[string]any{"sql": sql}), 400, sql)
			if !strings.Contains(r.str("error", "message"), "use {{name}} placeholders") || !strings.Contains(string(r.raw), `"field":"sql"`) {
				t.Errorf("%s: %s", sql, r.raw)
			}
		}
	})
}

// D-stream: a stream that fails after it started must not pass for a
// complete one. NDJSON ends with an {"_error": {code, message, request_id}}
// line; CSV has no in-band marker, so the connection is cut before the end
// of the chunked body and the client's read fails.
func TestStreamFailingMidwayIsVisible(t *testing.T) {
	e := newEnv(t, storetest.Targets()[0], withFakeConnector(t))
	path := e.base + "/api/v1/data-sources/" + e.fakeSource("stream") + "/query"
	send := func(format, sql string) (*http.Response, []byte, error) {
		req, _ := http.NewRequest("POST", path+"?format="+format, strings.NewReader(`{"sql":"`+sql+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+e.admin)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		return res, body, err
	}
	// Complete streams read cleanly.
	for _, f := range []string{"csv", "ndjson"} {
		res, body, err := send(f, "rows 25 batch 10")
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("%s complete stream: %d %v %s", f, res.StatusCode, err, body)
		}
	}
	// crash: two batches of 100 rows, then the connector process dies.
	res, body, err := send("ndjson", "crash 2")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("ndjson: %d %v %s", res.StatusCode, err, body)
	}
	lines := strings.Split(strings.TrimRight(string(body), "\n"), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], `{"id":`) {
		t.Fatalf("ndjson: %d lines, want rows and an error line: %.300s", len(lines), body)
	}
	var last struct {
		Err *struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"_error"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Err == nil {
		t.Fatalf("ndjson last line is not a well-formed error line: %q (%v)", lines[len(lines)-1], err)
	}
	if last.Err.Code == "" || last.Err.Message == "" || last.Err.RequestID != res.Header.Get("X-Request-Id") {
		t.Errorf("ndjson error line %+v (request id header %q)", *last.Err, res.Header.Get("X-Request-Id"))
	}
	res, body, err = send("csv", "crash 2")
	if res.StatusCode != 200 {
		t.Fatalf("csv: status %d", res.StatusCode)
	}
	if err == nil {
		t.Fatalf("csv: a stream that failed midway read as complete (%d bytes)", len(body))
	}
}

// D-filters: a dashboard's filters cannot change so that a widget's
// config.filter_map points at a filter that no longer exists (duplicate and
// export → import then failed with 400): the change is a 400 naming the
// widget; after the mapping is removed it goes through.
func TestFilterChangeKeepsWidgetMappingsValid(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg, withFakeConnector(t))
		src := e.fakeSource("filters")
		q := e.want(e.do("POST", "/api/v1/queries", e.admin, map[string]any{"name": "by region", "sql": "params {{region}}",
			"data_source_id": src, "parameters": []any{map[string]any{"name": "region", "type": "text"}}}), 201, "query").str("id")
		region := map[string]any{"name": "region", "type": "text"}
		d := e.want(e.do("POST", "/api/v1/dashboards", e.admin, map[string]any{"name": "filtered", "filters": []any{region}}), 201, "dashboard").str("id")
		dpath := "/api/v1/dashboards/" + d
		w := e.want(e.do("POST", dpath+"/widgets", e.admin, map[string]any{"type": "table",
			"config":   map[string]any{"query_id": q, "filter_map": map[string]any{"region": "region"}},
			"position": map[string]any{"x": 0, "y": 0, "w": 6, "h": 4}}), 201, "widget").str("id")

		for name, filters := range map[string][]any{
			"removed": {},
			"renamed": {map[string]any{"name": "area", "type": "text"}},
		} {
			r := e.want(e.do("PATCH", dpath, e.admin, map[string]any{"filters": filters}), 400, "filters "+name)
			if !strings.Contains(string(r.raw), w) || !strings.Contains(string(r.raw), `"field":"filters"`) || r.str("error", "code") != "validation_failed" {
				t.Errorf("filters %s: the widget is not named: %s", name, r.raw)
			}
		}
		// Keeping the mapped filter (and adding one) is fine; the dashboard
		// still duplicates and round-trips through export/import.
		e.want(e.do("PATCH", dpath, e.admin, map[string]any{"filters": []any{region, map[string]any{"name": "year", "type": "number"}}}), 200, "filters kept")
		e.want(e.do("POST", dpath+"/duplicate", e.admin, nil), 201, "duplicate")
		doc := e.want(e.do("GET", dpath+"/export", e.admin, nil), 200, "export")
		e.want(e.do("POST", "/api/v1/dashboards/import", e.admin, doc.body), 201, "import")
		// Unmapped first, then the filter can go.
		e.want(e.do("PATCH", dpath+"/widgets/"+w, e.admin, map[string]any{"config": map[string]any{"query_id": q}}), 200, "unmap")
		e.want(e.do("PATCH", dpath, e.admin, map[string]any{"filters": []any{}}), 200, "filters removed after unmapping")
		e.want(e.do("POST", dpath+"/duplicate", e.admin, nil), 201, "duplicate after")
	})
}
