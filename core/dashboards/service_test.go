package dashboards_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/dashboards"
	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/privacy"
	"github.com/datapulse/datapulse/ent/schema/types"
	"github.com/datapulse/datapulse/policy"
)

type world struct {
	db                   *ent.Client
	svc                  *dashboards.Service
	facts                *policy.Facts
	owner, viewer, admin context.Context
	stranger             context.Context
	ownerID, viewerID    uuid.UUID
}

func newWorld(t *testing.T, tg storetest.Target) *world {
	t.Helper()
	st := storetest.Migrated(t, tg)
	sys := principal.System(context.Background())
	facts, err := policy.Load(sys, st.Client, policy.RoleEditor)
	if err != nil {
		t.Fatal(err)
	}
	enf, err := policy.NewEnforcer(facts)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{db: st.Client, svc: dashboards.New(st.Client, enf, nil), facts: facts}
	mk := func(email string, admin bool) (uuid.UUID, context.Context) {
		c := st.Client.User.Create().SetEmail(email).SetPassword("x")
		role := identity.RoleUser
		if admin {
			c.SetRole("admin")
			role = identity.RoleAdmin
		}
		u := c.SaveX(sys)
		facts.SetUser(u.ID, admin, nil)
		return u.ID, principal.With(context.Background(), &principal.Principal{UserID: u.ID, Role: role})
	}
	w.ownerID, w.owner = mk("owner@example.com", false)
	w.viewerID, w.viewer = mk("viewer@example.com", false)
	_, w.stranger = mk("stranger@example.com", false)
	_, w.admin = mk("admin@example.com", true)
	return w
}

// TestGoCallers: the services authorize Go callers exactly as HTTP ones.
func TestGoCallers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		w := newWorld(t, tg)
		name := "Board"
		if _, err := w.svc.Create(context.Background(), dashboards.Input{Name: &name}); !errors.Is(err, errs.ErrUnauthenticated) {
			t.Fatalf("create without a caller: %v", err)
		}
		d, err := w.svc.Create(w.owner, dashboards.Input{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.Get(w.stranger, d.ID); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("stranger Get: %v, want not found", err)
		}
		if err := w.svc.Delete(w.stranger, d.ID); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("stranger Delete: %v, want not found", err)
		}
		if _, err := w.svc.PutShare(w.stranger, d.ID, w.viewerID, "edit"); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("stranger shares: %v", err)
		}
		if _, err := w.svc.PutShare(w.owner, d.ID, w.viewerID, "view"); err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.Get(w.viewer, d.ID); err != nil {
			t.Errorf("viewer with share: %v", err)
		}
		newName := "Mine"
		if _, err := w.svc.Update(w.viewer, d.ID, dashboards.Input{Name: &newName}); !errors.Is(err, errs.ErrForbidden) {
			t.Errorf("view share updates: %v, want forbidden", err)
		}
		if _, err := w.svc.PutShare(w.viewer, d.ID, w.viewerID, "edit"); !errors.Is(err, errs.ErrForbidden) {
			t.Errorf("viewer raises own share: %v, want forbidden", err)
		}
		if _, err := w.svc.Get(w.admin, d.ID); err != nil {
			t.Errorf("admin: %v", err)
		}
		page, err := w.svc.List(w.stranger, dashboards.Filter{}, paging.Params{})
		if err != nil || page.Total != 0 {
			t.Errorf("stranger list: %+v %v", page, err)
		}
	})
}

// TestPrivacyBackstop: a query that skips the services' checks still cannot
// read what its caller may not see, and one without a caller reads nothing.
func TestPrivacyBackstop(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		w := newWorld(t, tg)
		sys := principal.System(context.Background())
		mine := w.db.Dashboard.Create().SetOwnerID(w.ownerID).SetName("mine").SaveX(sys)
		shared := w.db.Dashboard.Create().SetOwnerID(w.ownerID).SetName("shared").SaveX(sys)
		w.db.DashboardShare.Create().SetDashboardID(shared.ID).SetUserID(w.viewerID).ExecX(sys)
		for _, d := range []*ent.Dashboard{mine, shared} {
			w.db.Widget.Create().SetDashboardID(d.ID).SetType("text").SetPosition(types.Position{W: 1, H: 1}).ExecX(sys)
		}

		if _, err := w.db.Dashboard.Query().All(context.Background()); !errors.Is(err, privacy.Deny) {
			t.Errorf("query without a caller: %v, want privacy deny", err)
		}
		if err := w.db.Dashboard.Create().SetOwnerID(w.ownerID).SetName("x").Exec(context.Background()); !errors.Is(err, privacy.Deny) {
			t.Errorf("write without a caller: %v, want privacy deny", err)
		}
		counts := []struct {
			who                         string
			ctx                         context.Context
			dashboards, widgets, shares int
		}{
			{"owner", w.owner, 2, 2, 1},
			{"viewer", w.viewer, 1, 1, 1},
			{"stranger", w.stranger, 0, 0, 0},
			{"admin", w.admin, 2, 2, 1},
		}
		for _, c := range counts {
			if n := w.db.Dashboard.Query().CountX(c.ctx); n != c.dashboards {
				t.Errorf("%s reads %d dashboards directly, want %d", c.who, n, c.dashboards)
			}
			if n := w.db.Widget.Query().CountX(c.ctx); n != c.widgets {
				t.Errorf("%s reads %d widgets directly, want %d", c.who, n, c.widgets)
			}
			if n := w.db.DashboardShare.Query().CountX(c.ctx); n != c.shares {
				t.Errorf("%s reads %d shares directly, want %d", c.who, n, c.shares)
			}
		}
		if _, err := w.db.Dashboard.Get(w.stranger, mine.ID); !ent.IsNotFound(err) {
			t.Errorf("stranger gets a dashboard by id directly: %v", err)
		}
	})
}
