package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"
	atlasschema "ariga.io/atlas/sql/schema"
	"ariga.io/atlas/sql/sqlite"

	"github.com/datapulse/datapulse/ent/migrate/migrations"
)

// ErrMigrationsTampered means an embedded migration file does not match the
// checksum atlas.sum recorded for it: the binary was built from edited files.
var ErrMigrationsTampered = errors.New("migration files do not match atlas.sum (a migration was edited after it was generated); refusing to start")

// OperatorVersion is recorded in the revisions table with every applied file.
var OperatorVersion = "datapulse"

// Revision is one applied (or partially applied) migration file.
type Revision struct {
	Version     string
	Description string
	Applied     int
	Total       int
	ExecutedAt  time.Time
	Error       string
}

// MigrationStatus tells what is applied and what is pending.
type MigrationStatus struct {
	Applied []Revision
	Pending []string // file names
}

// Current reports whether nothing is pending.
func (m MigrationStatus) Current() bool { return len(m.Pending) == 0 }

// migrationDir returns the embedded migration directory for this database.
func (s *Store) migrationDir() (migrate.Dir, error) { return migrations.Dir(s.Dialect) }

// Migrate applies every pending migration in one transaction and returns the
// names of the files applied. Concurrent starts are serialised (PostgreSQL
// advisory lock; SQLite BEGIN IMMEDIATE).
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	dir, err := s.migrationDir()
	if err != nil {
		return nil, err
	}
	return s.migrateDir(ctx, dir, 0)
}

// MigrateN applies at most n pending migrations (n <= 0: all).
func (s *Store) MigrateN(ctx context.Context, n int) ([]string, error) {
	dir, err := s.migrationDir()
	if err != nil {
		return nil, err
	}
	return s.migrateDir(ctx, dir, n)
}

// MigrateDir applies the pending files of dir; it exists so that tests can
// apply a tampered or extended copy of the embedded directory.
func (s *Store) MigrateDir(ctx context.Context, dir migrate.Dir) ([]string, error) {
	return s.migrateDir(ctx, dir, 0)
}

func (s *Store) migrateDir(ctx context.Context, dir migrate.Dir, n int) ([]string, error) {
	var applied []string
	err := s.inMigrationTx(ctx, true, func(ctx context.Context, ex *migrate.Executor) error {
		pending, err := ex.Pending(ctx)
		if errors.Is(err, migrate.ErrNoPendingFiles) {
			return nil
		}
		if err != nil {
			return err
		}
		if n > 0 && n < len(pending) {
			pending = pending[:n]
		}
		for _, f := range pending {
			if err := ex.Execute(ctx, f); err != nil {
				return fmt.Errorf("apply %s: %w", f.Name(), err)
			}
			applied = append(applied, f.Name())
			s.log.InfoContext(ctx, "migration applied", "file", f.Name())
		}
		return nil
	}, dir)
	if err != nil {
		return nil, err
	}
	return applied, nil
}

// Status reads the revisions table and the embedded files without changing anything.
func (s *Store) Status(ctx context.Context) (MigrationStatus, error) {
	dir, err := s.migrationDir()
	if err != nil {
		return MigrationStatus{}, err
	}
	var st MigrationStatus
	err = s.inMigrationTx(ctx, false, func(ctx context.Context, ex *migrate.Executor) error {
		pending, err := ex.Pending(ctx)
		if err != nil && !errors.Is(err, migrate.ErrNoPendingFiles) {
			return err
		}
		for _, f := range pending {
			st.Pending = append(st.Pending, f.Name())
		}
		return nil
	}, dir)
	if err != nil {
		return st, err
	}
	revs, err := (&revisions{q: s.write, dialect: s.Dialect}).ReadRevisions(ctx)
	if err != nil {
		return st, err
	}
	for _, r := range revs {
		st.Applied = append(st.Applied, Revision{
			Version: r.Version, Description: r.Description, Applied: r.Applied,
			Total: r.Total, ExecutedAt: r.ExecutedAt, Error: r.Error,
		})
	}
	return st, nil
}

// Current is the cheap readiness check: the newest embedded migration is
// fully applied.
func (s *Store) Current(ctx context.Context) (bool, error) {
	dir, err := s.migrationDir()
	if err != nil {
		return false, err
	}
	files, err := dir.Files()
	if err != nil {
		return false, err
	}
	if len(files) == 0 {
		return true, nil
	}
	want := files[len(files)-1].Version()
	r, err := (&revisions{q: s.read, dialect: s.Dialect}).ReadRevision(ctx, want)
	if errors.Is(err, migrate.ErrRevisionNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return r.Applied == r.Total, nil
}

// inMigrationTx runs fn with an atlas executor bound to one transaction on one
// pinned connection, under the migration lock. The transaction commits only
// when write is true and fn succeeded.
func (s *Store) inMigrationTx(ctx context.Context, write bool, fn func(context.Context, *migrate.Executor) error, dir migrate.Dir) (err error) {
	if err := migrate.Validate(dir); err != nil {
		if errors.Is(err, migrate.ErrChecksumMismatch) {
			return ErrMigrationsTampered
		}
		return fmt.Errorf("migration directory: %w", err)
	}
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	switch s.Dialect {
	case SQLite:
		// A table-rebuild migration turns foreign keys off inside its file,
		// which SQLite ignores inside a transaction: the DROP TABLE would then
		// cascade into child rows. Turn them off before BEGIN instead, and
		// check them all before COMMIT.
		if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = off"); err != nil {
			return err
		}
		defer func() {
			_, ferr := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA foreign_keys = on")
			err = errors.Join(err, ferr)
		}()
	case Postgres:
		// Several replicas starting at once: one migrates, the others wait.
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockKey) //nolint:errcheck // released with the session anyway
	}
	// On SQLite the writer DSN makes this BEGIN IMMEDIATE.
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil || !write {
			tx.Rollback() //nolint:errcheck
		}
	}()
	rrw := &revisions{q: tx, dialect: s.Dialect}
	if err := rrw.ensure(ctx); err != nil {
		return err
	}
	drv, err := atlasDriver(s.Dialect, tx)
	if err != nil {
		return err
	}
	ex, err := migrate.NewExecutor(drv, dir, rrw, migrate.WithOperatorVersion(OperatorVersion))
	if err != nil {
		return err
	}
	if err := fn(ctx, ex); err != nil {
		return err
	}
	if !write {
		return nil
	}
	if s.Dialect == SQLite {
		if err := foreignKeyCheck(ctx, tx); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// migrationLockKey is an arbitrary constant shared by every DataPulse process.
const migrationLockKey int64 = 0x64617461_70756c73 // "datapuls"

func atlasDriver(dialect string, q atlasschema.ExecQuerier) (migrate.Driver, error) {
	if dialect == SQLite {
		return sqlite.Open(q)
	}
	return postgres.Open(q)
}

func foreignKeyCheck(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return err
	}
	defer rows.Close()
	var broken []string
	for rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fkid int
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			return err
		}
		broken = append(broken, fmt.Sprintf("%s row %d → %s", table, rowid.Int64, parent))
		if len(broken) == 10 {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(broken) > 0 {
		return fmt.Errorf("migration would break foreign keys, rolled back: %s", strings.Join(broken, "; "))
	}
	return nil
}
