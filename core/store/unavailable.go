package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// SQLite primary result codes (the low byte of an extended code) that mean
// the database cannot be used right now rather than that the statement is
// wrong: https://www.sqlite.org/rescode.html.
const (
	sqliteBusy     = 5  // SQLITE_BUSY: locked past the busy timeout
	sqliteLocked   = 6  // SQLITE_LOCKED: a conflicting lock inside the process
	sqliteReadOnly = 8  // SQLITE_READONLY: read-only file, directory or mount
	sqliteIOErr    = 10 // SQLITE_IOERR: disk I/O error
	sqliteFull     = 13 // SQLITE_FULL: the disk is full
	sqliteCantOpen = 14 // SQLITE_CANTOPEN: the file cannot be opened
)

// IsUnavailable reports whether err means the metadata database cannot serve
// requests right now (unreachable, shutting down or starting up, in recovery
// or read-only, locked past the busy timeout, out of disk, failing I/O), as
// opposed to a failure of the statement itself. The API answers such errors
// 503 with Retry-After; they are expected to pass without a code change.
//
// It is the one place that knows the drivers' error types; a context
// cancellation or deadline alone is not unavailability (the client went
// away, or the request took too long).
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return unavailableSQLState(pgErr.Code)
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		// Refused, reset, timed out, or the server said no before a session
		// began (its PgError is handled above).
		return true
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() & 0xff {
		case sqliteBusy, sqliteLocked, sqliteReadOnly, sqliteIOErr, sqliteFull, sqliteCantOpen:
			return true
		}
		return false
	}
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, pgconn.ErrConnClosed) {
		return true
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var pgconnErr interface{ SafeToRetry() bool }
	if errors.Is(err, io.EOF) && errors.As(err, &pgconnErr) {
		// pgconn's own error around a connection the server closed.
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		// A network failure on the way to the database; a timeout caused by
		// the request's own deadline is not one.
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	return false
}

// unavailableSQLState: connection exceptions (class 08), operator
// intervention that ends or refuses sessions (57P01 admin shutdown, 57P02
// crash shutdown, 57P03 cannot connect now: starting up, shutting down, in
// recovery), 57P05 idle session timeout, a read-only transaction on a
// standby or a read-only database (25006), too many connections (53300) and
// a full disk (53100).
func unavailableSQLState(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"):
		return true
	case code == "57P01", code == "57P02", code == "57P03", code == "57P05":
		return true
	case code == "25006":
		return true
	case code == "53300", code == "53100":
		return true
	}
	return false
}
