// Package cachesync keeps the result caches of several DataPulse processes
// sharing one PostgreSQL database in step: a process that drops a data
// source's cached results (explicit invalidation, the source changed or was
// deleted) announces it with NOTIFY, and every other process drops them too.
// A process that loses its listening connection drops everything once it is
// back, since announcements made meanwhile are lost.
package cachesync

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/pgnotify"
)

// Channel is the PostgreSQL notification channel.
const Channel = "datapulse_cache"

// Sync announces local invalidations and applies remote ones.
type Sync struct {
	ch  *pgnotify.Channel
	log *slog.Logger
}

// Listen connects to PostgreSQL at url and starts listening.
func Listen(ctx context.Context, url string, db *sql.DB, log *slog.Logger) (*Sync, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ch, err := pgnotify.Listen(ctx, url, Channel, db, log)
	if err != nil {
		return nil, err
	}
	return &Sync{ch: ch, log: log}, nil
}

// Announce tells the other processes to drop a data source's results. It
// never blocks: a lost announcement leaves the others stale until the TTL.
func (s *Sync) Announce(source uuid.UUID) { s.ch.Announce(source) }

// Start applies the other processes' announcements with forget (one data
// source) and forgetAll (after a lost connection), until Close.
func (s *Sync) Start(forget func(uuid.UUID), forgetAll func()) {
	s.ch.Start(func(_ context.Context, payload json.RawMessage) {
		var src uuid.UUID
		if err := json.Unmarshal(payload, &src); err != nil {
			s.log.Warn("cache sync: unreadable invalidation", "error", err)
			return
		}
		forget(src)
	}, func(context.Context) { forgetAll() })
}

// Close stops announcing and listening.
func (s *Sync) Close() { s.ch.Close() }
