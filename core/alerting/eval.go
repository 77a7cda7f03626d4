package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/datamodels"
	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/models"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/queries"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/alert"
	"github.com/datapulse/datapulse/ent/alertevent"
	"github.com/datapulse/datapulse/ent/alertinstance"
	"github.com/datapulse/datapulse/ent/alertnotification"
	"github.com/datapulse/datapulse/ent/user"
	"github.com/datapulse/datapulse/policy"
)

// Evaluation states of an instance (Grafana's).
const (
	StateNormal   = "normal"
	StatePending  = "pending"
	StateAlerting = "alerting"
	StateNoData   = "no_data"
	StateError    = "error"
)

// Evaluation is what one evaluation of an alert found and did.
type Evaluation struct {
	AlertID     uuid.UUID `json:"alert_id"`
	EvaluatedAt time.Time `json:"evaluated_at"`
	// Skipped says why nothing was evaluated (paused, snoozed, no source).
	Skipped   string           `json:"skipped,omitempty"`
	State     string           `json:"state"`
	Status    string           `json:"status"`
	Error     *string          `json:"error"`
	Instances []InstanceResult `json:"instances"`
}

// InstanceResult is one instance's evaluation.
type InstanceResult struct {
	GroupKey string   `json:"group_key"`
	Value    *float64 `json:"value"`
	// Condition: whether the value crossed the threshold (nil without a value).
	Condition *bool  `json:"condition"`
	From      string `json:"from"`
	State     string `json:"state"`
	// Changed: this evaluation changed the state (one history event); false
	// when it stayed or another evaluation applied the same change first.
	Changed bool    `json:"changed"`
	Reason  *string `json:"reason"`
	// Notified is the number of notifications this change created.
	Notified int `json:"notified"`
}

// observation is what the source said about one instance.
type observation struct {
	value  *float64
	noData bool
	err    string
	// gone: the group left the source's result.
	gone bool
}

// compare tells whether v crosses the threshold.
func compare(kind alert.ThresholdType, v, t float64) bool {
	switch kind {
	case alert.ThresholdTypeAbove:
		return v > t
	case alert.ThresholdTypeBelow:
		return v < t
	case alert.ThresholdTypeEqual:
		return v == t
	case alert.ThresholdTypeNotEqual:
		return v != t
	}
	return false
}

// transition is the state machine: the next state of an instance in state
// cur (since `since`) given an observation. It is pure.
func transition(a *ent.Alert, cur string, since, now time.Time, obs observation) (next string, cond *bool, reason string) {
	firing := func() string {
		switch cur {
		case StateAlerting:
			return StateAlerting
		case StatePending:
			if now.Sub(since) >= time.Duration(a.ForSeconds)*time.Second {
				return StateAlerting
			}
			return StatePending
		}
		if a.ForSeconds == 0 {
			return StateAlerting
		}
		return StatePending
	}
	switch {
	case obs.err != "":
		reason = obs.err
		switch a.ErrorState {
		case alert.ErrorStateAlerting:
			return firing(), nil, reason
		case alert.ErrorStateKeepState:
			return cur, nil, reason
		}
		return StateError, nil, reason
	case obs.noData || obs.value == nil:
		reason = "the source returned no data"
		switch a.NoDataState {
		case alert.NoDataStateAlerting:
			return firing(), nil, reason
		case alert.NoDataStateNormal:
			return StateNormal, nil, reason
		case alert.NoDataStateKeepState:
			return cur, nil, reason
		}
		return StateNoData, nil, reason
	}
	c := compare(a.ThresholdType, *obs.value, a.ThresholdValue)
	if c {
		return firing(), &c, ""
	}
	return StateNormal, &c, ""
}

// severity orders states for an alert's aggregate state.
var severity = map[string]int{StateNormal: 0, StatePending: 1, StateNoData: 2, StateError: 3, StateAlerting: 4}

// statusFor maps an aggregate evaluation state to the seed's status.
func statusFor(state alert.State, prev alert.Status) alert.Status {
	switch {
	case prev == alert.StatusPaused:
		return alert.StatusPaused
	case state == alert.StateAlerting:
		return alert.StatusTriggered
	case prev == alert.StatusTriggered:
		return alert.StatusResolved
	}
	return prev
}

// Evaluate evaluates one alert now (its owner or an admin) and applies the
// result exactly as a scheduled evaluation does.
func (s *Service) Evaluate(ctx context.Context, id uuid.UUID) (Evaluation, error) {
	if _, err := s.authorized(ctx, id, policy.AlertsManage); err != nil {
		return Evaluation{}, err
	}
	return s.evaluate(principal.System(context.WithoutCancel(ctx)), id, true)
}

