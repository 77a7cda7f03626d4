package dashboards_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/dashboards"
	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/ent/dashboardshare"
	"github.com/datapulse/datapulse/ent/user"
	"github.com/datapulse/datapulse/policy"
)

// The property: for every caller, List returns exactly the dashboards the
// enforcer lets them read, Filter{Owned} exactly the ones they own and
// Filter{SharedWithMe} exactly the ones shared with them that they do not
// own and may read. It is checked on random small worlds, on both
// databases, before and after changes made through the service.

var visSeeds = []uint64{1, 2, 3, 4, 5}

type visPerson struct {
	id    uuid.UUID
	kind  string // admin, editor, viewer, custom, default
	admin bool
}

type visWorld struct {
	st      *store.Store
	svc     *dashboards.Service
	enf     *policy.Enforcer
	people  []visPerson
	owner   map[uuid.UUID]uuid.UUID // dashboard → owner
	name    map[uuid.UUID]string
	shareTo map[uuid.UUID]map[uuid.UUID]bool // dashboard → users it is shared with
}

var visWords = []string{"Revenue", "Sales", "Ops", "Churn", "Funnel", "Latency", "revenue by region", "Cost"}

// newVisWorld writes a random world through ent (acting as the system), then
// loads the facts from the database the way the application starts.
func newVisWorld(t *testing.T, tg storetest.Target, seed uint64) *visWorld {
	t.Helper()
	st := storetest.Migrated(t, tg)
	ctx := principal.System(context.Background())
	db := st.Client
	r := rand.New(rand.NewPCG(seed, 0xda5b))

	// A custom role with a random part of the dashboard actions: sometimes
	// without dashboards:read.
	var perms []string
	for _, a := range []policy.Action{policy.DashboardsCreate, policy.DashboardsRead, policy.DashboardsEdit, policy.DashboardsDelete, policy.DashboardsShare, policy.QueriesRun} {
		if r.IntN(2) == 0 {
			perms = append(perms, string(a))
		}
	}
	custom, err := db.Role.Create().SetName("custom").SetPermissions(perms).Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roleID := map[string]uuid.UUID{"custom": custom.ID}
	for _, br := range policy.BuiltinRoles {
		roleID[br.Name] = br.ID
	}
	defaultRole := []string{policy.RoleEditor, policy.RoleViewer, "custom"}[r.IntN(3)]

	w := &visWorld{st: st, owner: map[uuid.UUID]uuid.UUID{}, name: map[uuid.UUID]string{}, shareTo: map[uuid.UUID]map[uuid.UUID]bool{}}
	kinds := []string{"admin", "editor", "viewer", "custom", "default"}
	for i := range 8 {
		kind := kinds[r.IntN(len(kinds))]
		if i < len(kinds) {
			kind = kinds[i] // every kind at least once
		}
		p := visPerson{kind: kind, admin: kind == "admin"}
		role := user.RoleUser
		if p.admin {
			role = user.RoleAdmin
		}
		u, err := db.User.Create().SetEmail(fmt.Sprintf("u%d@example.com", i)).SetPassword("x").SetRole(role).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p.id = u.ID
		var held []string
		switch kind {
		case "editor", "viewer", "custom":
			held = []string{kind}
		case "admin":
			// an instance admin may hold any role; it does not matter
			if r.IntN(2) == 0 {
				held = []string{policy.RoleViewer}
			}
		}
		if r.IntN(4) == 0 && kind != "default" {
			held = append(held, []string{policy.RoleViewer, "custom"}[r.IntN(2)])
		}
		for _, rn := range held {
			if err := db.UserRole.Create().SetUserID(u.ID).SetRoleID(roleID[rn]).OnConflict().DoNothing().Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		w.people = append(w.people, p)
	}
	for i := range 30 {
		owner := w.people[r.IntN(len(w.people))].id
		name := fmt.Sprintf("%s %d", visWords[r.IntN(len(visWords))], i)
		d, err := db.Dashboard.Create().SetOwnerID(owner).SetName(name).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w.owner[d.ID], w.name[d.ID] = owner, name
		w.shareTo[d.ID] = map[uuid.UUID]bool{}
		for _, p := range w.people {
			if p.id == owner {
				continue
			}
			var lv string
			switch x := r.IntN(10); {
			case x < 2:
				lv = "view"
			case x < 4:
				lv = "edit"
			default:
				continue
			}
			if err := db.DashboardShare.Create().SetDashboardID(d.ID).SetUserID(p.id).
				SetPermissionLevel(dashboardshare.PermissionLevel(lv)).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			w.shareTo[d.ID][p.id] = true
		}
	}
	facts, err := policy.Load(ctx, db, defaultRole)
	if err != nil {
		t.Fatal(err)
	}
	w.enf, err = policy.NewEnforcer(facts)
	if err != nil {
		t.Fatal(err)
	}
	w.svc = dashboards.New(db, w.enf, nil)
	return w
}

func visPrincipal(p visPerson, scopes ...string) *principal.Principal {
	role := identity.RoleUser
	if p.admin {
		role = identity.RoleAdmin
	}
	return &principal.Principal{UserID: p.id, Role: role, Scopes: scopes}
}

func visSubject(pr *principal.Principal) policy.Subject {
	return policy.Subject{UserID: pr.UserID, Scopes: pr.Scopes, System: pr.System}
}

// visListAll returns every id List gives over all pages, failing on
// duplicates or a total that does not match.
func visListAll(t *testing.T, svc *dashboards.Service, ctx context.Context, f dashboards.Filter, sort string) map[uuid.UUID]dashboards.Dashboard {
	t.Helper()
	got := map[uuid.UUID]dashboards.Dashboard{}
	total := -1
	for page := 1; ; page++ {
		pg, err := svc.List(ctx, f, paging.Params{Page: page, PerPage: 7, Sort: sort})
		if err != nil {
			t.Fatalf("List(%+v) page %d: %v", f, page, err)
		}
		if total >= 0 && pg.Total != total {
			t.Fatalf("List(%+v): total changed between pages: %d, then %d", f, total, pg.Total)
		}
		total = pg.Total
		for _, d := range pg.Items {
			if _, dup := got[d.ID]; dup {
				t.Errorf("List(%+v): %s on two pages", f, d.ID)
			}
			got[d.ID] = d
		}
		if len(pg.Items) < 7 {
			break
		}
		if page > 100 {
			t.Fatal("List never ends")
		}
	}
	if total != len(got) {
		t.Errorf("List(%+v): total %d, but %d items over all pages", f, total, len(got))
	}
	return got
}

type visFilterCase struct {
	name string
	f    dashboards.Filter
	// want reports whether dashboard d belongs in the list of the caller,
	// given what the enforcer says about reading it.
	want func(w *visWorld, caller uuid.UUID, d uuid.UUID, readable bool) bool
}

var visFilterCases = []visFilterCase{
	{"all", dashboards.Filter{}, func(_ *visWorld, _, _ uuid.UUID, readable bool) bool { return readable }},
	{"owned", dashboards.Filter{Owned: true}, func(w *visWorld, u, d uuid.UUID, _ bool) bool { return w.owner[d] == u }},
	{"shared_with_me", dashboards.Filter{SharedWithMe: true}, func(w *visWorld, u, d uuid.UUID, readable bool) bool {
		return w.shareTo[d][u] && w.owner[d] != u && readable
	}},
	{"q", dashboards.Filter{Q: "REVENUE"}, func(w *visWorld, _, d uuid.UUID, readable bool) bool {
		return readable && strings.Contains(strings.ToLower(w.name[d]), "revenue")
	}},
	{"shared_with_me+q", dashboards.Filter{SharedWithMe: true, Q: "revenue"}, func(w *visWorld, u, d uuid.UUID, readable bool) bool {
		return w.shareTo[d][u] && w.owner[d] != u && readable && strings.Contains(strings.ToLower(w.name[d]), "revenue")
	}},
}

// visOwnedAndShared is Filter{Owned, SharedWithMe}: the union of the two lists.
var visOwnedAndShared = visFilterCase{"owned+shared_with_me", dashboards.Filter{Owned: true, SharedWithMe: true}, func(w *visWorld, u, d uuid.UUID, readable bool) bool {
	return w.owner[d] == u || (w.shareTo[d][u] && readable)
}}

// check compares List with the enforcer for every caller and filter.
func (w *visWorld) check(t *testing.T, cases []visFilterCase) {
	t.Helper()
	type caller struct {
		name string
		pr   *principal.Principal
	}
	var callers []caller
	for i, p := range w.people {
		callers = append(callers,
			caller{fmt.Sprintf("user%d(%s)", i, p.kind), visPrincipal(p)},
			caller{fmt.Sprintf("user%d(%s)/read-token", i, p.kind), visPrincipal(p, identity.ScopeRead)},
		)
	}
	callers = append(callers, caller{"system", &principal.Principal{System: true, Role: identity.RoleAdmin}})
	ids := slices.Collect(maps.Keys(w.owner))
	checked := 0
	for _, c := range callers {
		ctx := principal.With(context.Background(), c.pr)
		sub := visSubject(c.pr)
		readable := map[uuid.UUID]bool{}
		for _, d := range ids {
			readable[d] = w.enf.Can(ctx, sub, policy.Dashboard(d), policy.DashboardsRead)
		}
		for _, fc := range cases {
			want := map[uuid.UUID]bool{}
			for _, d := range ids {
				if fc.want(w, c.pr.UserID, d, readable[d]) {
					want[d] = true
				}
			}
			for _, sort := range []string{"", "name"} {
				got := visListAll(t, w.svc, ctx, fc.f, sort)
				for d := range want {
					if _, ok := got[d]; !ok {
						t.Errorf("%s, %s, sort %q: missing %q (owner %s, shared %v, readable %v)",
							c.name, fc.name, sort, w.name[d], w.ownerName(d), w.shareTo[d][c.pr.UserID], readable[d])
					}
				}
				for d, item := range got {
					if !want[d] {
						t.Errorf("%s, %s, sort %q: unexpected %q (owner %s, shared %v, readable %v)",
							c.name, fc.name, sort, item.Name, w.ownerName(d), w.shareTo[d][c.pr.UserID], readable[d])
						continue
					}
					// The permission shown agrees with the facts.
					var perm string
					switch {
					case w.owner[d] == c.pr.UserID:
						perm = "owner"
					case c.pr.System || w.enf.Facts().IsAdmin(c.pr.UserID):
						perm = "admin"
					default:
						perm = w.enf.Facts().ShareLevel(policy.KindDashboard, d, c.pr.UserID).String()
					}
					if item.Permission != perm {
						t.Errorf("%s: %q shown with permission %q, want %q", c.name, item.Name, item.Permission, perm)
					}
				}
				checked++
			}
		}
	}
	if checked == 0 {
		t.Fatal("nothing checked")
	}
}

func (w *visWorld) ownerName(d uuid.UUID) string {
	for i, p := range w.people {
		if p.id == w.owner[d] {
			return fmt.Sprintf("user%d(%s)", i, p.kind)
		}
	}
	return "?"
}

// mutate changes the world through the service, as its callers would:
// creates, shares, share changes and removals, deletes. The service keeps
// the facts current; w's own bookkeeping follows the database.
func (w *visWorld) mutate(t *testing.T, r *rand.Rand) {
	t.Helper()
	sys := principal.System(context.Background())
	done := map[string]int{}
	defer func() { t.Logf("changes made through the service: %v", done) }()
	for range 40 {
		p := w.people[r.IntN(len(w.people))]
		ctx := principal.With(context.Background(), visPrincipal(p))
		ids := slices.SortedFunc(maps.Keys(w.owner), func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
		switch r.IntN(5) {
		case 0: // create (allowed or not by the role)
			name := fmt.Sprintf("%s new %d", visWords[r.IntN(len(visWords))], r.IntN(1000))
			d, err := w.svc.Create(ctx, dashboards.Input{Name: &name})
			if err == nil {
				w.owner[d.ID], w.name[d.ID] = p.id, name
				w.shareTo[d.ID] = map[uuid.UUID]bool{}
				done["create"]++
			}
		case 1, 2: // share as the owner (or as an admin)
			if len(ids) == 0 {
				continue
			}
			d := ids[r.IntN(len(ids))]
			to := w.people[r.IntN(len(w.people))].id
			if to == w.owner[d] {
				continue
			}
			actor := ctx
			if r.IntN(2) == 0 {
				actor = principal.With(context.Background(), visPrincipal(w.personOf(w.owner[d])))
			}
			if _, err := w.svc.PutShare(actor, d, to, []string{"view", "edit"}[r.IntN(2)]); err == nil {
				w.shareTo[d][to] = true
				done["share"]++
			}
		case 3: // stop sharing
			if len(ids) == 0 {
				continue
			}
			d := ids[r.IntN(len(ids))]
			for to := range w.shareTo[d] {
				if err := w.svc.DeleteShare(principal.With(context.Background(), visPrincipal(w.personOf(w.owner[d]))), d, to); err != nil {
					t.Fatalf("owner's DeleteShare: %v", err)
				}
				delete(w.shareTo[d], to)
				done["unshare"]++
				break
			}
		case 4: // delete (as the caller, who may not; or as the system)
			if len(ids) == 0 {
				continue
			}
			d := ids[r.IntN(len(ids))]
			actor := ctx
			if r.IntN(3) == 0 {
				actor = sys
			}
			if err := w.svc.Delete(actor, d); err == nil {
				delete(w.owner, d)
				delete(w.name, d)
				delete(w.shareTo, d)
				done["delete"]++
			}
		}
	}
}

func (w *visWorld) personOf(id uuid.UUID) visPerson {
	for _, p := range w.people {
		if p.id == id {
			return p
		}
	}
	panic("unknown visPerson")
}

// sameAsReload checks that the facts the service kept current decide like
// facts loaded afresh from the database.
func (w *visWorld) sameAsReload(t *testing.T) {
	t.Helper()
	ctx := principal.System(context.Background())
	fresh, err := policy.Load(ctx, w.st.Client, w.enf.Facts().DefaultRole())
	if err != nil {
		t.Fatal(err)
	}
	fe, err := policy.NewEnforcer(fresh)
	if err != nil {
		t.Fatal(err)
	}
	acts := []policy.Action{policy.DashboardsRead, policy.DashboardsEdit, policy.DashboardsDelete, policy.DashboardsShare}
	for _, p := range w.people {
		sub := policy.Subject{UserID: p.id}
		for d := range w.owner {
			for _, a := range acts {
				if got, want := w.enf.Can(ctx, sub, policy.Dashboard(d), a), fe.Can(ctx, sub, policy.Dashboard(d), a); got != want {
					t.Errorf("facts kept by the service say %v for %s %s on %q, reloaded facts say %v", got, p.kind, a, w.name[d], want)
				}
			}
		}
	}
}

func TestListMatchesEnforcer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		ss := visSeeds
		if testing.Short() {
			ss = visSeeds[:1]
		}
		for _, seed := range ss {
			t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
				w := newVisWorld(t, tg, seed)
				w.check(t, visFilterCases)
				if t.Failed() {
					return
				}
				w.mutate(t, rand.New(rand.NewPCG(seed, 2)))
				w.sameAsReload(t)
				w.check(t, visFilterCases)
			})
		}
	})
}

// TestListOwnedAndSharedWithMe: both filters at once list the union of the
// two lists, so a shared dashboard the caller's role does not let them read
// must not appear.
func TestListOwnedAndSharedWithMe(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		for _, seed := range visSeeds {
			t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
				w := newVisWorld(t, tg, seed)
				w.check(t, []visFilterCase{visOwnedAndShared})
			})
		}
	})
}
