package alerting

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/alertevent"
	"github.com/datapulse/datapulse/ent/alertnotification"
	"github.com/datapulse/datapulse/policy"
)

// Event is one state change in an alert's history.
type Event struct {
	ID             uuid.UUID `json:"id"`
	InstanceID     uuid.UUID `json:"instance_id"`
	GroupKey       string    `json:"group_key"`
	From           string    `json:"from"`
	To             string    `json:"to"`
	Value          *float64  `json:"value"`
	ThresholdValue float64   `json:"threshold_value"`
	Reason         *string   `json:"reason"`
	CreatedAt      time.Time `json:"created_at"`
}

func eventToAPI(e *ent.AlertEvent) Event {
	return Event{ID: e.ID, InstanceID: e.InstanceID, GroupKey: e.GroupKey, From: string(e.FromState), To: string(e.ToState),
		Value: e.Value, ThresholdValue: e.ThresholdValue, Reason: e.Reason, CreatedAt: e.CreatedAt}
}

// History lists an alert's state changes, newest first (its owner or an admin).
func (s *Service) History(ctx context.Context, id uuid.UUID, p paging.Params) (paging.Page[Event], error) {
	if _, err := s.authorized(ctx, id, policy.ReadAction(policy.KindAlert)); err != nil {
		return paging.Page[Event]{}, err
	}
	p, err := p.Normalize()
	if err != nil {
		return paging.Page[Event]{}, err
	}
	if _, _, err := p.SortField("-created_at", "created_at"); err != nil {
		return paging.Page[Event]{}, err
	}
	q := s.db.AlertEvent.Query().Where(alertevent.AlertID(id))
	order := []alertevent.OrderOption{ent.Desc(alertevent.FieldCreatedAt), ent.Desc(alertevent.FieldID)}
	if p.Sort == "created_at" {
		order = []alertevent.OrderOption{ent.Asc(alertevent.FieldCreatedAt), ent.Asc(alertevent.FieldID)}
	}
	return paging.Collect(ctx, p, q.Clone().Count,
		func(ctx context.Context, off, n int) ([]*ent.AlertEvent, error) {
			return q.Order(order...).Offset(off).Limit(n).All(ctx)
		}, eventToAPI)
}

// Notification as the API shows it.
type Notification struct {
	ID             uuid.UUID  `json:"id"`
	AlertID        uuid.UUID  `json:"alert_id"`
	UserID         uuid.UUID  `json:"user_id"`
	InstanceID     *uuid.UUID `json:"instance_id"`
	EventID        *uuid.UUID `json:"event_id"`
	State          string     `json:"state"`
	Value          *float64   `json:"value"`
	SentAt         time.Time  `json:"sent_at"`
	AcknowledgedAt *time.Time `json:"acknowledged_at"`
	AcknowledgedBy *uuid.UUID `json:"acknowledged_by"`
	ResolvedAt     *time.Time `json:"resolved_at"`
	ResolvedBy     *uuid.UUID `json:"resolved_by"`
	// Resolution: "auto" (the value recovered) or "manual".
	Resolution *string `json:"resolution"`
}

func notificationToAPI(n *ent.AlertNotification) Notification {
	return Notification{ID: n.ID, AlertID: n.AlertID, UserID: n.UserID, InstanceID: n.InstanceID, EventID: n.EventID,
		State: string(n.State), Value: n.Value, SentAt: n.SentAt, AcknowledgedAt: n.AcknowledgedAt, AcknowledgedBy: n.AcknowledgedBy,
		ResolvedAt: n.ResolvedAt, ResolvedBy: n.ResolvedBy, Resolution: n.Resolution}
}

// NotificationFilter narrows a list of notifications.
type NotificationFilter struct {
	AlertID uuid.UUID
	State   string
}

