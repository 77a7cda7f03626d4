package alerting

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite"

	"github.com/datapulse/datapulse/core/datamodels"
	"github.com/datapulse/datapulse/core/datasources"
	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/models"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/queries"
	"github.com/datapulse/datapulse/core/secrets"
	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/alert"
	"github.com/datapulse/datapulse/ent/alertevent"
	"github.com/datapulse/datapulse/ent/alertnotification"
	_ "github.com/datapulse/datapulse/ent/runtime"
	"github.com/datapulse/datapulse/ent/schema/types"
	"github.com/datapulse/datapulse/plugins/builtin"
	"github.com/datapulse/datapulse/plugins/host"
	"github.com/datapulse/datapulse/plugins/sdk"
	"github.com/datapulse/datapulse/policy"
)

// TestMain lets the test binary serve the builtin connectors, as the real
// binary does (`datapulse plugin serve sqlite`): the host re-executes it.
func TestMain(m *testing.M) {
	if len(os.Args) > 3 && os.Args[1] == "plugin" && os.Args[2] == "serve" {
		f, ok := builtin.Connectors[os.Args[3]]
		if !ok {
			os.Exit(2)
		}
		sdk.Serve(f())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// tenv is the alerting service over a fresh metadata database with a real
// SQLite data source (a file this test writes) on the builtin connector.
type tenv struct {
	t       testing.TB
	st      *store.Store
	so      store.Options
	db      *ent.Client
	facts   *policy.Facts
	svc     *Service
	dm      *datamodels.Service
	qs      *queries.Service
	data    *sql.DB
	mu      sync.Mutex
	now     time.Time
	admin   uuid.UUID
	owner   uuid.UUID
	other   uuid.UUID
	viewer  uuid.UUID
	source  uuid.UUID
	model   uuid.UUID
	query   uuid.UUID
	otherQ  uuid.UUID
	nullQ   uuid.UUID
	adminCx context.Context
}

func (e *tenv) as(u uuid.UUID) context.Context {
	role := principal.RoleUser
	if u == e.admin {
		role = principal.RoleAdmin
	}
	return principal.With(context.Background(), &principal.Principal{UserID: u, Role: role})
}

func (e *tenv) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

func (e *tenv) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.data.Exec(q, args...); err != nil {
		e.t.Fatal(err)
	}
}

func newTenv(t testing.TB, tg storetest.Target) *tenv {
	t.Helper()
	so := tg.New(t)
	st, err := store.Open(context.Background(), so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	sys := principal.System(context.Background())
	facts, err := policy.Load(sys, st.Client, policy.RoleEditor)
	if err != nil {
		t.Fatal(err)
	}
	enf, err := policy.NewEnforcer(facts)
	if err != nil {
		t.Fatal(err)
	}
	e := &tenv{t: t, st: st, so: so, db: st.Client, facts: facts, now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	mk := func(email string, admin bool, roles []string) uuid.UUID {
		c := st.Client.User.Create().SetEmail(email).SetPassword("not a real hash")
		if admin {
			c.SetRole("admin")
		}
		u := c.SaveX(sys)
		facts.SetUser(u.ID, admin, roles)
		return u.ID
	}
	e.admin = mk("admin@example.com", true, nil)
	e.owner = mk("owner@example.com", false, nil)
	e.other = mk("colleague@example.com", false, nil)
	e.viewer = mk("viewer@example.com", false, []string{policy.RoleViewer})
	e.adminCx = e.as(e.admin)

	conns, err := host.New(context.Background(), host.Options{Executable: os.Args[0], Builtins: []string{"sqlite"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conns.Close() })
	box, err := secrets.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	dsv := datasources.New(st.Client, enf, conns, box, nil)
	e.qs = queries.New(st.Client, enf, dsv, conns, queries.Limits{}, queries.Caching{})
	e.dm = datamodels.New(st.Client, enf, dsv, e.qs)
	e.svc = New(st.Client, enf, e.dm, e.qs, Options{LinkKey: DeriveLinkKey([]byte("signing key for tests")), Box: box,
		Now: func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }})

	path := filepath.Join(t.TempDir(), "metrics.db")
	if e.data, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.data.Close() })
	e.exec("CREATE TABLE metrics (region TEXT, amount REAL)")
	e.exec("CREATE TABLE blank (v REAL)")
	name := "metrics"
	ds, err := dsv.Create(e.adminCx, datasources.Input{Name: &name, Type: "sqlite", Config: map[string]any{"path": path}})
	if err != nil {
		t.Fatal(err)
	}
	e.source = ds.ID
	mname := "Revenue"
	m, err := e.dm.Create(e.as(e.owner), datamodels.Input{Name: &mname, Config: &models.Config{
		DataSourceID: ds.ID.String(), Table: &models.TableRef{Name: "metrics"},
		Dimensions: []models.Dimension{{Name: "region", Column: "region", Type: "string"}},
		Measures:   []models.Measure{{Name: "revenue", Agg: "sum", Column: "amount"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.model = m.ID
	mkq := func(u uuid.UUID, sqlText string) uuid.UUID {
		n := "q"
		q, err := e.qs.Create(e.as(u), queries.Input{Name: &n, SQL: &sqlText, DataSourceID: &ds.ID})
		if err != nil {
			t.Fatal(err)
		}
		return q.ID
	}
	e.query = mkq(e.owner, "SELECT sum(amount) AS total FROM metrics")
	e.nullQ = mkq(e.owner, "SELECT max(v) AS total FROM blank")
	e.otherQ = mkq(e.other, "SELECT 1 AS total")
	return e
}

func ptr[T any](v T) *T { return &v }

func (e *tenv) create(u uuid.UUID, in Input) Alert {
	e.t.Helper()
	a, err := e.svc.Create(e.as(u), in)
	if err != nil {
		e.t.Fatalf("create alert: %v", err)
	}
	return a
}

func queryAlert(e *tenv, kind string, threshold float64, forSeconds int) Input {
	return Input{Metric: ptr("Revenue"), ThresholdType: ptr(kind), ThresholdValue: ptr(threshold), ForSeconds: ptr(forSeconds),
		Source:   &types.AlertSource{QueryID: e.query.String(), Column: "total"},
		Channels: &[]ChannelInput{{Type: "email", Target: "Colleague@Example.com"}, {Type: "email", Target: "outsider@elsewhere.example"}}}
}

func (e *tenv) eval(id uuid.UUID) Evaluation {
	e.t.Helper()
	ev, err := e.svc.Evaluate(e.as(e.owner), id)
	if err != nil {
		e.t.Fatalf("evaluate: %v", err)
	}
	return ev
}

func (e *tenv) setValue(v float64) {
	e.exec("DELETE FROM metrics")
	e.exec("INSERT INTO metrics VALUES ('EU', ?)", v)
}

func isKind(err, kind error) bool { return errors.Is(err, kind) }

// The pure state machine, threshold kinds, for_seconds, no data and error
// handling.
func TestTransition(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v := func(f float64) observation { return observation{value: &f} }
	cases := []struct {
		name   string
		a      ent.Alert
		cur    string
		since  time.Duration // before now
		obs    observation
		want   string
		reason string
	}{
		{"above crosses", ent.Alert{ThresholdType: alert.ThresholdTypeAbove, ThresholdValue: 10}, StateNormal, 0, v(11), StateAlerting, ""},
		{"above equal is not above", ent.Alert{ThresholdType: alert.ThresholdTypeAbove, ThresholdValue: 10}, StateNormal, 0, v(10), StateNormal, ""},
		{"below crosses", ent.Alert{ThresholdType: alert.ThresholdTypeBelow, ThresholdValue: 10}, StateNormal, 0, v(9.5), StateAlerting, ""},
		{"below not crossed", ent.Alert{ThresholdType: alert.ThresholdTypeBelow, ThresholdValue: 10}, StateAlerting, 0, v(10), StateNormal, ""},
		{"equal", ent.Alert{ThresholdType: alert.ThresholdTypeEqual, ThresholdValue: 3}, StateNormal, 0, v(3), StateAlerting, ""},
		{"equal not", ent.Alert{ThresholdType: alert.ThresholdTypeEqual, ThresholdValue: 3}, StateNormal, 0, v(3.1), StateNormal, ""},
		{"not_equal", ent.Alert{ThresholdType: alert.ThresholdTypeNotEqual, ThresholdValue: 3}, StateNormal, 0, v(4), StateAlerting, ""},
		{"not_equal not", ent.Alert{ThresholdType: alert.ThresholdTypeNotEqual, ThresholdValue: 3}, StateNormal, 0, v(3), StateNormal, ""},
		{"for: normal to pending", ent.Alert{ThresholdType: alert.ThresholdTypeAbove, ForSeconds: 60}, StateNormal, 0, v(1), StatePending, ""},
		{"for: pending holds", ent.Alert{ThresholdType: alert.ThresholdTypeAbove, ForSeconds: 60}, StatePending, 59 * time.Second, v(1), StatePending, ""},
		{"for: pending fires", ent.Alert{ThresholdType: alert.ThresholdTypeAbove, ForSeconds: 60}, StatePending, 60 * time.Second, v(1), StateAlerting, ""},
		{"for: pending recovers", ent.Alert{ThresholdType: alert.ThresholdTypeAbove, ForSeconds: 60}, StatePending, 10 * time.Second, v(-1), StateNormal, ""},
		{"alerting stays", ent.Alert{ThresholdType: alert.ThresholdTypeAbove, ForSeconds: 60}, StateAlerting, 0, v(1), StateAlerting, ""},
		{"no data → no_data", ent.Alert{NoDataState: alert.NoDataStateNoData}, StateAlerting, 0, observation{noData: true}, StateNoData, "no data"},
		{"no data → normal", ent.Alert{NoDataState: alert.NoDataStateNormal}, StateAlerting, 0, observation{noData: true}, StateNormal, "no data"},
		{"no data → keep", ent.Alert{NoDataState: alert.NoDataStateKeepState}, StatePending, 0, observation{noData: true}, StatePending, "no data"},
		{"no data → alerting", ent.Alert{NoDataState: alert.NoDataStateAlerting}, StateNormal, 0, observation{noData: true}, StateAlerting, "no data"},
		{"no data → alerting after for", ent.Alert{NoDataState: alert.NoDataStateAlerting, ForSeconds: 30}, StateNormal, 0, observation{noData: true}, StatePending, "no data"},
		{"error → error", ent.Alert{ErrorState: alert.ErrorStateError}, StateNormal, 0, observation{err: "boom"}, StateError, "boom"},
		{"error → keep", ent.Alert{ErrorState: alert.ErrorStateKeepState}, StateAlerting, 0, observation{err: "boom"}, StateAlerting, "boom"},
		{"error → alerting", ent.Alert{ErrorState: alert.ErrorStateAlerting}, StateNormal, 0, observation{err: "boom"}, StateAlerting, "boom"},
		{"error recovers", ent.Alert{ThresholdType: alert.ThresholdTypeAbove, ThresholdValue: 5}, StateError, 0, v(1), StateNormal, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now := t0.Add(time.Hour)
			got, _, reason := transition(&c.a, c.cur, now.Add(-c.since), now, c.obs)
			if got != c.want {
				t.Errorf("state %s, want %s", got, c.want)
			}
			if !strings.Contains(reason, c.reason) {
				t.Errorf("reason %q, want it to contain %q", reason, c.reason)
			}
		})
	}
}

// One alert through normal → pending → alerting → normal on a real source:
// one history event per change, one notification per recipient per firing,
// auto-resolved on recovery.
func TestEvaluationLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newTenv(t, tg)
		e.setValue(50)
		a := e.create(e.owner, queryAlert(e, "above", 100, 60))
		sys := principal.System(context.Background())

		ev := e.eval(a.ID)
		if ev.State != StateNormal || len(ev.Instances) != 1 || ev.Instances[0].Value == nil || *ev.Instances[0].Value != 50 {
			t.Fatalf("first evaluation: %+v", ev)
		}
		e.setValue(150)
		e.advance(10 * time.Second)
		if ev = e.eval(a.ID); ev.State != StatePending || !ev.Instances[0].Changed || ev.Status != "active" {
			t.Fatalf("crossing with for_seconds: %+v", ev)
		}
		e.advance(30 * time.Second)
		if ev = e.eval(a.ID); ev.State != StatePending || ev.Instances[0].Changed {
			t.Fatalf("still pending: %+v", ev)
		}
		if n := e.db.AlertNotification.Query().CountX(sys); n != 0 {
			t.Fatalf("%d notifications while pending", n)
		}
		e.advance(31 * time.Second)
		ev = e.eval(a.ID)
		if ev.State != StateAlerting || ev.Status != "triggered" || ev.Instances[0].Notified != 2 {
			t.Fatalf("firing: %+v", ev)
		}
		// The owner and the colleague named by an email target; the
		// outsider is no DataPulse user.
		ns := e.db.AlertNotification.Query().AllX(sys)
		got := map[uuid.UUID]bool{}
		for _, n := range ns {
			got[n.UserID] = true
			if n.State != alertnotification.StateOpen || n.Value == nil || *n.Value != 150 || n.EventID == nil {
				t.Errorf("notification %+v", n)
			}
		}
		if len(ns) != 2 || !got[e.owner] || !got[e.other] {
			t.Fatalf("notifications %v, want owner and colleague", got)
		}
		// Still above: no new event, no new notification.
		e.advance(60 * time.Second)
		if ev = e.eval(a.ID); ev.Instances[0].Changed {
			t.Fatalf("re-evaluation changed: %+v", ev)
		}
		if n := e.db.AlertNotification.Query().CountX(sys); n != 2 {
			t.Fatalf("%d notifications after re-evaluation, want 2", n)
		}
		// The colleague acknowledges; then the value recovers.
		if _, err := e.svc.Acknowledge(e.as(e.other), ns[0].ID); err != nil && ns[0].UserID == e.other {
			t.Fatal(err)
		}
		e.setValue(20)
		e.advance(60 * time.Second)
		ev = e.eval(a.ID)
		if ev.State != StateNormal || ev.Status != "resolved" {
			t.Fatalf("recovery: %+v", ev)
		}
		for _, n := range e.db.AlertNotification.Query().AllX(sys) {
			if n.State != alertnotification.StateResolved || n.Resolution == nil || *n.Resolution != "auto" || n.ResolvedAt == nil {
				t.Errorf("not auto-resolved: %+v", n)
			}
		}
		h, err := e.svc.History(e.as(e.owner), a.ID, paging.Params{Sort: "created_at"})
		if err != nil {
			t.Fatal(err)
		}
		var path []string
		for _, ev := range h.Items {
			path = append(path, ev.From+">"+ev.To)
		}
		if strings.Join(path, " ") != "normal>pending pending>alerting alerting>normal" {
			t.Fatalf("history %v", path)
		}
		if v := h.Items[1].Value; v == nil || *v != 150 {
			t.Errorf("firing event value %v", v)
		}
		// Another user cannot read the history.
		if _, err := e.svc.History(e.as(e.other), a.ID, paging.Params{}); !isKind(err, errs.ErrNotFound) {
			t.Errorf("other user's history: %v", err)
		}
	})
}

// group_by: one instance per dimension value, each with its own state; a
// group leaving the result goes back to normal.
func TestGroupByInstances(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newTenv(t, tg)
		e.exec("INSERT INTO metrics VALUES ('EU', 400), ('EU', 500), ('US', 50), ('APAC', 5000)")
		a := e.create(e.owner, Input{Metric: ptr("Revenue by region"), ThresholdType: ptr("below"), ThresholdValue: ptr(1000.0),
			Source: &types.AlertSource{ModelID: e.model.String(), Measure: "revenue"}, GroupBy: ptr("region")})
		ev := e.eval(a.ID)
		states := map[string]string{}
		for _, in := range ev.Instances {
			states[in.GroupKey] = in.State
		}
		if states["EU"] != StateAlerting || states["US"] != StateAlerting || states["APAC"] != StateNormal || len(states) != 3 {
			t.Fatalf("instances %v", states)
		}
		if ev.State != StateAlerting {
			t.Fatalf("aggregate %s", ev.State)
		}
		// US disappears, EU recovers.
		e.exec("DELETE FROM metrics WHERE region = 'US'")
		e.exec("INSERT INTO metrics VALUES ('EU', 2000)")
		e.advance(time.Minute)
		ev = e.eval(a.ID)
		states = map[string]string{}
		for _, in := range ev.Instances {
			states[in.GroupKey] = in.State
		}
		if states["EU"] != StateNormal || states["US"] != StateNormal || ev.State != StateNormal {
			t.Fatalf("after recovery %v (%s)", states, ev.State)
		}
		sys := principal.System(context.Background())
		if n := e.db.AlertEvent.Query().Where(alertevent.AlertID(a.ID)).CountX(sys); n != 4 {
			t.Errorf("%d events, want 4 (EU and US fired and recovered)", n)
		}
		if n := e.db.AlertNotification.Query().Where(alertnotification.StateEQ(alertnotification.StateOpen)).CountX(sys); n != 0 {
			t.Errorf("%d notifications still open", n)
		}
	})
}

