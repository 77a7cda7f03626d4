package main_test

// Dashboard rendering and the result cache, measured on the real
// binary (SQLite metadata) with a real PostgreSQL data source:
//
//   - a dashboard of 20 widgets whose queries each take ~50 ms at the source
//     renders cold (Cache-Control: no-cache) in about the time of its slowest
//     widget, not the sum of all of them;
//   - warm (answered from the result cache) the same request takes ~1 ms;
//   - identical concurrent requests run the query once at the source
//     (single flight).
//
// The source is a schema with a plpgsql function slow(n) that sleeps 50 ms,
// read by a throw-away LOGIN role (the connector refuses superusers) whose
// sessions track plpgsql function calls (track_functions = 'pl'), so
// pg_stat_user_functions.calls counts what really ran at the source.
//
// PostgreSQL: DATAPULSE_TEST_POSTGRES_URL (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable), connected to as a
// superuser for the setup, the counting and the clean-up. A server named by
// the variable must answer; the default one is skipped when it does not,
// except on CI (CI set).
//
// Nothing here asserts on timing: the benchmark reports the numbers (and the
// ratio to the slowest widget), the test checks counts only.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

const (
	renderPostgresDefault = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	renderWidgetCount     = 20
	renderConcurrent      = 100
)

// renderInCI follows the repository's convention (core/models): on CI every
// configured server must answer.
func renderInCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "0" && v != "false"
}

// renderEnv is one run's PostgreSQL schema and role, and a DataPulse server
// with a data source on them, a saved query and a 20-widget dashboard.
type renderEnv struct {
	tb      testing.TB
	pg      *sql.DB // the superuser: setup, counting, clean-up
	schema  string  // also the role's name
	s       *server
	token   string
	dsID    string
	queryID string
	dashID  string
	widgets []string
}

// openRenderPostgres connects to the PostgreSQL server as its superuser, or
// skips (default server absent, not on CI).
func openRenderPostgres(tb testing.TB) (*sql.DB, *url.URL) {
	tb.Helper()
	raw, explicit := os.LookupEnv("DATAPULSE_TEST_POSTGRES_URL")
	if !explicit || raw == "" {
		raw, explicit = renderPostgresDefault, false
	}
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatalf("DATAPULSE_TEST_POSTGRES_URL: %v", err)
	}
	pg, err := sql.Open("pgx", raw)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pg.PingContext(ctx); err != nil {
		pg.Close()
		if explicit || renderInCI() {
			tb.Fatalf("PostgreSQL (DATAPULSE_TEST_POSTGRES_URL) does not answer: %v", err)
		}
		tb.Skipf("no PostgreSQL to render from (%v); set DATAPULSE_TEST_POSTGRES_URL", err)
	}
	tb.Cleanup(func() { pg.Close() })
	return pg, u
}

