// Package policysync keeps the authorization facts of several DataPulse
// processes sharing one PostgreSQL database in step: each change a process
// makes is announced with NOTIFY, and every other process re-reads the part
// that changed. A process that loses its listening connection reloads
// everything once it is back, so no change is missed for good.
package policysync

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/policy"
)

// Channel is the PostgreSQL notification channel.
const Channel = "datapulse_policy"

type message struct {
	Origin string `json:"o"`
	policy.Change
}

// Sync announces local changes and applies remote ones.
type Sync struct {
	url    string
	db     *sql.DB
	client *ent.Client
	log    *slog.Logger
	origin string

	conn   *pgx.Conn
	facts  *policy.Facts
	out    chan policy.Change
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Listen connects to PostgreSQL at url and starts listening, before the
// facts are loaded, so that no change made in between is missed.
func Listen(ctx context.Context, url string, db *sql.DB, client *ent.Client, log *slog.Logger) (*Sync, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := make([]byte, 8)
	rand.Read(b)
	s := &Sync{url: url, db: db, client: client, log: log, origin: hex.EncodeToString(b), out: make(chan policy.Change, 4096)}
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	s.conn = conn
	return s, nil
}

func (s *Sync) connect(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, s.url)
	if err != nil {
		return nil, fmt.Errorf("policysync: connect: %w", err)
	}
	if _, err := conn.Exec(cctx, "LISTEN "+Channel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("policysync: listen: %w", err)
	}
	return conn, nil
}

// Start announces the changes made to facts and applies the ones other
// processes announce, until Close.
func (s *Sync) Start(facts *policy.Facts) {
	s.facts = facts
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	facts.OnChange(func(c policy.Change) {
		select {
		case s.out <- c:
		default:
			// Never block a request: a lost announcement only delays the
			// others until their next full reload.
			s.log.Warn("policy change announcement queue full; change not announced", "kind", c.Kind)
		}
	})
	s.wg.Add(2)
	go s.publish(ctx)
	go s.listen(ctx)
}

// Close stops both loops.
func (s *Sync) Close() {
	if s.facts != nil {
		s.facts.OnChange(nil)
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.conn != nil {
		s.conn.Close(context.Background())
	}
}

func (s *Sync) publish(ctx context.Context) {
	defer s.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-s.out:
			payload, _ := json.Marshal(message{Origin: s.origin, Change: c})
			if _, err := s.db.ExecContext(ctx, "SELECT pg_notify($1, $2)", Channel, string(payload)); err != nil && ctx.Err() == nil {
				s.log.Warn("announce policy change", "kind", c.Kind, "error", err)
			}
		}
	}
}

func (s *Sync) listen(ctx context.Context) {
	defer s.wg.Done()
	sys := identity.SystemContext(ctx)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if s.conn == nil {
			conn, err := s.connect(ctx)
			if err != nil {
				s.log.Warn("policy sync reconnect failed", "error", err, "retry_in", backoff.String())
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 10*time.Second)
				continue
			}
			s.conn, backoff = conn, 100*time.Millisecond
			// Changes announced while disconnected are lost: start over.
			s.reloadAll(sys)
		}
		n, err := s.conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("policy sync connection lost", "error", err)
			s.conn.Close(context.Background())
			s.conn = nil
			continue
		}
		var m message
		if err := json.Unmarshal([]byte(n.Payload), &m); err != nil {
			s.log.Warn("policy sync: unreadable notification", "error", err)
			continue
		}
		if m.Origin == s.origin {
			continue
		}
		if err := s.facts.Reload(sys, s.client, m.Change); err != nil {
			s.log.Warn("policy sync: reload failed; reloading everything", "kind", m.Kind, "error", err)
			s.reloadAll(sys)
		}
	}
}

func (s *Sync) reloadAll(ctx context.Context) {
	fresh, err := policy.Load(ctx, s.client, s.facts.DefaultRole())
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			s.log.Error("policy sync: full reload failed", "error", err)
		}
		return
	}
	s.facts.ReplaceWith(fresh)
}