// No data and errors follow the alert's settings; an owner who may no longer
// read the source puts the alert in error with a clear reason.
func TestNoDataErrorAndLostAccess(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newTenv(t, tg)
		in := queryAlert(e, "above", 1, 0)
		in.Source = &types.AlertSource{QueryID: e.nullQ.String(), Column: "total"}
		a := e.create(e.owner, in)
		if ev := e.eval(a.ID); ev.State != StateNoData || ev.Instances[0].Reason == nil {
			t.Fatalf("NULL value: %+v", ev)
		}
		if _, err := e.svc.Update(e.as(e.owner), a.ID, Input{NoDataState: ptr("alerting")}); err != nil {
			t.Fatal(err)
		}
		if ev := e.eval(a.ID); ev.State != StateAlerting {
			t.Fatalf("no data as alerting: %+v", ev)
		}

		// A model alert whose owner loses models:use (now a viewer).
		e.setValue(10)
		b := e.create(e.owner, Input{Metric: ptr("m"), ThresholdType: ptr("above"), ThresholdValue: ptr(100.0),
			Source: &types.AlertSource{ModelID: e.model.String(), Measure: "revenue"}})
		if ev := e.eval(b.ID); ev.State != StateNormal {
			t.Fatalf("model alert: %+v", ev)
		}
		e.facts.SetUser(e.owner, false, []string{policy.RoleViewer})
		ev, err := e.svc.Evaluate(e.adminCx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ev.State != StateError || ev.Error == nil || !strings.Contains(*ev.Error, "owner may no longer read the data model") {
			t.Fatalf("lost access: %+v", ev)
		}
		got, _ := e.svc.Get(e.adminCx, b.ID)
		if got.LastError == nil || got.State != StateError {
			t.Errorf("stored alert %+v", got)
		}
		e.facts.SetUser(e.owner, false, nil)

		// A query failing at the source.
		broken := "SELECT total FROM missing_table"
		if _, err := e.qs.Update(e.as(e.owner), e.query, queries.Input{SQL: &broken}); err != nil {
			t.Fatal(err)
		}
		c := e.create(e.admin, Input{Metric: ptr("m"), ThresholdType: ptr("above"), ThresholdValue: ptr(1.0),
			Source: &types.AlertSource{QueryID: e.otherQ.String(), Column: "total"}})
		_ = c
		d, err := e.svc.db.Alert.Create().SetUserID(e.owner).SetMetric("broken").SetThresholdType("above").SetThresholdValue(1).
			SetSource(&types.AlertSource{QueryID: e.query.String(), Column: "total"}).Save(principal.System(context.Background()))
		if err != nil {
			t.Fatal(err)
		}
		e.facts.SetOwner(policy.KindAlert, d.ID, e.owner)
		if ev := e.eval(d.ID); ev.State != StateError || ev.Error == nil || !strings.Contains(*ev.Error, "saved query failed") {
			t.Fatalf("failing source: %+v", ev)
		}
	})
}

