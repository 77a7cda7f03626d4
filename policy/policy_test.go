package policy_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/dashboardshare"
	"github.com/datapulse/datapulse/ent/user"
	"github.com/datapulse/datapulse/policy"
)

// The default role of these tests, as the API harness and a stock
// configuration use it.
const defaultRole = policy.RoleEditor

// Custom roles of the tests.
var customRoles = map[string][]string{
	// Creates dashboards and runs queries; cannot read shared dashboards.
	"analyst": {string(policy.DashboardsCreate), string(policy.QueriesRun)},
	// Edits, but is not granted read.
	"editonly": {string(policy.DashboardsEdit)},
}

func strs(as []policy.Action) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = string(a)
	}
	return out
}

// newFacts returns facts holding the built-in roles and the custom roles.
func newFacts() *policy.Facts {
	f := policy.NewFacts(defaultRole)
	for _, r := range policy.BuiltinRoles {
		f.SetRole(r.Name, strs(r.Permissions))
	}
	for name, perms := range customRoles {
		f.SetRole(name, perms)
	}
	return f
}

func newEnforcer(t testing.TB, f *policy.Facts) *policy.Enforcer {
	t.Helper()
	e, err := policy.NewEnforcer(f)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// The five questions asked about a dashboard: create on the collection, then
// read, edit, delete and share on the dashboard itself.
var questions = []struct {
	name string
	coll bool
	act  policy.Action
}{
	{"create", true, policy.DashboardsCreate},
	{"read", false, policy.DashboardsRead},
	{"edit", false, policy.DashboardsEdit},
	{"delete", false, policy.DashboardsDelete},
	{"share", false, policy.DashboardsShare},
}

// answers are the expected answers to questions, in order.
type answers [5]bool

var (
	all      = answers{true, true, true, true, true}
	none     = answers{}
	onlyRead = answers{false, true, false, false, false}
)

func ask(e *policy.Enforcer, sub policy.Subject, d uuid.UUID) answers {
	var got answers
	for i, q := range questions {
		obj := policy.Dashboard(d)
		if q.coll {
			obj = policy.Dashboards
		}
		got[i] = e.Can(context.Background(), sub, obj, q.act)
	}
	return got
}

func (a answers) String() string {
	var b strings.Builder
	for i, q := range questions {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%v", q.name, a[i])
	}
	return b.String()
}

func expect(t *testing.T, e *policy.Enforcer, what string, sub policy.Subject, d uuid.UUID, want answers) {
	t.Helper()
	if got := ask(e, sub, d); got != want {
		t.Errorf("%s:\n got  %v\n want %v", what, got, want)
	}
}

func can(e *policy.Enforcer, sub policy.Subject, obj policy.Object, act policy.Action) bool {
	return e.Can(context.Background(), sub, obj, act)
}

func subj(id uuid.UUID, scopes ...string) policy.Subject {
	return policy.Subject{UserID: id, Scopes: scopes}
}

// TestCanMatrix asks every kind of caller the five questions about one
// dashboard D owned by "owner".
func TestCanMatrix(t *testing.T) {
	f := newFacts()
	d := newID()
	owner := newID()
	f.SetUser(owner, false, nil)
	f.SetOwner(policy.KindDashboard, d, owner)
	// d2 is the dashboard of the one actor that owns its own.
	d2 := newID()

	type actor struct {
		name string
		// setup records the actor in f and returns its subject.
		setup func(id uuid.UUID) policy.Subject
		want  answers
	}
	share := func(id uuid.UUID, l policy.Level) { f.SetShare(d, id, l) }
	actors := []actor{
		{"instance admin (users.role=admin), no share", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, true, nil)
			return subj(id)
		}, all},
		{"instance admin whose roles grant nothing", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, true, []string{"editonly"})
			return subj(id)
		}, all},
		{"system caller", func(uuid.UUID) policy.Subject { return policy.Subject{System: true} }, all},
		{"owner (default role)", func(uuid.UUID) policy.Subject { return subj(owner) }, all},
		{"owner holding only viewer: owns D, may not create", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, []string{policy.RoleViewer})
			f.SetOwner(policy.KindDashboard, d2, id)
			return subj(id)
		}, answers{false, true, true, true, true}},
		{"viewer with a view share", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, []string{policy.RoleViewer})
			share(id, policy.LevelView)
			return subj(id)
		}, onlyRead},
		{"viewer with an edit share (role lacks edit)", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, []string{policy.RoleViewer})
			share(id, policy.LevelEdit)
			return subj(id)
		}, onlyRead},
		{"viewer without a share", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, []string{policy.RoleViewer})
			return subj(id)
		}, none},
		{"editor with an edit share", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, []string{policy.RoleEditor})
			share(id, policy.LevelEdit)
			return subj(id)
		}, answers{true, true, true, false, false}},
		{"editor with a view share", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, []string{policy.RoleEditor})
			share(id, policy.LevelView)
			return subj(id)
		}, answers{true, true, false, false, false}},
		{"editor without a share", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, []string{policy.RoleEditor})
			return subj(id)
		}, answers{true, false, false, false, false}},
		{"default role (editor) with an edit share", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, nil)
			share(id, policy.LevelEdit)
			return subj(id)
		}, answers{true, true, true, false, false}},
		{"holder of the admin role (not an instance admin), no share", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, []string{policy.RoleAdmin})
			return subj(id)
		}, answers{true, false, false, false, false}},
		{"holder of the admin role with an edit share", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, []string{policy.RoleAdmin})
			share(id, policy.LevelEdit)
			return subj(id)
		}, answers{true, true, true, false, false}},
		{"custom role lacking dashboards:read, with an edit share", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, []string{"analyst"})
			share(id, policy.LevelEdit)
			return subj(id)
		}, answers{true, false, false, false, false}},
		// The rule is per action: edit is granted by role and share even
		// though read is not. The service asks read first, so it answers
		// "not found" for such a caller.
		{"custom role granting edit but not read, with an edit share", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, []string{"editonly"})
			share(id, policy.LevelEdit)
			return subj(id)
		}, answers{false, false, true, false, false}},
		{"explicit viewer role overriding the default editor, edit share", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, []string{policy.RoleViewer})
			share(id, policy.LevelEdit)
			return subj(id)
		}, onlyRead},
		{"explicit roles add up (viewer + analyst), view share", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, []string{policy.RoleViewer, "analyst"})
			share(id, policy.LevelView)
			return subj(id)
		}, answers{true, true, false, false, false}},
		{"removed user who had an edit share", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, []string{policy.RoleEditor})
			share(id, policy.LevelEdit)
			f.RemoveUser(id)
			return subj(id)
		}, none},
		{"removed instance admin", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, true, nil)
			f.RemoveUser(id)
			return subj(id)
		}, none},
		{"unknown user with a share recorded", func(id uuid.UUID) policy.Subject {
			share(id, policy.LevelEdit)
			return subj(id)
		}, none},
		{"zero subject", func(uuid.UUID) policy.Subject { return policy.Subject{} }, none},
		{"owner, read-scoped token", func(uuid.UUID) policy.Subject { return subj(owner, "read") }, onlyRead},
		{"instance admin, read-scoped token", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, true, nil)
			return subj(id, "read")
		}, onlyRead},
		{"system caller, read-scoped token", func(uuid.UUID) policy.Subject {
			return policy.Subject{System: true, Scopes: []string{"read"}}
		}, onlyRead},
		{"editor with an edit share, read-scoped token", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, nil)
			share(id, policy.LevelEdit)
			return subj(id, "read")
		}, onlyRead},
		{"viewer without a share, read-scoped token", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, []string{policy.RoleViewer})
			return subj(id, "read")
		}, none},
		{"token with an unknown scope only reads", func(uuid.UUID) policy.Subject { return subj(owner, "admin") }, onlyRead},
		{"owner, write-scoped token", func(uuid.UUID) policy.Subject { return subj(owner, "write") }, all},
		{"owner, read+write token", func(uuid.UUID) policy.Subject { return subj(owner, "read", "write") }, all},
		{"editor with an edit share, write-scoped token", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, nil)
			share(id, policy.LevelEdit)
			return subj(id, "write")
		}, answers{true, true, true, false, false}},
		{"viewer with a view share, write-scoped token", func(id uuid.UUID) policy.Subject {
			f.SetUser(id, false, []string{policy.RoleViewer})
			share(id, policy.LevelView)
			return subj(id, "write")
		}, onlyRead},
	}
	e := newEnforcer(t, f)
	for _, a := range actors {
		t.Run(a.name, func(t *testing.T) {
			sub := a.setup(newID())
			on := d
			if f.IsOwner(policy.KindDashboard, d2, sub.UserID) {
				on = d2
			}
			expect(t, e, a.name, sub, on, a.want)
		})
	}
}

