package main_test

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestOwnDatabaseForbidden: with PostgreSQL metadata, no builtin connector
// reaches DataPulse's own database or data directory — a postgres data
// source pointing at the metadata database (under its own name or another
// spelling of the host) fails its health check and its queries with 403,
// and the sqlite and csv connectors refuse files in the data directory.
func TestOwnDatabaseForbidden(t *testing.T) {
	serverURL := os.Getenv("DATAPULSE_TEST_POSTGRES_URL")
	if serverURL == "" {
		t.Skip("DATAPULSE_TEST_POSTGRES_URL is not set")
	}
	db := newPostgres(t, serverURL)
	adminEmail, adminPW := "root@example.com", newPassword()
	s := startServer(t, db, "DATAPULSE_ADMIN_EMAIL="+adminEmail, "DATAPULSE_ADMIN_PASSWORD="+adminPW)
	admin := s.login(adminEmail, adminPW).AccessToken

	// A login that may connect to the metadata database and read nothing
	// (PUBLIC's defaults): refused for what the database is, not for what
	// the login may do.
	meta, err := url.Parse(db.url)
	if err != nil {
		t.Fatal(err)
	}
	adm, err := sql.Open("pgx", serverURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adm.Close() }) // after the role's clean-up below
	role, pw := "dp_forbid_"+randHex(5), newPassword()
	if _, err := adm.ExecContext(context.Background(), `CREATE ROLE `+role+` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '`+pw+`'`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Sessions of the role end asynchronously; DROP ROLE fails while one
		// is still there.
		var err error
		for range 50 {
			adm.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, role)
			if _, err = adm.Exec(`DROP ROLE IF EXISTS ` + role); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("drop role %s: %v", role, err)
	})
	port := 5432
	if p := meta.Port(); p != "" {
		port, _ = strconv.Atoi(p)
	}
	metaDB := strings.TrimPrefix(meta.Path, "/")
	for i, h := range []string{meta.Hostname(), "localhost"} {
		var ds struct {
			ID string `json:"id"`
		}
		s.call(http.MethodPost, "/api/v1/data-sources", admin, map[string]any{"name": "own " + strconv.Itoa(i), "type": "postgres",
			"config": map[string]any{"host": h, "port": port, "database": metaDB, "user": role, "password": pw, "sslmode": "disable"}}, http.StatusCreated, &ds)
		var health struct {
			OK      bool   `json:"ok"`
			Message string `json:"message"`
		}
		s.call(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/health", admin, nil, http.StatusOK, &health)
		if health.OK || !strings.Contains(health.Message, "metadata database") {
			t.Errorf("host %s: health %+v", h, health)
		}
		body := s.call(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query", admin, map[string]any{"sql": "SELECT count(*) FROM pg_tables"}, http.StatusForbidden, nil)
		if !strings.Contains(string(body), "metadata database") {
			t.Errorf("host %s: query answer %s", h, body)
		}
	}

	// The data directory (keys live there) is closed to the file connectors.
	inside := filepath.Join(db.dataDir, "planted.db")
	f, err := sql.Open("sqlite", "file:"+inside)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Exec("CREATE TABLE t (a)"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	body := s.call(http.MethodPost, "/api/v1/data-sources", admin, map[string]any{"name": "planted", "type": "sqlite", "config": map[string]any{"path": inside}}, http.StatusBadRequest, nil)
	if !strings.Contains(string(body), "does not allow") {
		t.Errorf("sqlite in the data directory: %s", body)
	}
	if err := os.WriteFile(filepath.Join(db.dataDir, "planted.csv"), []byte("a\n1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	body = s.call(http.MethodPost, "/api/v1/data-sources", admin, map[string]any{"name": "planted csv", "type": "csv", "config": map[string]any{"directory": db.dataDir}}, http.StatusBadRequest, nil)
	if !strings.Contains(string(body), "does not allow") {
		t.Errorf("csv on the data directory: %s", body)
	}
}
