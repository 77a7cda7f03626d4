package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/datapulse/datapulse/plugins/builtin/postgres"
	"github.com/datapulse/datapulse/plugins/sdk/sdktest"
)

// A login that may write a table can lock it through a read-only
// transaction (LOCK TABLE … IN ACCESS EXCLUSIVE MODE is allowed in one, also
// inside a DO block) and block every other session reading it: the
// connector refuses such logins, as it refuses superusers.
func TestLockThroughReadOnlyRefused(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	s := e.schema
	e.grantWrites(t)
	h := sdktest.Start(t, postgres.New(), e.config(nil), e.secrets())
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := h.Query(qctx, `DO $$ BEGIN LOCK TABLE `+s+`.t IN ACCESS EXCLUSIVE MODE; PERFORM pg_sleep(4); END $$`)
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	// Another session (the source's own application, another user) reads.
	tx, err := e.admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '1s'"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+s+".t").Scan(&n); err != nil {
		t.Errorf("a reader of %s.t is blocked by a lock a query took: %v", s, err)
	}
	tx.Rollback(ctx)
	if err := <-done; sdktest.Code(err) != codes.PermissionDenied {
		t.Errorf("the locking query: %v, want PermissionDenied", err)
	} else if !strings.Contains(err.Error(), "write") {
		t.Errorf("message: %v", err)
	}
	hr, err := h.CheckHealth(ctx)
	if err != nil || hr.OK || !strings.Contains(hr.Message, "write") {
		t.Errorf("health of a login with write privileges: %+v %v", hr, err)
	}
}

// Each write privilege, however it is held, makes the login refused; a
// login with SELECT only is accepted.
func TestWritePrivilegesRefused(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	s, r := e.schema, e.role
	check := func(what string, wantOK bool) {
		t.Helper()
		h := sdktest.Start(t, postgres.New(), e.config(nil), e.secrets())
		hr, err := h.CheckHealth(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if hr.OK != wantOK {
			t.Errorf("%s: healthy %v (%s), want %v", what, hr.OK, hr.Message, wantOK)
		}
		if !wantOK {
			if _, err := h.Query(ctx, "SELECT 1"); sdktest.Code(err) != codes.PermissionDenied {
				t.Errorf("%s: query: %v", what, err)
			}
		}
	}
	check("SELECT only", true)
	var db string
	if err := e.admin.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct{ grant, revoke string }{
		{"GRANT INSERT ON " + s + ".t TO " + r, "REVOKE INSERT ON " + s + ".t FROM " + r},
		{"GRANT UPDATE ON " + s + ".t TO " + r, "REVOKE UPDATE ON " + s + ".t FROM " + r},
		{"GRANT DELETE ON " + s + ".v TO " + r, "REVOKE DELETE ON " + s + ".v FROM " + r},
		{"GRANT TRUNCATE ON " + s + ".big TO " + r, "REVOKE TRUNCATE ON " + s + ".big FROM " + r},
		{"GRANT UPDATE (name) ON " + s + ".t TO " + r, "REVOKE UPDATE (name) ON " + s + ".t FROM " + r},
		{"GRANT pg_write_all_data TO " + r, "REVOKE pg_write_all_data FROM " + r},
		{"GRANT CREATE ON SCHEMA " + s + " TO " + r, "REVOKE CREATE ON SCHEMA " + s + " FROM " + r},
		{"GRANT CREATE ON DATABASE " + quoteIdent(db) + " TO " + r, "REVOKE CREATE ON DATABASE " + quoteIdent(db) + " FROM " + r},
		{"ALTER TABLE " + s + ".big OWNER TO " + r, "ALTER TABLE " + s + ".big OWNER TO CURRENT_USER"},
	} {
		if _, err := e.admin.Exec(ctx, g.grant); err != nil {
			t.Fatalf("%s: %v", g.grant, err)
		}
		check(g.grant, false)
		if _, err := e.admin.Exec(ctx, g.revoke); err != nil {
			t.Fatalf("%s: %v", g.revoke, err)
		}
	}
	check("after the revokes", true)
}

// Connector sessions run with a lock_timeout: a query waiting for a lock
// fails after it instead of queueing (and holding up everything queued
// behind it) until the statement timeout.
func TestLockTimeout(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	c := postgres.NewConnector()
	c.LockTimeout = 700 * time.Millisecond
	h := sdktest.Start(t, c, e.config(nil), e.secrets())
	res, err := h.Query(ctx, "SELECT current_setting('lock_timeout'), current_setting('idle_in_transaction_session_timeout')")
	if err != nil {
		t.Fatal(err)
	}
	if ok, diff := sdktest.SameRows(res.Rows, [][]any{{"700ms", "1min"}}); !ok {
		t.Errorf("session settings: %s", diff)
	}
	// The default applies without any setting.
	res, err = sdktest.Start(t, postgres.New(), e.config(nil), e.secrets()).Query(ctx, "SELECT current_setting('lock_timeout')")
	if err != nil || len(res.Rows) != 1 || res.Rows[0][0] == "0" {
		t.Errorf("default lock_timeout: %v %v", res, err)
	}
	tx, err := e.admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE "+e.schema+".t IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err = h.Query(qctx, "SELECT count(*) FROM "+e.schema+".t")
	if sdktest.Code(err) != codes.Unavailable || time.Since(start) > 5*time.Second {
		t.Fatalf("a query waiting for a lock: %v after %v", err, time.Since(start))
	}
	t.Logf("refused after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

// A prepared statement survives ROLLBACK: one a query leaves on the pooled
// session must not be there for the next query.
func TestPreparedStatementsDoNotLeak(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	one := postgres.NewConnector()
	one.MaxConns = 1
	h := sdktest.Start(t, one, e.config(nil), e.secrets())
	if _, err := h.Query(ctx, "PREPARE dp_leak AS SELECT 42"); err != nil {
		t.Logf("PREPARE: %v", err)
	}
	res, err := h.Query(ctx, "SELECT count(*) FROM pg_prepared_statements")
	if err != nil {
		t.Fatal(err)
	}
	if ok, diff := sdktest.SameRows(res.Rows, [][]any{{0}}); !ok {
		t.Errorf("prepared statements left on the session: %s", diff)
	}
	if _, err := h.Query(ctx, "EXECUTE dp_leak"); err == nil {
		t.Errorf("a statement prepared by an earlier query ran")
	}
}
