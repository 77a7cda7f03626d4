// Package pgnotify is a PostgreSQL LISTEN/NOTIFY channel between the
// DataPulse processes sharing one database. Announcements are queued without
// blocking the caller and sent by a goroutine; notifications from the other
// processes (never a process's own) are handed to a callback. A lost
// listening connection is re-established with backoff, and since whatever
// was announced meanwhile is lost, the owner is then told to start over.
package pgnotify

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// queueSize bounds the announcements waiting to be sent.
const queueSize = 4096

// Reconnect backoff: the first retry after minBackoff, doubling up to
// maxBackoff, each wait drawn from [d/2, d] so that replicas do not retry in
// step. The cap keeps a listener that lost its connection within about half
// a second (plus one connect) of the database accepting connections again.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 500 * time.Millisecond
)

// stillDownEvery is how often a listener that cannot reconnect says so (the
// first failure is logged at once, then one line per interval with the
// number of attempts).
const stillDownEvery = 10 * time.Second

// backoff returns the wait before reconnect attempt n (0-based) and the
// nominal delay it was drawn under; rnd returns a value in [0, 1).
func backoff(n int, rnd func() float64) time.Duration {
	d := minBackoff
	for i := 0; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return d/2 + time.Duration(rnd()*float64(d/2))
}

type envelope struct {
	Origin  string          `json:"o"`
	Payload json.RawMessage `json:"p"`
}

// Channel announces to and hears from the other processes.
type Channel struct {
	url, name string
	db        *sql.DB
	log       *slog.Logger
	origin    string

	conn   *pgx.Conn
	out    chan json.RawMessage
	cancel context.CancelFunc
	wg     sync.WaitGroup

	attempts  atomic.Int64 // reconnect attempts, failed or not
	reconnect atomic.Int64 // reconnects that succeeded
}

// Stats are a channel's reconnect counters.
type Stats struct {
	// Attempts counts reconnect attempts, Reconnects the successful ones.
	Attempts, Reconnects int64
}

// Stats returns the reconnect counters (for diagnostics and tests).
func (c *Channel) Stats() Stats {
	return Stats{Attempts: c.attempts.Load(), Reconnects: c.reconnect.Load()}
}

// Listen connects to PostgreSQL at url and starts listening on the named
// channel now, so that nothing announced before Start is missed; db sends.
func Listen(ctx context.Context, url, name string, db *sql.DB, log *slog.Logger) (*Channel, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := make([]byte, 8)
	crand.Read(b)
	c := &Channel{url: url, name: name, db: db, log: log.With("channel", name), origin: hex.EncodeToString(b),
		out: make(chan json.RawMessage, queueSize)}
	conn, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	return c, nil
}

func (c *Channel) connect(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, c.url)
	if err != nil {
		return nil, fmt.Errorf("%s: connect: %w", c.name, err)
	}
	if _, err := conn.Exec(cctx, "LISTEN "+pgx.Identifier{c.name}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("%s: listen: %w", c.name, err)
	}
	return conn, nil
}

// Announce queues payload (JSON-encoded) for the other processes. It never
// blocks: with the queue full the announcement is dropped and logged, which
// only delays the others until they next start over.
func (c *Channel) Announce(payload any) {
	raw, err := json.Marshal(payload)
	if err != nil {
		c.log.Error("announcement not encodable", "error", err)
		return
	}
	select {
	case c.out <- raw:
	default:
		c.log.Warn("announcement queue full; not announced")
	}
}

// Start sends the queued announcements and hands the other processes' ones
// to onMessage, and calls startOver after a lost connection is back, until
// Close. Both callbacks run on one goroutine, one at a time.
func (c *Channel) Start(onMessage func(ctx context.Context, payload json.RawMessage), startOver func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Add(2)
	go c.publish(ctx)
	go c.listen(ctx, onMessage, startOver)
}

// Close stops both loops and the listening connection.
func (c *Channel) Close() {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	if c.conn != nil {
		c.conn.Close(context.Background())
	}
}

func (c *Channel) publish(ctx context.Context) {
	defer c.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-c.out:
			msg, _ := json.Marshal(envelope{Origin: c.origin, Payload: p})
			if _, err := c.db.ExecContext(ctx, "SELECT pg_notify($1, $2)", c.name, string(msg)); err != nil && ctx.Err() == nil {
				c.log.Warn("announce", "error", err)
			}
		}
	}
}

func (c *Channel) listen(ctx context.Context, onMessage func(context.Context, json.RawMessage), startOver func(context.Context)) {
	defer c.wg.Done()
	var (
		failures  int       // consecutive failed attempts
		lostAt    time.Time // when the connection was lost
		lastShout time.Time // when the outage was last logged
	)
	for ctx.Err() == nil {
		if c.conn == nil {
			c.attempts.Add(1)
			conn, err := c.connect(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				wait := backoff(failures, rand.Float64)
				failures++
				// The first failure at once, then one line per interval.
				if failures == 1 || time.Since(lastShout) >= stillDownEvery {
					lastShout = time.Now()
					c.log.Warn("reconnect failed; retrying", "error", err, "attempts", failures,
						"down_for", time.Since(lostAt).Round(time.Millisecond).String(), "retry_in", wait.Round(time.Millisecond).String())
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				continue
			}
			c.conn = conn
			c.reconnect.Add(1)
			c.log.Info("listening again", "attempts", failures+1, "down_for", time.Since(lostAt).Round(time.Millisecond).String())
			failures = 0
			// Announcements made while disconnected are lost.
			startOver(ctx)
		}
		n, err := c.conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Warn("listening connection lost; reconnecting", "error", err)
			c.conn.Close(context.Background())
			c.conn = nil
			lostAt, lastShout = time.Now(), time.Time{}
			continue
		}
		var m envelope
		if err := json.Unmarshal([]byte(n.Payload), &m); err != nil {
			c.log.Warn("unreadable notification", "error", err)
			continue
		}
		if m.Origin != c.origin {
			onMessage(ctx, m.Payload)
		}
	}
}

// BackendPID is the PostgreSQL backend of the listening connection, 0 while
// disconnected (for diagnostics and tests; read it only before Start or
// from the callbacks).
func (c *Channel) BackendPID() uint32 {
	if c.conn == nil {
		return 0
	}
	return c.conn.PgConn().PID()
}
