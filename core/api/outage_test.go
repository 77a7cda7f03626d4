package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/api"
	"github.com/datapulse/datapulse/core/dashboards"
	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/policy"
)

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) records(t *testing.T) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// TestReadOnlyDatabaseIs503: writes to a metadata database that has become
// read-only answer 503 unavailable with Retry-After (never 500), the answer
// names no internals and matches the document, and fifty failures cost one
// failure log line (the access log keeps one line per request, at warn).
func TestReadOnlyDatabaseIs503(t *testing.T) {
	tg := storetest.Targets()[0] // SQLite: PRAGMA query_only makes its single writer read-only
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
	var logs lockedLog
	srv := api.New(api.Deps{Identity: id, Dashboards: dashboards.New(st.Client, enf, nil), Store: st,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Version: "test", BodyLimit: bodyLimit, RequestTimeout: 10 * time.Second})
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
	raw, err := srv.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	c := newContract(t, raw)
	e.want(e.do("POST", "/api/v1/dashboards", e.admin, map[string]any{"name": "before"}), 201, "create while writable")

	// The single writer connection turns read-only.
	if _, err := st.DB().Exec(`PRAGMA query_only = 1`); err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := 0; i < n; i++ {
		r := e.do("POST", "/api/v1/dashboards", e.admin, map[string]any{"name": "during"})
		c.check("POST /api/v1/dashboards", r)
		if r.status != 503 || r.str("error", "code") != "unavailable" {
			t.Fatalf("write to a read-only database: %d %s, want 503 unavailable", r.status, r.raw)
		}
		if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Fatalf("503 without a Retry-After: %v", r.header)
		}
		if msg := r.str("error", "message"); !strings.Contains(msg, "database is unavailable") || strings.Contains(strings.ToLower(msg), "readonly") {
			t.Fatalf("message %q: want it to say the database is unavailable, without the driver's words", msg)
		}
	}
	// Reads still work.
	e.want(e.do("GET", "/api/v1/dashboards", e.admin, nil), 200, "list while read-only")

	if _, err := st.DB().Exec(`PRAGMA query_only = 0`); err != nil {
		t.Fatal(err)
	}
	e.want(e.do("POST", "/api/v1/dashboards", e.admin, map[string]any{"name": "after"}), 201, "create once writable again")

	var failureLines, access503, access503Warn, errorLines int
	for _, r := range logs.records(t) {
		switch {
		case r["msg"] == "http request" && r["status"] == float64(503):
			access503++
			if r["level"] == "WARN" {
				access503Warn++
			}
		case r["msg"] != "http request" && r["level"] == "ERROR":
			errorLines++
		case strings.HasPrefix(r["msg"].(string), "database unavailable"):
			failureLines++
			if !strings.Contains(r["error"].(string), "readonly") {
				t.Errorf("the failure log line lacks the cause: %v", r)
			}
		}
	}
	if access503 != n || access503Warn != n {
		t.Errorf("access log: %d lines for %d 503s (%d at warn), want one per request at warn", access503, n, access503Warn)
	}
	if failureLines != 1 || errorLines != 0 {
		t.Errorf("%d failure lines and %d error lines for %d identical failures in a few seconds, want 1 and 0", failureLines, errorLines, n)
	}
}