// Paused and snoozed alerts are not evaluated, neither by hand nor by the
// schedule; the schedule evaluates due alerts once per interval.
func TestPausedSnoozedAndSchedule(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newTenv(t, tg)
		e.setValue(500)
		a := e.create(e.owner, queryAlert(e, "above", 100, 0))
		if _, err := e.svc.Update(e.as(e.owner), a.ID, Input{Status: ptr("paused")}); err != nil {
			t.Fatal(err)
		}
		if ev := e.eval(a.ID); ev.Skipped == "" || len(ev.Instances) != 0 {
			t.Fatalf("paused alert evaluated: %+v", ev)
		}
		if n, _ := e.svc.EvaluateDue(context.Background(), 10); n != 0 {
			t.Fatalf("schedule evaluated %d paused alerts", n)
		}
		if _, err := e.svc.Update(e.as(e.owner), a.ID, Input{Status: ptr("active")}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Snooze(e.as(e.owner), a.ID, e.now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if ev := e.eval(a.ID); ev.Skipped == "" {
			t.Fatalf("snoozed alert evaluated: %+v", ev)
		}
		if _, err := e.svc.Snooze(e.as(e.owner), a.ID, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if n, err := e.svc.EvaluateDue(context.Background(), 10); err != nil || n != 1 {
			t.Fatalf("due: %d, %v", n, err)
		}
		if n, _ := e.svc.EvaluateDue(context.Background(), 10); n != 0 {
			t.Fatalf("evaluated again within the interval: %d", n)
		}
		e.advance(61 * time.Second)
		if n, _ := e.svc.EvaluateDue(context.Background(), 10); n != 1 {
			t.Fatalf("next interval: %d", n)
		}
		got, _ := e.svc.Get(e.as(e.owner), a.ID)
		if got.State != StateAlerting || got.Status != "triggered" {
			t.Fatalf("after schedule %+v", got)
		}
	})
}

// Concurrent evaluations of one firing alert record the change once and
// notify each recipient once.
func TestConcurrentEvaluationsNotifyOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newTenv(t, tg)
		e.setValue(500)
		a := e.create(e.owner, queryAlert(e, "above", 100, 0))
		var wg sync.WaitGroup
		errsCh := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := e.svc.EvaluateSystem(context.Background(), a.ID); err != nil {
					errsCh <- err
				}
			}()
		}
		wg.Wait()
		close(errsCh)
		for err := range errsCh {
			t.Errorf("evaluation: %v", err)
		}
		sys := principal.System(context.Background())
		if n := e.db.AlertEvent.Query().Where(alertevent.AlertID(a.ID)).CountX(sys); n != 1 {
			t.Errorf("%d events, want 1", n)
		}
		if n := e.db.AlertNotification.Query().Where(alertnotification.AlertID(a.ID)).CountX(sys); n != 2 {
			t.Errorf("%d notifications, want 2 (owner, colleague)", n)
		}
		if n := e.db.AlertInstance.Query().CountX(sys); n != 1 {
			t.Errorf("%d instances, want 1", n)
		}
	})
}

