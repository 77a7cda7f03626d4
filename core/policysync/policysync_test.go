package policysync

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/ent/dashboardshare"
	"github.com/datapulse/datapulse/ent/schema/types"
	"github.com/datapulse/datapulse/policy"
)

// replica is one DataPulse process: its own connections, facts and sync.
type replica struct {
	st    *store.Store
	facts *policy.Facts
	sync  *Sync
}

func newReplica(t *testing.T, url string) *replica {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DatabaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := Listen(ctx, url, st.DB(), st.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := policy.Load(principal.System(ctx), st.Client, policy.RoleEditor)
	if err != nil {
		t.Fatal(err)
	}
	s.Bind(f)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &replica{st: st, facts: f, sync: s}
}

// eventually polls cond for a bounded time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s did not reach the other replica", what)
}

func TestChangesReachOtherReplicas(t *testing.T) {
	server := os.Getenv(storetest.PostgresEnv)
	if server == "" {
		t.Skip("needs PostgreSQL: set " + storetest.PostgresEnv)
	}
	ctx := context.Background()
	url, drop, err := store.CreateTempDatabase(ctx, server, "datapulse_sync")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	mig, err := store.Open(ctx, store.Options{DatabaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mig.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	mig.Close()

	a, b := newReplica(t, url), newReplica(t, url)
	sys := principal.System(ctx)
	db := a.st.Client

	// A user and a dashboard, made through replica A as a service would.
	owner := db.User.Create().SetEmail("owner@example.com").SetPassword("x").SaveX(sys)
	a.facts.SetUser(owner.ID, false, nil)
	reader := db.User.Create().SetEmail("reader@example.com").SetPassword("x").SaveX(sys)
	a.facts.SetUser(reader.ID, false, nil)
	eventually(t, "new users", func() bool { return b.facts.RoleAllows(reader.ID, policy.DashboardsCreate) })

	d := db.Dashboard.Create().SetOwnerID(owner.ID).SetName("D").SaveX(sys)
	db.Widget.Create().SetDashboardID(d.ID).SetType("text").SetPosition(types.Position{W: 1, H: 1}).ExecX(sys)
	a.facts.SetOwner(policy.KindDashboard, d.ID, owner.ID)
	eventually(t, "new dashboard", func() bool { return b.facts.IsOwner(policy.KindDashboard, d.ID, owner.ID) })

	db.DashboardShare.Create().SetDashboardID(d.ID).SetUserID(reader.ID).SetPermissionLevel(dashboardshare.PermissionLevelEdit).ExecX(sys)
	a.facts.SetShare(d.ID, reader.ID, policy.LevelEdit)
	eventually(t, "share", func() bool { return b.facts.ShareLevel(policy.KindDashboard, d.ID, reader.ID) == policy.LevelEdit })

	db.DashboardShare.Delete().Where(dashboardshare.DashboardID(d.ID), dashboardshare.UserID(reader.ID)).ExecX(sys)
	a.facts.SetShare(d.ID, reader.ID, policy.LevelNone)
	eventually(t, "unshare", func() bool { return b.facts.ShareLevel(policy.KindDashboard, d.ID, reader.ID) == policy.LevelNone })

	// Owners of the other kinds travel the same way (ChangeOwner).
	q := db.SavedQuery.Create().SetUserID(owner.ID).SetName("Q").SetSQL("SELECT 1").SaveX(sys)
	a.facts.SetOwner(policy.KindQuery, q.ID, owner.ID)
	m := db.DataModel.Create().SetUserID(owner.ID).SetName("M").SaveX(sys)
	a.facts.SetOwner(policy.KindModel, m.ID, owner.ID)
	eventually(t, "new saved query and model", func() bool {
		return b.facts.IsOwner(policy.KindQuery, q.ID, owner.ID) && b.facts.IsOwner(policy.KindModel, m.ID, owner.ID)
	})
	db.SavedQuery.DeleteOneID(q.ID).ExecX(sys)
	a.facts.Forget(policy.KindQuery, q.ID)
	eventually(t, "saved query deletion", func() bool { return !b.facts.Exists(policy.KindQuery, q.ID) })

	// A role edit: the editor role loses dashboards:create everywhere.
	editor := db.Role.Query().AllX(sys)
	for _, r := range editor {
		if r.Name == policy.RoleEditor {
			db.Role.UpdateOne(r).SetPermissions([]string{"dashboards:read"}).ExecX(sys)
			a.facts.SetRole(r.Name, []string{"dashboards:read"})
		}
	}
	eventually(t, "role edit", func() bool { return !b.facts.RoleAllows(reader.ID, policy.DashboardsCreate) })

	db.User.UpdateOne(reader).SetRole("admin").ExecX(sys)
	a.facts.SetAdmin(reader.ID, true)
	eventually(t, "promotion", func() bool { return b.facts.IsAdmin(reader.ID) })

	db.User.DeleteOneID(owner.ID).ExecX(sys)
	a.facts.RemoveUser(owner.ID)
	eventually(t, "user deletion with their dashboards", func() bool {
		return !b.facts.IsOwner(policy.KindDashboard, d.ID, owner.ID) && !b.facts.Exists(policy.KindModel, m.ID) &&
			!b.facts.RoleAllows(owner.ID, policy.DashboardsRead)
	})

	// A change whose announcement B missed (here: never announced) reaches B
	// through the full reload B does after it loses its connection.
	late := db.User.Create().SetEmail("late@example.com").SetPassword("x").SetRole("admin").SaveX(sys)
	time.Sleep(50 * time.Millisecond)
	if b.facts.IsAdmin(late.ID) {
		t.Fatal("an unannounced change reached B without a reload")
	}
	pid := b.sync.ch.BackendPID()
	if _, err := a.st.DB().ExecContext(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	eventually(t, "change missed while disconnected", func() bool { return b.facts.IsAdmin(late.ID) })

	// A's own announcements are not applied back to A (no loop), and an
	// unknown id is harmless.
	if err := b.facts.Reload(sys, b.st.Client, policy.Change{Kind: policy.ChangeDashboard, ID: uuid.New()}); err != nil {
		t.Fatal(err)
	}
	if err := b.facts.Reload(sys, b.st.Client, policy.Change{Kind: policy.ChangeOwner, Obj: policy.KindModel, ID: uuid.New()}); err != nil {
		t.Fatal(err)
	}
}
