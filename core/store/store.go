// Package store opens DataPulse's metadata database (embedded SQLite or
// PostgreSQL), wires it to ent and applies the versioned migrations.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go)

	"github.com/datapulse/datapulse/ent"
	// Schema defaults, hooks and privacy policies are registered by the
	// runtime package; every client of the store needs them.
	_ "github.com/datapulse/datapulse/ent/runtime"
)

// Dialect names as used by ent and by the migration directories.
const (
	SQLite   = dialect.SQLite
	Postgres = dialect.Postgres
)

// Options selects and tunes the database.
type Options struct {
	// DatabaseURL is a postgres:// URL; empty means embedded SQLite in DataDir.
	// "sqlite:PATH" selects an SQLite file at PATH.
	DatabaseURL string
	// DataDir holds the SQLite file when DatabaseURL is empty.
	DataDir string
	// MaxOpenConns caps the PostgreSQL pool and the SQLite reader pool (0: a
	// default suited to the CPU count).
	MaxOpenConns int
	Logger       *slog.Logger
}

// Store is an open metadata database.
type Store struct {
	Client  *ent.Client
	Dialect string
	// Path is the SQLite file, empty on PostgreSQL.
	Path string

	write *sql.DB // the only connection that writes on SQLite; the pool on PostgreSQL
	read  *sql.DB // SQLite reader pool (query_only); same as write on PostgreSQL
	log   *slog.Logger
}

// ErrUnsupportedURL is returned for a database URL of an unknown kind.
var ErrUnsupportedURL = errors.New("store: unsupported database URL (want postgres://… or sqlite:PATH)")

// Open opens the database; it does not migrate it (see Migrate).
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	kind, target, err := parseURL(o)
	if err != nil {
		return nil, err
	}
	var s *Store
	switch kind {
	case SQLite:
		s, err = openSQLite(ctx, target, o)
	default:
		s, err = openPostgres(ctx, target, o)
	}
	if err != nil {
		return nil, err
	}
	s.log = o.Logger
	return s, nil
}

func parseURL(o Options) (kind, target string, err error) {
	u := strings.TrimSpace(o.DatabaseURL)
	switch {
	case u == "":
		if o.DataDir == "" {
			return "", "", errors.New("store: neither a database URL nor a data directory given")
		}
		return SQLite, filepath.Join(o.DataDir, "datapulse.db"), nil
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		return Postgres, u, nil
	case strings.HasPrefix(u, "sqlite:"):
		p := strings.TrimPrefix(strings.TrimPrefix(u, "sqlite:"), "//")
		if p == "" || strings.ContainsAny(p, "?#") {
			return "", "", fmt.Errorf("store: sqlite URL needs a plain file path: %w", ErrUnsupportedURL)
		}
		return SQLite, p, nil
	}
	return "", "", ErrUnsupportedURL
}

// sqliteDSN builds a modernc DSN. synchronous=FULL: with WAL this makes every
// committed transaction durable across power loss, not only a process crash;
// the cost is one fsync per commit, which the single writer amortises.
func sqliteDSN(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_time_format", "sqlite")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		// BEGIN IMMEDIATE: a write transaction takes the lock up front instead
		// of failing with SQLITE_BUSY when it upgrades from read to write.
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

func openSQLite(ctx context.Context, path string, o Options) (*Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create data directory: %w", err)
		}
	}
	if err := privateFiles(path); err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	// SQLite has one writer at a time; one connection makes writers queue in
	// Go instead of spinning on the busy timeout.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", sqliteDSN(path, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite readers: %w", err)
	}
	n := o.MaxOpenConns
	if n <= 0 {
		n = max(4, 2*runtime.NumCPU())
	}
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxIdleTime(5 * time.Minute)
	drv := &splitDriver{
		w: entsql.OpenDB(dialect.SQLite, w),
		r: entsql.OpenDB(dialect.SQLite, r),
	}
	return &Store{Client: ent.NewClient(ent.Driver(drv)), Dialect: SQLite, Path: path, write: w, read: r}, nil
}

