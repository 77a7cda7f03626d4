package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/datapulse/datapulse/core/store"
)

// A13: the SQLite database holds password hashes and sealed secrets: it and
// its -wal/-shm files are the owner's only (0600), like the key files, also
// when an older installation left them 0644.
func TestSQLiteFilesArePrivate(t *testing.T) {
	check := func(t *testing.T, dir string) {
		t.Helper()
		s, err := store.Open(context.Background(), store.Options{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"datapulse.db", "datapulse.db-wal", "datapulse.db-shm"} {
			st, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got := st.Mode().Perm(); got != 0o600 {
				t.Errorf("%s has mode %o, want 600", name, got)
			}
		}
	}
	t.Run("new", func(t *testing.T) { check(t, t.TempDir()) })
	t.Run("existing 0644", func(t *testing.T) {
		dir := t.TempDir()
		for _, name := range []string{"datapulse.db", "datapulse.db-wal", "datapulse.db-shm"} {
			if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			os.Chmod(filepath.Join(dir, name), 0o644) //nolint:errcheck // umask
		}
		check(t, dir)
	})
}
