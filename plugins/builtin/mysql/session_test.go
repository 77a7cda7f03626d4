package mysql_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/datapulse/datapulse/plugins/builtin/mysql"
	"github.com/datapulse/datapulse/plugins/sdk/sdktest"
)

// configPool1 is the data source with a pool of one connection, so that a
// second query would run on the session of the first if it were reused.
func (e *env) configPool1() string {
	b, _ := json.Marshal(map[string]any{"host": e.host, "port": e.port, "database": e.db, "user": e.user, "tls": "disable", "max_connections": 1})
	return string(b)
}

// What one user's query does to its session never reaches the next user's
// query, and a lock it takes does not outlive it.
func TestSessionStateDoesNotLeak(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	h := sdktest.Start(t, mysql.New(), e.configPool1(), e.secrets())
	d := e.db
	one := func(q string) []any {
		t.Helper()
		res, err := h.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if len(res.Rows) != 1 {
			t.Fatalf("%s: %d rows", q, len(res.Rows))
		}
		return res.Rows[0]
	}
	// What user B expects of a fresh session.
	baseline := one("SELECT @@time_zone, @@sql_mode, @@character_set_results, @@sql_select_limit, DATABASE(), COALESCE(@dp_var, 'unset')")

	// User A changes its session in every way a single statement can.
	for _, q := range []string{
		"SET SESSION sql_select_limit = 1",
		"SET SESSION time_zone = '+05:00'",
		"SET SESSION sql_mode = 'ANSI_QUOTES,PIPES_AS_CONCAT'",
		"SET NAMES latin1",
		"SET @dp_var = 'leaked'",
		"USE information_schema",
	} {
		_, err := h.Query(ctx, q)
		t.Logf("user A: %s: %v", q, err)
	}
	// User B on the same data source.
	res, err := h.Query(ctx, "SELECT id FROM "+d+".t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 3 {
		t.Errorf("user B got %d rows of 3: user A's sql_select_limit reached it", len(res.Rows))
	}
	if ok, diff := sdktest.SameRows([][]any{one("SELECT @@time_zone, @@sql_mode, @@character_set_results, @@sql_select_limit, DATABASE(), COALESCE(@dp_var, 'unset')")}, [][]any{baseline}); !ok {
		t.Errorf("user B's session differs from a fresh one: %s", diff)
	}

	admin, err := e.admin.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "SET SESSION lock_wait_timeout = 3"); err != nil {
		t.Fatal(err)
	}
	// LOCK TABLES … READ: a pooled session holding it would block every
	// writer of the table (the source's own applications) while idle.
	if _, err := h.Query(ctx, "LOCK TABLES "+d+".t READ"); err != nil {
		t.Logf("LOCK TABLES: %v", err)
	}
	start := time.Now()
	if _, err := admin.ExecContext(ctx, "UPDATE "+d+".t SET score = score WHERE id = 1"); err != nil {
		t.Errorf("a writer of %s.t is blocked by a lock left by a query (%v after %v)", d, err, time.Since(start))
	}
	// GET_LOCK: a named lock held by an idle pooled session blocks others.
	if r := one("SELECT GET_LOCK('dp_conn_test_lock', 0)"); r[0] != int64(1) {
		t.Fatalf("GET_LOCK: %v", r)
	}
	if r := one("SELECT COUNT(*) FROM " + d + ".big"); r[0] != int64(5000) {
		t.Errorf("user B: %v", r)
	}
	var got int
	if err := admin.QueryRowContext(ctx, "SELECT GET_LOCK('dp_conn_test_lock', 3)").Scan(&got); err != nil || got != 1 {
		t.Errorf("the named lock taken by a query is still held (%d, %v)", got, err)
	}
	admin.ExecContext(ctx, "DO RELEASE_LOCK('dp_conn_test_lock')")

	// The connector still answers, and the session is still read-only.
	if _, err := h.Query(ctx, "DELETE FROM "+d+".t"); sdktest.Code(err) != codes.PermissionDenied {
		t.Errorf("DELETE: %v", err)
	}
	e.checkUnchanged(t)
}
