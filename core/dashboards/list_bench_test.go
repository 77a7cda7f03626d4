package dashboards_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/dashboards"
	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/policy"
)

// Size of the list benchmark installation.
const (
	listUsers       = 1_000
	listDashboards  = 100_000
	listSharedWithU = 10_000
	listOwnedByU    = 100
	listOtherShares = 40_000
)

// explainEnv, when set, makes BenchmarkListShared log the statements List
// runs and their plans (EXPLAIN QUERY PLAN on SQLite, EXPLAIN ANALYZE on
// PostgreSQL).
const explainEnv = "DATAPULSE_BENCH_EXPLAIN"

var listNames = []string{"Revenue", "Sales pipeline", "Ops", "Churn", "Funnel", "Latency", "Cost", "Signups"}

type listBench struct {
	st    *store.Store
	svc   *dashboards.Service
	enf   *policy.Enforcer
	u     uuid.UUID // the user dashboards are shared with
	admin uuid.UUID
}

// setupList bulk-loads 100,000 dashboards of 1,000 users, 10,000 of them
// shared with U (and 40,000 more shares with others), then loads the facts.
func setupList(b *testing.B, tg storetest.Target) *listBench {
	b.Helper()
	t0 := time.Now()
	st := storetest.Migrated(b, tg)
	db := st.DB()
	r := rand.New(rand.NewPCG(1, 1))
	now := time.Now().UTC()

	users := make([]uuid.UUID, listUsers)
	rows := make([][]any, listUsers)
	for i := range users {
		users[i] = uuid.Must(uuid.NewV7())
		role := "user"
		if i == 1 {
			role = "admin"
		}
		rows[i] = []any{users[i], now, now, fmt.Sprintf("user%d@example.com", i), "x", role}
	}
	tx := begin(b, db)
	bulkInsert(b, tx, st.Dialect, "users", []string{"id", "created_at", "updated_at", "email", "password", "role"}, rows)

	u := users[0]
	ids := make([]uuid.UUID, listDashboards)
	owner := make([]uuid.UUID, listDashboards)
	rows = make([][]any, 0, 1000)
	flush := func(table string, cols []string) {
		if len(rows) > 0 {
			bulkInsert(b, tx, st.Dialect, table, cols, rows)
			rows = rows[:0]
		}
	}
	dcols := []string{"id", "created_at", "updated_at", "owner_id", "name", "description"}
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
		if i%(listDashboards/listOwnedByU) == 0 {
			owner[i] = u
		} else {
			owner[i] = users[1+r.IntN(listUsers-1)]
		}
		created := now.Add(-time.Duration(r.IntN(365*24*3600)) * time.Second)
		updated := created.Add(time.Duration(r.IntN(30*24*3600)) * time.Second)
		rows = append(rows, []any{ids[i], created, updated, owner[i], fmt.Sprintf("%s %d", listNames[r.IntN(len(listNames))], i), nil})
		if len(rows) == cap(rows) {
			flush("dashboards", dcols)
		}
	}
	flush("dashboards", dcols)

	scols := []string{"dashboard_id", "user_id", "permission_level", "shared_at"}
	type pair struct{ d, u int }
	seen := map[pair]bool{}
	add := func(d, uu int) {
		if owner[d] == users[uu] || seen[pair{d, uu}] {
			return
		}
		seen[pair{d, uu}] = true
		rows = append(rows, []any{ids[d], users[uu], []string{"view", "edit"}[r.IntN(2)], now})
		if len(rows) == cap(rows) {
			flush("dashboard_shares", scols)
		}
	}
	for n := 0; n < listSharedWithU; {
		before := len(seen)
		add(r.IntN(listDashboards), 0)
		if len(seen) > before {
			n++
		}
	}
	for n := 0; n < listOtherShares; {
		before := len(seen)
		add(r.IntN(listDashboards), 1+r.IntN(listUsers-1))
		if len(seen) > before {
			n++
		}
	}
	flush("dashboard_shares", scols)
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if st.Dialect == store.Postgres {
		if _, err := db.Exec("ANALYZE"); err != nil {
			b.Fatal(err)
		}
	}
	loaded := time.Since(t0)

	facts, err := policy.Load(principal.System(context.Background()), st.Client, policy.RoleEditor)
	if err != nil {
		b.Fatal(err)
	}
	enf, err := policy.NewEnforcer(facts)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: bulk load %v, policy.Load %v", tg.Name, loaded.Round(time.Millisecond), (time.Since(t0) - loaded).Round(time.Millisecond))
	return &listBench{st: st, svc: dashboards.New(st.Client, enf, nil), enf: enf, u: u, admin: users[1]}
}

