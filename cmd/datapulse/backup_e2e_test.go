package main_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/store"
)

// TestBackupRestore: a backup taken while clients create dashboards, restored
// into a fresh directory (PostgreSQL: pg_restore into a fresh database), and a
// server started on it: every create acknowledged before the backup began is
// there, `migrate status` is clean, logins and API tokens work. Restore
// refuses a non-empty directory; verify detects a corrupted file.
func TestBackupRestore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *database) {
		adminEmail, adminPW := "root@example.com", newPassword()
		userEmail, userPW := "ada@example.com", newPassword()
		s := startServer(t, db, "DATAPULSE_ADMIN_EMAIL="+adminEmail, "DATAPULSE_ADMIN_PASSWORD="+adminPW)
		admin := s.login(adminEmail, adminPW).AccessToken
		s.call(http.MethodPost, "/api/v1/users", admin, map[string]string{"email": userEmail, "password": userPW}, http.StatusCreated, nil)
		userTok := s.login(userEmail, userPW).AccessToken
		var apiTok struct {
			Token string `json:"token"`
		}
		s.call(http.MethodPost, "/api/v1/tokens", userTok, map[string]any{"name": "backup-test"}, http.StatusCreated, &apiTok)

		// The write load: 4 clients creating dashboards until told to stop.
		type ack struct {
			name string
			at   time.Time
		}
		var (
			mu    sync.Mutex
			acks  []ack
			stop  atomic.Bool
			wg    sync.WaitGroup
			fails atomic.Int64
		)
		for w := range 4 {
			wg.Go(func() {
				for i := 0; !stop.Load(); i++ {
					name := fmt.Sprintf("load-%d-%05d", w, i)
					ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
					status, _, err := s.do(ctx, http.MethodPost, "/api/v1/dashboards", admin, map[string]string{"name": name})
					cancel()
					if err != nil || status != http.StatusCreated {
						fails.Add(1)
						continue
					}
					mu.Lock()
					acks = append(acks, ack{name, time.Now()})
					mu.Unlock()
				}
			})
		}
		time.Sleep(700 * time.Millisecond)
		file := filepath.Join(t.TempDir(), "datapulse.backup")
		began := time.Now()
		res := runCLI(t, db, "", nil, "backup", "--to", file, "--data-dir", db.dataDir)
		time.Sleep(300 * time.Millisecond) // writes go on after the backup too
		stop.Store(true)
		wg.Wait()
		if res.code != 0 {
			t.Fatalf("backup: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		t.Logf("backup: %s", strings.TrimSpace(res.stdout))
		if fails.Load() > 0 {
			t.Errorf("%d creates failed during the backup", fails.Load())
		}
		var before []string
		for _, a := range acks {
			if a.at.Before(began) {
				before = append(before, a.name)
			}
		}
		if len(before) == 0 || len(acks) == len(before) {
			t.Fatalf("the load did not straddle the backup: %d acknowledged before, %d in all", len(before), len(acks))
		}
		st, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("backup file mode %v, want 0600", st.Mode().Perm())
		}
		s.stop()

		if res := runCLI(t, db, "", nil, "backup", "--verify", file); res.code != 0 || !strings.Contains(res.stdout, "OK") {
			t.Fatalf("verify: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}

		// Restore into a fresh directory (and, for PostgreSQL, a fresh database).
		restored := &database{name: db.name + "-restored", dataDir: filepath.Join(t.TempDir(), "restored")}
		res = runCLI(t, restored, "", nil, "restore", "--from", file, "--data-dir", restored.dataDir)
		if res.code != 0 {
			t.Fatalf("restore: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		if db.url != "" {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			u, drop, err := store.CreateTempDatabase(ctx, os.Getenv("DATAPULSE_TEST_POSTGRES_URL"), "datapulse_e2e_restore")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(drop)
			restored.url = u
			out, err := exec.CommandContext(ctx, "pg_restore", "--no-owner", "--exit-on-error", "--dbname", u,
				filepath.Join(restored.dataDir, store.BackupPGDumpName)).CombinedOutput()
			if err != nil {
				t.Fatalf("pg_restore: %v\n%s", err, out)
			}
		}
		for _, k := range store.KeyFiles {
			st, err := os.Stat(filepath.Join(restored.dataDir, k.File))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("restored key %s: %v (mode %v)", k.File, err, st)
			}
		}
		if res := runCLI(t, restored, "", nil, "migrate", "status", "--data-dir", restored.dataDir); res.code != 0 || !strings.Contains(res.stdout, "database is up to date") {
			t.Errorf("migrate status on the restored database: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		// Restoring over a non-empty directory is refused, and leaves it alone.
		res = runCLI(t, restored, "", nil, "restore", "--from", file, "--data-dir", restored.dataDir)
		if res.code == 0 || !strings.Contains(res.stderr, "not empty") {
			t.Errorf("restore into a non-empty directory: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}

		s2 := startServer(t, restored)
		admin2 := s2.login(adminEmail, adminPW).AccessToken
		if u := s2.me(s2.login(userEmail, userPW).AccessToken); u.Email != userEmail {
			t.Errorf("restored user login: %+v", u)
		}
		if u := s2.me(apiTok.Token); u.Email != userEmail {
			t.Errorf("API token after restore: %+v", u)
		}
		present := map[string]bool{}
		for page := 1; page < 100; page++ {
			var p struct {
				Items []struct {
					Name string `json:"name"`
				} `json:"items"`
				Total int `json:"total"`
			}
			s2.call(http.MethodGet, fmt.Sprintf("/api/v1/dashboards?per_page=500&page=%d", page), admin2, nil, http.StatusOK, &p)
			for _, it := range p.Items {
				present[it.Name] = true
			}
			if len(p.Items) == 0 || len(present) >= p.Total {
				break
			}
		}
		missing := 0
		for _, n := range before {
			if !present[n] {
				missing++
			}
		}
		t.Logf("%d creates acknowledged before the backup began, %d in all; %d dashboards restored", len(before), len(acks), len(present))
		if missing > 0 {
			t.Errorf("%d of %d creates acknowledged before the backup began are missing after restore", missing, len(before))
		}
		s2.stop()

		// A corrupted backup is detected.
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(b) / 2; i < len(b)/2+16 && i < len(b); i++ {
			b[i] ^= 0x5a
		}
		bad := filepath.Join(t.TempDir(), "corrupt.backup")
		if err := os.WriteFile(bad, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if res := runCLI(t, db, "", nil, "backup", "--verify", bad); res.code == 0 {
			t.Errorf("verify accepted a corrupted backup:\n%s", res.stdout)
		} else {
			t.Logf("corrupted backup: %s", strings.TrimSpace(res.stderr))
		}
		if res := runCLI(t, db, "", nil, "restore", "--from", bad, "--data-dir", filepath.Join(t.TempDir(), "r2")); res.code == 0 {
			t.Errorf("restore accepted a corrupted backup")
		}
	})
}

// TestScheduledBackup: serve --backup-dir runs the backup job (at start, then
// every --backup-schedule) and the file it writes verifies.
func TestScheduledBackup(t *testing.T) {
	db := newSQLite(t)
	dir := filepath.Join(t.TempDir(), "backups")
	s := startServer(t, db, "DATAPULSE_BACKUP_DIR="+dir, "DATAPULSE_BACKUP_SCHEDULE=1h", "DATAPULSE_BACKUP_KEEP=2")
	deadline := time.Now().Add(30 * time.Second)
	var found string
	for found == "" && time.Now().Before(deadline) {
		m, _ := filepath.Glob(filepath.Join(dir, "datapulse-*.dpbak"))
		if len(m) > 0 {
			found = m[0]
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop()
	if found == "" {
		t.Fatalf("no scheduled backup in %s within 30 s; server log:\n%s", dir, s.stderr.String())
	}
	if res := runCLI(t, db, "", nil, "backup", "--verify", found); res.code != 0 {
		t.Fatalf("verify %s: %s%s", found, res.stdout, res.stderr)
	}
}