func openPostgres(ctx context.Context, u string, o Options) (*Store, error) {
	pc, err := pgx.ParseConfig(u)
	if err != nil {
		return nil, fmt.Errorf("store: postgres URL %s: %w", redactURL(u), scrubErr(err))
	}
	// Metadata queries are short OLTP statements; JIT compilation of one
	// whose estimated cost crosses the threshold costs ~90 ms on its own.
	if _, set := pc.RuntimeParams["jit"]; !set {
		pc.RuntimeParams["jit"] = "off"
	}
	db := stdlib.OpenDB(*pc)
	n := o.MaxOpenConns
	if n <= 0 {
		n = max(8, 4*runtime.NumCPU())
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		// pgx errors can carry the URL's password: report the host only.
		return nil, fmt.Errorf("store: connect to postgres at %s: %w", redactURL(u), scrubErr(err))
	}
	drv := entsql.OpenDB(dialect.Postgres, db)
	return &Store{Client: ent.NewClient(ent.Driver(drv)), Dialect: Postgres, write: db, read: db}, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.write.PingContext(ctx); err != nil {
		return err
	}
	if s.read != s.write {
		return s.read.PingContext(ctx)
	}
	return nil
}

// DB returns the connection pool that writes (the single writer on SQLite).
func (s *Store) DB() *sql.DB { return s.write }

// Close closes every connection.
func (s *Store) Close() error {
	// The ent driver owns both pools and closes them.
	return s.Client.Close()
}

// redactURL returns a database URL without its user info and query.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// scrubErr keeps the error chain but drops a message that quotes a password.
func scrubErr(err error) error {
	if err == nil {
		return nil
	}
	if strings.Contains(strings.ToLower(err.Error()), "password=") {
		return errors.New("connection failed (details withheld: they contain credentials)")
	}
	return err
}

// splitDriver sends SQLite reads to the reader pool and everything else
// (writes, transactions, RETURNING inserts) to the single writer.
type splitDriver struct{ w, r *entsql.Driver }

var _ dialect.Driver = (*splitDriver)(nil)

func isRead(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n(")
	return len(q) >= 6 && strings.EqualFold(q[:6], "SELECT")
}

func (d *splitDriver) Exec(ctx context.Context, query string, args, v any) error {
	return d.w.Exec(ctx, query, args, v)
}

func (d *splitDriver) Query(ctx context.Context, query string, args, v any) error {
	if isRead(query) {
		return d.r.Query(ctx, query, args, v)
	}
	return d.w.Query(ctx, query, args, v)
}

func (d *splitDriver) Tx(ctx context.Context) (dialect.Tx, error) { return d.w.Tx(ctx) }

func (d *splitDriver) BeginTx(ctx context.Context, opts *sql.TxOptions) (dialect.Tx, error) {
	return d.w.BeginTx(ctx, opts)
}

func (d *splitDriver) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return d.w.ExecContext(ctx, query, args...)
}

func (d *splitDriver) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if isRead(query) {
		return d.r.QueryContext(ctx, query, args...)
	}
	return d.w.QueryContext(ctx, query, args...)
}

func (d *splitDriver) Close() error    { return errors.Join(d.w.Close(), d.r.Close()) }
func (d *splitDriver) Dialect() string { return dialect.SQLite }

// privateFiles makes the SQLite database readable by its owner only, like
// the key files: it holds password hashes and sealed secrets. SQLite gives
// the -wal and -shm files the database file's mode, so creating the file
// 0600 before SQLite does covers them; files of an older installation are
// tightened.
func privateFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		f.Close()
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if st.Mode().IsRegular() && st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, st.Mode().Perm()&0o700); err != nil {
				return fmt.Errorf("store: restrict %s to its owner: %w", p, err)
			}
		}
	}
	return nil
}
