// Package storetest opens throw-away metadata databases for tests: always an
// SQLite file in a temp directory, and a fresh PostgreSQL database when
// DATAPULSE_TEST_POSTGRES_URL names a server.
package storetest

import (
	"context"
	"os"
	"testing"

	"github.com/datapulse/datapulse/core/store"
)

// PostgresEnv names the PostgreSQL server the suites also run on.
const PostgresEnv = "DATAPULSE_TEST_POSTGRES_URL"

// Target is one database kind a suite runs on.
type Target struct {
	Name string // "sqlite" or "postgres"
	// URL opens a new empty database of this kind and returns its store
	// options; the database is removed when the test ends.
	New func(t testing.TB) store.Options
}

// Targets lists SQLite and, when configured, PostgreSQL.
func Targets() []Target {
	ts := []Target{{Name: "sqlite", New: func(t testing.TB) store.Options {
		return store.Options{DataDir: t.TempDir()}
	}}}
	if u := os.Getenv(PostgresEnv); u != "" {
		ts = append(ts, Target{Name: "postgres", New: func(t testing.TB) store.Options {
			t.Helper()
			dbURL, drop, err := store.CreateTempDatabase(context.Background(), u, "datapulse_test")
			if err != nil {
				t.Fatalf("storetest: %v", err)
			}
			t.Cleanup(drop)
			return store.Options{DatabaseURL: dbURL}
		}})
	}
	return ts
}

// Each runs fn as a subtest once per target.
func Each(t *testing.T, fn func(t *testing.T, tg Target)) {
	for _, tg := range Targets() {
		t.Run(tg.Name, func(t *testing.T) { fn(t, tg) })
	}
}

// Open opens an empty database of the target without migrating it.
func Open(t testing.TB, tg Target) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), tg.New(t))
	if err != nil {
		t.Fatalf("storetest: open %s: %v", tg.Name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Migrated opens an empty database of the target and applies every migration.
func Migrated(t testing.TB, tg Target) *store.Store {
	t.Helper()
	s := Open(t, tg)
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("storetest: migrate %s: %v", tg.Name, err)
	}
	return s
}
