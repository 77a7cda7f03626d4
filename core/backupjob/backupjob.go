// Package backupjob runs scheduled backups of the metadata database as a
// periodic job (core/jobs) with retention: datapulse serve --backup-dir DIR
// --backup-schedule 24h --backup-keep 7.
package backupjob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/datapulse/datapulse/core/jobs"
	"github.com/datapulse/datapulse/core/store"
)

// Options configure scheduled backups.
type Options struct {
	Dir         string        // where backups are written
	Every       time.Duration // interval between backups (at least a minute)
	Keep        int           // newest backups kept in Dir (at least 1)
	DataDir     string        // the key files
	DatabaseURL string        // PostgreSQL: for pg_dump
	Version     string
	Logger      *slog.Logger
}

const (
	prefix = "datapulse-"
	suffix = ".dpbak"
)

// Args is the backup job; it carries nothing.
type Args struct{}

// Kind implements river.JobArgs.
func (Args) Kind() string { return "backup" }

type worker struct {
	river.WorkerDefaults[Args]
	st *store.Store
	o  Options
}

// Timeout: a backup of a large database takes minutes, not River's default minute.
func (w *worker) Timeout(*river.Job[Args]) time.Duration { return 6 * time.Hour }

func (w *worker) Work(ctx context.Context, _ *river.Job[Args]) error {
	res, err := Run(ctx, w.st, w.o)
	if err != nil {
		w.o.Logger.ErrorContext(ctx, "scheduled backup failed", "error", err, "dir", w.o.Dir)
		return err
	}
	w.o.Logger.InfoContext(ctx, "scheduled backup written", "path", res.Path, "bytes", res.Size, "duration", res.Total)
	return nil
}

// Register adds the backup worker and its periodic job to js. The first
// backup runs when the process becomes leader; UniqueOpts ByPeriod keeps it
// to one per interval across restarts.
func Register(js *jobs.Service, st *store.Store, o Options) error {
	if o.Dir == "" {
		return errors.New("backup: no backup directory")
	}
	if o.Every < time.Minute {
		return fmt.Errorf("backup-schedule %v: want an interval of at least 1m (e.g. 24h)", o.Every)
	}
	if o.Keep < 1 {
		return fmt.Errorf("backup-keep %d: want at least 1", o.Keep)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("backup-dir: %w", err)
	}
	if err := jobs.Register(js, &worker{st: st, o: o}); err != nil {
		return err
	}
	return js.AddPeriodic(jobs.Every(o.Every), func() (river.JobArgs, *river.InsertOpts) {
		return Args{}, &river.InsertOpts{MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByPeriod: o.Every}}
	}, jobs.PeriodicOptions{ID: "backup", RunOnStart: true})
}

// Run writes one backup into o.Dir (datapulse-YYYYMMDDTHHMMSSZ.dpbak) and
// then deletes the oldest beyond o.Keep.
func Run(ctx context.Context, st *store.Store, o Options) (store.BackupResult, error) {
	name := prefix + time.Now().UTC().Format("20060102T150405.000Z") + suffix
	res, err := st.Backup(ctx, filepath.Join(o.Dir, name), store.BackupOptions{DataDir: o.DataDir, Version: o.Version, DatabaseURL: o.DatabaseURL})
	if err != nil {
		return res, err
	}
	return res, prune(o.Dir, o.Keep)
}

func prune(dir string, keep int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); e.Type().IsRegular() && strings.HasPrefix(n, prefix) && strings.HasSuffix(n, suffix) {
			names = append(names, n)
		}
	}
	slices.Sort(names) // the timestamp sorts
	var errs []error
	for len(names) > keep {
		errs = append(errs, os.Remove(filepath.Join(dir, names[0])))
		names = names[1:]
	}
	return errors.Join(errs...)
}