// CRUD: who may create, read, change and delete; validation; secrets.
func TestAlertCRUD(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newTenv(t, tg)
		e.setValue(1)
		if _, err := e.svc.Create(e.as(e.viewer), queryAlert(e, "above", 1, 0)); !isKind(err, errs.ErrForbidden) {
			t.Errorf("viewer create: %v", err)
		}
		bad := []struct {
			field string
			in    func(*Input)
		}{
			{"source.query_id", func(in *Input) { in.Source = &types.AlertSource{QueryID: e.otherQ.String(), Column: "total"} }},
			{"source.query_id", func(in *Input) { in.Source = &types.AlertSource{QueryID: uuid.NewString(), Column: "total"} }},
			{"source.column", func(in *Input) { in.Source = &types.AlertSource{QueryID: e.query.String(), Column: "nope"} }},
			{"source.measure", func(in *Input) { in.Source = &types.AlertSource{ModelID: e.model.String(), Measure: "nope"} }},
			{"group_by", func(in *Input) {
				in.Source = &types.AlertSource{ModelID: e.model.String(), Measure: "revenue"}
				in.GroupBy = ptr("nope")
			}},
			{"source", func(in *Input) { in.Source = &types.AlertSource{} }},
			{"interval_seconds", func(in *Input) { in.IntervalSeconds = ptr(5) }},
			{"threshold_type", func(in *Input) { in.ThresholdType = ptr("over") }},
			{"channels[0].target", func(in *Input) { in.Channels = &[]ChannelInput{{Type: "email", Target: "not an address"}} }},
			{"channels[0].type", func(in *Input) { in.Channels = &[]ChannelInput{{Type: "pager", Target: "x"}} }},
			{"channels[0].target", func(in *Input) { in.Channels = &[]ChannelInput{{Type: "webhook", Target: "ftp://x"}} }},
		}
		for _, b := range bad {
			in := queryAlert(e, "above", 1, 0)
			b.in(&in)
			_, err := e.svc.Create(e.as(e.owner), in)
			var ee *errs.Error
			if !errors.As(err, &ee) || !isKind(err, errs.ErrInvalid) {
				t.Errorf("%s: %v, want invalid", b.field, err)
				continue
			}
			fields := []string{ee.Field}
			for _, f := range ee.Fields {
				fields = append(fields, f.Field)
			}
			if !strings.Contains(strings.Join(fields, ","), b.field) {
				t.Errorf("%s: fields %v (%s)", b.field, fields, ee.Message)
			}
		}
		in := queryAlert(e, "above", 1, 0)
		in.Channels = &[]ChannelInput{{Type: "webhook", Target: "https://hooks.example.com/x", Secret: ptr("s3cret-s3cret-s3cret")},
			{Type: "slack", Target: "https://hooks.slack.com/services/T0/B0/XYZ"}}
		a := e.create(e.owner, in)
		if a.IntervalSeconds != 60 || a.NoDataState != "no_data" || a.ErrorState != "error" || a.Status != "active" {
			t.Errorf("defaults %+v", a)
		}
		if !a.Channels[0].SecretSet || strings.Contains(fmt.Sprint(a), "s3cret") || strings.Contains(fmt.Sprint(a), "XYZ") {
			t.Errorf("secrets shown: %+v", a.Channels)
		}
		stored := e.db.Alert.GetX(principal.System(context.Background()), a.ID)
		if strings.Contains(fmt.Sprint(stored.Channels), "s3cret") || strings.Contains(fmt.Sprint(stored.Channels), "XYZ") {
			t.Errorf("secrets stored in clear: %+v", stored.Channels)
		}
		if s, err := e.svc.OpenSecret(a.ID, stored.Channels[0]); err != nil || s != "s3cret-s3cret-s3cret" {
			t.Errorf("open secret: %q %v", s, err)
		}
		// Resending the channels as shown keeps the secrets.
		resend := []ChannelInput{{Type: "webhook", Target: a.Channels[0].Target}, {Type: "slack", Target: a.Channels[1].Target}}
		if _, err := e.svc.Update(e.as(e.owner), a.ID, Input{Channels: &resend}); err != nil {
			t.Fatal(err)
		}
		stored2 := e.db.Alert.GetX(principal.System(context.Background()), a.ID)
		if s, _ := e.svc.OpenSecret(a.ID, stored2.Channels[1]); s != "https://hooks.slack.com/services/T0/B0/XYZ" {
			t.Errorf("slack URL after resend: %q", s)
		}

		if _, err := e.svc.Get(e.as(e.other), a.ID); !isKind(err, errs.ErrNotFound) {
			t.Errorf("other get: %v", err)
		}
		if _, err := e.svc.Update(e.as(e.other), a.ID, Input{Metric: ptr("x")}); !isKind(err, errs.ErrNotFound) {
			t.Errorf("other update: %v", err)
		}
		if err := e.svc.Delete(e.as(e.other), a.ID); !isKind(err, errs.ErrNotFound) {
			t.Errorf("other delete: %v", err)
		}
		if _, err := e.svc.Update(e.adminCx, a.ID, Input{Metric: ptr("Renamed")}); err != nil {
			t.Errorf("admin update: %v", err)
		}
		e.create(e.other, Input{Metric: ptr("other's"), ThresholdType: ptr("above"), ThresholdValue: ptr(1.0),
			Source: &types.AlertSource{QueryID: e.otherQ.String(), Column: "total"}})
		mine, err := e.svc.List(e.as(e.owner), ListFilter{}, paging.Params{})
		if err != nil || mine.Total != 1 || mine.Items[0].Metric != "Renamed" {
			t.Errorf("owner list: %+v %v", mine, err)
		}
		all, _ := e.svc.List(e.adminCx, ListFilter{}, paging.Params{})
		byOwner, _ := e.svc.List(e.adminCx, ListFilter{Owner: e.other}, paging.Params{})
		byQ, _ := e.svc.List(e.adminCx, ListFilter{Q: "renam"}, paging.Params{})
		byStatus, _ := e.svc.List(e.adminCx, ListFilter{Status: "triggered"}, paging.Params{})
		if all.Total != 2 || byOwner.Total != 1 || byQ.Total != 1 || byStatus.Total != 0 {
			t.Errorf("admin lists: all %d owner %d q %d status %d", all.Total, byOwner.Total, byQ.Total, byStatus.Total)
		}
		if err := e.svc.Delete(e.as(e.owner), a.ID); err != nil {
			t.Fatal(err)
		}
		if e.facts.Exists(policy.KindAlert, a.ID) {
			t.Error("owner index still knows the deleted alert")
		}
	})
}

