package policy_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/policy"
)

func as(id uuid.UUID, scopes ...string) context.Context {
	return principal.With(context.Background(), &principal.Principal{UserID: id, Scopes: scopes})
}

// wantErr checks the kind and message of Require's answer (nil: allowed).
func wantErr(t *testing.T, what string, err, kind error, msg string) {
	t.Helper()
	if kind == nil {
		if err != nil {
			t.Errorf("%s: %v, want allowed", what, err)
		}
		return
	}
	var e *errs.Error
	if !errors.Is(err, kind) || !errors.As(err, &e) || (msg != "" && e.Message != msg) {
		t.Errorf("%s: %v, want %v %q", what, err, kind, msg)
	}
}

func TestRequire(t *testing.T) {
	f := newFacts()
	e := newEnforcer(t, f)
	owner, ed, viewer, adm := newID(), newID(), newID(), newID()
	f.SetUser(owner, false, nil)
	f.SetUser(ed, false, nil) // default role: editor
	f.SetUser(viewer, false, []string{policy.RoleViewer})
	f.SetUser(adm, true, nil)
	d, q, m, ghost := newID(), newID(), newID(), newID()
	f.SetOwner(policy.KindDashboard, d, owner)
	f.SetShare(d, viewer, policy.LevelEdit) // a viewer's role only reads
	f.SetOwner(policy.KindQuery, q, owner)
	f.SetOwner(policy.KindModel, m, owner)

	wantErr(t, "no caller", e.Require(context.Background(), policy.Dashboards, policy.DashboardsCreate), errs.ErrUnauthenticated, "authentication required")

	// Collections: the role decides; a refusal is forbidden.
	wantErr(t, "editor creates", e.Require(as(ed), policy.Dashboards, policy.DashboardsCreate), nil, "")
	wantErr(t, "viewer creates", e.Require(as(viewer), policy.Dashboards, policy.DashboardsCreate), errs.ErrForbidden, "your role does not allow dashboards:create")
	wantErr(t, "viewer uses models", e.Require(as(viewer), policy.Models, policy.ModelsUse), errs.ErrForbidden, "your role allows neither queries:run nor models:manage")
	wantErr(t, "read-only token creates", e.Require(as(ed, "read"), policy.Dashboards, policy.DashboardsCreate), errs.ErrForbidden, "this token is read-only")

	// One object: unknown and unreadable answer alike; readable but not
	// allowed is forbidden.
	for _, c := range []struct {
		what string
		ctx  context.Context
		obj  policy.Object
		act  policy.Action
		kind error
		msg  string
	}{
		{"owner edits", as(owner), policy.Dashboard(d), policy.DashboardsEdit, nil, ""},
		{"stranger reads", as(ed), policy.Dashboard(d), policy.DashboardsRead, errs.ErrNotFound, "dashboard not found"},
		{"stranger edits", as(ed), policy.Dashboard(d), policy.DashboardsEdit, errs.ErrNotFound, "dashboard not found"},
		{"anyone, unknown dashboard", as(ed), policy.Dashboard(ghost), policy.DashboardsEdit, errs.ErrNotFound, "dashboard not found"},
		{"viewer with an edit share edits", as(viewer), policy.Dashboard(d), policy.DashboardsEdit, errs.ErrForbidden, "you may not edit this dashboard"},
		{"viewer with an edit share reads", as(viewer), policy.Dashboard(d), policy.DashboardsRead, nil, ""},
		{"admin, unknown dashboard (the service's load answers)", as(adm), policy.Dashboard(ghost), policy.DashboardsDelete, nil, ""},

		{"owner reads their query", as(owner), policy.Query(q), policy.QueriesRead, nil, ""},
		{"owner's read-only token edits their query", as(owner, "read"), policy.Query(q), policy.QueriesEdit, errs.ErrForbidden, "this token is read-only"},
		{"another user's query", as(ed), policy.Query(q), policy.QueriesRead, errs.ErrNotFound, "query not found"},
		{"unknown query", as(ed), policy.Query(ghost), policy.QueriesRead, errs.ErrNotFound, "query not found"},
		{"another user's query, edit", as(ed), policy.Query(q), policy.QueriesEdit, errs.ErrNotFound, "query not found"},
		{"admin reads any query", as(adm), policy.Query(q), policy.QueriesRead, nil, ""},

		// Models are seen by every query runner, changed by their owner.
		{"editor uses another's model", as(ed), policy.Model(m), policy.ModelsUse, nil, ""},
		{"editor manages another's model", as(ed), policy.Model(m), policy.ModelsManage, errs.ErrForbidden, "you may not manage this data model"},
		{"editor, unknown model", as(ed), policy.Model(ghost), policy.ModelsManage, errs.ErrNotFound, "data model not found"},
		{"viewer, a model", as(viewer), policy.Model(m), policy.ModelsUse, errs.ErrNotFound, "data model not found"},
		{"owner manages their model", as(owner), policy.Model(m), policy.ModelsManage, nil, ""},
	} {
		wantErr(t, c.what, e.Require(c.ctx, c.obj, c.act), c.kind, c.msg)
	}

	// A subject of another id than the caller (a dashboard owner vouching
	// for a widget's source).
	if !e.Can(context.Background(), policy.Subject{UserID: owner}, policy.Query(q), policy.QueriesRead) ||
		e.Can(context.Background(), policy.Subject{UserID: ed}, policy.Query(q), policy.QueriesRead) {
		t.Error("query reading follows ownership")
	}
	// Composite actions are not role vocabulary.
	for _, a := range []policy.Action{policy.QueriesRead, policy.QueriesEdit, policy.QueriesDelete, policy.ModelsUse, policy.DataSourcesUse} {
		if policy.Valid(string(a)) {
			t.Errorf("%s can be granted by a role", a)
		}
	}
}