// EvaluateSystem evaluates one alert for the scheduler (no caller check);
// the source still runs under the owner's rights.
func (s *Service) EvaluateSystem(ctx context.Context, id uuid.UUID) (Evaluation, error) {
	return s.evaluate(principal.System(ctx), id, false)
}

// evaluate runs the source as the owner and applies the transitions. sys is
// a system context for the metadata reads and writes.
func (s *Service) evaluate(sys context.Context, id uuid.UUID, manual bool) (Evaluation, error) {
	a, err := s.db.Alert.Get(sys, id)
	if ent.IsNotFound(err) {
		return Evaluation{}, errs.NotFound("alert")
	}
	if err != nil {
		return Evaluation{}, err
	}
	now := s.clock()
	ev := Evaluation{AlertID: a.ID, EvaluatedAt: now, State: string(a.State), Status: string(a.Status), Instances: []InstanceResult{}}
	switch {
	case a.Status == alert.StatusPaused:
		ev.Skipped = "the alert is paused"
		return ev, nil
	case a.SnoozedUntil != nil && a.SnoozedUntil.After(now):
		ev.Skipped = "the alert is snoozed until " + a.SnoozedUntil.UTC().Format(time.RFC3339)
		return ev, nil
	case a.Source == nil:
		ev.Skipped = "the alert has no source"
		return ev, nil
	}
	obs, srcErr := s.observe(sys, a)
	instances, err := a.QueryInstances().All(sys)
	if err != nil {
		return Evaluation{}, err
	}
	byKey := map[string]*ent.AlertInstance{}
	for _, in := range instances {
		byKey[in.GroupKey] = in
	}
	if srcErr != "" || len(obs) == 0 {
		// An error or no rows at all: every known instance (or the single
		// one) observes it.
		o := observation{noData: true, err: srcErr}
		obs = map[string]observation{}
		if len(byKey) == 0 {
			obs[""] = o
		}
		for k := range byKey {
			obs[k] = o
		}
	} else {
		for k, in := range byKey {
			if _, ok := obs[k]; !ok && in.State != StateNormal {
				// A group that left the result is over.
				obs[k] = observation{gone: true}
			}
		}
	}
	keys := make([]string, 0, len(obs))
	for k := range obs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o := obs[k]
		in := byKey[k]
		if in == nil {
			if in, err = s.instance(sys, a.ID, k, now); err != nil {
				return Evaluation{}, err
			}
		}
		var next, reason string
		var cond *bool
		if o.gone {
			next, reason = StateNormal, "the group is no longer in the source's result"
		} else {
			next, cond, reason = transition(a, string(in.State), in.Since, now, o)
		}
		r := InstanceResult{GroupKey: k, Value: o.value, Condition: cond, From: string(in.State), State: next}
		if reason != "" {
			r.Reason = &reason
		}
		if next == string(in.State) {
			up := s.db.AlertInstance.UpdateOneID(in.ID).SetLastEvaluatedAt(now).SetNillableLastValue(o.value)
			if reason != "" {
				up.SetReason(reason)
			} else {
				up.ClearReason()
			}
			if err := up.Exec(sys); err != nil && !ent.IsNotFound(err) {
				return Evaluation{}, err
			}
		} else {
			changed, notified, err := s.apply(sys, a, in, next, o.value, reason, now)
			if err != nil {
				return Evaluation{}, err
			}
			r.Changed, r.Notified = changed, notified
			if !changed {
				// Another evaluation applied a change first: report what
				// the instance is in now.
				if cur, err := s.db.AlertInstance.Get(sys, in.ID); err == nil {
					r.State = string(cur.State)
				}
			}
		}
		ev.Instances = append(ev.Instances, r)
	}
	// The alert's aggregate state and status.
	all, err := a.QueryInstances().All(sys)
	if err != nil {
		return Evaluation{}, err
	}
	agg := StateNormal
	for _, in := range all {
		if severity[string(in.State)] > severity[agg] {
			agg = string(in.State)
		}
	}
	status := statusFor(alert.State(agg), a.Status)
	up := s.db.Alert.Update().Where(alert.ID(a.ID), alert.StatusNEQ(alert.StatusPaused)).
		SetState(alert.State(agg)).SetStatus(status).SetLastEvaluatedAt(now)
	if srcErr != "" {
		up.SetLastError(srcErr)
		ev.Error = &srcErr
	} else {
		up.ClearLastError()
	}
	if manual {
		up.SetNextEvalAt(now.Add(time.Duration(a.IntervalSeconds) * time.Second))
	}
	if _, err := up.Save(sys); err != nil {
		return Evaluation{}, err
	}
	ev.State, ev.Status = agg, string(status)
	return ev, nil
}