// Notifications lists the caller's notifications (every one for admins).
func (s *Service) Notifications(ctx context.Context, f NotificationFilter, p paging.Params) (paging.Page[Notification], error) {
	sub, err := policy.SubjectFrom(ctx)
	if err != nil {
		return paging.Page[Notification]{}, err
	}
	p, err = p.Normalize()
	if err != nil {
		return paging.Page[Notification]{}, err
	}
	field, desc, err := p.SortField("-sent_at", "sent_at", "state")
	if err != nil {
		return paging.Page[Notification]{}, err
	}
	q := s.db.AlertNotification.Query()
	if !(sub.System || s.pol.Facts().IsAdmin(sub.UserID)) {
		q.Where(alertnotification.UserID(sub.UserID))
	}
	if f.AlertID != uuid.Nil {
		q.Where(alertnotification.AlertID(f.AlertID))
	}
	if f.State != "" {
		if err := alertnotification.StateValidator(alertnotification.State(f.State)); err != nil {
			return paging.Page[Notification]{}, errs.Invalid("state", "state must be one of open, acknowledged, resolved")
		}
		q.Where(alertnotification.StateEQ(alertnotification.State(f.State)))
	}
	order := ent.Asc(field)
	if desc {
		order = ent.Desc(field)
	}
	return paging.Collect(ctx, p, q.Clone().Count,
		func(ctx context.Context, off, n int) ([]*ent.AlertNotification, error) {
			return q.Order(order, ent.Asc(alertnotification.FieldID)).Offset(off).Limit(n).All(ctx)
		}, notificationToAPI)
}

// Notification actions.
const (
	ActionAcknowledge = "acknowledge"
	ActionResolve     = "resolve"
)

// mayHandle: the recipient, the alert's owner, or an admin. Anyone else is
// told the notification does not exist.
func (s *Service) mayHandle(sub policy.Subject, n *ent.AlertNotification) bool {
	f := s.pol.Facts()
	return sub.System || f.IsAdmin(sub.UserID) || n.UserID == sub.UserID || f.IsOwner(policy.KindAlert, n.AlertID, sub.UserID)
}

// Acknowledge marks a notification acknowledged (recipient, alert owner or
// admin). Acknowledging it again changes nothing; a resolved one is a conflict.
func (s *Service) Acknowledge(ctx context.Context, id uuid.UUID) (Notification, error) {
	return s.handle(ctx, id, ActionAcknowledge)
}

// Resolve marks a notification resolved by hand (recipient, alert owner or
// admin). Resolving it again changes nothing.
func (s *Service) Resolve(ctx context.Context, id uuid.UUID) (Notification, error) {
	return s.handle(ctx, id, ActionResolve)
}

func (s *Service) handle(ctx context.Context, id uuid.UUID, action string) (Notification, error) {
	p, ok := principal.From(ctx)
	if !ok {
		return Notification{}, errs.Unauthenticated("authentication required")
	}
	sub := policy.SubjectOf(p)
	n, err := s.db.AlertNotification.Get(principal.System(ctx), id)
	if ent.IsNotFound(err) || (err == nil && !s.mayHandle(sub, n)) {
		return Notification{}, errs.NotFound("notification")
	}
	if err != nil {
		return Notification{}, err
	}
	if !p.CanWrite() {
		return Notification{}, errs.Forbidden("this token is read-only")
	}
	return s.apply1(ctx, n, action, sub.UserID)
}

// apply1 applies an action with a conditional update (the state read), so
// two concurrent clicks record one acknowledgement.
func (s *Service) apply1(ctx context.Context, n *ent.AlertNotification, action string, by uuid.UUID) (Notification, error) {
	now := s.clock()
	var byp *uuid.UUID
	if by != uuid.Nil {
		byp = &by
	}
	for range 3 {
		switch {
		case action == ActionAcknowledge && n.State == alertnotification.StateResolved:
			return Notification{}, errs.Conflict("the notification is already resolved")
		case action == ActionAcknowledge && n.State == alertnotification.StateAcknowledged,
			action == ActionResolve && n.State == alertnotification.StateResolved:
			return notificationToAPI(n), nil
		}
		up := s.db.AlertNotification.Update().Where(alertnotification.ID(n.ID), alertnotification.StateEQ(n.State))
		if action == ActionAcknowledge {
			up.SetState(alertnotification.StateAcknowledged).SetAcknowledgedAt(now).SetNillableAcknowledgedBy(byp)
		} else {
			up.SetState(alertnotification.StateResolved).SetResolvedAt(now).SetNillableResolvedBy(byp).SetResolution("manual")
		}
		c, err := up.Save(ctx)
		if err != nil {
			return Notification{}, err
		}
		fresh, err := s.db.AlertNotification.Get(ctx, n.ID)
		if err != nil {
			return Notification{}, err
		}
		if c == 1 {
			return notificationToAPI(fresh), nil
		}
		n = fresh // changed meanwhile: decide again on what it is now
	}
	return Notification{}, errs.Conflict("the notification changed meanwhile; try again")
}

