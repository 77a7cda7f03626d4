package host_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/datapulse/datapulse/plugins/host"
)

// Builtins get each forbidden database on their command line, as JSON that
// decodes back to what the host was given.
func TestForbiddenDatabasesPassed(t *testing.T) {
	want := []host.ForbiddenDatabase{
		{Kind: "postgres", Hosts: []string{"db.internal", "10.0.0.5"}, Port: 5433, Database: "datapulse", SystemIdentifier: "7715467015331211402", DatabaseOID: 16384, ServerAddr: "10.0.0.5", ServerPort: 5433},
		{Kind: "postgres", Database: "o'dd \"name\" --x"},
	}
	th := newHost(t, host.Options{Builtins: []string{"fake"}, ForbiddenDatabases: want})
	r := th.mustQuery("fake", host.Query{SQL: "env"})
	var got []host.ForbiddenDatabase
	for _, l := range r.text {
		a, ok := strings.CutPrefix(l, "arg:")
		if !ok {
			continue
		}
		if v, ok := strings.CutPrefix(a, host.ForbiddenDatabaseFlag+"="); ok {
			var d host.ForbiddenDatabase
			if err := json.Unmarshal([]byte(v), &d); err != nil {
				t.Fatalf("%s: %v", a, err)
			}
			got = append(got, d)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("passed %+v, want %+v", got, want)
	}
}

// PostgresIdentity identifies the database it is connected to.
func TestPostgresIdentity(t *testing.T) {
	u := os.Getenv("DATAPULSE_TEST_POSTGRES_URL")
	if u == "" {
		t.Skip("DATAPULSE_TEST_POSTGRES_URL is not set")
	}
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	id, err := host.PostgresIdentity(ctx, db, u)
	if err != nil {
		t.Fatal(err)
	}
	var name, sysid string
	var oid int64
	if err := db.QueryRowContext(ctx, `SELECT current_database(), (SELECT oid::int8 FROM pg_database WHERE datname = current_database()),
		(SELECT system_identifier::text FROM pg_control_system())`).Scan(&name, &oid, &sysid); err != nil {
		t.Fatal(err)
	}
	if id.Kind != "postgres" || id.Database != name || int64(id.DatabaseOID) != oid || id.SystemIdentifier != sysid || id.Port == 0 || len(id.Hosts) == 0 {
		t.Errorf("identity %+v; database %s oid %d system %s", id, name, oid, sysid)
	}
	// A URL that does not parse is reported without its contents.
	if _, err := host.PostgresIdentity(ctx, db, "postgres://u:s3cret-pw@h:notaport/x"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad URL: %v", err)
	}
}