// Acknowledge and resolve: recipient, alert owner, admin; nobody else; and
// the signed one-click link.
func TestNotificationActionsAndLinks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newTenv(t, tg)
		e.setValue(500)
		a := e.create(e.owner, queryAlert(e, "above", 100, 0))
		e.eval(a.ID)
		sys := principal.System(context.Background())
		var mineID, ownersID uuid.UUID
		for _, n := range e.db.AlertNotification.Query().AllX(sys) {
			if n.UserID == e.other {
				mineID = n.ID
			} else {
				ownersID = n.ID
			}
		}
		// The colleague sees only theirs; the admin sees both.
		if p, _ := e.svc.Notifications(e.as(e.other), NotificationFilter{}, paging.Params{}); p.Total != 1 || p.Items[0].ID != mineID {
			t.Errorf("colleague's list %+v", p)
		}
		if p, _ := e.svc.Notifications(e.adminCx, NotificationFilter{AlertID: a.ID, State: "open"}, paging.Params{}); p.Total != 2 {
			t.Errorf("admin's list %d", p.Total)
		}
		if _, err := e.svc.Acknowledge(e.as(e.viewer), mineID); !isKind(err, errs.ErrNotFound) {
			t.Errorf("stranger ack: %v", err)
		}
		if _, err := e.svc.Acknowledge(e.as(e.other), ownersID); !isKind(err, errs.ErrNotFound) {
			t.Errorf("colleague acking the owner's: %v", err)
		}
		n, err := e.svc.Acknowledge(e.as(e.other), mineID)
		if err != nil || n.State != "acknowledged" || n.AcknowledgedBy == nil || *n.AcknowledgedBy != e.other {
			t.Fatalf("recipient ack: %+v %v", n, err)
		}
		if n, err = e.svc.Resolve(e.as(e.owner), mineID); err != nil || n.State != "resolved" || *n.Resolution != "manual" {
			t.Fatalf("owner resolve: %+v %v", n, err)
		}
		if _, err := e.svc.Acknowledge(e.as(e.other), mineID); !isKind(err, errs.ErrConflict) {
			t.Errorf("ack after resolve: %v", err)
		}
		ro := principal.With(context.Background(), &principal.Principal{UserID: e.owner, Role: "user", Scopes: []string{"read"}})
		if _, err := e.svc.Resolve(ro, ownersID); !isKind(err, errs.ErrForbidden) {
			t.Errorf("read-only token resolve: %v", err)
		}

		// Links: GET (inspect) changes nothing, POST (apply) does.
		tok := e.svc.LinkFor(ownersID, e.owner, ActionAcknowledge, time.Hour)
		lt, err := e.svc.InspectLink(context.Background(), tok)
		if err != nil || lt.Notification.State != "open" || lt.Metric != "Revenue" {
			t.Fatalf("inspect: %+v %v", lt, err)
		}
		if st := e.db.AlertNotification.GetX(sys, ownersID).State; st != alertnotification.StateOpen {
			t.Fatalf("inspect changed the state to %s", st)
		}
		// Tampered: another notification id under the same signature, a
		// flipped action, a cut signature, a foreign recipient.
		parts := strings.SplitN(tok, ".", 2)
		forged := e.svc.LinkFor(mineID, e.owner, ActionAcknowledge, time.Hour) // owner is not mineID's recipient
		for name, bad := range map[string]string{
			"payload of another link": strings.SplitN(e.svc.LinkFor(mineID, e.other, ActionResolve, time.Hour), ".", 2)[0] + "." + parts[1],
			"cut signature":           parts[0] + "." + parts[1][:10],
			"foreign recipient":       forged,
			"garbage":                 "abc",
		} {
			if _, err := e.svc.ApplyLink(context.Background(), bad); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
		e.advance(2 * time.Hour)
		if _, err := e.svc.ApplyLink(context.Background(), tok); !isKind(err, errs.ErrInvalid) {
			t.Errorf("expired link: %v", err)
		}
		e.advance(-2 * time.Hour)
		lt, err = e.svc.ApplyLink(context.Background(), tok)
		if err != nil || lt.Notification.State != "acknowledged" || *lt.Notification.AcknowledgedBy != e.owner {
			t.Fatalf("apply: %+v %v", lt, err)
		}
		if st := e.db.AlertNotification.GetX(sys, ownersID).State; st != alertnotification.StateAcknowledged {
			t.Errorf("stored state %s", st)
		}
	})
}
