// Package alerting holds alerts: threshold rules on a data model measure or a
// saved query's column, evaluated on a schedule under their owner's rights,
// with a per-instance state machine (normal → pending → alerting, no data,
// error), a history of state changes, and notifications that recipients
// acknowledge and resolve (docs/alerts.md).
//
// Two small interfaces connect it to the rest of the process:
//   - Dispatcher delivers notifications (email, webhook, Slack); it is handed
//     the transaction that records the state change, so a delivery job can
//     be inserted in it (outbox).
//   - the evaluation schedule is EvaluateDue, called by a Poller (or by a
//     periodic job); each due alert is claimed by a conditional update, so
//     several processes sharing a database evaluate it once per interval.
package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/datamodels"
	"github.com/datapulse/datapulse/core/egress"
	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/models"
	"github.com/datapulse/datapulse/core/notify"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/queries"
	"github.com/datapulse/datapulse/core/secrets"
	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/alert"
	"github.com/datapulse/datapulse/ent/schema/types"
	"github.com/datapulse/datapulse/policy"
)

// Limits of an alert's definition.
const (
	MinIntervalSeconds     = 10
	DefaultIntervalSeconds = 60
	MaxIntervalSeconds     = 7 * 24 * 3600
	MaxForSeconds          = 7 * 24 * 3600
	MaxChannels            = 20
	// MaxGroups bounds the instances one evaluation may produce.
	MaxGroups = 1000
)

// Options configure the service.
type Options struct {
	// LinkKey signs one-click notification links; derived from the token
	// signing key (DeriveLinkKey).
	LinkKey []byte
	// Box encrypts channel secrets at rest; nil stores none (refused).
	Box *secrets.Box
	// Allow is the --egress-allow list channel URLs are validated with.
	Allow egress.AllowList
	// Dispatcher delivers notifications; nil records them only.
	Dispatcher Dispatcher
	Logger     *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time
}

// Service is the alerting domain.
type Service struct {
	db      *ent.Client
	pol     *policy.Enforcer
	models  *datamodels.Service
	queries *queries.Service
	box     *secrets.Box
	linkKey []byte
	disp    Dispatcher
	tester  Tester
	// txFn runs a state change's transaction (jobs.Service.WithTx when
	// deliveries are jobs: InsertTx needs its transactions).
	txFn  func(ctx context.Context, fn func(tx *ent.Tx) error) error
	allow egress.AllowList
	log   *slog.Logger
	now   func() time.Time
}

// New returns the alerting service.
func New(db *ent.Client, pol *policy.Enforcer, dm *datamodels.Service, qs *queries.Service, o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Dispatcher == nil {
		o.Dispatcher = RecordOnly{}
	}
	sv := &Service{db: db, pol: pol, models: dm, queries: qs, box: o.Box, linkKey: o.LinkKey, disp: o.Dispatcher, allow: o.Allow, log: o.Logger, now: o.Now}
	sv.txFn = func(ctx context.Context, fn func(tx *ent.Tx) error) error { return store.WithTx(ctx, db, fn) }
	return sv
}

// SetDispatcher replaces the dispatcher (wiring, before the first evaluation).
func (s *Service) SetDispatcher(d Dispatcher) { s.disp = d }

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Channel as the API shows it: secrets are never returned.
type Channel struct {
	Type   string `json:"type" enum:"email,webhook,slack"`
	Target string `json:"target"`
	// SecretSet tells whether a webhook secret is stored.
	SecretSet bool `json:"secret_set"`
}

// ChannelInput is a channel as a client sends it.
type ChannelInput struct {
	Type   string `json:"type" enum:"email,webhook,slack"`
	Target string `json:"target" maxLength:"2048"`
	// Secret signs webhook bodies; omitted on update, the stored one stays.
	Secret *string `json:"secret,omitempty" maxLength:"512"`
}