// TestCanObjects covers objects other than one existing dashboard.
func TestCanObjects(t *testing.T) {
	f := newFacts()
	e := newEnforcer(t, f)
	adm, ed := newID(), newID()
	f.SetUser(adm, true, nil)
	f.SetUser(ed, false, nil)

	// A share recorded for a dashboard the facts do not know (deleted, or
	// not loaded) gives nothing; an admin may still act on the id (the
	// service then finds no row).
	ghost := newID()
	f.SetShare(ghost, ed, policy.LevelEdit)
	expect(t, e, "editor, share on an unknown dashboard", subj(ed), ghost, answers{true, false, false, false, false})
	expect(t, e, "admin, unknown dashboard", subj(adm), ghost, all)

	// The collection is not an object of any owner or share.
	if can(e, subj(ed), policy.Dashboards, policy.DashboardsEdit) != true {
		t.Error("editor: edit on the collection is decided by the role alone")
	}
	v := newID()
	f.SetUser(v, false, []string{policy.RoleViewer})
	if can(e, subj(v), policy.Dashboards, policy.DashboardsCreate) {
		t.Error("viewer may create dashboards")
	}
	if !can(e, subj(v), policy.Dashboards, policy.DashboardsRead) {
		t.Error("viewer may not read the collection")
	}

	// Other kinds have no owners or shares.
	d := newID()
	f.SetOwner(policy.KindDashboard, d, ed)
	other := policy.Object{Kind: "report", ID: d}
	if can(e, subj(ed), other, policy.ReportsManage) {
		t.Error("owning dashboard D gives rights on a report with D's id")
	}
	if !can(e, subj(adm), other, policy.ReportsManage) {
		t.Error("admin may not manage a report")
	}

	// Actions outside the dashboards vocabulary follow the roles.
	if !can(e, subj(ed), policy.Dashboards, policy.QueriesRun) || can(e, subj(v), policy.Dashboards, policy.QueriesRun) {
		t.Error("queries:run does not follow the roles")
	}
	if can(e, subj(ed), policy.Dashboards, policy.Action("dashboards:frobnicate")) {
		t.Error("an unknown action is allowed to a non-admin")
	}
}

