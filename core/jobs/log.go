package jobs

import (
	"context"
	"log/slog"
	"strings"

	"github.com/datapulse/datapulse/core/lograte"
	"github.com/datapulse/datapulse/core/store"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// riverLogger is the logger River writes through. River logs every failed
// fetch, listener reconnect and notification wait at error level; while the
// database is unreachable that is one error line per poll and per retry. An
// outage is not a bug of ours: records whose error the store classifies as
// "database unavailable" are logged at warn, once per interval with a count
// (core/lograte), like the API's own outage lines.
func riverLogger(base *slog.Logger) *slog.Logger {
	return slog.New(&riverHandler{next: base.Handler(), lim: lograte.New(base, 0)})
}

type riverHandler struct {
	next slog.Handler
	lim  *lograte.Limiter
}

func (h *riverHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *riverHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && unavailable(r) {
		// One kind for all of River: its fetcher, elector, notifier and
		// maintainers all fail together while the database is away.
		attrs := []slog.Attr{slog.String("river_message", r.Message)}
		r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a); return true })
		h.lim.Log(ctx, slog.LevelWarn, "river: database unavailable", "background jobs: database unavailable", attrs...)
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *riverHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &riverHandler{next: h.next.WithAttrs(as), lim: h.lim}
}

func (h *riverHandler) WithGroup(name string) slog.Handler {
	return &riverHandler{next: h.next.WithGroup(name), lim: h.lim}
}

// unavailable reports whether a record carries an error that means the
// database cannot be reached right now. River mostly logs errors as text
// (err.Error()), so text is matched against what drivers say then.
func unavailable(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		switch v := a.Value.Any().(type) {
		case error:
			found = store.IsUnavailable(v)
		case string:
			found = (a.Key == "err" || a.Key == "error") && unavailableText(v)
		}
		return !found
	})
	return found
}

// outageTexts are fragments of the messages pgx, database/sql and SQLite
// give when the database is unreachable, shutting down, starting up or busy.
var outageTexts = []string{
	"failed to connect", "connection refused", "connection reset", "broken pipe",
	"unexpected EOF", "conn closed", "conn busy", "driver: bad connection", "sql: database is closed",
	"the database system is", "terminating connection", "SQLSTATE 08", "SQLSTATE 57P0",
	"cannot execute", "read-only transaction", "database is locked", "i/o timeout",
}

func unavailableText(s string) bool {
	for _, t := range outageTexts {
		if strings.Contains(s, t) {
			return true
		}
	}
	return false
}
