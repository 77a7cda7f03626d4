package postgres_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"google.golang.org/grpc/codes"

	"github.com/datapulse/datapulse/plugins/builtin/internal/dbguard"
	"github.com/datapulse/datapulse/plugins/builtin/postgres"
	"github.com/datapulse/datapulse/plugins/host"
	"github.com/datapulse/datapulse/plugins/sdk/sdktest"
)

// ownIdentity is what the host computes for its metadata database, here
// the test database itself.
func ownIdentity(t *testing.T) host.ForbiddenDatabase {
	t.Helper()
	u := os.Getenv("DATAPULSE_TEST_POSTGRES_URL")
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id, err := host.PostgresIdentity(context.Background(), db, u)
	if err != nil {
		t.Fatal(err)
	}
	if id.SystemIdentifier == "" || id.DatabaseOID == 0 || id.Database == "" || len(id.Hosts) == 0 {
		t.Fatalf("identity: %+v", id)
	}
	return id
}

func setForbidden(t *testing.T, dbs ...host.ForbiddenDatabase) {
	t.Helper()
	b, err := json.Marshal(dbs)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(dbguard.Env, string(b))
}

// The connector refuses DataPulse's own metadata database, named directly,
// reached under another name, and identified without the system
// identifier; another database on the same server stays usable.
func TestMetadataDatabaseRefused(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	own := ownIdentity(t)
	refused := func(what, config string) {
		t.Helper()
		h := sdktest.Start(t, postgres.New(), config, e.secrets())
		hr, err := h.CheckHealth(ctx)
		if err != nil || hr.OK || !strings.Contains(hr.Message, "metadata database") {
			t.Errorf("%s: health %+v %v", what, hr, err)
		}
		if _, err := h.Query(ctx, "SELECT 1"); sdktest.Code(err) != codes.PermissionDenied {
			t.Errorf("%s: query %v", what, err)
		}
	}
	accepted := func(what, config string) {
		t.Helper()
		h := sdktest.Start(t, postgres.New(), config, e.secrets())
		if hr, err := h.CheckHealth(ctx); err != nil || !hr.OK {
			t.Errorf("%s: health %+v %v", what, hr, err)
		}
	}
	accepted("no forbidden database", e.config(nil))

	setForbidden(t, own)
	refused("the same host, port and name", e.config(nil))
	refused("another spelling of the host", e.config(map[string]any{"host": "LOCALHOST"}))

	// A name the host could not know (a DNS alias, a proxy): found after
	// connecting, by the system identifier and the database's OID.
	noNames := own
	noNames.Hosts = nil
	setForbidden(t, noNames)
	refused("reached through a name the host does not know", e.config(nil))

	// The host's login could not read pg_control_system(): the database
	// name and the server address and port the connection reached.
	noSysid := noNames
	noSysid.SystemIdentifier = ""
	setForbidden(t, noSysid)
	refused("without the system identifier", e.config(nil))

	// A different cluster with the same database name is not refused.
	other := noNames
	other.SystemIdentifier = "1"
	setForbidden(t, other)
	accepted("another cluster", e.config(nil))

	// Another database on the same server is a legitimate data source.
	setForbidden(t, own)
	name := e.schema + "_other"
	if _, err := e.admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	accepted("another database on the same server", e.config(map[string]any{"database": name}))

	// A list that does not parse guards nothing: everything is refused.
	t.Setenv(dbguard.Env, "{not json")
	h := sdktest.Start(t, postgres.New(), e.config(map[string]any{"database": name}), e.secrets())
	if hr, err := h.CheckHealth(ctx); err != nil || hr.OK {
		t.Errorf("invalid list: %+v %v", hr, err)
	}
}