// TestFactsMutators checks that every mutator takes effect on the very next
// decision.
func TestFactsMutators(t *testing.T) {
	t.Run("role permissions edited", func(t *testing.T) {
		f := newFacts()
		e := newEnforcer(t, f)
		owner, v := newID(), newID()
		d := newID()
		f.SetUser(owner, false, nil)
		f.SetOwner(policy.KindDashboard, d, owner)
		f.SetUser(v, false, []string{policy.RoleViewer})
		f.SetShare(d, v, policy.LevelEdit)
		expect(t, e, "viewer, edit share", subj(v), d, onlyRead)
		f.SetRole(policy.RoleViewer, []string{"dashboards:read", "dashboards:edit", "dashboards:create"})
		expect(t, e, "viewer granted edit and create", subj(v), d, answers{true, true, true, false, false})
		f.SetRole(policy.RoleViewer, nil)
		expect(t, e, "viewer emptied", subj(v), d, none)
		// The owner does not depend on roles.
		f.SetRole(policy.RoleEditor, nil)
		expect(t, e, "owner whose role grants nothing", subj(owner), d, answers{false, true, true, true, true})
	})

	t.Run("role renamed", func(t *testing.T) {
		f := newFacts()
		e := newEnforcer(t, f)
		u := newID()
		f.SetUser(u, false, []string{"analyst"})
		if !can(e, subj(u), policy.Dashboards, policy.QueriesRun) {
			t.Fatal("analyst may not run queries")
		}
		f.RenameRole("analyst", "data-analyst")
		if !can(e, subj(u), policy.Dashboards, policy.QueriesRun) {
			t.Error("holder lost the role's permissions on rename")
		}
		if got := f.RolesOf(u); !slices.Equal(got, []string{"data-analyst"}) {
			t.Errorf("RolesOf after rename = %v", got)
		}
		// A new role under the old name is a different role.
		f.SetRole("analyst", nil)
		if !can(e, subj(u), policy.Dashboards, policy.QueriesRun) {
			t.Error("a new role under the old name changed the holder's rights")
		}
		f.SetRole("data-analyst", nil)
		if can(e, subj(u), policy.Dashboards, policy.QueriesRun) {
			t.Error("editing the renamed role did not reach its holder")
		}
		// Renaming to the same name is a no-op.
		f.SetRole("data-analyst", []string{"queries:run"})
		f.RenameRole("data-analyst", "data-analyst")
		if !can(e, subj(u), policy.Dashboards, policy.QueriesRun) {
			t.Error("a rename to the same name dropped the role")
		}
	})

	t.Run("role removed", func(t *testing.T) {
		f := newFacts()
		e := newEnforcer(t, f)
		both, only := newID(), newID()
		f.SetUser(both, false, []string{"analyst", policy.RoleViewer})
		f.SetUser(only, false, []string{"analyst"})
		f.RemoveRole("analyst")
		if can(e, subj(both), policy.Dashboards, policy.QueriesRun) || can(e, subj(both), policy.Dashboards, policy.DashboardsCreate) {
			t.Error("removed role still grants to a holder of other roles")
		}
		if got := f.RolesOf(both); !slices.Equal(got, []string{policy.RoleViewer}) {
			t.Errorf("RolesOf(both) = %v, want [viewer]", got)
		}
		// As in the database (user_roles rows cascade away), a user left
		// without roles holds the default role.
		if got := f.RolesOf(only); !slices.Equal(got, []string{defaultRole}) {
			t.Errorf("RolesOf(only) = %v, want the default role", got)
		}
		if !can(e, subj(only), policy.Dashboards, policy.DashboardsEdit) {
			t.Error("user left without roles does not fall back to the default role")
		}
	})

	t.Run("user roles added and removed", func(t *testing.T) {
		f := newFacts()
		e := newEnforcer(t, f)
		u := newID()
		f.SetUser(u, false, nil)
		if !can(e, subj(u), policy.Dashboards, policy.DashboardsCreate) {
			t.Fatal("default role (editor) may not create")
		}
		f.AddUserRole(u, policy.RoleViewer)
		if can(e, subj(u), policy.Dashboards, policy.DashboardsCreate) {
			t.Error("an explicit viewer role does not replace the default role")
		}
		f.AddUserRole(u, policy.RoleViewer) // idempotent
		f.AddUserRole(u, "analyst")
		if got := f.RolesOf(u); !slices.Equal(got, []string{policy.RoleViewer, "analyst"}) {
			t.Errorf("RolesOf = %v", got)
		}
		if !can(e, subj(u), policy.Dashboards, policy.DashboardsCreate) || !can(e, subj(u), policy.Dashboards, policy.DashboardsRead) {
			t.Error("roles do not add up")
		}
		f.RemoveUserRole(u, "analyst")
		if can(e, subj(u), policy.Dashboards, policy.DashboardsCreate) {
			t.Error("removed user role still grants")
		}
		f.RemoveUserRole(u, "no-such-role") // no-op
		f.RemoveUserRole(u, policy.RoleViewer)
		if got := f.RolesOf(u); !slices.Equal(got, []string{defaultRole}) {
			t.Errorf("RolesOf after removing every role = %v, want the default role", got)
		}
		if !can(e, subj(u), policy.Dashboards, policy.DashboardsCreate) {
			t.Error("no fallback to the default role")
		}
	})

	t.Run("SetUser replaces roles", func(t *testing.T) {
		f := newFacts()
		e := newEnforcer(t, f)
		u := newID()
		roles := []string{policy.RoleViewer}
		f.SetUser(u, false, roles)
		roles[0] = policy.RoleAdmin // the caller's slice is not kept
		if can(e, subj(u), policy.Dashboards, policy.DashboardsCreate) {
			t.Error("SetUser keeps the caller's slice")
		}
		f.SetUser(u, false, nil)
		if !can(e, subj(u), policy.Dashboards, policy.DashboardsCreate) {
			t.Error("SetUser(nil roles) does not restore the default role")
		}
		if got := f.RolesOf(newID()); got != nil {
			t.Errorf("RolesOf(unknown) = %v, want nil", got)
		}
	})

	t.Run("SetAdmin", func(t *testing.T) {
		f := newFacts()
		e := newEnforcer(t, f)
		owner, u := newID(), newID()
		d := newID()
		f.SetUser(owner, false, nil)
		f.SetOwner(policy.KindDashboard, d, owner)
		f.SetUser(u, false, []string{policy.RoleViewer})
		expect(t, e, "viewer", subj(u), d, none)
		f.SetAdmin(u, true)
		expect(t, e, "promoted", subj(u), d, all)
		if !f.IsAdmin(u) {
			t.Error("IsAdmin false after SetAdmin(true)")
		}
		f.SetAdmin(u, false)
		expect(t, e, "demoted", subj(u), d, none)
		// SetAdmin also makes a user known.
		n := newID()
		f.SetAdmin(n, false)
		if !can(e, subj(n), policy.Dashboards, policy.DashboardsCreate) {
			t.Error("user made known by SetAdmin does not hold the default role")
		}
	})

	t.Run("RemoveUser drops their dashboards and shares", func(t *testing.T) {
		f := newFacts()
		e := newEnforcer(t, f)
		x, y, z := newID(), newID(), newID()
		dx, dz := newID(), newID()
		for _, u := range []uuid.UUID{x, y, z} {
			f.SetUser(u, false, nil)
		}
		f.SetOwner(policy.KindDashboard, dx, x)
		f.SetOwner(policy.KindDashboard, dz, z)
		f.SetShare(dx, y, policy.LevelEdit)
		f.SetShare(dz, x, policy.LevelEdit)
		expect(t, e, "y on dx before", subj(y), dx, answers{true, true, true, false, false})
		expect(t, e, "x on dz before", subj(x), dz, answers{true, true, true, false, false})

		f.RemoveUser(x)
		expect(t, e, "y on x's removed dashboard", subj(y), dx, answers{true, false, false, false, false})
		expect(t, e, "removed x", subj(x), dz, none)
		expect(t, e, "removed x on own dashboard", subj(x), dx, none)
		if f.IsOwner(policy.KindDashboard, dx, x) {
			t.Error("removed user still owns their dashboard")
		}
		// A user re-created with the same id starts from nothing.
		f.SetUser(x, false, nil)
		expect(t, e, "x re-created, on dz", subj(x), dz, answers{true, false, false, false, false})
		expect(t, e, "x re-created, on dx", subj(x), dx, answers{true, false, false, false, false})
		if l := f.ShareLevel(policy.KindDashboard, dz, x); l != policy.LevelNone {
			t.Errorf("share of the removed user survives: %v", l)
		}
		// And a dashboard re-recorded with the old id (not a real case,
		// ids are never reused) has none of the old shares.
		f.SetOwner(policy.KindDashboard, dx, z)
		if l := f.ShareLevel(policy.KindDashboard, dx, y); l != policy.LevelNone {
			t.Errorf("share on the removed user's dashboard survives: %v", l)
		}
		// z and its dashboard are untouched.
		expect(t, e, "z on dz", subj(z), dz, all)
	})

	t.Run("Forget drops a dashboard's shares", func(t *testing.T) {
		f := newFacts()
		e := newEnforcer(t, f)
		o, v, w := newID(), newID(), newID()
		d, keep := newID(), newID()
		for _, u := range []uuid.UUID{o, v, w} {
			f.SetUser(u, false, nil)
		}
		f.SetOwner(policy.KindDashboard, d, o)
		f.SetOwner(policy.KindDashboard, keep, o)
		f.SetShare(d, v, policy.LevelView)
		f.SetShare(d, w, policy.LevelEdit)
		f.SetShare(keep, v, policy.LevelView)
		f.Forget(policy.KindDashboard, d)
		expect(t, e, "owner of removed dashboard", subj(o), d, answers{true, false, false, false, false})
		expect(t, e, "v on removed dashboard", subj(v), d, answers{true, false, false, false, false})
		// Same id recorded again: the old shares must be gone, not hidden.
		f.SetOwner(policy.KindDashboard, d, o)
		for _, u := range []uuid.UUID{v, w} {
			if l := f.ShareLevel(policy.KindDashboard, d, u); l != policy.LevelNone {
				t.Errorf("share survives Forget: %v", l)
			}
		}
		expect(t, e, "v on another dashboard of the owner", subj(v), keep, answers{true, true, false, false, false})
	})

	t.Run("share downgraded and removed", func(t *testing.T) {
		f := newFacts()
		e := newEnforcer(t, f)
		o, u := newID(), newID()
		d := newID()
		f.SetUser(o, false, nil)
		f.SetUser(u, false, nil)
		f.SetOwner(policy.KindDashboard, d, o)
		f.SetShare(d, u, policy.LevelEdit)
		expect(t, e, "edit share", subj(u), d, answers{true, true, true, false, false})
		f.SetShare(d, u, policy.LevelView)
		expect(t, e, "downgraded to view", subj(u), d, answers{true, true, false, false, false})
		f.SetShare(d, u, policy.LevelEdit)
		expect(t, e, "upgraded to edit", subj(u), d, answers{true, true, true, false, false})
		f.SetShare(d, u, policy.LevelNone)
		expect(t, e, "removed", subj(u), d, answers{true, false, false, false, false})
		f.SetShare(d, u, policy.LevelNone) // removing twice is a no-op
		// Shared again after a removal, then the dashboard goes: nothing
		// may survive (the reverse index must follow every change).
		f.SetShare(d, u, policy.LevelView)
		f.Forget(policy.KindDashboard, d)
		f.SetOwner(policy.KindDashboard, d, o)
		if l := f.ShareLevel(policy.KindDashboard, d, u); l != policy.LevelNone {
			t.Errorf("share survives re-share + Forget: %v", l)
		}
	})

	t.Run("owner changed", func(t *testing.T) {
		f := newFacts()
		e := newEnforcer(t, f)
		a, b := newID(), newID()
		d := newID()
		f.SetUser(a, false, []string{policy.RoleViewer})
		f.SetUser(b, false, []string{policy.RoleViewer})
		f.SetOwner(policy.KindDashboard, d, a)
		expect(t, e, "a owns", subj(a), d, answers{false, true, true, true, true})
		f.SetOwner(policy.KindDashboard, d, b)
		expect(t, e, "a after transfer", subj(a), d, none)
		expect(t, e, "b after transfer", subj(b), d, answers{false, true, true, true, true})
	})
}