// Alert as the API shows it.
type Alert struct {
	ID              uuid.UUID         `json:"id"`
	UserID          uuid.UUID         `json:"user_id"`
	Metric          string            `json:"metric"`
	ThresholdType   string            `json:"threshold_type"`
	ThresholdValue  float64           `json:"threshold_value"`
	Channels        []Channel         `json:"channels"`
	Status          string            `json:"status"`
	State           string            `json:"state"`
	Source          types.AlertSource `json:"source"`
	IntervalSeconds int               `json:"interval_seconds"`
	ForSeconds      int               `json:"for_seconds"`
	NoDataState     string            `json:"no_data_state"`
	ErrorState      string            `json:"error_state"`
	GroupBy         *string           `json:"group_by"`
	SnoozedUntil    *time.Time        `json:"snoozed_until"`
	NextEvalAt      *time.Time        `json:"next_eval_at"`
	LastEvaluatedAt *time.Time        `json:"last_evaluated_at"`
	LastError       *string           `json:"last_error"`
	CreatedAt       time.Time         `json:"created_at"`
	UpdatedAt       time.Time         `json:"updated_at"`
}

func toAPI(a *ent.Alert) Alert {
	out := Alert{ID: a.ID, UserID: a.UserID, Metric: a.Metric, ThresholdType: string(a.ThresholdType),
		ThresholdValue: a.ThresholdValue, Channels: []Channel{}, Status: string(a.Status), State: string(a.State),
		IntervalSeconds: a.IntervalSeconds, ForSeconds: a.ForSeconds, NoDataState: string(a.NoDataState),
		ErrorState: string(a.ErrorState), GroupBy: a.GroupBy, SnoozedUntil: a.SnoozedUntil, NextEvalAt: a.NextEvalAt,
		LastEvaluatedAt: a.LastEvaluatedAt, LastError: a.LastError, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	if a.Source != nil {
		out.Source = *a.Source
	}
	for _, c := range a.Channels {
		out.Channels = append(out.Channels, Channel{Type: c.Type, Target: c.Target, SecretSet: c.Secret != ""})
	}
	return out
}

// Input creates or changes an alert; nil fields stay on update.
type Input struct {
	Metric          *string
	ThresholdType   *string
	ThresholdValue  *float64
	Channels        *[]ChannelInput
	Source          *types.AlertSource
	IntervalSeconds *int
	ForSeconds      *int
	NoDataState     *string
	ErrorState      *string
	// GroupBy: "" clears it.
	GroupBy *string
	// Status: "paused" pauses, "active" resumes; other values are set by
	// evaluation only.
	Status *string
}

var (
	thresholdTypes = []string{"above", "below", "equal", "not_equal"}
	noDataStates   = []string{"no_data", "alerting", "normal", "keep_state"}
	errorStates    = []string{"error", "alerting", "keep_state"}
)

func checkScalars(in Input, create bool) error {
	var bad []errs.FieldError
	add := func(f, m string) { bad = append(bad, errs.FieldError{Field: f, Message: m}) }
	if create {
		if in.Metric == nil {
			add("metric", "metric is required")
		}
		if in.ThresholdType == nil {
			add("threshold_type", "threshold_type is required")
		}
		if in.ThresholdValue == nil {
			add("threshold_value", "threshold_value is required")
		}
		if in.Source == nil {
			add("source", "source is required")
		}
	}
	if in.Metric != nil {
		m := strings.TrimSpace(*in.Metric)
		if m == "" || len([]rune(m)) > 100 || strings.ContainsAny(m, "\x00\r\n") {
			add("metric", "metric must be 1 to 100 characters on one line")
		}
	}
	if in.ThresholdType != nil && !slices.Contains(thresholdTypes, *in.ThresholdType) {
		add("threshold_type", "threshold_type must be one of above, below, equal, not_equal")
	}
	if in.ThresholdValue != nil && (math.IsNaN(*in.ThresholdValue) || math.IsInf(*in.ThresholdValue, 0)) {
		add("threshold_value", "threshold_value must be a finite number")
	}
	if in.IntervalSeconds != nil && (*in.IntervalSeconds < MinIntervalSeconds || *in.IntervalSeconds > MaxIntervalSeconds) {
		add("interval_seconds", fmt.Sprintf("interval_seconds must be between %d and %d", MinIntervalSeconds, MaxIntervalSeconds))
	}
	if in.ForSeconds != nil && (*in.ForSeconds < 0 || *in.ForSeconds > MaxForSeconds) {
		add("for_seconds", fmt.Sprintf("for_seconds must be between 0 and %d", MaxForSeconds))
	}
	if in.NoDataState != nil && !slices.Contains(noDataStates, *in.NoDataState) {
		add("no_data_state", "no_data_state must be one of no_data, alerting, normal, keep_state")
	}
	if in.ErrorState != nil && !slices.Contains(errorStates, *in.ErrorState) {
		add("error_state", "error_state must be one of error, alerting, keep_state")
	}
	if in.Status != nil && *in.Status != "active" && *in.Status != "paused" {
		add("status", "status can be set to paused or active; triggered and resolved come from evaluation")
	}
	if in.GroupBy != nil && len([]rune(*in.GroupBy)) > 255 {
		add("group_by", "group_by must be at most 255 characters")
	}
	if len(bad) > 0 {
		return errs.InvalidFields(bad[0].Message, bad)
	}
	return nil
}

// slackRedacted is how a Slack webhook URL (a secret) is shown.
func slackRedacted(u *url.URL) string { return u.Scheme + "://" + u.Host + "/…" }

// checkChannels validates channels (core/notify's rules, with the egress
// allow list) and seals their secrets, keeping the stored secret of a
// channel resent without one (a webhook by its URL, a Slack channel by its
// redacted URL).
func (s *Service) checkChannels(in []ChannelInput, old []types.AlertChannel, alertID uuid.UUID) ([]types.AlertChannel, error) {
	if len(in) > MaxChannels {
		return nil, errs.Invalid("channels", fmt.Sprintf("at most %d channels", MaxChannels))
	}
	out := make([]types.AlertChannel, 0, len(in))
	for i, c := range in {
		field := fmt.Sprintf("channels[%d]", i)
		target := strings.TrimSpace(c.Target)
		if c.Type == "slack" && c.Secret == nil {
			if kept := s.keptSlack(target, old); kept != nil {
				out = append(out, *kept)
				continue
			}
		}
		clear := notify.Channel{Type: notify.Type(c.Type), Target: target}
		keptSecret := ""
		if c.Secret != nil {
			clear.Secret = *c.Secret
		} else if c.Type == "webhook" {
			for _, o := range old {
				if o.Type == "webhook" && o.Target == target && o.Secret != "" {
					keptSecret = o.Secret
					break
				}
			}
			if keptSecret != "" {
				// Validated as if resent: the stored one passed before.
				clear.Secret = strings.Repeat("x", notify.MinWebhookSecret)
			}
		}
		if c.Type == "email" {
			clear.Target = strings.ToLower(target)
		}
		if err := clear.Validate(s.allow); err != nil {
			f := field + ".target"
			switch {
			case c.Type != "email" && c.Type != "webhook" && c.Type != "slack":
				f = field + ".type"
			case strings.Contains(err.Error(), "secret"):
				f = field + ".secret"
			}
			return nil, errs.Invalid(f, err.Error())
		}
		ch := types.AlertChannel{Type: c.Type, Target: clear.Target}
		switch c.Type {
		case "slack":
			// The URL is the credential: sealed, shown redacted.
			sealed, err := s.seal(target, alertID)
			if err != nil {
				return nil, err
			}
			u, _ := url.Parse(target)
			ch.Target, ch.Secret = slackRedacted(u), sealed
		case "webhook":
			if keptSecret != "" {
				ch.Secret = keptSecret
				break
			}
			sealed, err := s.seal(clear.Secret, alertID)
			if err != nil {
				return nil, err
			}
			ch.Secret = sealed
		}
		out = append(out, ch)
	}
	return out, nil
}

func (s *Service) keptSlack(target string, old []types.AlertChannel) *types.AlertChannel {
	for _, o := range old {
		if o.Type == "slack" && o.Target == target {
			c := o
			return &c
		}
	}
	return nil
}

func (s *Service) seal(secret string, alertID uuid.UUID) (string, error) {
	if s.box == nil {
		return "", errs.Invalid("channels", "channel secrets cannot be stored: no encryption key is configured")
	}
	return s.box.Seal(secret, "alert-channel:"+alertID.String())
}

// OpenSecret returns a channel's secret in clear (for the dispatcher): the
// webhook's signing secret or the Slack URL.
func (s *Service) OpenSecret(alertID uuid.UUID, c types.AlertChannel) (string, error) {
	if c.Secret == "" {
		return "", nil
	}
	if s.box == nil {
		return "", errors.New("alerting: no encryption key for channel secrets")
	}
	return s.box.Open(c.Secret, "alert-channel:"+alertID.String())
}

// checkSource validates a source under the caller's rights: they must be
// able to read the model (models:use) or the saved query (their own), and
// the measure / column / group_by must exist. An unreadable source answers
// as an unknown one.
func (s *Service) checkSource(ctx context.Context, src types.AlertSource, groupBy string) error {
	switch {
	case src.ModelID != "" && src.QueryID != "":
		return errs.Invalid("source", "a source names either model_id or query_id, not both")
	case src.ModelID != "":
		if src.Column != "" || len(src.Parameters) > 0 {
			return errs.Invalid("source", "column and parameters belong to query sources; a model source has measure and filters")
		}
		id, err := uuid.Parse(src.ModelID)
		if err != nil {
			return errs.Invalid("source.model_id", "no data model with this id")
		}
		m, err := s.models.Get(ctx, id)
		if errors.Is(err, errs.ErrNotFound) {
			return errs.Invalid("source.model_id", "no data model with this id")
		}
		if err != nil {
			return err
		}
		if src.Measure == "" {
			return errs.Invalid("source.measure", "a model source names one of the model's measures")
		}
		if !slices.ContainsFunc(m.Config.Measures, func(x models.Measure) bool { return x.Name == src.Measure }) {
			return errs.Invalid("source.measure", fmt.Sprintf("the model has no measure %q", src.Measure))
		}
		if groupBy != "" && !slices.ContainsFunc(m.Config.Dimensions, func(x models.Dimension) bool { return x.Name == groupBy }) {
			return errs.Invalid("group_by", fmt.Sprintf("the model has no dimension %q", groupBy))
		}
		if len(src.Filters) > 20 {
			return errs.Invalid("source.filters", "at most 20 filters")
		}
		for i, f := range src.Filters {
			if _, err := models.ParseFilter(f); err != nil {
				return errs.Invalid(fmt.Sprintf("source.filters[%d]", i), err.Error())
			}
		}
		return nil
	case src.QueryID != "":
		if src.Measure != "" || len(src.Filters) > 0 {
			return errs.Invalid("source", "measure and filters belong to model sources; a query source has column and parameters")
		}
		if groupBy != "" {
			return errs.Invalid("group_by", "group_by needs a model source")
		}
		id, err := uuid.Parse(src.QueryID)
		if err != nil {
			return errs.Invalid("source.query_id", "no saved query with this id")
		}
		if _, err := s.queries.Get(ctx, id); err != nil {
			if errors.Is(err, errs.ErrNotFound) {
				return errs.Invalid("source.query_id", "no saved query with this id")
			}
			return err
		}
		if strings.TrimSpace(src.Column) == "" {
			return errs.Invalid("source.column", "a query source names the numeric column to compare")
		}
		// The column can only be known by running the query: when it runs,
		// it must have the column; when the source is unreachable now, the
		// evaluation will report it.
		f, err := s.queries.FetchSaved(ctx, id, src.Parameters, queries.RunOptions{MaxRows: 1, Timeout: 15 * time.Second}, noCache())
		if err != nil {
			if errors.Is(err, errs.ErrInvalid) {
				var e *errs.Error
				if errors.As(err, &e) && strings.HasPrefix(e.Field, "parameters") {
					return errs.Invalid("source."+e.Field, e.Message)
				}
				return errs.Invalid("source.query_id", "the saved query fails: "+err.Error())
			}
			return nil
		}
		if !slices.ContainsFunc(f.Result.Columns, func(c queries.Column) bool { return c.Name == src.Column }) {
			return errs.Invalid("source.column", fmt.Sprintf("the saved query's result has no column %q", src.Column))
		}
		return nil
	}
	return errs.Invalid("source", "a source names a model_id (with measure) or a query_id (with column)")
}

func noCache() queries.CacheOptions {
	zero := time.Duration(0)
	return queries.CacheOptions{Bypass: true, TTL: &zero}
}

// Create saves an alert owned by the caller (alerts:manage), whose source
// the caller may read.
func (s *Service) Create(ctx context.Context, in Input) (Alert, error) {
	sub, err := policy.SubjectFrom(ctx)
	if err != nil {
		return Alert{}, err
	}
	if err := s.pol.RequireSubject(ctx, sub, policy.Alerts, policy.AlertsManage); err != nil {
		return Alert{}, err
	}
	if err := checkScalars(in, true); err != nil {
		return Alert{}, err
	}
	groupBy := ""
	if in.GroupBy != nil {
		groupBy = strings.TrimSpace(*in.GroupBy)
	}
	if err := s.checkSource(ctx, *in.Source, groupBy); err != nil {
		return Alert{}, err
	}
	id := uuid.Must(uuid.NewV7())
	channels := []types.AlertChannel{}
	if in.Channels != nil {
		if channels, err = s.checkChannels(*in.Channels, nil, id); err != nil {
			return Alert{}, err
		}
	}
	now := s.clock()
	c := s.db.Alert.Create().SetID(id).SetUserID(sub.UserID).SetMetric(strings.TrimSpace(*in.Metric)).
		SetThresholdType(alert.ThresholdType(*in.ThresholdType)).SetThresholdValue(*in.ThresholdValue).
		SetChannels(channels).SetSource(in.Source).SetNextEvalAt(now)
	if in.IntervalSeconds != nil {
		c.SetIntervalSeconds(*in.IntervalSeconds)
	}
	if in.ForSeconds != nil {
		c.SetForSeconds(*in.ForSeconds)
	}
	if in.NoDataState != nil {
		c.SetNoDataState(alert.NoDataState(*in.NoDataState))
	}
	if in.ErrorState != nil {
		c.SetErrorState(alert.ErrorState(*in.ErrorState))
	}
	if groupBy != "" {
		c.SetGroupBy(groupBy)
	}
	if in.Status != nil {
		c.SetStatus(alert.Status(*in.Status))
	}
	a, err := c.Save(ctx)
	if err != nil {
		return Alert{}, err
	}
	s.pol.Facts().SetOwner(policy.KindAlert, a.ID, a.UserID)
	return toAPI(a), nil
}

// authorized loads an alert the caller may do act on: their own, or any for
// admins; another user's alert is "not found".
func (s *Service) authorized(ctx context.Context, id uuid.UUID, act policy.Action) (*ent.Alert, error) {
	if err := s.pol.Require(ctx, policy.Alert(id), act); err != nil {
		return nil, err
	}
	a, err := s.db.Alert.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, errs.NotFound("alert")
	}
	return a, err
}