func begin(b *testing.B, db *sql.DB) *sql.Tx {
	b.Helper()
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tx.Rollback() }) //nolint:errcheck // no-op after commit
	return tx
}

// bulkInsert writes rows with one multi-row INSERT with bound parameters.
func bulkInsert(b *testing.B, tx *sql.Tx, dialectName, table string, cols []string, rows [][]any) {
	b.Helper()
	var q strings.Builder
	fmt.Fprintf(&q, "INSERT INTO %s (%s) VALUES ", table, strings.Join(cols, ", "))
	args := make([]any, 0, len(rows)*len(cols))
	for i, r := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteByte('(')
		for j, v := range r {
			if j > 0 {
				q.WriteString(", ")
			}
			args = append(args, v)
			if dialectName == store.Postgres {
				fmt.Fprintf(&q, "$%d", len(args))
			} else {
				q.WriteByte('?')
			}
		}
		q.WriteByte(')')
	}
	if _, err := tx.Exec(q.String(), args...); err != nil {
		b.Fatalf("insert into %s: %v", table, err)
	}
}

// BenchmarkListShared lists the first page (30) of a user with 10,000
// dashboards shared with them among 100,000, on each database.
func BenchmarkListShared(b *testing.B) {
	for _, tg := range storetest.Targets() {
		b.Run(tg.Name, func(b *testing.B) {
			lb := setupList(b, tg)
			asU := principal.With(context.Background(), &principal.Principal{UserID: lb.u, Role: identity.RoleUser})
			asAdmin := principal.With(context.Background(), &principal.Principal{UserID: lb.admin, Role: identity.RoleAdmin})
			cases := []struct {
				name  string
				ctx   context.Context
				f     dashboards.Filter
				total int // expected total, -1: not checked
			}{
				{"all", asU, dashboards.Filter{}, listSharedWithU + listOwnedByU},
				{"shared_with_me", asU, dashboards.Filter{SharedWithMe: true}, listSharedWithU},
				{"owned", asU, dashboards.Filter{Owned: true}, listOwnedByU},
				{"q", asU, dashboards.Filter{Q: "revenue"}, -1},
				{"admin_all", asAdmin, dashboards.Filter{}, listDashboards},
			}
			for _, c := range cases {
				pg, err := lb.svc.List(c.ctx, c.f, paging.Params{})
				if err != nil {
					b.Fatal(err)
				}
				if (c.total >= 0 && pg.Total != c.total) || len(pg.Items) != min(paging.DefaultPerPage, pg.Total) || pg.Total == 0 {
					b.Fatalf("%s: total %d, %d items; want total %d", c.name, pg.Total, len(pg.Items), c.total)
				}
				if os.Getenv(explainEnv) != "" {
					explainList(b, lb, c.ctx, c.f)
				}
			}
			for _, c := range cases {
				b.Run(c.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if _, err := lb.svc.List(c.ctx, c.f, paging.Params{}); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/op")
				})
			}
		})
	}
}

// recorder is an ent driver that remembers the queries run through it.
type recorder struct {
	dialect.Driver
	stmts []stmt
}

type stmt struct {
	query string
	args  []any
}

func (r *recorder) Query(ctx context.Context, query string, args, v any) error {
	a, _ := args.([]any)
	r.stmts = append(r.stmts, stmt{query, a})
	return r.Driver.Query(ctx, query, args, v)
}

// explainList runs List through a recording client and logs each statement
// with its plan.
func explainList(b *testing.B, lb *listBench, ctx context.Context, f dashboards.Filter) {
	b.Helper()
	rec := &recorder{Driver: entsql.OpenDB(lb.st.Dialect, lb.st.DB())}
	svc := dashboards.New(ent.NewClient(ent.Driver(rec)), lb.enf, nil)
	if _, err := svc.List(ctx, f, paging.Params{}); err != nil {
		b.Fatal(err)
	}
	prefix := "EXPLAIN QUERY PLAN "
	if lb.st.Dialect == store.Postgres {
		prefix = "EXPLAIN (ANALYZE, BUFFERS) "
	}
	for _, s := range rec.stmts {
		rows, err := lb.st.DB().Query(prefix+s.query, s.args...)
		if err != nil {
			b.Fatalf("explain %s: %v", s.query, err)
		}
		cols, _ := rows.Columns()
		var plan strings.Builder
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				b.Fatal(err)
			}
			fmt.Fprintln(&plan, vals...)
		}
		rows.Close()
		b.Logf("filter %+v\n%s\nargs %v\n%s", f, s.query, s.args, plan.String())
	}
}