// TestRolesOfIsASnapshot: RolesOf hands out a slice the caller may keep; a
// later RenameRole or RemoveRole must not rewrite it underneath the caller
// (that would also be a data race with a concurrent reader).
func TestRolesOfIsASnapshot(t *testing.T) {
	f := newFacts()
	u := newID()
	f.SetUser(u, false, []string{"analyst", policy.RoleViewer})
	got := f.RolesOf(u)
	before := slices.Clone(got)
	f.RenameRole("analyst", "renamed")
	f.RemoveRole(policy.RoleViewer)
	if !slices.Equal(got, before) {
		t.Errorf("slice returned by RolesOf changed from %v to %v by later mutations", before, got)
	}
}

// TestConcurrentDecisions decides from many goroutines while another
// goroutine runs every mutator. Decisions that no mutation touches must stay
// the same throughout; run with -race.
func TestConcurrentDecisions(t *testing.T) {
	f := newFacts()
	e := newEnforcer(t, f)

	// Stable part of the world.
	adm, owner, stranger, viewer := newID(), newID(), newID(), newID()
	f.SetUser(adm, true, nil)
	f.SetUser(owner, false, nil)
	f.SetUser(stranger, false, nil)
	f.SetUser(viewer, false, []string{policy.RoleViewer})
	d0 := newID()
	f.SetOwner(policy.KindDashboard, d0, owner)
	f.SetShare(d0, viewer, policy.LevelView)

	// Mutable part.
	const nUsers, nDash = 8, 16
	users := make([]uuid.UUID, nUsers)
	dash := make([]uuid.UUID, nDash)
	for i := range users {
		users[i] = newID()
		f.SetUser(users[i], false, nil)
	}
	for i := range dash {
		dash[i] = newID()
		f.SetOwner(policy.KindDashboard, dash[i], users[i%nUsers])
	}

	iters := 20_000
	if testing.Short() {
		iters = 2_000
	}
	var wg sync.WaitGroup
	start := make(chan struct{}) // everybody starts together
	stop := make(chan struct{})
	errs := make(chan string, 64)
	report := func(format string, args ...any) {
		select {
		case errs <- fmt.Sprintf(format, args...):
		default:
		}
	}
	// Mutator.
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(stop)
		<-start
		r := rand.New(rand.NewPCG(1, 2))
		levels := []policy.Level{policy.LevelNone, policy.LevelView, policy.LevelEdit}
		for i := range iters {
			u := users[r.IntN(nUsers)]
			d := dash[r.IntN(nDash)]
			switch r.IntN(12) {
			case 0:
				f.SetRole("custom", []string{"dashboards:read", "dashboards:edit"}[:1+r.IntN(2)])
			case 1:
				f.RenameRole("custom", "custom2")
				f.RenameRole("custom2", "custom")
			case 2:
				f.RemoveRole("custom")
				f.SetRole("custom", []string{"dashboards:read"})
			case 3:
				f.AddUserRole(u, "custom")
			case 4:
				f.RemoveUserRole(u, "custom")
			case 5:
				f.SetAdmin(u, r.IntN(2) == 0)
			case 6:
				f.SetShare(d, u, levels[r.IntN(3)])
			case 7:
				f.Forget(policy.KindDashboard, d)
			case 8:
				f.SetOwner(policy.KindDashboard, d, u)
			case 9:
				f.RemoveUser(u)
			case 10:
				f.SetUser(u, false, []string{"custom", policy.RoleViewer}[:1+r.IntN(2)])
			case 11:
				f.SetUser(u, r.IntN(4) == 0, nil)
			}
			if i%64 == 0 {
				time.Sleep(0) // let readers in
			}
		}
	}()
	// Deciders.
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 99))
			<-start
			for n := 0; ; n++ {
				select {
				case <-stop:
					if n > 0 {
						return
					}
				default:
				}
				// Invariants.
				if !can(e, subj(adm), policy.Dashboard(d0), policy.DashboardsDelete) {
					report("admin lost delete on d0")
				}
				if !can(e, subj(owner), policy.Dashboard(d0), policy.DashboardsShare) {
					report("owner lost share on d0")
				}
				if can(e, subj(stranger), policy.Dashboard(d0), policy.DashboardsRead) {
					report("stranger reads d0")
				}
				if !can(e, subj(viewer), policy.Dashboard(d0), policy.DashboardsRead) || can(e, subj(viewer), policy.Dashboard(d0), policy.DashboardsEdit) {
					report("viewer's view share on d0 changed")
				}
				if can(e, subj(owner, "read"), policy.Dashboard(d0), policy.DashboardsEdit) {
					report("read token edits")
				}
				if !can(e, policy.Subject{System: true}, policy.Dashboard(d0), policy.DashboardsShare) {
					report("system lost share")
				}
				// Mutable part: exercised, any answer is fine.
				u := users[r.IntN(nUsers)]
				d := dash[r.IntN(nDash)]
				_ = can(e, subj(u), policy.Dashboard(d), questions[1+r.IntN(4)].act)
				_ = can(e, subj(u), policy.Dashboards, policy.DashboardsCreate)
				_ = f.IsAdmin(u)
				_ = f.ShareLevel(policy.KindDashboard, d, u)
				_ = f.IsOwner(policy.KindDashboard, d, u)
				_ = f.RoleAllows(u, policy.DashboardsRead)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}

	// The final state is what a fresh replay of the last state says: spot
	// check that mutations after the storm still take effect.
	u, d := users[0], dash[0]
	f.SetUser(u, false, []string{policy.RoleViewer})
	f.SetOwner(policy.KindDashboard, d, owner)
	f.SetShare(d, u, policy.LevelEdit)
	expect(t, e, "after the storm", subj(u), d, onlyRead)
}

