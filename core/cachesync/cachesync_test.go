package cachesync

import (
	"context"
	"database/sql"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/core/store/storetest"
)

// replica is one process's listener and what it was told to forget.
type replica struct {
	sync *Sync
	db   *sql.DB

	mu     sync.Mutex
	forgot []uuid.UUID
	all    int
}

func (r *replica) seen() ([]uuid.UUID, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uuid.UUID(nil), r.forgot...), r.all
}

func newReplica(t *testing.T, url string) *replica {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := Listen(context.Background(), url, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{sync: s, db: db}
	s.Bind(func(id uuid.UUID) {
		r.mu.Lock()
		r.forgot = append(r.forgot, id)
		r.mu.Unlock()
	}, func() {
		r.mu.Lock()
		r.all++
		r.mu.Unlock()
	})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return r
}

func TestInvalidationsReachOtherReplicas(t *testing.T) {
	server := os.Getenv(storetest.PostgresEnv)
	if server == "" {
		t.Skip("needs PostgreSQL: set " + storetest.PostgresEnv)
	}
	// A database of its own: the test ends listening connections in it.
	url, drop, err := store.CreateTempDatabase(context.Background(), server, "datapulse_cachesync")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	a, b := newReplica(t, url), newReplica(t, url)
	src := uuid.New()
	a.sync.Announce(src)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := b.seen()
		if len(got) == 1 && got[0] == src {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other replica was told %v, want [%s]", got, src)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The announcing replica does not act on its own announcement (it has
	// dropped the results itself); a second one from b reaches a.
	b.sync.Announce(src)
	for {
		got, _ := a.seen()
		if len(got) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a was told %v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got, _ := b.seen(); len(got) != 1 {
		t.Fatalf("b acted on its own announcement: %v", got)
	}

	// A lost listening connection makes the replica forget everything once
	// it is back.
	if _, err := a.db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid() AND datname = current_database()`); err != nil {
		t.Fatal(err)
	}
	for {
		_, allA := a.seen()
		_, allB := b.seen()
		if allA > 0 && allB > 0 {
			break
		}
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("after a lost connection: forgetAll calls a=%d b=%d", allA, allB)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
