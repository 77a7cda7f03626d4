// Package cachesync keeps the result caches of several DataPulse processes
// sharing one PostgreSQL database in step: a process that drops a data
// source's cached results (explicit invalidation, the source changed or was
// deleted) announces it with NOTIFY, and every other process drops them too.
// A process that loses its listening connection drops everything once it is
// back, since announcements made meanwhile are lost.
package cachesync

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Channel is the PostgreSQL notification channel.
const Channel = "datapulse_cache"

type message struct {
	Origin string    `json:"o"`
	Source uuid.UUID `json:"s"`
}

// Sync announces local invalidations and applies remote ones.
type Sync struct {
	url    string
	db     *sql.DB
	log    *slog.Logger
	origin string

	conn   *pgx.Conn
	out    chan uuid.UUID
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Listen connects to PostgreSQL at url and starts listening.
func Listen(ctx context.Context, url string, db *sql.DB, log *slog.Logger) (*Sync, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := make([]byte, 8)
	rand.Read(b)
	s := &Sync{url: url, db: db, log: log, origin: hex.EncodeToString(b), out: make(chan uuid.UUID, 1024)}
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
		return nil, fmt.Errorf("cachesync: connect: %w", err)
	}
	if _, err := conn.Exec(cctx, "LISTEN "+Channel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("cachesync: listen: %w", err)
	}
	return conn, nil
}

// Announce tells the other processes to drop a data source's results. It
// never blocks: a lost announcement leaves the others stale until the TTL.
func (s *Sync) Announce(source uuid.UUID) {
	select {
	case s.out <- source:
	default:
		s.log.Warn("cache invalidation queue full; not announced", "data_source_id", source)
	}
}

// Start applies the other processes' announcements with forget (one data
// source) and forgetAll (after a lost connection), until Close.
func (s *Sync) Start(forget func(uuid.UUID), forgetAll func()) {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(2)
	go s.publish(ctx)
	go s.listen(ctx, forget, forgetAll)
}

// Close stops both loops.
func (s *Sync) Close() {
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
		case src := <-s.out:
			payload, _ := json.Marshal(message{Origin: s.origin, Source: src})
			if _, err := s.db.ExecContext(ctx, "SELECT pg_notify($1, $2)", Channel, string(payload)); err != nil && ctx.Err() == nil {
				s.log.Warn("announce cache invalidation", "data_source_id", src, "error", err)
			}
		}
	}
}

func (s *Sync) listen(ctx context.Context, forget func(uuid.UUID), forgetAll func()) {
	defer s.wg.Done()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if s.conn == nil {
			conn, err := s.connect(ctx)
			if err != nil {
				s.log.Warn("cache sync reconnect failed", "error", err, "retry_in", backoff.String())
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 10*time.Second)
				continue
			}
			s.conn, backoff = conn, 100*time.Millisecond
			// Invalidations announced while disconnected are lost.
			forgetAll()
		}
		n, err := s.conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("cache sync connection lost", "error", err)
			s.conn.Close(context.Background())
			s.conn = nil
			continue
		}
		var m message
		if err := json.Unmarshal([]byte(n.Payload), &m); err != nil {
			s.log.Warn("cache sync: unreadable notification", "error", err)
			continue
		}
		if m.Origin != s.origin {
			forget(m.Source)
		}
	}
}
