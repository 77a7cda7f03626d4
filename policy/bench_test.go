package policy_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/policy"
)

// Size of the benchmark installation.
const (
	benchUsers       = 5_000
	benchDashboards  = 20_000
	benchShares      = 100_000
	benchCustomRoles = 1_000
	benchRequests    = 1 << 16 // distinct requests, cycled through
)

type benchReq struct {
	sub  policy.Subject
	obj  policy.Object
	act  policy.Action
	kind string
}

type benchWorld struct {
	facts *policy.Facts
	e     *policy.Enforcer
	users []uuid.UUID
	dash  []uuid.UUID
	reqs  []benchReq
}

// newBenchWorld builds a large installation: 5,000 users holding 1–3 of
// 1,000 custom roles (a few actions each), 20,000 dashboards with random
// owners and 100,000 shares; and a random mix of requests: owners on their
// dashboards, users on dashboards shared with them, users on dashboards not
// shared with them, and creates on the collection.
func newBenchWorld(tb testing.TB) *benchWorld {
	tb.Helper()
	r := rand.New(rand.NewPCG(42, 42))
	f := policy.NewFacts(policy.RoleViewer)
	for _, br := range policy.BuiltinRoles {
		f.SetRole(br.Name, strs(br.Permissions))
	}
	// Custom roles: most grant dashboards:read, some edit, a few create.
	dash := []policy.Action{policy.DashboardsRead, policy.DashboardsRead, policy.DashboardsEdit, policy.DashboardsCreate}
	roles := make([]string, benchCustomRoles)
	for i := range roles {
		roles[i] = fmt.Sprintf("role-%04d", i)
		perms := map[string]bool{}
		for range 2 + r.IntN(3) {
			if r.IntN(2) == 0 {
				perms[string(dash[r.IntN(len(dash))])] = true
			} else {
				perms[string(policy.Actions[r.IntN(len(policy.Actions))])] = true
			}
		}
		ps := make([]string, 0, len(perms))
		for p := range perms {
			ps = append(ps, p)
		}
		f.SetRole(roles[i], ps)
	}
	w := &benchWorld{facts: f, users: make([]uuid.UUID, benchUsers), dash: make([]uuid.UUID, benchDashboards)}
	for i := range w.users {
		w.users[i] = newID()
		held := make([]string, 1+r.IntN(3))
		for j := range held {
			held[j] = roles[r.IntN(len(roles))]
		}
		f.SetUser(w.users[i], i < 10, held) // a handful of instance admins
	}
	owner := make([]uuid.UUID, benchDashboards)
	for i := range w.dash {
		w.dash[i] = newID()
		owner[i] = w.users[r.IntN(benchUsers)]
		f.SetOwner(policy.KindDashboard, w.dash[i], owner[i])
	}
	type pair struct{ d, u int }
	shared := make(map[pair]bool, benchShares)
	sharedList := make([]pair, 0, benchShares)
	for len(sharedList) < benchShares {
		p := pair{r.IntN(benchDashboards), r.IntN(benchUsers)}
		if shared[p] || owner[p.d] == w.users[p.u] {
			continue
		}
		shared[p] = true
		sharedList = append(sharedList, p)
		f.SetShare(w.dash[p.d], w.users[p.u], []policy.Level{policy.LevelView, policy.LevelEdit}[r.IntN(2)])
	}
	objActs := []policy.Action{policy.DashboardsRead, policy.DashboardsRead, policy.DashboardsEdit, policy.DashboardsDelete, policy.DashboardsShare}
	w.reqs = make([]benchReq, benchRequests)
	for i := range w.reqs {
		act := objActs[r.IntN(len(objActs))]
		switch k := r.IntN(20); {
		case k < 5: // owner
			d := r.IntN(benchDashboards)
			w.reqs[i] = benchReq{policy.Subject{UserID: owner[d]}, policy.Dashboard(w.dash[d]), act, "owner"}
		case k < 12: // shared with the caller
			p := sharedList[r.IntN(len(sharedList))]
			w.reqs[i] = benchReq{policy.Subject{UserID: w.users[p.u]}, policy.Dashboard(w.dash[p.d]), act, "shared"}
		case k < 17: // not shared with the caller (almost always)
			d, u := r.IntN(benchDashboards), r.IntN(benchUsers)
			w.reqs[i] = benchReq{policy.Subject{UserID: w.users[u]}, policy.Dashboard(w.dash[d]), act, "unshared"}
		default: // create on the collection
			u := r.IntN(benchUsers)
			w.reqs[i] = benchReq{policy.Subject{UserID: w.users[u]}, policy.Dashboards, policy.DashboardsCreate, "create"}
		}
	}
	w.e = newEnforcer(tb, f)
	return w
}

// BenchmarkCan decides a random mix of requests against 100,000 shares and
// 1,000 custom roles; it reports each decision's p50 and p99 latency besides
// the mean (ns/op).
func BenchmarkCan(b *testing.B) {
	w := newBenchWorld(b)
	ctx := context.Background()
	allowed := 0
	for _, q := range w.reqs[:1000] { // warm up
		if w.e.Can(ctx, q.sub, q.obj, q.act) {
			allowed++
		}
	}
	lat := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := &w.reqs[i&(benchRequests-1)]
		t0 := time.Now()
		ok := w.e.Can(ctx, q.sub, q.obj, q.act)
		lat[i] = time.Since(t0)
		if ok {
			allowed++
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
	if allowed == 0 {
		b.Fatal("no request was allowed: the mix exercises nothing")
	}
}

// BenchmarkCanKinds is BenchmarkCan split by kind of request.
func BenchmarkCanKinds(b *testing.B) {
	w := newBenchWorld(b)
	ctx := context.Background()
	for _, kind := range []string{"owner", "shared", "unshared", "create"} {
		var reqs []benchReq
		for _, q := range w.reqs {
			if q.kind == kind {
				reqs = append(reqs, q)
			}
		}
		b.Run(kind, func(b *testing.B) {
			lat := make([]time.Duration, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				q := &reqs[i%len(reqs)]
				t0 := time.Now()
				w.e.Can(ctx, q.sub, q.obj, q.act)
				lat[i] = time.Since(t0)
			}
			b.StopTimer()
			reportPercentiles(b, lat)
		})
	}
}

// BenchmarkCanParallel decides the same mix from GOMAXPROCS goroutines.
func BenchmarkCanParallel(b *testing.B) {
	w := newBenchWorld(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(benchRequests)
		for pb.Next() {
			q := &w.reqs[i&(benchRequests-1)]
			w.e.Can(ctx, q.sub, q.obj, q.act)
			i++
		}
	})
}

// BenchmarkRemoveUser measures the write lock RemoveUser holds (it scans
// every dashboard and share): every decision waits for it.
func BenchmarkRemoveUser(b *testing.B) {
	w := newBenchWorld(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		u := w.users[i%benchUsers]
		w.facts.RemoveUser(u)
		b.StopTimer()
		w.facts.SetUser(u, false, nil) // (their dashboards stay removed)
		b.StartTimer()
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 { return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Nanoseconds()) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.99), "p99-ns")
}
