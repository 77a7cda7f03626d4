package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite"
)

// BenchmarkBackupUnderLoad measures `datapulse backup` of a large SQLite
// database while the server serves a paced create load, and the restore of
// that backup. The database is grown to DATAPULSE_BACKUP_BENCH_MB (default
// 200) with 4 KiB filler rows written straight into the file before the
// server starts (VACUUM INTO copies pages: what they hold does not matter).
// It reports the backup's duration, the creates' p50/p99 before and during
// the backup, and the restore's duration. No timing is asserted.
//
//	DATAPULSE_BACKUP_BENCH_MB=200 go test -run '^$' -bench BackupUnderLoad -benchtime 1x ./cmd/datapulse
func BenchmarkBackupUnderLoad(b *testing.B) {
	mb := 200
	if v := os.Getenv("DATAPULSE_BACKUP_BENCH_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("DATAPULSE_BACKUP_BENCH_MB=%q", v)
		}
		mb = n
	}
	const rate = 100 // creates per second
	for range b.N {
		db := newSQLite(b)
		adminEmail, adminPW := "root@example.com", newPassword()
		if res := runCLI(b, db, "", nil, "migrate", "up", "--data-dir", db.dataDir); res.code != 0 {
			b.Fatalf("migrate: %s", res.stderr)
		}
		fill(b, filepath.Join(db.dataDir, "datapulse.db"), mb)
		s := startServer(b, db, "DATAPULSE_ADMIN_EMAIL="+adminEmail, "DATAPULSE_ADMIN_PASSWORD="+adminPW)
		tok := s.login(adminEmail, adminPW).AccessToken

		type sample struct {
			at  time.Time
			lat time.Duration
		}
		var (
			mu      sync.Mutex
			samples []sample
			errs    int
			stop    = make(chan struct{})
			wg      sync.WaitGroup
		)
		ticks := make(chan int, 1000)
		go func() {
			t := time.NewTicker(time.Second / rate)
			defer t.Stop()
			defer close(ticks)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-t.C:
					ticks <- i
				}
			}
		}()
		for range 16 {
			wg.Go(func() {
				for i := range ticks {
					start := time.Now()
					ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
					status, _, err := s.do(ctx, http.MethodPost, "/api/v1/dashboards", tok, map[string]string{"name": fmt.Sprintf("bench-%06d", i)})
					cancel()
					mu.Lock()
					if err != nil || status != http.StatusCreated {
						errs++
					} else {
						samples = append(samples, sample{start, time.Since(start)})
					}
					mu.Unlock()
				}
			})
		}
		time.Sleep(5 * time.Second)
		file := filepath.Join(b.TempDir(), "bench.backup")
		b.ResetTimer()
		t0 := time.Now()
		res := runCLILong(b, db, "backup", "--to", file, "--data-dir", db.dataDir)
		backupDur := time.Since(t0)
		b.StopTimer()
		time.Sleep(2 * time.Second)
		close(stop)
		wg.Wait()
		s.stop()
		if res.code != 0 {
			b.Fatalf("backup: %s%s", res.stdout, res.stderr)
		}
		b.Logf("%s", res.stdout)
		// The snapshot (VACUUM INTO) phase, as the command reports it.
		snap := backupDur
		if m := regexp.MustCompile(`snapshot ([0-9.]+(?:ms|s))`).FindStringSubmatch(res.stdout); m != nil {
			if d, err := time.ParseDuration(m[1]); err == nil {
				snap = d
			}
		}
		var before, during, duringSnap []time.Duration
		for _, sm := range samples {
			switch {
			case sm.at.Before(t0):
				before = append(before, sm.lat)
			case sm.at.Before(t0.Add(backupDur)):
				during = append(during, sm.lat)
				if sm.at.Before(t0.Add(snap + 300*time.Millisecond)) { // + process start
					duringSnap = append(duringSnap, sm.lat)
				}
			}
		}
		b.Logf("during the snapshot (~first %v of the backup): p50 %v p99 %v (n=%d)", snap+300*time.Millisecond, pct(duringSnap, 50), pct(duringSnap, 99), len(duringSnap))
		st, _ := os.Stat(filepath.Join(db.dataDir, "datapulse.db"))
		bst, _ := os.Stat(file)

		t1 := time.Now()
		res = runCLILong(b, db, "restore", "--from", file, "--data-dir", filepath.Join(b.TempDir(), "restored"))
		restoreDur := time.Since(t1)
		if res.code != 0 {
			b.Fatalf("restore: %s%s", res.stdout, res.stderr)
		}
		b.Logf("database %d MB, backup file %d MB; backup %v; creates at %d/s: before p50 %v p99 %v (n=%d), during backup p50 %v p99 %v max %v (n=%d), failed %d; restore (with verify) %v",
			st.Size()>>20, bst.Size()>>20, backupDur.Round(time.Millisecond), rate,
			pct(before, 50), pct(before, 99), len(before), pct(during, 50), pct(during, 99), pct(during, 100), len(during), errs, restoreDur.Round(time.Millisecond))
		b.ReportMetric(backupDur.Seconds(), "backup-s")
		b.ReportMetric(float64(pct(during, 99).Microseconds())/1000, "p99-during-ms")
		b.ReportMetric(float64(pct(before, 99).Microseconds())/1000, "p99-before-ms")
		b.ReportMetric(restoreDur.Seconds(), "restore-s")
	}
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

// runCLILong runs the binary without runCLI's one-minute bound.
func runCLILong(tb testing.TB, db *database, args ...string) cliResult {
	tb.Helper()
	return runCLIFor(tb, db, 30*time.Minute, args...)
}

// fill grows the SQLite file to about mb MiB with 4 KiB filler rows of a
// table of its own.
func fill(tb testing.TB, path string, mb int) {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE bench_filler (id TEXT PRIMARY KEY, body BLOB NOT NULL)`); err != nil {
		tb.Fatal(err)
	}
	rows := mb * 256
	raw := make([]byte, 2048)
	for done := 0; done < rows; {
		tx, err := db.Begin()
		if err != nil {
			tb.Fatal(err)
		}
		for i := 0; i < 2000 && done < rows; i, done = i+1, done+1 {
			rand.Read(raw)
			// Hex text: compresses about 2:1, like JSON configs do (random
			// bytes would be gzip's worst case).
			if _, err := tx.Exec(`INSERT INTO bench_filler (id, body) VALUES (?, ?)`, uuid.NewString(), hex.EncodeToString(raw)); err != nil {
				tb.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		tb.Fatal(err)
	}
}

// runCLIFor is runCLI with another bound.
func runCLIFor(tb testing.TB, db *database, timeout time.Duration, args ...string) cliResult {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = db.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		tb.Fatalf("run datapulse %v: %v", args, err)
	}
	return res
}
