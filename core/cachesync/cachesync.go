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
	"errors"
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

	forget    func(uuid.UUID)
	forgetAll func()
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

// Bind sets what applies the other processes' announcements: forget (one
// data source) and forgetAll (after a lost connection). Call it before Start.
func (s *Sync) Bind(forget func(uuid.UUID), forgetAll func()) {
	s.forget, s.forgetAll = forget, forgetAll
}

// Name identifies the worker.
func (s *Sync) Name() string { return "cache-sync" }

// Start applies the other processes' announcements until Stop.
func (s *Sync) Start(context.Context) error {
	if s.forget == nil || s.forgetAll == nil {
		return errors.New("cache sync: nothing bound to apply invalidations")
	}
	s.ch.Start(func(_ context.Context, payload json.RawMessage) {
		var src uuid.UUID
		if err := json.Unmarshal(payload, &src); err != nil {
			s.log.Warn("cache sync: unreadable invalidation", "error", err)
			return
		}
		s.forget(src)
	}, func(context.Context) { s.forgetAll() })
	return nil
}

// Stop stops announcing and listening.
func (s *Sync) Stop(context.Context) error {
	s.Close()
	return nil
}

// Close stops announcing and listening.
func (s *Sync) Close() { s.ch.Close() }
