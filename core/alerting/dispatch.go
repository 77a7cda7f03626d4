package alerting

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/alert"
	"github.com/datapulse/datapulse/ent/schema/types"
	"github.com/datapulse/datapulse/policy"
)

// Delivery kinds.
const (
	DeliveryFiring   = "firing"
	DeliveryResolved = "resolved"
)

// Delivery is one state change to tell the alert's channels about: its
// notification rows (one per recipient user) are already in the
// transaction.
type Delivery struct {
	Kind     string
	Alert    *ent.Alert
	Event    *ent.AlertEvent
	GroupKey string
	Value    *float64
	// Notifications: created (firing) or auto-resolved (resolved).
	Notifications []*ent.AlertNotification
}

// Dispatcher delivers notifications through the alert's channels. Enqueue is
// called inside the transaction that records the state change: an
// implementation inserts its delivery work in tx (outbox), so the change and
// its deliveries commit or roll back together. The event id is a stable
// delivery id receivers can deduplicate on.
type Dispatcher interface {
	Enqueue(ctx context.Context, tx *ent.Tx, d Delivery) error
}

// RecordOnly is the dispatcher of a process without channel delivery: the
// notification rows (the API's /alert-notifications) are the only record.
type RecordOnly struct{}

// Enqueue does nothing beyond the rows already written.
func (RecordOnly) Enqueue(context.Context, *ent.Tx, Delivery) error { return nil }

// TestResult is one channel's answer to a test notification.
type TestResult struct {
	Type   string `json:"type"`
	Target string `json:"target"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
}

// Tester sends a test message through one channel (core/notify).
type Tester interface {
	Test(ctx context.Context, a *ent.Alert, c types.AlertChannel, secret string) error
}

// ErrNoChannels is returned by TestNotification when no sender is wired.
var ErrNoChannels = errors.New("alerting: no channel sender is configured in this process")

// Poller evaluates due alerts every tick: the in-process schedule. Each due
// alert is claimed by a conditional update of its next_eval_at, so several
// pollers (replicas) evaluate it once per interval. A periodic job (River)
// can call EvaluateDue instead.
type Poller struct {
	s     *Service
	every time.Duration
	log   *slog.Logger
	stop  context.CancelFunc
	done  chan struct{}
	once  sync.Once
}

// NewPoller returns a poller of s that looks for due alerts every tick.
func NewPoller(s *Service, every time.Duration) *Poller {
	if every <= 0 {
		every = time.Second
	}
	return &Poller{s: s, every: every, log: s.log}
}

// Name implements workers.Worker.
func (p *Poller) Name() string { return "alert evaluation" }

// Start implements workers.Worker.
func (p *Poller) Start(ctx context.Context) error {
	ctx, p.stop = context.WithCancel(context.WithoutCancel(ctx))
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(p.every)
		defer t.Stop()
		for {
			if _, err := p.s.EvaluateDue(ctx, 50); err != nil && ctx.Err() == nil {
				p.log.Warn("alert evaluation", "error", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Stop implements workers.Worker: the evaluation under way finishes.
func (p *Poller) Stop(ctx context.Context) error {
	var err error
	p.once.Do(func() {
		if p.stop == nil {
			return
		}
		p.stop()
		select {
		case <-p.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	})
	return err
}

// EvaluateDue claims and evaluates up to max alerts whose time has come and
// reports how many it evaluated. The claim moves next_eval_at one interval
// on, only where it is still due: of several processes, one wins each alert.
func (s *Service) EvaluateDue(ctx context.Context, max int) (int, error) {
	sys := principal.System(ctx)
	now := s.clock()
	due, err := s.db.Alert.Query().Where(alert.NextEvalAtLTE(now), alert.StatusNEQ(alert.StatusPaused), alert.SourceNotNil()).
		Order(ent.Asc(alert.FieldNextEvalAt)).Limit(max).Select(alert.FieldID, alert.FieldIntervalSeconds, alert.FieldNextEvalAt).All(sys)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range due {
		if ctx.Err() != nil {
			return n, nil
		}
		won, err := s.claim(sys, a.ID, a.IntervalSeconds, now)
		if err != nil {
			return n, err
		}
		if !won {
			continue
		}
		if _, err := s.EvaluateSystem(ctx, a.ID); err != nil {
			s.log.Warn("alert evaluation failed", "alert", a.ID, "error", err)
			continue
		}
		n++
	}
	return n, nil
}

// claim moves a due alert's next evaluation one interval on; false when
// another process claimed it first.
func (s *Service) claim(ctx context.Context, id uuid.UUID, interval int, now time.Time) (bool, error) {
	n, err := s.db.Alert.Update().Where(alert.ID(id), alert.NextEvalAtLTE(now)).
		SetNextEvalAt(now.Add(time.Duration(interval) * time.Second)).Save(ctx)
	return n == 1, err
}

// SetTester wires the channel sender used by TestNotification.
func (s *Service) SetTester(t Tester) { s.tester = t }

// TestNotification sends a test message through each of an alert's
// channels (its owner or an admin) and reports per channel.
func (s *Service) TestNotification(ctx context.Context, id uuid.UUID) ([]TestResult, error) {
	a, err := s.authorized(ctx, id, policy.AlertsManage)
	if err != nil {
		return nil, err
	}
	if s.tester == nil {
		return nil, errs.Unavailable("sending through channels is not available in this server yet")
	}
	out := make([]TestResult, 0, len(a.Channels))
	for _, c := range a.Channels {
		r := TestResult{Type: c.Type, Target: c.Target}
		secret, err := s.OpenSecret(a.ID, c)
		if err == nil {
			err = s.tester.Test(ctx, a, c, secret)
		}
		if err != nil {
			r.Error = err.Error()
		} else {
			r.OK = true
		}
		out = append(out, r)
	}
	return out, nil
}
