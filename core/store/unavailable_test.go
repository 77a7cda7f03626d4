package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/datapulse/datapulse/core/errs"
)

// closedPort is a local TCP port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestIsUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr := closedPort(t)

	// Real errors from the drivers, not imitations.
	_, connectErr := pgx.Connect(ctx, "postgres://postgres@"+addr+"/x?sslmode=disable&connect_timeout=5")
	if connectErr == nil {
		t.Fatal("connect to a closed port succeeded")
	}
	_, dialErr := net.DialTimeout("tcp", addr, 5*time.Second)
	if dialErr == nil {
		t.Fatal("dial to a closed port succeeded")
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "t.db")
	w, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(1)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)`); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Exec(`INSERT INTO t (v) VALUES ('a')`); err != nil {
		t.Fatal(err)
	}
	_, uniqueErr := w.Exec(`INSERT INTO t (v) VALUES ('a')`)
	_, syntaxErr := w.Exec(`SELEC 1`)

	ro, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	_, readOnlyErr := ro.Exec(`INSERT INTO t (v) VALUES ('b')`)

	// SQLITE_BUSY: another connection holds the write lock past the busy timeout.
	w.SetMaxOpenConns(2)
	holder, err := w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	_, busyErr := w.ExecContext(ctx, `INSERT INTO t (v) VALUES ('c')`)
	holder.ExecContext(ctx, `ROLLBACK`) //nolint:errcheck // only releases the lock

	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"pgx connect refused", connectErr, true},
		{"pgx connect refused, wrapped", fmt.Errorf("begin transaction: %w", connectErr), true},
		{"net dial refused", dialErr, true},
		{"PgError 08006 connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"PgError 08P01 protocol violation", &pgconn.PgError{Code: "08P01"}, true},
		{"PgError 57P01 admin shutdown", fmt.Errorf("commit: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"PgError 57P02 crash shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"PgError 57P03 cannot connect now", &pgconn.PgError{Code: "57P03"}, true},
		{"PgError 25006 read-only transaction", &pgconn.PgError{Code: "25006"}, true},
		{"PgError 53300 too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"PgError 23505 unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"PgError 42P01 undefined table", &pgconn.PgError{Code: "42P01"}, false},
		{"PgError 57014 query canceled", &pgconn.PgError{Code: "57014"}, false},
		{"pgconn conn closed", fmt.Errorf("query: %w", pgconn.ErrConnClosed), true},
		{"sql.ErrConnDone", fmt.Errorf("x: %w", sql.ErrConnDone), true},
		{"driver.ErrBadConn", driver.ErrBadConn, true},
		{"unexpected EOF", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), true},
		{"bare io.EOF", io.EOF, false},
		{"sql.ErrNoRows", sql.ErrNoRows, false},
		{"sqlite busy", busyErr, true},
		{"sqlite read-only", readOnlyErr, true},
		{"sqlite unique", uniqueErr, false},
		{"sqlite syntax", syntaxErr, false},
		{"context canceled", context.Canceled, false},
		{"deadline exceeded", context.DeadlineExceeded, false},
		{"domain not found", errs.NotFound("dashboard"), false},
		{"plain error", errors.New("boom"), false},
	}
	for _, c := range cases {
		if c.want && c.err == nil {
			t.Fatalf("%s: the driver gave no error to classify", c.name)
		}
		if got := IsUnavailable(c.err); got != c.want {
			t.Errorf("%s: IsUnavailable(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
