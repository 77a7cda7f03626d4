package main_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/notify"
)

// TestAlertReplicasPostgres runs two `serve` replicas of the real binary on
// one PostgreSQL metadata database for a few evaluation intervals and checks,
// by counts only:
//
//   - each alert is evaluated once per interval, counted at the source: every
//     alert's saved query calls its own plpgsql function, whose calls the
//     source's statistics count (track_functions = 'pl' on the connector's
//     role, pg_stat_user_functions read after the sessions ended). Two
//     replicas evaluating independently would count about twice as many;
//   - no duplicate notification: the alert fires once, so each alert has one
//     alert_notifications row (its owner) and the webhook listener receives
//     exactly one signed POST per alert (one delivery id, never repeated).
//
// The alerts are created paused (the query runs once to check the column) so
// the check's call is counted apart; resuming sets next_eval_at to now.
// Evaluations are claimed at least interval_seconds apart (next_eval_at moves
// one interval on from the claim), so over an active window of W seconds an
// alert can be evaluated at most floor(W/interval)+1 times; the lower bound
// allows a few seconds of lag per interval on a busy machine.
func TestAlertReplicasPostgres(t *testing.T) {
	raw := os.Getenv("DATAPULSE_TEST_POSTGRES_URL")
	if raw == "" {
		t.Skip("DATAPULSE_TEST_POSTGRES_URL is not set: the two-replica alert test needs a PostgreSQL server")
	}
	const (
		alerts   = 3
		interval = 10 // seconds, the minimum
		window   = 35 * time.Second
	)
	ctx := context.Background()
	pg, u := openRenderPostgres(t) // the superuser: source setup and counting
	role := "dp_alertrep_" + randHex(5)
	password := "pw-" + randHex(8)
	exec := func(q string) {
		t.Helper()
		if _, err := pg.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	endSessions := func() {
		t.Helper()
		if _, err := pg.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, role); err != nil {
			t.Fatalf("terminate the connector's sessions: %v", err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; {
			var n int
			if err := pg.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE usename = $1`, role).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d sessions of %s still there 30 s after pg_terminate_backend", n, role)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	exec(`CREATE ROLE ` + role + ` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '` + password + `'`)
	t.Cleanup(func() {
		pg.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, role) //nolint:errcheck // best effort
		time.Sleep(100 * time.Millisecond)
		for _, q := range []string{`DROP SCHEMA IF EXISTS ` + role + ` CASCADE`, `DROP OWNED BY ` + role, `DROP ROLE IF EXISTS ` + role} {
			if _, err := pg.Exec(q); err != nil {
				t.Errorf("clean-up: %s: %v", q, err)
			}
		}
	})
	exec(`ALTER ROLE ` + role + ` SET track_functions = 'pl'`)
	exec(`CREATE SCHEMA ` + role)
	exec(`GRANT USAGE ON SCHEMA ` + role + ` TO ` + role)
	for i := range alerts {
		f := fmt.Sprintf("%s.probe%d()", role, i)
		exec(`CREATE FUNCTION ` + f + ` RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$`)
		exec(`REVOKE ALL ON FUNCTION ` + f + ` FROM PUBLIC`)
		exec(`GRANT EXECUTE ON FUNCTION ` + f + ` TO ` + role)
	}
	calls := func() []int64 {
		t.Helper()
		endSessions()
		out := make([]int64, alerts)
		for i := range alerts {
			err := pg.QueryRow(`SELECT pg_stat_clear_snapshot(), coalesce((SELECT calls FROM pg_stat_user_functions
				WHERE schemaname = $1 AND funcname = $2), 0)`, role, fmt.Sprintf("probe%d", i)).Scan(new(any), &out[i])
			if err != nil {
				t.Fatalf("read pg_stat_user_functions: %v", err)
			}
		}
		return out
	}

	// The webhook listener: counts POSTs per delivery id, checks signatures.
	const secret = "replica-test-secret-0123456789"
	var (
		mu         sync.Mutex
		deliveries = map[string]int{} // delivery id → POSTs
		perAlert   = map[string]int{} // alert id (from the path) → POSTs
		badSig     int
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		if !notify.Verify(secret, body, r.Header.Get(notify.HeaderSignature)) {
			badSig++
		}
		deliveries[r.Header.Get(notify.HeaderDelivery)]++
		perAlert[strings.TrimPrefix(r.URL.Path, "/hook/")]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go hs.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { hs.Close() })
	hookBase := "http://" + ln.Addr().String() + "/hook/"

	// Two replicas on one metadata database (and one data directory: its keys).
	db := newPostgres(t, raw)
	adminEmail, adminPW := "root@example.com", newPassword()
	env := []string{"DATAPULSE_ADMIN_EMAIL=" + adminEmail, "DATAPULSE_ADMIN_PASSWORD=" + adminPW, "DATAPULSE_EGRESS_ALLOW=127.0.0.1"}
	a := startServer(t, db, env...)
	b := startServer(t, db, env...)
	token := a.login(adminEmail, adminPW).AccessToken

	port := 5432
	if p := u.Port(); p != "" {
		port, _ = strconv.Atoi(p)
	}
	var ds struct {
		ID string `json:"id"`
	}
	a.call(http.MethodPost, "/api/v1/data-sources", token, map[string]any{"name": "Source", "type": "postgres", "config": map[string]any{
		"host": u.Hostname(), "port": port, "database": strings.TrimPrefix(u.Path, "/"),
		"user": role, "password": password, "sslmode": "disable", "application_name": "dp-alert-replicas",
	}}, http.StatusCreated, &ds)
	ids := make([]string, alerts)
	for i := range alerts {
		var q struct {
			ID string `json:"id"`
		}
		a.call(http.MethodPost, "/api/v1/queries", token, map[string]any{
			"name": fmt.Sprintf("probe %d", i), "data_source_id": ds.ID,
			"sql": fmt.Sprintf("SELECT %s.probe%d() AS value", role, i),
		}, http.StatusCreated, &q)
		var al struct {
			ID string `json:"id"`
		}
		// Created paused: nothing evaluates it before the baseline is read.
		a.call(http.MethodPost, "/api/v1/alerts", token, map[string]any{
			"metric": fmt.Sprintf("probe %d", i), "threshold_type": "above", "threshold_value": 0,
			"source":           map[string]any{"query_id": q.ID, "column": "value"},
			"interval_seconds": interval, "for_seconds": 0, "status": "paused",
			"error_state": "keep_state", // a source error is no state change (and no notification)
			"channels":    []map[string]any{{"type": "webhook", "target": hookBase + strconv.Itoa(i), "secret": secret}},
		}, http.StatusCreated, &al)
		ids[i] = al.ID
	}
	base := calls() // the column checks at creation
	// The connector's pool still holds the sessions just ended: pgxpool
	// pings a connection idle for more than a second before handing it out
	// (and drops a dead one), so wait that second rather than let the first
	// evaluation meet a dead connection.
	time.Sleep(1200 * time.Millisecond)

	start := time.Now()
	for i, id := range ids {
		s := []*server{a, b}[i%2]
		s.call(http.MethodPatch, "/api/v1/alerts/"+id, token, map[string]any{"status": "active"}, http.StatusOK, nil)
	}
	resumed := time.Since(start)
	time.Sleep(window)
	// Every alert fired on its first evaluation: wait (bounded) until each
	// webhook has had its POST, so a duplicate would have had time to show.
	for deadline := time.Now().Add(20 * time.Second); ; {
		mu.Lock()
		n := len(perAlert)
		mu.Unlock()
		if n == alerts || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.stop()
	b.stop()
	active := time.Since(start)
	got := calls()

	maxEvals := int64(active/(interval*time.Second)) + 1
	// Lower bound: at most 5 s of lag per interval on a busy 2-core machine.
	minEvals := int64(window / ((interval + 5) * time.Second))
	t.Logf("active %.1fs (resume took %.1fs); evaluations allowed per alert: %d..%d", active.Seconds(), resumed.Seconds(), minEvals, maxEvals)
	for i := range alerts {
		evals := got[i] - base[i]
		t.Logf("alert %d: %d creation check(s), %d evaluations at the source", i, base[i], evals)
		if evals > maxEvals {
			t.Errorf("alert %d was evaluated %d times in %.1fs at a %d s interval (at most %d): evaluated more than once per interval", i, evals, active.Seconds(), interval, maxEvals)
		}
		if evals < minEvals {
			t.Errorf("alert %d was evaluated %d times in %.1fs at a %d s interval, want at least %d", i, evals, active.Seconds(), interval, minEvals)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if badSig != 0 {
		t.Errorf("%d webhook POSTs with a bad signature", badSig)
	}
	for id, n := range deliveries {
		if n != 1 {
			t.Errorf("delivery %s received %d times, want once", id, n)
		}
	}
	for i := range alerts {
		if n := perAlert[strconv.Itoa(i)]; n != 1 {
			t.Errorf("alert %d: webhook received %d POSTs, want 1 (it fired once)", i, n)
		}
	}
	meta, err := sql.Open("pgx", db.url)
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	for i, id := range ids {
		var n, events int
		if err := meta.QueryRowContext(ctx, `SELECT count(*) FROM alert_notifications WHERE alert_id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if err := meta.QueryRowContext(ctx, `SELECT count(*) FROM alert_events WHERE alert_id = $1`, id).Scan(&events); err != nil {
			t.Fatal(err)
		}
		t.Logf("alert %d: %d notification rows, %d state changes", i, n, events)
		if n != 1 {
			t.Errorf("alert %d: %d alert_notifications rows, want 1 (one firing, one recipient)", i, n)
		}
		if events != 1 {
			t.Errorf("alert %d: %d alert_events rows, want 1 (normal → alerting once)", i, events)
		}
	}
}
