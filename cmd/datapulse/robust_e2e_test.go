package main_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
)

// A12e: SQLite reads $1, :name and @name as parameters; nothing binds them,
// and the real SQLite connector answered 502 ("missing named argument").
// They are a 400 naming sql before anything is sent.
func TestSQLiteRawPlaceholdersAre400(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *database) {
		adminEmail, adminPW := "root@example.com", newPassword()
		s := startServer(t, db, "DATAPULSE_ADMIN_EMAIL="+adminEmail, "DATAPULSE_ADMIN_PASSWORD="+adminPW)
		admin := s.login(adminEmail, adminPW).AccessToken
		var ds struct {
			ID string `json:"id"`
		}
		s.call(http.MethodPost, "/api/v1/data-sources", admin, map[string]any{"name": "Sales", "type": "sqlite", "config": map[string]any{"path": makeSalesDB(t, 10)}}, http.StatusCreated, &ds)
		for _, sql := range []string{"SELECT $1", "SELECT :a", "SELECT @a", "SELECT id FROM sales WHERE id = $1"} {
			var eb errorBody
			s.call(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query", admin, map[string]any{"sql": sql}, http.StatusBadRequest, &eb)
			if eb.Error.Code != "validation_failed" || !strings.Contains(eb.Error.Message, "{{name}}") {
				t.Errorf("%s: %+v", sql, eb.Error)
			}
		}
		// Not placeholders: text, identifiers with $, JSON paths in strings.
		for _, sql := range []string{"SELECT '$1', ':a', '@a'", "SELECT json_extract('{\"a\":1}', '$.a')"} {
			s.call(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query", admin, map[string]any{"sql": sql}, http.StatusOK, nil)
		}
	})
}