// instance returns the instance of a group, creating it in state normal.
func (s *Service) instance(ctx context.Context, alertID uuid.UUID, key string, now time.Time) (*ent.AlertInstance, error) {
	// Read first: after its first evaluation an instance exists, and an
	// INSERT … ON CONFLICT DO NOTHING on every evaluation is a write (a
	// commit, on SQLite the one writer's turn) for nothing.
	in, err := s.db.AlertInstance.Query().Where(alertinstance.AlertID(alertID), alertinstance.GroupKey(key)).Only(ctx)
	if err == nil || !ent.IsNotFound(err) {
		return in, err
	}
	err = s.db.AlertInstance.Create().SetAlertID(alertID).SetGroupKey(key).SetState(alertinstance.StateNormal).SetSince(now).
		OnConflictColumns(alertinstance.FieldAlertID, alertinstance.FieldGroupKey).DoNothing().Exec(ctx)
	if err != nil && !isNoRows(err) {
		// A concurrent evaluation created it first: DoNothing may answer
		// "no rows"; anything else is a failure.
		return nil, err
	}
	return s.db.AlertInstance.Query().Where(alertinstance.AlertID(alertID), alertinstance.GroupKey(key)).Only(ctx)
}

func isNoRows(err error) bool {
	return errors.Is(err, sql.ErrNoRows) || strings.Contains(err.Error(), "no rows")
}

// apply records one state change of an instance in one transaction: the
// conditional update (the instance still has the version read), the
// history event, and, when firing or recovering, the notifications and
// their delivery. It reports false when another evaluation changed the
// instance first (nothing is written).
func (s *Service) apply(ctx context.Context, a *ent.Alert, in *ent.AlertInstance, next string, value *float64, reason string, now time.Time) (bool, int, error) {
	changed, notified := false, 0
	err := s.txFn(ctx, func(tx *ent.Tx) error {
		up := tx.AlertInstance.Update().Where(alertinstance.ID(in.ID), alertinstance.Version(in.Version)).
			SetState(alertinstance.State(next)).SetSince(now).SetVersion(in.Version + 1).SetLastEvaluatedAt(now).
			SetNillableLastValue(value)
		if reason != "" {
			up.SetReason(reason)
		} else {
			up.ClearReason()
		}
		n, err := up.Save(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil // someone else applied a change first
		}
		ec := tx.AlertEvent.Create().SetAlertID(a.ID).SetInstanceID(in.ID).SetGroupKey(in.GroupKey).
			SetFromState(alertevent.FromState(in.State)).SetToState(alertevent.ToState(next)).
			SetNillableValue(value).SetThresholdValue(a.ThresholdValue).SetSeq(in.Version + 1).SetCreatedAt(now)
		if reason != "" {
			ec.SetReason(reason)
		}
		event, err := ec.Save(ctx)
		if err != nil {
			return err
		}
		changed = true
		d := Delivery{Alert: a, Event: event, GroupKey: in.GroupKey, Value: value}
		switch {
		case next == StateAlerting:
			users, err := s.recipients(ctx, tx, a)
			if err != nil {
				return err
			}
			bulk := make([]*ent.AlertNotificationCreate, len(users))
			for i, u := range users {
				bulk[i] = tx.AlertNotification.Create().SetAlertID(a.ID).SetUserID(u).SetInstanceID(in.ID).
					SetEventID(event.ID).SetSentAt(now).SetNillableValue(value)
			}
			ns, err := tx.AlertNotification.CreateBulk(bulk...).Save(ctx)
			if err != nil {
				return err
			}
			notified = len(ns)
			d.Kind, d.Notifications = DeliveryFiring, ns
		case string(in.State) == StateAlerting && next == StateNormal:
			open, err := tx.AlertNotification.Query().Where(alertnotification.InstanceID(in.ID),
				alertnotification.StateIn(alertnotification.StateOpen, alertnotification.StateAcknowledged)).All(ctx)
			if err != nil {
				return err
			}
			if _, err := tx.AlertNotification.Update().Where(alertnotification.InstanceID(in.ID),
				alertnotification.StateIn(alertnotification.StateOpen, alertnotification.StateAcknowledged)).
				SetState(alertnotification.StateResolved).SetResolvedAt(now).SetResolution("auto").Save(ctx); err != nil {
				return err
			}
			d.Kind, d.Notifications = DeliveryResolved, open
		default:
			return nil
		}
		return s.disp.Enqueue(ctx, tx, d)
	})
	return changed, notified, err
}

