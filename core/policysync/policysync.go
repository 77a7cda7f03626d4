// Package policysync keeps the authorization facts of several DataPulse
// processes sharing one PostgreSQL database in step: each change a process
// makes is announced with NOTIFY, and every other process re-reads the part
// that changed. A process that loses its listening connection reloads
// everything once it is back, so no change is missed for good.
package policysync

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/datapulse/datapulse/core/pgnotify"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/policy"
)

// Channel is the PostgreSQL notification channel.
const Channel = "datapulse_policy"

// Sync announces local changes and applies remote ones.
type Sync struct {
	ch     *pgnotify.Channel
	client *ent.Client
	log    *slog.Logger
	facts  *policy.Facts
}

// Listen connects to PostgreSQL at url and starts listening, before the
// facts are loaded, so that no change made in between is missed.
func Listen(ctx context.Context, url string, db *sql.DB, client *ent.Client, log *slog.Logger) (*Sync, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ch, err := pgnotify.Listen(ctx, url, Channel, db, log)
	if err != nil {
		return nil, err
	}
	return &Sync{ch: ch, client: client, log: log}, nil
}

// Bind names the facts to keep in step; call it before Start.
func (s *Sync) Bind(facts *policy.Facts) { s.facts = facts }

// Name identifies the worker.
func (s *Sync) Name() string { return "policy-sync" }

// Start announces the changes made to the bound facts and applies the ones
// other processes announce, until Stop.
func (s *Sync) Start(context.Context) error {
	if s.facts == nil {
		return errors.New("policy sync: no facts bound")
	}
	s.facts.OnChange(func(c policy.Change) { s.ch.Announce(c) })
	s.ch.Start(s.apply, s.reloadAll)
	return nil
}

// Stop stops announcing and listening.
func (s *Sync) Stop(context.Context) error {
	s.Close()
	return nil
}

// Close stops announcing and listening.
func (s *Sync) Close() {
	if s.facts != nil {
		s.facts.OnChange(nil)
	}
	s.ch.Close()
}

// apply re-reads the part of the facts another process changed.
func (s *Sync) apply(ctx context.Context, payload json.RawMessage) {
	var c policy.Change
	if err := json.Unmarshal(payload, &c); err != nil {
		s.log.Warn("policy sync: unreadable change", "error", err)
		return
	}
	sys := principal.System(ctx)
	if err := s.facts.Reload(sys, s.client, c); err != nil {
		s.log.Warn("policy sync: reload failed; reloading everything", "kind", c.Kind, "error", err)
		s.reloadAll(ctx)
	}
}

func (s *Sync) reloadAll(ctx context.Context) {
	fresh, err := policy.Load(principal.System(ctx), s.client, s.facts.DefaultRole())
	if err != nil {
		switch {
		case errors.Is(err, context.Canceled):
		case store.IsUnavailable(err):
			// An outage: the listening connection goes with it, and the
			// reconnect reloads everything once the database is back.
			s.log.Warn("policy sync: full reload failed: database unavailable", "error", err)
		default:
			s.log.Error("policy sync: full reload failed", "error", err)
		}
		return
	}
	s.facts.ReplaceWith(fresh)
}