// world is a small installation written to the database and, by hand, to
// facts: Load must reproduce the hand-built facts' decisions.
type world struct {
	users      []uuid.UUID
	unknown    uuid.UUID
	dashboards []uuid.UUID
}

func TestLoadReproducesDecisions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		st := storetest.Migrated(t, tg)
		// The ent privacy policies need a caller: setup and Load act as the
		// system, as the application does at start.
		ctx := principal.System(context.Background())
		db := st.Client
		hand := policy.NewFacts(defaultRole)
		for _, r := range policy.BuiltinRoles {
			hand.SetRole(r.Name, strs(r.Permissions))
		}

		roleIDs := map[string]uuid.UUID{}
		for _, r := range policy.BuiltinRoles {
			roleIDs[r.Name] = r.ID
		}
		for _, name := range []string{"analyst", "editonly"} {
			r, err := db.Role.Create().SetName(name).SetPermissions(customRoles[name]).Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			roleIDs[name] = r.ID
			hand.SetRole(name, customRoles[name])
		}

		specs := []struct {
			admin bool
			roles []string
		}{
			{true, nil},
			{false, nil},
			{false, []string{policy.RoleViewer}},
			{false, []string{"analyst"}},
			{false, []string{policy.RoleEditor, "analyst"}},
			{false, []string{"editonly"}},
			{false, []string{policy.RoleAdmin}},
			{true, []string{policy.RoleViewer}},
		}
		var w world
		for i, s := range specs {
			role := user.RoleUser
			if s.admin {
				role = user.RoleAdmin
			}
			u, err := db.User.Create().SetEmail(fmt.Sprintf("u%d@example.com", i)).SetPassword("x").SetRole(role).Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, rn := range s.roles {
				if err := db.UserRole.Create().SetUserID(u.ID).SetRoleID(roleIDs[rn]).Exec(ctx); err != nil {
					t.Fatal(err)
				}
			}
			hand.SetUser(u.ID, s.admin, s.roles)
			w.users = append(w.users, u.ID)
		}
		w.unknown = newID()
		r := rand.New(rand.NewPCG(7, 7))
		for i := range 3 * len(w.users) {
			owner := w.users[i%len(w.users)]
			d, err := db.Dashboard.Create().SetOwnerID(owner).SetName(fmt.Sprintf("d%d", i)).Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			hand.SetOwner(policy.KindDashboard, d.ID, owner)
			w.dashboards = append(w.dashboards, d.ID)
			for _, u := range w.users {
				if u == owner {
					continue
				}
				lv := []string{"", "", "view", "edit"}[r.IntN(4)]
				if lv == "" {
					continue
				}
				if err := db.DashboardShare.Create().SetDashboardID(d.ID).SetUserID(u).
					SetPermissionLevel(dashboardshare.PermissionLevel(lv)).Exec(ctx); err != nil {
					t.Fatal(err)
				}
				hand.SetShare(d.ID, u, policy.ParseLevel(lv))
			}
		}
		// A user removed from the database before Load (with their
		// dashboards and shares, by cascade).
		gone := w.users[len(w.users)-1]
		if err := db.User.DeleteOneID(gone).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		hand.RemoveUser(gone)
		// A dashboard deleted before Load.
		if err := db.Dashboard.DeleteOneID(w.dashboards[1]).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		hand.Forget(policy.KindDashboard, w.dashboards[1])
		w.dashboards = append(w.dashboards, newID()) // one that never existed

		loaded, err := policy.Load(ctx, db, defaultRole)
		if err != nil {
			t.Fatal(err)
		}
		compare(t, newEnforcer(t, hand), newEnforcer(t, loaded), append(w.users, w.unknown), w.dashboards)

		// Load reads owners and shares in pages of 10,000: a world past one
		// page must load whole.
		owner, reader := w.users[1], w.users[2]
		const many = 10_050
		ids := bulkDashboards(t, st.DB(), st.Dialect, owner, many)
		levels := make([]string, many)
		for i := range levels {
			levels[i] = []string{"view", "edit"}[i%2]
			hand.SetOwner(policy.KindDashboard, ids[i], owner)
			hand.SetShare(ids[i], reader, policy.ParseLevel(levels[i]))
		}
		bulkShares(t, st.DB(), st.Dialect, ids, reader, levels)
		loaded, err = policy.Load(ctx, db, defaultRole)
		if err != nil {
			t.Fatal(err)
		}
		he, le := newEnforcer(t, hand), newEnforcer(t, loaded)
		for i, d := range ids {
			for _, sub := range []policy.Subject{subj(owner), subj(reader)} {
				if got, want := ask(le, sub, d), ask(he, sub, d); got != want {
					t.Fatalf("bulk dashboard %d (%s), user %s: loaded %v, by hand %v", i, d, sub.UserID, got, want)
				}
			}
		}
		if got := loaded.ShareLevel(policy.KindDashboard, ids[many-1], reader); got != policy.LevelEdit {
			t.Errorf("last share (past the first page) loaded as %v, want edit", got)
		}

		if _, err := policy.Load(ctx, db, "no-such-role"); err == nil {
			t.Error("Load accepts a default role that does not exist")
		}
	})
}