// TestOwnersOfEveryKind: the owner index is generic by kind; a kind without a
// table or code of its own (alerts, reports, workflows, posts, comments) is
// decided like any other once its owners are recorded.
func TestOwnersOfEveryKind(t *testing.T) {
	f := newFacts()
	e := newEnforcer(t, f)
	owner, other, adm := newID(), newID(), newID()
	f.SetUser(owner, false, nil)
	f.SetUser(other, false, nil)
	f.SetUser(adm, true, nil)
	var changes []policy.Change
	f.OnChange(func(c policy.Change) { changes = append(changes, c) })
	kinds := []string{policy.KindQuery, policy.KindModel, policy.KindAlert, policy.KindReport, policy.KindWorkflow, policy.KindPost, policy.KindComment}
	ids := map[string]uuid.UUID{}
	for _, k := range kinds {
		ids[k] = newID()
		f.SetOwner(k, ids[k], owner)
	}
	for _, k := range kinds {
		obj := policy.Of(k, ids[k])
		read := policy.ReadAction(k)
		wantErr(t, k+": owner reads", e.Require(as(owner), obj, read), nil, "")
		wantErr(t, k+": admin reads", e.Require(as(adm), obj, read), nil, "")
		if k != policy.KindModel { // models are read by role
			wantErr(t, k+": another user reads", e.Require(as(other), obj, read), errs.ErrNotFound, "")
		}
		if f.IsOwner(policy.KindDashboard, ids[k], owner) {
			t.Errorf("%s: its id is owned as a dashboard", k)
		}
		if got := f.Count(k); got != 1 {
			t.Errorf("%s: count %d, want 1", k, got)
		}
	}
	if len(changes) != len(kinds) || changes[0] != (policy.Change{Kind: policy.ChangeOwner, Obj: policy.KindQuery, ID: ids[policy.KindQuery]}) {
		t.Errorf("changes announced: %+v", changes)
	}
	f.Forget(policy.KindAlert, ids[policy.KindAlert])
	if f.Exists(policy.KindAlert, ids[policy.KindAlert]) || f.Count(policy.KindAlert) != 0 {
		t.Error("Forget keeps the alert")
	}
	wantErr(t, "forgotten alert", e.Require(as(owner), policy.Of(policy.KindAlert, ids[policy.KindAlert]), policy.ReadAction(policy.KindAlert)), errs.ErrNotFound, "alert not found")
	// Deleting a user cascades to everything they own, of every kind.
	f.RemoveUser(owner)
	for _, k := range kinds {
		if f.Exists(k, ids[k]) {
			t.Errorf("%s of a removed user survives", k)
		}
	}
}

// TestLoadAndReloadOwners: Load reads the owners of saved queries and data
// models; Reload re-reads one after a ChangeOwner.
func TestLoadAndReloadOwners(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		st := storetest.Migrated(t, tg)
		ctx := principal.System(context.Background())
		db := st.Client
		u := db.User.Create().SetEmail("owner@example.com").SetPassword("x").SaveX(ctx)
		q := db.SavedQuery.Create().SetUserID(u.ID).SetName("q").SetSQL("SELECT 1").SaveX(ctx)
		m := db.DataModel.Create().SetUserID(u.ID).SetName("m").SaveX(ctx)
		f, err := policy.Load(ctx, db, defaultRole)
		if err != nil {
			t.Fatal(err)
		}
		if !f.IsOwner(policy.KindQuery, q.ID, u.ID) || !f.IsOwner(policy.KindModel, m.ID, u.ID) {
			t.Fatal("Load misses the owners of saved queries or models")
		}
		q2 := db.SavedQuery.Create().SetUserID(u.ID).SetName("q2").SetSQL("SELECT 2").SaveX(ctx)
		db.SavedQuery.DeleteOneID(q.ID).ExecX(ctx)
		for _, id := range []uuid.UUID{q.ID, q2.ID} {
			if err := f.Reload(ctx, db, policy.Change{Kind: policy.ChangeOwner, Obj: policy.KindQuery, ID: id}); err != nil {
				t.Fatal(err)
			}
		}
		if f.Exists(policy.KindQuery, q.ID) || !f.IsOwner(policy.KindQuery, q2.ID, u.ID) {
			t.Error("Reload does not follow the saved queries table")
		}
		if err := f.Reload(ctx, db, policy.Change{Kind: policy.ChangeOwner, Obj: "no-such-kind", ID: q2.ID}); err == nil {
			t.Error("Reload accepts a kind no table holds")
		}
	})
}