// Get returns one alert (its owner or an admin).
func (s *Service) Get(ctx context.Context, id uuid.UUID) (Alert, error) {
	a, err := s.authorized(ctx, id, policy.ReadAction(policy.KindAlert))
	if err != nil {
		return Alert{}, err
	}
	return toAPI(a), nil
}

// ListFilter narrows a list of alerts.
type ListFilter struct {
	Status string
	// Owner: admins list anyone's; others only ever see their own.
	Owner uuid.UUID
	Q     string
}

// List lists the caller's alerts (every alert for admins).
func (s *Service) List(ctx context.Context, f ListFilter, p paging.Params) (paging.Page[Alert], error) {
	sub, err := policy.SubjectFrom(ctx)
	if err != nil {
		return paging.Page[Alert]{}, err
	}
	p, err = p.Normalize()
	if err != nil {
		return paging.Page[Alert]{}, err
	}
	field, desc, err := p.SortField("-updated_at", "metric", "created_at", "updated_at", "status", "state")
	if err != nil {
		return paging.Page[Alert]{}, err
	}
	q := s.db.Alert.Query()
	if !(sub.System || s.pol.Facts().IsAdmin(sub.UserID)) {
		q.Where(alert.UserID(sub.UserID))
	}
	if f.Owner != uuid.Nil {
		q.Where(alert.UserID(f.Owner))
	}
	if f.Status != "" {
		if err := alert.StatusValidator(alert.Status(f.Status)); err != nil {
			return paging.Page[Alert]{}, errs.Invalid("status", "status must be one of active, triggered, resolved, paused")
		}
		q.Where(alert.StatusEQ(alert.Status(f.Status)))
	}
	if t := strings.TrimSpace(f.Q); t != "" {
		q.Where(alert.MetricContainsFold(t))
	}
	order := ent.Asc(field)
	if desc {
		order = ent.Desc(field)
	}
	return paging.Collect(ctx, p, q.Clone().Count,
		func(ctx context.Context, off, n int) ([]*ent.Alert, error) {
			return q.Order(order, ent.Asc(alert.FieldID)).Offset(off).Limit(n).All(ctx)
		}, toAPI)
}

