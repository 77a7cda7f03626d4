package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/core/store/storetest"
)

// outageResult is one request made by the load during the fault test.
type outageResult struct {
	at         time.Time
	status     int
	code       string
	retryAfter string
	err        error
}

// TestOutagePostgres runs two replicas of the real binary on a throw-away
// PostgreSQL cluster (never the shared server), puts a small bounded load
// on one (clients creating dashboards), stops the cluster with
// `pg_ctl -m fast stop` for a few seconds and starts it again, then restarts
// it without a pause. Every request
// that failed must be 503 unavailable with Retry-After (none 500, no
// transport errors), requests must succeed again once the database is back,
// policy sync must resume (the second replica sees a share made on the first)
// and each server's log about the outage must stay within a few dozen lines.
func TestOutagePostgres(t *testing.T) {
	cl := storetest.StartCluster(t) // skips without Debian's PostgreSQL binaries
	ctx := context.Background()
	dbURL, drop, err := store.CreateTempDatabase(ctx, cl.URL(), "datapulse_outage")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	// Both replicas share the data directory (its key files) and the database.
	db := &database{name: "postgres", dataDir: t.TempDir(), url: dbURL}
	adminEmail, adminPW := "root@example.com", newPassword()
	env := []string{"DATAPULSE_ADMIN_EMAIL=" + adminEmail, "DATAPULSE_ADMIN_PASSWORD=" + adminPW}
	a := startServer(t, db, env...)
	b := startServer(t, db, env...)

	admin := a.login(adminEmail, adminPW).AccessToken
	userPW := newPassword()
	var u user
	a.call(http.MethodPost, "/api/v1/users", admin, map[string]any{"email": "viewer@example.com", "password": userPW, "role": "user"}, http.StatusCreated, &u)
	viewer := b.login("viewer@example.com", userPW).AccessToken

	// The load: a few clients creating dashboards on replica a, each request
	// bounded by a timeout, with a short pause between requests.
	const clients = 4
	hc := &http.Client{Timeout: 10 * time.Second}
	var (
		mu      sync.Mutex
		results []outageResult
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				r := outageResult{}
				status, body, err := a.doWith(rctx, hc, http.MethodPost, "/api/v1/dashboards", admin, map[string]any{"name": fmt.Sprintf("load %d-%d", c, i)})
				cancel()
				r.at, r.status, r.err = time.Now(), status, err
				if err == nil && status != http.StatusCreated {
					var eb errorBody
					json.Unmarshal(body, &eb) //nolint:errcheck // checked through code below
					r.code = eb.Error.Code
				}
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	// Retry-After comes from a header the load does not keep: one probe per
	// outage answer is enough, so sample it separately during the outage.
	var probes []outageResult
	probe := func() {
		req, _ := http.NewRequest(http.MethodGet, a.base+"/api/v1/dashboards", nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := hc.Do(req)
		r := outageResult{at: time.Now(), err: err}
		if err == nil {
			var eb errorBody
			json.NewDecoder(resp.Body).Decode(&eb) //nolint:errcheck // checked through code below
			resp.Body.Close()
			r.status, r.code, r.retryAfter = resp.StatusCode, eb.Error.Code, resp.Header.Get("Retry-After")
		}
		probes = append(probes, r)
	}

	time.Sleep(1 * time.Second) // load on a healthy database
	stoppedAt := time.Now()
	cl.Stop()
	outage := 3 * time.Second
	for deadline := time.Now().Add(outage); time.Now().Before(deadline); {
		probe()
		time.Sleep(250 * time.Millisecond)
	}
	cl.Start() // returns once the server accepts connections
	back := time.Now()

	// Requests succeed again: the first 201 after the restart, bounded.
	var firstOK time.Time
	for wait := time.After(10 * time.Second); firstOK.IsZero(); {
		mu.Lock()
		for _, r := range results {
			if r.status == http.StatusCreated && r.at.After(back) {
				firstOK = r.at
				break
			}
		}
		mu.Unlock()
		if !firstOK.IsZero() {
			break
		}
		select {
		case <-wait:
			t.Fatalf("no dashboard created within 10 s of the database accepting connections again")
		case <-time.After(20 * time.Millisecond):
		}
	}

	// Policy sync resumes: replica b hears of a share made on replica a.
	// Its listener must be back within a generous bound of the restart.
	policyBack := waitLogRecord(t, b, back, "listening again", "datapulse_policy", 3*time.Second)
	var d struct {
		ID string `json:"id"`
	}
	a.call(http.MethodPost, "/api/v1/dashboards", admin, map[string]any{"name": "shared after the outage"}, http.StatusCreated, &d)
	if status, _, err := b.do(ctx, http.MethodGet, "/api/v1/dashboards/"+d.ID, viewer, nil); err != nil || status != http.StatusNotFound {
		t.Fatalf("viewer sees the unshared dashboard on b: %d %v", status, err)
	}
	a.call(http.MethodPut, "/api/v1/dashboards/"+d.ID+"/shares/"+u.ID, admin, map[string]any{"permission_level": "view"}, http.StatusOK, nil)
	sharedAt := time.Now()
	var seenAt time.Time
	for wait := time.After(10 * time.Second); seenAt.IsZero(); {
		status, _, err := b.do(ctx, http.MethodGet, "/api/v1/dashboards/"+d.ID, viewer, nil)
		if err == nil && status == http.StatusOK {
			seenAt = time.Now()
			break
		}
		select {
		case <-wait:
			t.Fatalf("replica b did not see the share within 10 s (last answer %d %v)", status, err)
		case <-time.After(10 * time.Millisecond):
		}
	}

	cacheBack := waitLogRecord(t, b, back, "listening again", "datapulse_cache", 3*time.Second)

	// A restart without a pause (pg_ctl stop, then start at once) under the
	// same load: creates succeed again afterwards.
	cl.Stop()
	cl.Start()
	restarted := time.Now()
	var afterRestart time.Time
	for wait := time.After(10 * time.Second); afterRestart.IsZero(); {
		mu.Lock()
		for _, r := range results {
			if r.status == http.StatusCreated && r.at.After(restarted) {
				afterRestart = r.at
				break
			}
		}
		mu.Unlock()
		if !afterRestart.IsZero() {
			break
		}
		select {
		case <-wait:
			t.Fatalf("no dashboard created within 10 s of the restart")
		case <-time.After(20 * time.Millisecond):
		}
	}
	waitLogRecord(t, b, restarted, "listening again", "datapulse_policy", 3*time.Second)

	time.Sleep(500 * time.Millisecond) // a little load after recovery
	stop.Store(true)
	wg.Wait()

	// Every failure during the outage: 503 unavailable; nothing else.
	var ok, unavailable, other, transport int
	for _, r := range results {
		switch {
		case r.err != nil:
			transport++
			if transport <= 5 {
				t.Errorf("transport error at +%v: %v", r.at.Sub(stoppedAt).Round(time.Millisecond), r.err)
			}
		case r.status == http.StatusCreated:
			ok++
		case r.status == http.StatusServiceUnavailable && r.code == "unavailable":
			unavailable++
		default:
			other++
			if other <= 5 {
				t.Errorf("request at +%v answered %d %q, want 201 or 503 unavailable", r.at.Sub(stoppedAt).Round(time.Millisecond), r.status, r.code)
			}
		}
	}
	if unavailable == 0 {
		t.Errorf("no 503 during a %v outage (%d requests): the test did not see the outage", outage, len(results))
	}
	probe503 := 0
	for _, p := range probes {
		if p.err != nil || p.status != http.StatusServiceUnavailable || p.code != "unavailable" || p.retryAfter == "" {
			t.Errorf("probe during the outage: %d %q Retry-After %q err %v, want 503 unavailable with Retry-After", p.status, p.code, p.retryAfter, p.err)
			continue
		}
		probe503++
	}

	// A clean stop reports the failure counts not yet logged.
	a.stop()
	b.stop()

	// The log about the outage stays bounded (the access log aside: one
	// line per request by design, at warn for the 503s), and its counts
	// account for every 503.
	const maxLines = 30
	for _, s := range []*server{a, b} {
		name := map[*server]string{a: "a", b: "b"}[s]
		var lines, errorLines, access500, accessWarn503, access503, counted int
		var kept []string
		for _, rec := range logRecords(s.stderr.String()) {
			lvl, _ := rec["level"].(string)
			msg, _ := rec["msg"].(string)
			if msg == "http request" {
				switch rec["status"] {
				case float64(500):
					access500++
				case float64(503):
					access503++
					if lvl == "WARN" {
						accessWarn503++
					}
				}
				continue
			}
			if strings.HasPrefix(msg, "database unavailable") {
				if n, ok := rec["more_like_this"].(float64); ok {
					counted += int(n)
				} else {
					counted++
				}
			}
			if lvl == "ERROR" {
				errorLines++
			}
			if lvl == "WARN" || lvl == "ERROR" {
				lines++
				if len(kept) < 60 {
					kept = append(kept, fmt.Sprintf("%s %s %v %v", lvl, msg, rec["channel"], rec["more_like_this"]))
				}
			}
		}
		if access500 != 0 {
			t.Errorf("replica %s: %d requests answered 500", name, access500)
		}
		if access503 != accessWarn503 {
			t.Errorf("replica %s: %d of %d 503s in the access log not at warn", name, access503-accessWarn503, access503)
		}
		if errorLines != 0 {
			t.Errorf("replica %s: %d lines at error about an outage, want warn:\n%s", name, errorLines, strings.Join(kept, "\n"))
		}
		if counted != access503 {
			t.Errorf("replica %s: the failure log accounts for %d failures, the access log has %d 503s", name, counted, access503)
		}
		if lines > maxLines {
			t.Errorf("replica %s: %d warn/error lines about a %v outage, want at most %d:\n%s", name, lines, outage, maxLines, strings.Join(kept, "\n"))
		}
		t.Logf("replica %s: %d warn/error log lines (access log aside) counting %d failed requests; access log: %d 503 lines (all at warn: %v), %d 500",
			name, lines, counted, access503, access503 == accessWarn503, access500)
		if testing.Verbose() {
			t.Logf("replica %s lines:\n%s", name, strings.Join(kept, "\n"))
		}
	}
	t.Logf("outage %v: %d requests, %d created, %d answered 503 unavailable, %d other, %d transport errors; %d/%d probes 503 with Retry-After",
		outage, len(results), ok, unavailable, other, transport, probe503, len(probes))
	t.Logf("recovery after the database accepted connections: first create %v, policy listener on b %v, cache listener on b %v; share seen on b %v after it was made; after the quick restart: first create %v",
		firstOK.Sub(back).Round(time.Millisecond), policyBack.Sub(back).Round(time.Millisecond), cacheBack.Sub(back).Round(time.Millisecond),
		seenAt.Sub(sharedAt).Round(time.Millisecond), afterRestart.Sub(restarted).Round(time.Millisecond))
}

// waitLogRecord waits (bounded by timeout) for a log record of s with
// message msg and channel ch logged after since, and returns its time.
func waitLogRecord(t *testing.T, s *server, since time.Time, msg, ch string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.After(timeout)
	for {
		for _, rec := range logRecords(s.stderr.String()) {
			if rec["msg"] != msg || rec["channel"] != ch {
				continue
			}
			ts, _ := rec["time"].(string)
			at, err := time.Parse(time.RFC3339Nano, ts)
			if err == nil && at.After(since) {
				return at
			}
		}
		select {
		case <-deadline:
			t.Fatalf("no %q log record for channel %s within %v of the database accepting connections:\n%s", msg, ch, timeout, s.stderr.String())
		case <-s.stderr.changed:
		case <-time.After(20 * time.Millisecond):
		}
	}
}