// DeriveLinkKey derives the key that signs one-click links from the token
// signing key (a different purpose, a different key).
func DeriveLinkKey(signingKey []byte) []byte {
	m := hmac.New(sha256.New, signingKey)
	m.Write([]byte("datapulse alert-notification links v1"))
	return m.Sum(nil)
}

// Link is a one-click action on a notification, bound to its recipient.
type Link struct {
	NotificationID uuid.UUID
	UserID         uuid.UUID
	Action         string
	Expires        time.Time
}

const linkPayload = 16 + 16 + 1 + 8

// SignLink returns the token of a one-click link.
func (s *Service) SignLink(l Link) string {
	b := make([]byte, linkPayload)
	copy(b, l.NotificationID[:])
	copy(b[16:], l.UserID[:])
	if l.Action == ActionResolve {
		b[32] = 1
	}
	binary.BigEndian.PutUint64(b[33:], uint64(l.Expires.Unix()))
	m := hmac.New(sha256.New, s.linkKey)
	m.Write(b)
	return base64.RawURLEncoding.EncodeToString(b) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// LinkFor signs a link for a notification's recipient, valid for ttl.
func (s *Service) LinkFor(n uuid.UUID, recipient uuid.UUID, action string, ttl time.Duration) string {
	return s.SignLink(Link{NotificationID: n, UserID: recipient, Action: action, Expires: s.clock().Add(ttl)})
}

// errBadLink is every refusal of a link: tampered, expired or foreign.
var errBadLink = errs.NotFound("link")

// VerifyLink checks a link's signature and expiry.
func (s *Service) VerifyLink(token string) (Link, error) {
	if len(s.linkKey) == 0 || len(token) > 200 {
		return Link{}, errBadLink
	}
	p, sig, ok := strings.Cut(token, ".")
	if !ok {
		return Link{}, errBadLink
	}
	b, err1 := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil || len(b) != linkPayload {
		return Link{}, errBadLink
	}
	m := hmac.New(sha256.New, s.linkKey)
	m.Write(b)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return Link{}, errBadLink
	}
	l := Link{Action: ActionAcknowledge, Expires: time.Unix(int64(binary.BigEndian.Uint64(b[33:])), 0).UTC()}
	copy(l.NotificationID[:], b[:16])
	copy(l.UserID[:], b[16:32])
	if b[32] == 1 {
		l.Action = ActionResolve
	}
	if !s.clock().Before(l.Expires) {
		return Link{}, errs.Invalid("token", "this link has expired; open the notification in DataPulse instead")
	}
	return l, nil
}

// LinkTarget describes what a valid link would do, without doing it (the
// confirmation page a GET shows).
type LinkTarget struct {
	Link         Link
	Notification Notification
	Metric       string
}

// InspectLink verifies a link and loads its notification, changing nothing.
func (s *Service) InspectLink(ctx context.Context, token string) (LinkTarget, error) {
	l, err := s.VerifyLink(token)
	if err != nil {
		return LinkTarget{}, err
	}
	sys := principal.System(ctx)
	n, err := s.db.AlertNotification.Get(sys, l.NotificationID)
	if err != nil || n.UserID != l.UserID {
		return LinkTarget{}, errBadLink
	}
	a, err := s.db.Alert.Get(sys, n.AlertID)
	if err != nil {
		return LinkTarget{}, errBadLink
	}
	return LinkTarget{Link: l, Notification: notificationToAPI(n), Metric: a.Metric}, nil
}

// ApplyLink performs a link's action as its recipient.
func (s *Service) ApplyLink(ctx context.Context, token string) (LinkTarget, error) {
	t, err := s.InspectLink(ctx, token)
	if err != nil {
		return LinkTarget{}, err
	}
	n, err := s.db.AlertNotification.Get(principal.System(ctx), t.Link.NotificationID)
	if err != nil {
		return LinkTarget{}, errBadLink
	}
	out, err := s.apply1(principal.System(ctx), n, t.Link.Action, t.Link.UserID)
	if err != nil {
		return LinkTarget{}, err
	}
	t.Notification = out
	return t, nil
}