// Update changes an alert (its owner or an admin). A changed source is
// checked under the caller's rights.
func (s *Service) Update(ctx context.Context, id uuid.UUID, in Input) (Alert, error) {
	a, err := s.authorized(ctx, id, policy.AlertsManage)
	if err != nil {
		return Alert{}, err
	}
	if err := checkScalars(in, false); err != nil {
		return Alert{}, err
	}
	up := s.db.Alert.UpdateOne(a)
	groupBy := ""
	if a.GroupBy != nil {
		groupBy = *a.GroupBy
	}
	if in.GroupBy != nil {
		groupBy = strings.TrimSpace(*in.GroupBy)
		if groupBy == "" {
			up.ClearGroupBy()
		} else {
			up.SetGroupBy(groupBy)
		}
	}
	if in.Source != nil || in.GroupBy != nil {
		src := a.Source
		if in.Source != nil {
			src = in.Source
		}
		if src == nil {
			return Alert{}, errs.Invalid("source", "source is required")
		}
		if err := s.checkSource(ctx, *src, groupBy); err != nil {
			return Alert{}, err
		}
		up.SetSource(src)
		if a.NextEvalAt == nil {
			up.SetNextEvalAt(s.clock())
		}
	}
	if in.Metric != nil {
		up.SetMetric(strings.TrimSpace(*in.Metric))
	}
	if in.ThresholdType != nil {
		up.SetThresholdType(alert.ThresholdType(*in.ThresholdType))
	}
	if in.ThresholdValue != nil {
		up.SetThresholdValue(*in.ThresholdValue)
	}
	if in.Channels != nil {
		ch, err := s.checkChannels(*in.Channels, a.Channels, a.ID)
		if err != nil {
			return Alert{}, err
		}
		up.SetChannels(ch)
	}
	if in.IntervalSeconds != nil {
		up.SetIntervalSeconds(*in.IntervalSeconds)
	}
	if in.ForSeconds != nil {
		up.SetForSeconds(*in.ForSeconds)
	}
	if in.NoDataState != nil {
		up.SetNoDataState(alert.NoDataState(*in.NoDataState))
	}
	if in.ErrorState != nil {
		up.SetErrorState(alert.ErrorState(*in.ErrorState))
	}
	if in.Status != nil {
		switch {
		case *in.Status == "paused":
			up.SetStatus(alert.StatusPaused)
		case a.Status == alert.StatusPaused:
			// Resuming: the state the instances are in says the status.
			up.SetStatus(statusFor(a.State, alert.StatusActive)).SetNextEvalAt(s.clock())
		}
	}
	na, err := up.Save(ctx)
	if err != nil {
		return Alert{}, err
	}
	return toAPI(na), nil
}

