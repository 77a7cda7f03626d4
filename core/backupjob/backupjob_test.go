package backupjob_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/backupjob"
	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/core/store/storetest"
)

// TestRunKeepsNewest: each run writes a verifiable backup and retention
// keeps only the newest Keep files (other files in the directory are left).
func TestRunKeepsNewest(t *testing.T) {
	ctx := context.Background()
	st := storetest.Migrated(t, storetest.Targets()[0])
	dataDir := filepath.Dir(st.Path)
	for _, k := range store.KeyFiles {
		if err := os.WriteFile(filepath.Join(dataDir, k.File), []byte(strings.Repeat("k", 40)+k.File), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "unrelated.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := backupjob.Options{Dir: dir, Every: time.Hour, Keep: 2, DataDir: dataDir, Version: "test"}
	var last string
	for range 3 {
		res, err := backupjob.Run(ctx, st, o)
		if err != nil {
			t.Fatal(err)
		}
		last = res.Path
		time.Sleep(5 * time.Millisecond) // distinct millisecond timestamps
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var backups []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".dpbak") {
			backups = append(backups, e.Name())
		}
	}
	if len(backups) != 2 || len(entries) != 3 {
		t.Fatalf("after 3 runs with keep 2: %v", entries)
	}
	if filepath.Base(last) != backups[1] {
		t.Errorf("newest %s not kept: %v", last, backups)
	}
	if _, err := store.VerifyBackup(ctx, last); err != nil {
		t.Errorf("scheduled backup does not verify: %v", err)
	}
	if err := backupjob.Register(nil, st, backupjob.Options{Dir: dir, Every: time.Second, Keep: 1}); err == nil {
		t.Error("an interval under a minute was accepted")
	}
	if err := backupjob.Register(nil, st, backupjob.Options{Dir: dir, Every: time.Hour, Keep: 0}); err == nil {
		t.Error("keep 0 was accepted")
	}
}