func newRenderEnv(tb testing.TB) *renderEnv {
	tb.Helper()
	pg, u := openRenderPostgres(tb)
	e := &renderEnv{tb: tb, pg: pg, schema: "dp_render_" + randHex(5)}
	password := "pw-" + randHex(8)
	exec := func(q string) {
		tb.Helper()
		if _, err := pg.Exec(q); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
	r := e.schema
	exec(`CREATE ROLE ` + r + ` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '` + password + `'`)
	tb.Cleanup(func() {
		e.terminateSessions()
		for _, q := range []string{`DROP SCHEMA IF EXISTS ` + r + ` CASCADE`, `DROP OWNED BY ` + r, `DROP ROLE IF EXISTS ` + r} {
			if _, err := pg.Exec(q); err != nil {
				tb.Errorf("clean-up: %s: %v", q, err)
			}
		}
	})
	for _, q := range []string{
		// The connector's sessions count plpgsql calls in pg_stat_user_functions.
		`ALTER ROLE ` + r + ` SET track_functions = 'pl'`,
		`CREATE SCHEMA ` + r,
		`CREATE FUNCTION ` + r + `.slow(n int) RETURNS int LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM pg_sleep(0.05);
			RETURN n;
		END $$`,
		`REVOKE ALL ON FUNCTION ` + r + `.slow(int) FROM PUBLIC`,
		`GRANT USAGE ON SCHEMA ` + r + ` TO ` + r,
		`GRANT EXECUTE ON FUNCTION ` + r + `.slow(int) TO ` + r,
	} {
		exec(q)
	}

	adminEmail, adminPW := "root@example.com", newPassword()
	e.s = startServer(tb, newSQLite(tb), "DATAPULSE_ADMIN_EMAIL="+adminEmail, "DATAPULSE_ADMIN_PASSWORD="+adminPW)
	s := e.s
	tb.Cleanup(func() { // before the schema goes (clean-ups run last first)
		if !s.hasExited() {
			s.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may be exiting already
			select {
			case <-s.exited:
			case <-time.After(exitTimeout):
			}
		}
	})
	e.token = s.login(adminEmail, adminPW).AccessToken

	port := 5432
	if p := u.Port(); p != "" {
		port, _ = strconv.Atoi(p)
	}
	var ds struct {
		ID string `json:"id"`
	}
	s.call(http.MethodPost, "/api/v1/data-sources", e.token, map[string]any{"name": "Warehouse", "type": "postgres", "config": map[string]any{
		"host": u.Hostname(), "port": port, "database": strings.TrimPrefix(u.Path, "/"),
		"user": r, "password": password, "sslmode": "disable", "application_name": "dp-render-bench",
	}}, http.StatusCreated, &ds)
	e.dsID = ds.ID

	var q struct {
		ID string `json:"id"`
	}
	s.call(http.MethodPost, "/api/v1/queries", e.token, map[string]any{
		"name": "slow", "data_source_id": ds.ID,
		"sql": "SELECT " + r + ".slow({{n}}) AS value, CAST({{salt}} AS bigint) AS salt",
		"parameters": []map[string]any{
			{"name": "n", "type": "number", "required": true},
			{"name": "salt", "type": "number", "default": 0},
		},
	}, http.StatusCreated, &q)
	e.queryID = q.ID

	// The dashboard filter "salt" flows into every widget's query: a new
	// value gives every widget a cache key nobody has used yet.
	var d struct {
		ID string `json:"id"`
	}
	s.call(http.MethodPost, "/api/v1/dashboards", e.token, map[string]any{
		"name": "Twenty slow widgets", "filters": []map[string]any{{"name": "salt", "type": "number", "default": 0}},
	}, http.StatusCreated, &d)
	e.dashID = d.ID
	for i := range renderWidgetCount {
		var w struct {
			ID string `json:"id"`
		}
		s.call(http.MethodPost, "/api/v1/dashboards/"+d.ID+"/widgets", e.token, map[string]any{
			"type": []string{"number", "table"}[i%2],
			"config": map[string]any{
				"title": fmt.Sprintf("widget %d", i+1), "query_id": q.ID,
				"parameters": map[string]any{"n": i + 1}, "filter_map": map[string]any{"salt": "salt"},
			},
			"position": map[string]any{"x": (i % 4) * 6, "y": (i / 4) * 4, "w": 6, "h": 4},
		}, http.StatusCreated, &w)
		e.widgets = append(e.widgets, w.ID)
	}
	return e
}

// ---- the source side ----

// terminateSessions ends the role's sessions and waits until they are gone.
// A backend flushes its statistics when it exits (before it leaves
// pg_stat_activity), so afterwards pg_stat_user_functions is complete.
func (e *renderEnv) terminateSessions() {
	e.tb.Helper()
	if _, err := e.pg.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, e.schema); err != nil {
		e.tb.Fatalf("terminate the connector's sessions: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := e.pg.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE usename = $1`, e.schema).Scan(&n); err != nil {
			e.tb.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.tb.Fatalf("%d sessions of %s still there 30 s after pg_terminate_backend", n, e.schema)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sourceCalls is how many times slow() has run at the source so far. It ends
// the connector's sessions to flush their statistics, then waits until the
// connector's pool would notice (pgxpool pings a connection idle for more
// than a second before handing it out, and drops a dead one).
func (e *renderEnv) sourceCalls() int64 {
	e.tb.Helper()
	e.terminateSessions()
	var calls int64
	err := e.pg.QueryRow(`SELECT pg_stat_clear_snapshot(), coalesce((SELECT calls FROM pg_stat_user_functions
		WHERE schemaname = $1 AND funcname = 'slow'), 0)`, e.schema).Scan(new(any), &calls)
	if err != nil {
		e.tb.Fatalf("read pg_stat_user_functions: %v", err)
	}
	time.Sleep(1200 * time.Millisecond)
	return calls
}

// sourceSessions is how many sessions the connector holds at the source.
func (e *renderEnv) sourceSessions() int {
	e.tb.Helper()
	var n int
	if err := e.pg.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE usename = $1`, e.schema).Scan(&n); err != nil {
		e.tb.Fatal(err)
	}
	return n
}

// ---- requests ----

type renderAnswer struct {
	status  int
	cache   string // X-DataPulse-Cache
	body    []byte
	elapsed time.Duration
}

// request sends one request (optionally Cache-Control: no-cache) and
// times it from send to the last byte of the answer.
func (e *renderEnv) request(method, path string, in any, noCache bool) (renderAnswer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, e.s.base+path, body)
	if err != nil {
		return renderAnswer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if noCache {
		req.Header.Set("Cache-Control", "no-cache")
	}
	started := time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		return renderAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	a := renderAnswer{status: resp.StatusCode, cache: resp.Header.Get("X-DataPulse-Cache"), body: b, elapsed: time.Since(started)}
	return a, err
}

func (e *renderEnv) must(method, path string, in any, noCache bool) renderAnswer {
	e.tb.Helper()
	a, err := e.request(method, path, in, noCache)
	if err != nil {
		e.tb.Fatalf("%s %s: %v", method, path, err)
	}
	if a.status != http.StatusOK {
		e.tb.Fatalf("%s %s: status %d; body: %s", method, path, a.status, a.body)
	}
	return a
}

func (e *renderEnv) dashboardPath(salt int64) string {
	p := "/api/v1/dashboards/" + e.dashID + "/data"
	if salt != 0 {
		p += "?filters=" + url.QueryEscape(fmt.Sprintf(`{"salt":%d}`, salt))
	}
	return p
}

type renderedWidget struct {
	WidgetID string          `json:"widget_id"`
	Status   string          `json:"status"`
	Cache    string          `json:"cache"`
	Result   json.RawMessage `json:"result"`
	Error    json.RawMessage `json:"error"`
}

type renderedDashboard struct {
	Widgets   []renderedWidget `json:"widgets"`
	ElapsedMS int64            `json:"elapsed_ms"`
}

// render renders the dashboard and requires every widget to have data
// with the given widget cache status (header: the dashboard's).
func (e *renderEnv) render(salt int64, noCache bool, wantCache string) (renderAnswer, renderedDashboard) {
	e.tb.Helper()
	a := e.must(http.MethodGet, e.dashboardPath(salt), nil, noCache)
	d := e.checkRender(a, wantCache)
	return a, d
}

func (e *renderEnv) checkRender(a renderAnswer, wantCache string) renderedDashboard {
	e.tb.Helper()
	var d renderedDashboard
	if err := json.Unmarshal(a.body, &d); err != nil {
		e.tb.Fatalf("dashboard data: %v: %s", err, a.body)
	}
	if len(d.Widgets) != renderWidgetCount {
		e.tb.Fatalf("dashboard data has %d widgets, want %d", len(d.Widgets), renderWidgetCount)
	}
	for i, w := range d.Widgets {
		if w.Status != "ok" || len(w.Result) == 0 || string(w.Result) == "null" {
			e.tb.Fatalf("widget %d: status %q, error %s", i+1, w.Status, w.Error)
		}
		if wantCache != "" && w.Cache != wantCache {
			e.tb.Fatalf("widget %d: cache %q, want %q", i+1, w.Cache, wantCache)
		}
	}
	if wantCache != "" && wantCache != "miss" && a.cache != wantCache {
		e.tb.Fatalf("X-DataPulse-Cache: %q, want %q", a.cache, wantCache)
	}
	return d
}

// concurrently sends n requests at once (all started before any is sent)
// and returns the answers.
func (e *renderEnv) concurrently(n int, method, path string, in any, noCache bool) []renderAnswer {
	e.tb.Helper()
	out := make([]renderAnswer, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i], errs[i] = e.request(method, path, in, noCache)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			e.tb.Fatalf("concurrent request %d: %v", i, err)
		}
		if out[i].status != http.StatusOK {
			e.tb.Fatalf("concurrent request %d: status %d; body: %s", i, out[i].status, out[i].body)
		}
	}
	return out
}

// freshSalt is a filter / parameter value no earlier request used.
func freshSalt() int64 {
	v, _ := strconv.ParseInt(randHex(6), 16, 64)
	return v + 1
}

// ---- the test ----

// TestRenderSingleFlight: 100 identical concurrent requests run the query
// once at the source and all get the same answer; a warm render runs
// nothing; a no-cache render runs every widget again; 100 concurrent
// renders of a dashboard nobody rendered with that filter value run each of
// its 20 widgets once. Counts only, no timing.
func TestRenderSingleFlight(t *testing.T) {
	e := newRenderEnv(t)
	runPath := "/api/v1/queries/" + e.queryID + "/run"

	// The counter itself: one run, one call; concurrent no-cache runs (which
	// are not coalesced, see resultcache.Cache.Do) on several sessions, one
	// call each.
	base := e.sourceCalls()
	e.must(http.MethodPost, runPath, map[string]any{"parameters": map[string]any{"n": 1, "salt": freshSalt()}}, false)
	if got := e.sourceCalls() - base; got != 1 {
		t.Fatalf("one run counted %d calls of slow() at the source, want 1", got)
	}
	base = e.sourceCalls()
	e.concurrently(10, http.MethodPost, runPath, map[string]any{"parameters": map[string]any{"n": 2, "salt": freshSalt()}}, true)
	if got := e.sourceCalls() - base; got != 10 {
		t.Fatalf("10 concurrent no-cache runs counted %d calls of slow() at the source, want 10", got)
	}

	{ // 100 concurrent runs of a saved query
		base := e.sourceCalls()
		in := map[string]any{"parameters": map[string]any{"n": 7, "salt": freshSalt()}}
		answers := e.concurrently(renderConcurrent, http.MethodPost, runPath, in, false)
		got := e.sourceCalls() - base
		misses := 0
		for i, a := range answers {
			if string(a.body) != string(answers[0].body) {
				t.Errorf("answer %d differs from answer 0:\n%s\n%s", i, a.body, answers[0].body)
			}
			if a.cache == "miss" {
				misses++
			}
		}
		var r struct {
			Rows     [][]any `json:"rows"`
			RowCount int     `json:"row_count"`
		}
		if err := json.Unmarshal(answers[0].body, &r); err != nil || r.RowCount != 1 || r.Rows[0][0] != float64(7) {
			t.Errorf("result %s (%v), want one row with value 7", answers[0].body, err)
		}
		t.Logf("%d requests: %d answered by the shared computation (miss), %d from the cache (hit)", renderConcurrent, misses, renderConcurrent-misses)
		if got != 1 {
			t.Fatalf("%d concurrent identical runs ran slow() %d times at the source, want exactly 1", renderConcurrent, got)
		}
	}

	{ // warm and no-cache renders
		base := e.sourceCalls()
		e.render(0, false, "") // the first render fills the cache
		if got := e.sourceCalls() - base; got != renderWidgetCount {
			t.Fatalf("first render ran slow() %d times, want %d (one per widget)", got, renderWidgetCount)
		}
		base += renderWidgetCount
		e.render(0, false, "hit")
		if got := e.sourceCalls() - base; got != 0 {
			t.Fatalf("a warm render ran slow() %d times at the source, want 0", got)
		}
		e.render(0, true, "bypass")
		if got := e.sourceCalls() - base; got != renderWidgetCount {
			t.Fatalf("a no-cache render ran slow() %d times at the source, want %d", got, renderWidgetCount)
		}
	}

	{ // 100 concurrent renders with a fresh cache key
		base := e.sourceCalls()
		answers := e.concurrently(renderConcurrent, http.MethodGet, e.dashboardPath(freshSalt()), nil, false)
		got := e.sourceCalls() - base
		first := e.checkRender(answers[0], "")
		for i, a := range answers {
			d := e.checkRender(a, "")
			for j, w := range d.Widgets {
				if w.WidgetID != first.Widgets[j].WidgetID || string(w.Result) != string(first.Widgets[j].Result) {
					t.Fatalf("render %d, widget %d: %s, render 0: %s", i, j+1, w.Result, first.Widgets[j].Result)
				}
			}
		}
		if got != renderWidgetCount {
			t.Fatalf("%d concurrent renders ran slow() %d times at the source, want %d (each widget once)", renderConcurrent, got, renderWidgetCount)
		}
	}
}

// ---- the benchmark ----

// BenchmarkDashboardRender measures, in one run on one server:
//
//   - slowest_widget_ms: each of the 20 widgets rendered alone
//     (GET …/widgets/{id}/data, Cache-Control: no-cache), median of 3; the
//     slowest;
//   - sum_widgets_ms: their sum (what a serial render would cost);
//   - cold_render_ms: GET /api/v1/dashboards/{id}/data with
//     Cache-Control: no-cache (every widget runs at the source; the
//     connector's pool is warm), median of 5;
//   - cold_ratio: cold_render_ms / slowest_widget_ms (target ≤ 2);
//   - source_sessions: the connector's sessions at the source after the cold
//     renders (how many widgets could run there at once);
//   - warm_p50_ms, warm_p99_ms: the same request answered from the result
//     cache (X-DataPulse-Cache: hit), 200 sequential requests (target p50 ≤ 2);
//   - source_queries_for_100_concurrent: calls of the query's function at the
//     source for 100 concurrent identical POST /api/v1/queries/{id}/run
//     with a fresh cache key (target 1);
//   - dashboard_source_queries_for_100_concurrent: the same for 100
//     concurrent renders of the 20-widget dashboard with a fresh filter value
//     (target 20: each widget once);
//   - cold_render_max_connections_4_ms, cold_ratio_max_connections_4: the
//     cold render again with the data source's max_connections set to 4 (the
//     connector's fixed pool size before the setting existed), for
//     comparison.
//
// Latencies are client-side (send → last byte) over HTTP on 127.0.0.1.
//
//	go test ./cmd/datapulse -run '^$' -bench BenchmarkDashboardRender -benchtime=1x -count=3
func BenchmarkDashboardRender(b *testing.B) {
	e := newRenderEnv(b)
	var m map[string]float64
	n := 0
	for b.Loop() {
		one := e.measure()
		if m == nil {
			m = map[string]float64{}
		}
		for k, v := range one {
			m[k] += v
		}
		n++
	}
	for k, v := range m {
		b.ReportMetric(v/float64(n), k)
	}
	b.ReportMetric(0, "ns/op") // the loop's own time means nothing here
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

func (e *renderEnv) measure() map[string]float64 {
	e.tb.Helper()
	m := map[string]float64{}
	// Warm up: connector process, pool connections, statement descriptions.
	for range 2 {
		e.render(0, true, "bypass")
	}

	// Each widget alone: the median of 3 (one stray sample must not make
	// the slowest widget look slower than it is).
	var slowest, sum time.Duration
	for _, w := range e.widgets {
		var ds []time.Duration
		for range 3 {
			ds = append(ds, e.must(http.MethodGet, "/api/v1/dashboards/"+e.dashID+"/widgets/"+w+"/data", nil, true).elapsed)
		}
		slices.Sort(ds)
		slowest = max(slowest, ds[1])
		sum += ds[1]
	}
	m["slowest_widget_ms"] = msOf(slowest)
	m["sum_widgets_ms"] = msOf(sum)

	var cold []time.Duration
	for range 5 {
		a, _ := e.render(0, true, "bypass")
		cold = append(cold, a.elapsed)
	}
	slices.Sort(cold)
	m["cold_render_ms"] = msOf(cold[len(cold)/2])
	m["cold_ratio"] = float64(cold[len(cold)/2]) / float64(slowest)
	m["source_sessions"] = float64(e.sourceSessions())

	for range 20 { // warm-up
		e.render(0, false, "hit")
	}
	var warm []time.Duration
	for range 200 {
		a, _ := e.render(0, false, "hit")
		warm = append(warm, a.elapsed)
	}
	slices.Sort(warm)
	m["warm_p50_ms"] = msOf(warm[len(warm)/2])
	m["warm_p99_ms"] = msOf(warm[(len(warm)*99+99)/100-1])

	base := e.sourceCalls()
	e.concurrently(renderConcurrent, http.MethodPost, "/api/v1/queries/"+e.queryID+"/run",
		map[string]any{"parameters": map[string]any{"n": 3, "salt": freshSalt()}}, false)
	after := e.sourceCalls()
	m["source_queries_for_100_concurrent"] = float64(after - base)

	e.concurrently(renderConcurrent, http.MethodGet, e.dashboardPath(freshSalt()), nil, false)
	m["dashboard_source_queries_for_100_concurrent"] = float64(e.sourceCalls() - after)

	// The same cold render with the connector's pool capped at 4 sessions
	// (its fixed size before max_connections existed): the widgets queue.
	e.setMaxConnections(4)
	cold = cold[:0]
	for i := range 5 {
		a, _ := e.render(0, true, "bypass")
		if i > 0 { // the first one opens the new pool
			cold = append(cold, a.elapsed)
		}
	}
	slices.Sort(cold)
	m["cold_render_max_connections_4_ms"] = msOf(cold[len(cold)/2])
	m["cold_ratio_max_connections_4"] = float64(cold[len(cold)/2]) / float64(slowest)
	e.setMaxConnections(20)
	return m
}

// setMaxConnections changes the data source's connector pool size (a new
// configuration: the connector opens a new pool).
func (e *renderEnv) setMaxConnections(n int) {
	e.tb.Helper()
	e.must(http.MethodPatch, "/api/v1/data-sources/"+e.dsID, map[string]any{"config": map[string]any{"max_connections": n}}, false)
}
