package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/alerting"
	"github.com/datapulse/datapulse/core/api"
	"github.com/datapulse/datapulse/core/dashboards"
	"github.com/datapulse/datapulse/core/datamodels"
	"github.com/datapulse/datapulse/core/datasources"
	"github.com/datapulse/datapulse/core/egress"
	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/notify"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/queries"
	"github.com/datapulse/datapulse/core/rendering"
	"github.com/datapulse/datapulse/core/resultcache"
	"github.com/datapulse/datapulse/core/secrets"
	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/plugins/host"
	"github.com/datapulse/datapulse/policy"
)

// fastArgon keeps the suite quick; the production parameters are covered by
// identity's own tests.
var fastArgon = identity.Argon2Params{MemoryKiB: 1024, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

const (
	adminEmail = "admin@example.com"
	adminPass  = "s3cure pass phrase"
	bodyLimit  = 64 << 10
)

var signingKey = []byte("0123456789abcdef0123456789abcdef-test-key")

// env is one API server on a real listener over a fresh database.
type env struct {
	t     *testing.T
	base  string
	srv   *api.Server
	store *store.Store
	id    *identity.Service
	facts *policy.Facts
	// alerts signs one-click links in tests.
	alerts *alerting.Service
	ds     *datasources.Service
	admin  string // admin access token
}

// envOption adjusts the connector host of a test environment.
type envOption func(*host.Options)

func newEnv(t *testing.T, tg storetest.Target, opts ...envOption) *env {
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
	id, err := identity.New(st.Client, identity.Options{SigningKey: signingKey, Argon2: fastArgon, Facts: facts,
		// Every test client is 127.0.0.1: only the per-account limit is exercised here.
		ClientBurst: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := id.BootstrapAdmin(context.Background(), adminEmail, adminPass); err != nil {
		t.Fatal(err)
	}
	var ho host.Options
	for _, o := range opts {
		o(&ho)
	}
	conns, err := host.New(context.Background(), ho)
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
	alerts := alerting.New(st.Client, enf, dm, qsv, alerting.Options{LinkKey: alerting.DeriveLinkKey(signingKey), Box: box})
	notifier, err := notify.New(notify.Config{Guard: egress.New(egress.AllowList{})})
	if err != nil {
		t.Fatal(err)
	}
	alerts.SetTester(alerting.NotifyTester{N: notifier})
	srv := api.New(api.Deps{Identity: id, Dashboards: dsh, Store: st, Alerts: alerts,
		DataSources: dsv, Queries: qsv, Models: dm, Rendering: rendering.New(dsh, qsv, dm, enf, 8, nil),
		Connectors: conns, Version: "test", BodyLimit: bodyLimit, RequestTimeout: 10 * time.Second})
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
	e := &env{t: t, base: "http://" + ln.Addr().String(), srv: srv, store: st, id: id, facts: facts, ds: dsv, alerts: alerts}
	e.admin = e.login(adminEmail, adminPass)
	return e
}

type resp struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r resp) str(path ...string) string {
	var v any = r.body
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

// do sends a request; body may be nil, a string (sent raw) or a value (JSON).
func (e *env) do(method, path, token string, body any) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
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
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 && strings.Contains(res.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			// Lists of objects at the top level do not occur in this API.
			e.t.Fatalf("%s %s: response is not a JSON object: %s", method, path, raw)
		}
	}
	if r.status >= 400 {
		e.checkEnvelope(method, path, r)
	}
	return r
}

// checkEnvelope asserts the one error envelope and that nothing internal leaks.
func (e *env) checkEnvelope(method, path string, r resp) {
	e.t.Helper()
	if r.str("error", "code") == "" || r.str("error", "message") == "" || r.str("error", "request_id") == "" {
		e.t.Errorf("%s %s: %d without the error envelope: %s", method, path, r.status, r.raw)
	}
	if r.header.Get("X-Request-Id") != r.str("error", "request_id") {
		e.t.Errorf("%s %s: request id header %q differs from body %q", method, path, r.header.Get("X-Request-Id"), r.str("error", "request_id"))
	}
	low := strings.ToLower(string(r.raw))
	for _, leak := range []string{"select ", "insert into", "sqlite", "pq:", "sqlstate", "goroutine", ".go:", "$argon2id$"} {
		if strings.Contains(low, leak) {
			e.t.Errorf("%s %s: error leaks %q: %s", method, path, leak, r.raw)
		}
	}
}

func (e *env) want(r resp, status int, what string) resp {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.raw)
	}
	return r
}

func (e *env) login(email, password string) string {
	e.t.Helper()
	r := e.want(e.do("POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": password}), 200, "login "+email)
	return r.str("access_token")
}

// createUser creates a user through the API and returns its id and token.
func (e *env) createUser(email, role string) (id, token string) {
	e.t.Helper()
	pw := "user password 123"
	r := e.want(e.do("POST", "/api/v1/users", e.admin, map[string]any{"email": email, "password": pw, "role": role}), 201, "create "+email)
	return r.str("id"), e.login(email, pw)
}