// recipients are the owner and every user whose address is an email target.
func (s *Service) recipients(ctx context.Context, tx *ent.Tx, a *ent.Alert) ([]uuid.UUID, error) {
	emails := []string{}
	for _, c := range a.Channels {
		if c.Type == "email" {
			emails = append(emails, strings.ToLower(c.Target))
		}
	}
	out := []uuid.UUID{a.UserID}
	if len(emails) == 0 {
		return out, nil
	}
	ids, err := tx.User.Query().Where(user.EmailIn(emails...), user.IDNEQ(a.UserID)).IDs(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	return append(out, ids...), nil
}

// observe runs the alert's source under its owner's rights and returns the
// observation per group key, or the reason it failed.
func (s *Service) observe(sys context.Context, a *ent.Alert) (map[string]observation, string) {
	owner, err := s.ownerContext(sys, a.UserID)
	if err != nil {
		return nil, "the alert's owner cannot be loaded"
	}
	// The owner's request, bounded like an interactive one.
	ctx, cancel := context.WithTimeout(owner, 60*time.Second)
	defer cancel()
	src := *a.Source
	var res queries.Result
	var column, dim string
	switch {
	case src.ModelID != "":
		id, err := uuid.Parse(src.ModelID)
		if err != nil {
			return nil, "the source's model id is invalid"
		}
		req := models.Request{Measures: []string{src.Measure}, Dimensions: []string{}, Where: src.Filters, Limit: MaxGroups}
		if a.GroupBy != nil && *a.GroupBy != "" {
			dim = *a.GroupBy
			req.Dimensions = []string{dim}
		}
		f, err := s.models.Query(ctx, id, req, datamodels.QueryOptions{Run: queries.RunOptions{MaxRows: MaxGroups}, Cache: noCache()})
		if err != nil {
			return nil, sourceError("data model", err)
		}
		res, column = f.Result, src.Measure
	case src.QueryID != "":
		id, err := uuid.Parse(src.QueryID)
		if err != nil {
			return nil, "the source's query id is invalid"
		}
		f, err := s.queries.FetchSaved(ctx, id, src.Parameters, queries.RunOptions{MaxRows: 1}, noCache())
		if err != nil {
			return nil, sourceError("saved query", err)
		}
		res, column = f.Result, src.Column
	default:
		return nil, "the alert has no source"
	}
	col, dcol := -1, -1
	for i, c := range res.Columns {
		if c.Name == column {
			col = i
		}
		if dim != "" && c.Name == dim {
			dcol = i
		}
	}
	if col < 0 {
		return nil, fmt.Sprintf("the source's result has no column %q", column)
	}
	if dim != "" && dcol < 0 {
		return nil, fmt.Sprintf("the source's result has no dimension %q", dim)
	}
	out := map[string]observation{}
	for i, row := range res.Rows {
		if dim == "" && i > 0 {
			break // the first row's value
		}
		key := ""
		if dim != "" {
			key = groupKey(row[dcol])
		}
		if _, seen := out[key]; seen {
			continue
		}
		v, ok, err := number(row[col])
		switch {
		case err != nil:
			out[key] = observation{err: fmt.Sprintf("the value of %q is not a number: %v", column, err)}
		case !ok:
			out[key] = observation{noData: true}
		default:
			out[key] = observation{value: &v}
		}
	}
	return out, ""
}

// sourceError is the reason an evaluation failed, for people.
func sourceError(kind string, err error) string {
	switch {
	case errors.Is(err, errs.ErrNotFound), errors.Is(err, errs.ErrForbidden), errors.Is(err, errs.ErrUnauthenticated):
		return "the alert's owner may no longer read the " + kind + " (" + err.Error() + ")"
	case errors.Is(err, errs.ErrInvalid), errors.Is(err, errs.ErrUpstream), errors.Is(err, errs.ErrUpstreamTimeout), errors.Is(err, errs.ErrUnavailable):
		return "the " + kind + " failed: " + err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "the " + kind + " did not answer in time"
	}
	return "the " + kind + " failed"
}

func groupKey(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}

// number reads a result value as a float; ok is false for NULL.
func number(v any) (float64, bool, error) {
	switch x := v.(type) {
	case nil:
		return 0, false, nil
	case int64:
		return float64(x), true, nil
	case uint64:
		return float64(x), true, nil
	case float64:
		return x, true, nil
	case bool:
		if x {
			return 1, true, nil
		}
		return 0, true, nil
	case string:
		// Decimals arrive as text.
		if f, _, err := big.ParseFloat(strings.TrimSpace(x), 10, 64, big.ToNearestEven); err == nil {
			v, _ := f.Float64()
			if !math.IsInf(v, 0) {
				return v, true, nil
			}
		}
		return 0, false, fmt.Errorf("%q", x)
	}
	return 0, false, fmt.Errorf("%T", v)
}