// compare asks both enforcers every question for every user (as a session
// and through a read-scoped token) about every dashboard.
func compare(t *testing.T, want, got *policy.Enforcer, users, dashboards []uuid.UUID) {
	t.Helper()
	n := 0
	for _, u := range users {
		for _, sub := range []policy.Subject{subj(u), subj(u, "read")} {
			for _, d := range dashboards {
				w, g := ask(want, sub, d), ask(got, sub, d)
				if w != g {
					t.Errorf("user %s scopes %v dashboard %s:\n loaded  %v\n by hand %v", u, sub.Scopes, d, g, w)
				}
				for _, b := range w {
					if b {
						n++
					}
				}
			}
		}
	}
	if n == 0 {
		t.Error("no question was answered yes: the world is not exercising anything")
	}
}

// bulkDashboards inserts n dashboards of owner with raw SQL, in id order.
func bulkDashboards(t testing.TB, db *sql.DB, dialect string, owner uuid.UUID, n int) []uuid.UUID {
	t.Helper()
	now := time.Now().UTC()
	ids := make([]uuid.UUID, n)
	rows := make([][]any, n)
	for i := range ids {
		ids[i] = newID()
		rows[i] = []any{ids[i], now, now, owner, fmt.Sprintf("bulk %d", i)}
	}
	insert(t, db, dialect, "dashboards", []string{"id", "created_at", "updated_at", "owner_id", "name"}, rows)
	return ids
}