// A13: a PostgreSQL data source that cannot connect answers a clear generic
// message; the driver's text (FATAL …, SQLSTATE, host, user, database) goes
// to the server log only.
func TestPostgresConnectFailuresAreSanitized(t *testing.T) {
	pgURL := os.Getenv("DATAPULSE_TEST_POSTGRES_URL")
	if pgURL == "" {
		t.Skip("DATAPULSE_TEST_POSTGRES_URL is not set (needed for a PostgreSQL data source)")
	}
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	db := newSQLite(t)
	adminEmail, adminPW := "root@example.com", newPassword()
	s := startServer(t, db, "DATAPULSE_ADMIN_EMAIL="+adminEmail, "DATAPULSE_ADMIN_PASSWORD="+adminPW)
	admin := s.login(adminEmail, adminPW).AccessToken
	port := 5432
	if p := u.Port(); p != "" {
		json.Unmarshal([]byte(p), &port) //nolint:errcheck // default stays
	}
	cases := []struct {
		name   string
		cfg    map[string]any
		status int
		secret []string // must not reach the client
	}{
		{"no such role", map[string]any{"host": u.Hostname(), "port": port, "database": "postgres", "user": "dp_nosuch_role_e2e", "password": "pw-e2e-secret", "sslmode": "disable"},
			http.StatusBadGateway, []string{"FATAL", "SQLSTATE", "dp_nosuch_role_e2e", "pw-e2e-secret"}},
		{"no such database", map[string]any{"host": u.Hostname(), "port": port, "database": "dp_nosuch_db_e2e", "user": "postgres", "sslmode": "disable"},
			http.StatusBadGateway, []string{"FATAL", "SQLSTATE", "dp_nosuch_db_e2e"}},
		{"nothing listening", map[string]any{"host": "127.0.0.1", "port": 1, "database": "postgres", "user": "postgres", "sslmode": "disable"},
			http.StatusServiceUnavailable, []string{"dial", "127.0.0.1:1", "connection refused"}},
	}
	for i, c := range cases {
		var ds struct {
			ID string `json:"id"`
		}
		s.call(http.MethodPost, "/api/v1/data-sources", admin, map[string]any{"name": "pg" + string(rune('a'+i)), "type": "postgres", "config": c.cfg}, http.StatusCreated, &ds)
		st, body := s.raw(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query", admin, "", map[string]any{"sql": "SELECT 1"})
		var eb errorBody
		if st != c.status || json.Unmarshal([]byte(body), &eb) != nil || eb.Error.Message == "" || eb.Error.RequestID == "" {
			t.Errorf("%s: %d %s (want %d in the envelope)", c.name, st, body, c.status)
		}
		_, raw := s.raw(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/health", admin, "", nil)
		var h struct {
			OK         bool   `json:"ok"`
			Message    string `json:"message"`
			DataSource struct {
				LastError string `json:"last_error"`
			} `json:"data_source"`
		}
		if json.Unmarshal([]byte(raw), &h) != nil || h.OK || h.Message == "" {
			t.Errorf("%s: health %s", c.name, raw)
		}
		// The config shows user and database; the failure texts must not.
		health := h.Message + " " + h.DataSource.LastError
		for _, leak := range c.secret {
			if strings.Contains(body, leak) || strings.Contains(health, leak) {
				t.Errorf("%s: %q reaches the client: %s / %s", c.name, leak, body, health)
			}
		}
	}
	logs := s.stdout.String() + s.stderr.String()
	if !strings.Contains(logs, "dp_nosuch_db_e2e") || !strings.Contains(logs, "data source connection failed") {
		t.Errorf("the connection failure's detail is not in the server log")
	}
	if strings.Contains(logs, "pw-e2e-secret") {
		t.Errorf("the data source password is in the server log")
	}
}

// A12d: a list inside a list reached the PostgreSQL connector as one array
// argument and pgx's encode error came back as a 502 quoting Go internals
// ([]*string{(*string)(0x…)}). Parameter values are checked before sending:
// a 400 naming the parameter.
func TestPostgresParameterShapesAre400(t *testing.T) {
	if os.Getenv("DATAPULSE_TEST_POSTGRES_URL") == "" {
		t.Skip("DATAPULSE_TEST_POSTGRES_URL is not set (needed for a PostgreSQL data source)")
	}
	db := newSQLite(t)
	adminEmail, adminPW := "root@example.com", newPassword()
	s := startServer(t, db, "DATAPULSE_ADMIN_EMAIL="+adminEmail, "DATAPULSE_ADMIN_PASSWORD="+adminPW)
	admin := s.login(adminEmail, adminPW).AccessToken
	cfg, _, _ := rtPostgres(t, nil)
	var ds struct {
		ID string `json:"id"`
	}
	s.call(http.MethodPost, "/api/v1/data-sources", admin, map[string]any{"name": "pg", "type": "postgres", "config": cfg}, http.StatusCreated, &ds)
	path := "/api/v1/data-sources/" + ds.ID + "/query"
	for _, c := range []struct {
		sql    string
		params map[string]any
	}{
		{"SELECT 1 WHERE 1 = {{x}}", map[string]any{"x": []any{[]any{"a"}}}},
		{"SELECT {{x}}", map[string]any{"x": []any{[]any{"a"}}}},
		{"SELECT {{x}}", map[string]any{"x": []any{1, "a"}}},
		{"SELECT {{x}}", map[string]any{"x": []any{map[string]any{"a": 1}}}},
	} {
		st, body := s.raw(http.MethodPost, path, admin, "", map[string]any{"sql": c.sql, "parameters": c.params})
		if st != http.StatusBadRequest || !strings.Contains(body, `"field":"parameters.x"`) || strings.Contains(body, "0x") {
			t.Errorf("%s %v: %d %s (want 400 naming parameters.x)", c.sql, c.params, st, body)
		}
	}
	var r struct {
		Rows [][]any `json:"rows"`
	}
	s.call(http.MethodPost, path, admin, map[string]any{"sql": "SELECT 1 AS n WHERE 1 IN ({{x}})", "parameters": map[string]any{"x": []any{1, 2}}}, http.StatusOK, &r)
	if len(r.Rows) != 1 {
		t.Errorf("a list of numbers: %+v", r)
	}
}