// Delete removes an alert with its instances, history and notifications
// (its owner or an admin).
func (s *Service) Delete(ctx context.Context, id uuid.UUID) error {
	a, err := s.authorized(ctx, id, policy.AlertsManage)
	if err != nil {
		return err
	}
	if err := s.db.Alert.DeleteOne(a).Exec(ctx); err != nil {
		return err
	}
	s.pol.Facts().Forget(policy.KindAlert, id)
	return nil
}

// Snooze stops evaluating an alert until a time; a zero time unsnoozes.
func (s *Service) Snooze(ctx context.Context, id uuid.UUID, until time.Time) (Alert, error) {
	a, err := s.authorized(ctx, id, policy.AlertsManage)
	if err != nil {
		return Alert{}, err
	}
	up := s.db.Alert.UpdateOne(a)
	if until.IsZero() {
		up.ClearSnoozedUntil().SetNextEvalAt(s.clock())
	} else {
		until = until.UTC().Truncate(time.Microsecond)
		if !until.After(s.clock()) {
			return Alert{}, errs.Invalid("until", "until must be in the future (omit it to unsnooze)")
		}
		if until.After(s.clock().AddDate(1, 0, 0)) {
			return Alert{}, errs.Invalid("until", "an alert can be snoozed for at most a year")
		}
		up.SetSnoozedUntil(until)
	}
	na, err := up.Save(ctx)
	if err != nil {
		return Alert{}, err
	}
	return toAPI(na), nil
}

// ownerContext is the owner of an alert as the caller of its evaluation.
func (s *Service) ownerContext(ctx context.Context, owner uuid.UUID) (context.Context, error) {
	u, err := s.db.User.Get(ctx, owner)
	if err != nil {
		return nil, err
	}
	return principal.With(ctx, &principal.Principal{UserID: u.ID, Email: u.Email, Role: string(u.Role)}), nil
}