func bulkShares(t testing.TB, db *sql.DB, dialect string, ids []uuid.UUID, with uuid.UUID, levels []string) {
	t.Helper()
	now := time.Now().UTC()
	rows := make([][]any, len(ids))
	for i, d := range ids {
		rows[i] = []any{d, with, levels[i], now}
	}
	insert(t, db, dialect, "dashboard_shares", []string{"dashboard_id", "user_id", "permission_level", "shared_at"}, rows)
}

// insert writes rows in one transaction with multi-row INSERTs.
func insert(t testing.TB, db *sql.DB, dialect string, table string, cols []string, rows [][]any) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	const batch = 500
	for start := 0; start < len(rows); start += batch {
		chunk := rows[start:min(start+batch, len(rows))]
		var b strings.Builder
		fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, strings.Join(cols, ", "))
		args := make([]any, 0, len(chunk)*len(cols))
		for i, r := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			for j, v := range r {
				if j > 0 {
					b.WriteString(", ")
				}
				args = append(args, v)
				if dialect == "postgres" {
					fmt.Fprintf(&b, "$%d", len(args))
				} else {
					b.WriteByte('?')
				}
			}
			b.WriteByte(')')
		}
		if _, err := tx.Exec(b.String(), args...); err != nil {
			t.Fatalf("insert into %s: %v", table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestBuiltinRolesMatchMigration: the rows the migration seeded are
// policy.BuiltinRoles, and every permission named is a real action.
func TestBuiltinRolesMatchMigration(t *testing.T) {
	for _, r := range policy.BuiltinRoles {
		for _, p := range r.Permissions {
			if !policy.Valid(string(p)) {
				t.Errorf("built-in role %s grants unknown action %q", r.Name, p)
			}
		}
		if len(slices.Compact(slices.Sorted(slices.Values(r.Permissions)))) != len(r.Permissions) {
			t.Errorf("built-in role %s lists a permission twice", r.Name)
		}
	}
	if !slices.IsSorted(policy.Actions) || len(slices.Compact(slices.Clone(policy.Actions))) != len(policy.Actions) {
		t.Error("policy.Actions is not sorted and unique (Valid depends on it)")
	}
	for _, a := range policy.Actions {
		if strings.Count(string(a), ":") != 1 {
			t.Errorf("action %q is not resource:verb", a)
		}
	}
	if policy.Valid("dashboards:frobnicate") || policy.Valid("") {
		t.Error("Valid accepts unknown actions")
	}
	var admin policy.BuiltinRole
	for _, r := range policy.BuiltinRoles {
		if r.Name == policy.RoleAdmin {
			admin = r
		}
	}
	if !slices.Equal(admin.Permissions, policy.Actions) {
		t.Error("the built-in admin role does not grant every action")
	}

	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		st := storetest.Migrated(t, tg)
		ctx := principal.System(context.Background())
		rows, err := st.Client.Role.Query().All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(policy.BuiltinRoles) {
			t.Errorf("migration seeded %d roles, policy.BuiltinRoles has %d", len(rows), len(policy.BuiltinRoles))
		}
		byName := map[string]*ent.Role{}
		for _, r := range rows {
			byName[r.Name] = r
		}
		for _, want := range policy.BuiltinRoles {
			got, ok := byName[want.Name]
			if !ok {
				t.Errorf("role %s not seeded", want.Name)
				continue
			}
			if got.ID != want.ID {
				t.Errorf("role %s: id %s, want %s", want.Name, got.ID, want.ID)
			}
			if got.Description == nil || *got.Description != want.Description {
				t.Errorf("role %s: description %v, want %q", want.Name, got.Description, want.Description)
			}
			if !slices.Equal(got.Permissions, strs(want.Permissions)) {
				t.Errorf("role %s: permissions\n seeded %v\n want   %v", want.Name, got.Permissions, want.Permissions)
			}
			for _, p := range got.Permissions {
				if !policy.Valid(p) {
					t.Errorf("role %s: seeded permission %q is not an action", want.Name, p)
				}
			}
		}
		// And Load turns the seeded rows into the same grants.
		f, err := policy.Load(ctx, st.Client, policy.RoleViewer)
		if err != nil {
			t.Fatal(err)
		}
		e := newEnforcer(t, f)
		for _, r := range policy.BuiltinRoles {
			u := newID()
			f.SetUser(u, false, []string{r.Name})
			for _, a := range policy.Actions {
				if got, want := can(e, subj(u), policy.Dashboards, a), slices.Contains(r.Permissions, a); got != want {
					t.Errorf("loaded role %s, action %s: %v, want %v", r.Name, a, got, want)
				}
			}
		}
	})
}
