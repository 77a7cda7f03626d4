package pgnotify

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"

	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/core/store/storetest"
)

func TestBackoffIsCappedAndJittered(t *testing.T) {
	low := func() float64 { return 0 }
	high := func() float64 { return 0.999999 }
	wantMax := []time.Duration{50, 100, 200, 400, 500, 500, 500}
	for n, w := range wantMax {
		w *= time.Millisecond
		lo, hi := backoff(n, low), backoff(n, high)
		if lo != w/2 {
			t.Errorf("attempt %d: shortest wait %v, want %v", n, lo, w/2)
		}
		if hi > w || hi < w-time.Millisecond {
			t.Errorf("attempt %d: longest wait %v, want just under %v", n, hi, w)
		}
	}
	if d := backoff(1000, high); d > maxBackoff {
		t.Errorf("attempt 1000 waits %v, beyond the cap %v", d, maxBackoff)
	}
}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestReconnectAfterRestart stops a private PostgreSQL cluster for a few
// seconds under two listening channels (two replicas) and starts it again:
// the listener must be back soon after the server accepts connections (the
// bound below is a timeout, generous against the 1 s goal on a loaded
// machine), with a bounded number of attempts and log lines, and
// announcements must flow again.
func TestReconnectAfterRestart(t *testing.T) {
	cl := storetest.StartCluster(t)
	ctx := context.Background()
	url, drop, err := store.CreateTempDatabase(ctx, cl.URL(), "pgnotify_test")
	if err != nil {
		t.Fatal(err)
	}
	defer drop()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	a, err := Listen(ctx, url, "test_chan", db, log.With("replica", "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Listen(ctx, url, "test_chan", db, log.With("replica", "b"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := make(chan string, 16)
	startedOver := make(chan time.Time, 4)
	a.Start(func(context.Context, json.RawMessage) {}, func(context.Context) {})
	b.Start(func(_ context.Context, p json.RawMessage) {
		var s string
		json.Unmarshal(p, &s) //nolint:errcheck // a test payload
		got <- s
	}, func(context.Context) { startedOver <- time.Now() })

	expect := func(want string, timeout time.Duration) {
		t.Helper()
		deadline := time.After(timeout)
		for {
			select {
			case s := <-got:
				if s == want {
					return
				}
			case <-deadline:
				t.Fatalf("replica b did not hear %q within %v; log:\n%s", want, timeout, logs.String())
			}
		}
	}
	a.Announce("before")
	expect("before", 10*time.Second)

	cl.Stop()
	time.Sleep(4 * time.Second) // long enough for an uncapped backoff to grow past seconds
	outageAttempts := b.Stats().Attempts
	cl.Start() // returns once the server accepts connections
	back := time.Now()
	const bound = 2 * time.Second
	select {
	case at := <-startedOver:
		t.Logf("listener resumed %v after the server accepted connections again (%d attempts during the 4 s outage)", at.Sub(back).Round(time.Millisecond), outageAttempts)
	case <-time.After(bound):
		t.Fatalf("listener did not resume within %v of the server accepting connections; stats %+v; log:\n%s", bound, b.Stats(), logs.String())
	}
	st := b.Stats()
	if st.Reconnects != 1 {
		t.Errorf("reconnects %d, want 1", st.Reconnects)
	}
	// 4 s at ≥ 25 ms, then ≤ 500 ms per wait: some attempts, never a flood
	// (an attempt per 250 ms at worst after the first few).
	if st.Attempts < 3 || st.Attempts > 40 {
		t.Errorf("%d reconnect attempts for a 4 s outage, want between 3 and 40", st.Attempts)
	}
	a.Announce("after")
	expect("after", 10*time.Second)

	// The outage is logged in a few lines per replica, not one per attempt.
	n := 0
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "replica=b") {
			n++
		}
	}
	if n > 5 {
		t.Errorf("replica b logged %d lines about one outage, want at most 5:\n%s", n, logs.String())
	}
	t.Logf("replica b: %d attempts, %d log lines:\n%s", st.Attempts, n, logs.String())
}
