package alerting

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/datapulse/datapulse/core/jobs"
	"github.com/datapulse/datapulse/core/notify"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/alertnotification"
	"github.com/datapulse/datapulse/ent/schema/types"
	"github.com/datapulse/datapulse/ent/user"
)

// EvaluateDueArgs is the periodic job that evaluates the due alerts.
type EvaluateDueArgs struct{}

// Kind implements river.JobArgs.
func (EvaluateDueArgs) Kind() string { return "alerts.evaluate_due" }

// DeliverArgs is one delivery of one state change to one channel.
type DeliverArgs struct {
	AlertID uuid.UUID `json:"alert_id"`
	EventID uuid.UUID `json:"event_id"`
	// Channel is the index in the alert's channels when the change happened.
	Channel int    `json:"channel"`
	Change  string `json:"change"` // firing | resolved
}

// Kind implements river.JobArgs.
func (DeliverArgs) Kind() string { return "alerts.deliver" }

// UseJobs wires evaluation and delivery to River (core/jobs): a periodic
// job, enqueued by the elected leader, evaluates the due alerts (each
// claimed once per interval); state changes insert their delivery jobs in
// their own transaction (outbox). Call it before the job service starts.
func (s *Service) UseJobs(js *jobs.Service, n *notify.Notifier) error {
	s.txFn = js.WithTx
	s.disp = jobDispatcher{js: js}
	if err := jobs.Register(js, &evaluateDueWorker{s: s}); err != nil {
		return err
	}
	if err := jobs.Register(js, &deliverWorker{s: s, n: n}); err != nil {
		return err
	}
	return js.AddPeriodic(jobs.Every(time.Second), func() (river.JobArgs, *river.InsertOpts) {
		return EvaluateDueArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: time.Second}}
	}, jobs.PeriodicOptions{ID: "alerts.evaluate_due", RunOnStart: true})
}

type evaluateDueWorker struct {
	river.WorkerDefaults[EvaluateDueArgs]
	s *Service
}

func (w *evaluateDueWorker) Timeout(*river.Job[EvaluateDueArgs]) time.Duration {
	return 5 * time.Minute
}

func (w *evaluateDueWorker) Work(ctx context.Context, _ *river.Job[EvaluateDueArgs]) error {
	for {
		n, err := w.s.EvaluateDue(ctx, 200)
		if err != nil || n < 200 {
			return err
		}
	}
}

// jobDispatcher inserts one delivery job per channel in the state change's
// transaction; River's uniqueness on the args keeps a change from being
// enqueued twice.
type jobDispatcher struct{ js *jobs.Service }

func (d jobDispatcher) Enqueue(ctx context.Context, tx *ent.Tx, dv Delivery) error {
	params := make([]river.InsertManyParams, 0, len(dv.Alert.Channels))
	for i := range dv.Alert.Channels {
		params = append(params, river.InsertManyParams{
			Args:       DeliverArgs{AlertID: dv.Alert.ID, EventID: dv.Event.ID, Channel: i, Change: dv.Kind},
			InsertOpts: &river.InsertOpts{MaxAttempts: 10, UniqueOpts: river.UniqueOpts{ByArgs: true}},
		})
	}
	if len(params) == 0 {
		return nil
	}
	_, err := d.js.InsertManyTx(ctx, tx, params)
	return err
}

type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	s *Service
	n *notify.Notifier
}

func (w *deliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration { return time.Minute }

// Work sends one message. The delivery id (event and channel) is the same on
// every retry, so receivers deduplicate.
func (w *deliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	sys := principal.System(ctx)
	a, err := w.s.db.Alert.Get(sys, job.Args.AlertID)
	if ent.IsNotFound(err) {
		return river.JobCancel(errors.New("the alert was deleted"))
	}
	if err != nil {
		return err
	}
	ev, err := w.s.db.AlertEvent.Get(sys, job.Args.EventID)
	if ent.IsNotFound(err) {
		return river.JobCancel(errors.New("the alert's history was deleted"))
	}
	if err != nil {
		return err
	}
	if job.Args.Channel >= len(a.Channels) {
		return river.JobCancel(errors.New("the channel was removed"))
	}
	c := a.Channels[job.Args.Channel]
	secret, err := w.s.OpenSecret(a.ID, c)
	if err != nil {
		return river.JobCancel(err)
	}
	cond := map[string]string{"above": ">", "below": "<", "equal": "=", "not_equal": "≠"}[string(a.ThresholdType)]
	value := "no value"
	if ev.Value != nil {
		value = strconv.FormatFloat(*ev.Value, 'g', -1, 64)
	}
	title := fmt.Sprintf("Alert firing: %s", a.Metric)
	event := "alert.triggered"
	if job.Args.Change == DeliveryResolved {
		title, event = fmt.Sprintf("Alert resolved: %s", a.Metric), "alert.resolved"
	}
	if ev.GroupKey != "" {
		title += " (" + ev.GroupKey + ")"
	}
	msg := notify.Message{
		DeliveryID: ev.ID.String() + "." + strconv.Itoa(job.Args.Channel),
		Event:      event,
		Title:      title,
		Text:       fmt.Sprintf("%s is %s (threshold %s %s).", a.Metric, value, cond, strconv.FormatFloat(ev.ThresholdValue, 'g', -1, 64)),
		Fields: []notify.Field{{Name: "Value", Value: value}, {Name: "Threshold", Value: cond + " " + strconv.FormatFloat(ev.ThresholdValue, 'g', -1, 64)},
			{Name: "State", Value: string(ev.FromState) + " → " + string(ev.ToState)}},
		LinkPath:   "/alerts/" + a.ID.String(),
		OccurredAt: ev.CreatedAt,
		Data: map[string]any{"alert_id": a.ID.String(), "event_id": ev.ID.String(), "group": ev.GroupKey,
			"value": ev.Value, "threshold_type": string(a.ThresholdType), "threshold_value": ev.ThresholdValue,
			"from": string(ev.FromState), "to": string(ev.ToState)},
	}
	if job.Args.Change == DeliveryFiring {
		if path := w.ackLink(sys, a, ev, c); path != "" {
			msg.LinkPath, msg.LinkText = path, "Acknowledge"
		}
	}
	r := w.n.Send(ctx, clearChannel(c, secret), msg)
	if r.Err != nil && r.Permanent {
		return river.JobCancel(r.Err)
	}
	return r.Err
}

// LinkTTL is how long a one-click link in a message stays valid.
const LinkTTL = 7 * 24 * time.Hour

// ackLink is the one-click acknowledge link of the notification this
// channel's message stands for: an email target's user's, or the owner's in
// a Slack message. "" when there is none (e.g. an address of no user).
func (w *deliverWorker) ackLink(ctx context.Context, a *ent.Alert, ev *ent.AlertEvent, c types.AlertChannel) string {
	recipient := a.UserID
	if c.Type == "email" {
		u, err := w.s.db.User.Query().Where(user.Email(c.Target)).Only(ctx)
		if err != nil {
			return ""
		}
		recipient = u.ID
	} else if c.Type != "slack" {
		return ""
	}
	n, err := w.s.db.AlertNotification.Query().Where(alertnotification.EventID(ev.ID), alertnotification.UserID(recipient)).Only(ctx)
	if err != nil {
		return ""
	}
	return "/api/v1/alert-links/" + w.s.LinkFor(n.ID, recipient, ActionAcknowledge, LinkTTL)
}
