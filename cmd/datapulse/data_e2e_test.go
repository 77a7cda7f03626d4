package main_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// makeSalesDB writes an SQLite file with a sales table of n rows.
func makeSalesDB(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sales.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := []string{
		"CREATE TABLE sales (id INTEGER PRIMARY KEY, region TEXT, amount REAL, note TEXT)",
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	tx, _ := db.Begin()
	for i := 0; i < n; i++ {
		note := "ok"
		if i == 0 {
			note = "=HYPERLINK(\"http://evil.example\")"
		}
		if _, err := tx.Exec("INSERT INTO sales VALUES (?, ?, ?, ?)", i, []string{"EU", "US"}[i%2], float64(i)*1.5, note); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return path
}

type runResult struct {
	Columns []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"columns"`
	Rows      [][]any `json:"rows"`
	RowCount  int     `json:"row_count"`
	Truncated bool    `json:"truncated"`
}

func (s *server) raw(method, path, token, accept string, in any) (int, string) {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
	defer cancel()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequestWithContext(ctx, method, s.base+path, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		s.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, sb.String()
}

// TestDataSourcesAndQueries drives connectors end to end through the real
// binary: builtin connectors run as `datapulse plugin serve <name>`
// subprocesses of the server.
func TestDataSourcesAndQueries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *database) {
		adminEmail, adminPW := "root@example.com", newPassword()
		s := startServer(t, db, "DATAPULSE_ADMIN_EMAIL="+adminEmail, "DATAPULSE_ADMIN_PASSWORD="+adminPW)
		admin := s.login(adminEmail, adminPW).AccessToken

		var conns struct {
			Items []struct {
				Name         string         `json:"name"`
				Status       string         `json:"status"`
				ConfigSchema map[string]any `json:"config_schema"`
			} `json:"items"`
		}
		s.call(http.MethodGet, "/api/v1/connectors", admin, nil, http.StatusOK, &conns)
		have := map[string]bool{}
		for _, c := range conns.Items {
			have[c.Name] = c.Status == "ready" && c.ConfigSchema != nil
		}
		if !have["sqlite"] || !have["csv"] {
			t.Fatalf("builtin connectors not ready: %+v", conns.Items)
		}

		salesPath := makeSalesDB(t, 500)
		var ds struct {
			ID     string         `json:"id"`
			Config map[string]any `json:"config"`
			Status string         `json:"status"`
		}
		s.call(http.MethodPost, "/api/v1/data-sources", admin, map[string]any{"name": "Sales", "type": "sqlite", "config": map[string]any{"path": salesPath}}, http.StatusCreated, &ds)
		s.call(http.MethodPost, "/api/v1/data-sources", admin, map[string]any{"name": "Sales", "type": "sqlite", "config": map[string]any{"path": salesPath}}, http.StatusConflict, nil)
		var health struct {
			OK         bool `json:"ok"`
			DataSource struct {
				Status string `json:"status"`
			} `json:"data_source"`
		}
		s.call(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/health", admin, nil, http.StatusOK, &health)
		if !health.OK || health.DataSource.Status != "connected" {
			t.Fatalf("health: %+v", health)
		}
		var schema struct {
			Tables []struct {
				Name    string           `json:"name"`
				Columns []map[string]any `json:"columns"`
			} `json:"tables"`
		}
		s.call(http.MethodGet, "/api/v1/data-sources/"+ds.ID+"/schema", admin, nil, http.StatusOK, &schema)
		if len(schema.Tables) != 1 || schema.Tables[0].Name != "sales" || len(schema.Tables[0].Columns) != 4 {
			t.Fatalf("schema: %+v", schema)
		}

		t.Run("refuses DataPulse's own database", func(t *testing.T) {
			for _, p := range []string{filepath.Join(db.dataDir, "datapulse.db"), db.dataDir + "/../" + filepath.Base(db.dataDir) + "/datapulse.db"} {
				s.call(http.MethodPost, "/api/v1/data-sources", admin, map[string]any{"name": "own " + randHex(3), "type": "sqlite", "config": map[string]any{"path": p}}, http.StatusBadRequest, nil)
			}
			link := filepath.Join(t.TempDir(), "innocent.db")
			if err := os.Symlink(filepath.Join(db.dataDir, "datapulse.db"), link); err == nil {
				s.call(http.MethodPost, "/api/v1/data-sources", admin, map[string]any{"name": "link", "type": "sqlite", "config": map[string]any{"path": link}}, http.StatusBadRequest, nil)
			}
		})

		t.Run("ad-hoc queries bind parameters", func(t *testing.T) {
			var r runResult
			s.call(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query", admin, map[string]any{
				"sql":        "SELECT region, count(*) AS n FROM sales WHERE id >= {{min}} AND region IN ({{regions}}) GROUP BY region ORDER BY region",
				"parameters": map[string]any{"min": 100, "regions": []any{"EU", "US"}},
			}, http.StatusOK, &r)
			if r.RowCount != 2 || r.Rows[0][0] != "EU" || r.Rows[0][1].(float64) != 200 || r.Columns[1].Type != "integer" {
				t.Fatalf("result: %+v", r)
			}
			s.call(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query", admin, map[string]any{
				"sql": "SELECT count(*) FROM sales WHERE region = {{r}}", "parameters": map[string]any{"r": "EU' OR '1'='1"},
			}, http.StatusOK, &r)
			if r.Rows[0][0].(float64) != 0 {
				t.Fatalf("an injected value matched rows: %+v", r)
			}
			s.call(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query?max_rows=10", admin, map[string]any{"sql": "SELECT * FROM sales"}, http.StatusOK, &r)
			if r.RowCount != 10 || !r.Truncated {
				t.Fatalf("row cap: %d rows, truncated %v", r.RowCount, r.Truncated)
			}
		})

		t.Run("read-only is enforced by the database", func(t *testing.T) {
			for _, q := range []string{
				"DELETE FROM sales",
				"WITH x AS (SELECT 1) DELETE FROM sales",
				"SELECT 1; DROP TABLE sales",
				"ATTACH DATABASE '" + filepath.Join(t.TempDir(), "x.db") + "' AS x",
				"UPDATE sales SET amount = 0",
			} {
				status, body := s.raw(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query", admin, "", map[string]any{"sql": q})
				if status < 400 {
					t.Errorf("%q was accepted: %d %s", q, status, body)
				}
			}
			var r runResult
			s.call(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query", admin, map[string]any{"sql": "SELECT count(*), sum(amount) FROM sales"}, http.StatusOK, &r)
			if r.Rows[0][0].(float64) != 500 {
				t.Fatalf("data changed: %+v", r.Rows)
			}
		})

		t.Run("streamed formats", func(t *testing.T) {
			status, csvOut := s.raw(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query?format=csv", admin, "", map[string]any{"sql": "SELECT id, note FROM sales ORDER BY id LIMIT 2"})
			if status != 200 || !strings.HasPrefix(csvOut, "id,note\n0,\"'=HYPERLINK(") {
				t.Fatalf("csv %d: %q", status, csvOut)
			}
			status, nd := s.raw(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query", admin, "application/x-ndjson", map[string]any{"sql": "SELECT id FROM sales ORDER BY id"})
			lines := strings.Split(strings.TrimSpace(nd), "\n")
			if status != 200 || len(lines) != 501 || lines[0] != `{"id":0}` || !strings.Contains(lines[500], `"row_count":500`) {
				t.Fatalf("ndjson %d: %d lines, first %q last %q", status, len(lines), lines[0], lines[len(lines)-1])
			}
		})

		t.Run("saved queries", func(t *testing.T) {
			var q struct {
				ID string `json:"id"`
			}
			s.call(http.MethodPost, "/api/v1/queries", admin, map[string]any{
				"name": "EU revenue", "sql": "SELECT sum(amount) AS total FROM sales WHERE region = {{region}} AND id < {{max_id}}",
				"data_source_id": ds.ID,
				"parameters": []map[string]any{
					{"name": "region", "type": "enum", "options": []string{"EU", "US"}, "default": "EU"},
					{"name": "max_id", "type": "number", "required": true},
				},
			}, http.StatusCreated, &q)
			var r runResult
			s.call(http.MethodPost, "/api/v1/queries/"+q.ID+"/run", admin, map[string]any{"parameters": map[string]any{"max_id": 4}}, http.StatusOK, &r)
			if r.Rows[0][0].(float64) != 3 { // ids 0 and 2: 0 + 3
				t.Fatalf("saved query: %+v", r)
			}
			s.call(http.MethodPost, "/api/v1/queries/"+q.ID+"/run", admin, map[string]any{"parameters": map[string]any{"max_id": "four"}}, http.StatusBadRequest, nil)
			s.call(http.MethodPost, "/api/v1/queries/"+q.ID+"/run", admin, map[string]any{"parameters": map[string]any{"max_id": 4, "region": "APAC"}}, http.StatusBadRequest, nil)
			s.call(http.MethodPost, "/api/v1/queries/"+q.ID+"/run", admin, map[string]any{}, http.StatusBadRequest, nil)
			s.call(http.MethodPost, "/api/v1/queries", admin, map[string]any{"name": "undeclared", "sql": "SELECT {{x}}"}, http.StatusBadRequest, nil)

			// Another editor cannot see or run it.
			pw := newPassword()
			s.call(http.MethodPost, "/api/v1/users", admin, map[string]any{"email": "ed@example.com", "password": pw}, http.StatusCreated, nil)
			ed := s.login("ed@example.com", pw).AccessToken
			s.call(http.MethodGet, "/api/v1/queries/"+q.ID, ed, nil, http.StatusNotFound, nil)
			s.call(http.MethodPost, "/api/v1/queries/"+q.ID+"/run", ed, map[string]any{}, http.StatusNotFound, nil)
			// Editors may run ad-hoc queries (queries:run) but not manage sources.
			s.call(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query", ed, map[string]any{"sql": "SELECT 1"}, http.StatusOK, nil)
			s.call(http.MethodPatch, "/api/v1/data-sources/"+ds.ID, ed, map[string]any{"name": "mine"}, http.StatusForbidden, nil)
		})

		t.Run("csv connector", func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "orders.csv"), []byte("id,customer,total\n1,ada,10.5\n2,bob,20\n3,ada,1\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			var cds struct {
				ID string `json:"id"`
			}
			s.call(http.MethodPost, "/api/v1/data-sources", admin, map[string]any{"name": "Orders", "type": "csv", "config": map[string]any{"directory": dir}}, http.StatusCreated, &cds)
			var r runResult
			s.call(http.MethodPost, "/api/v1/data-sources/"+cds.ID+"/query", admin, map[string]any{
				"sql": "SELECT customer, sum(total) AS t FROM orders WHERE customer = {{c}} GROUP BY customer", "parameters": map[string]any{"c": "ada"},
			}, http.StatusOK, &r)
			if r.RowCount != 1 || r.Rows[0][1].(float64) != 11.5 {
				t.Fatalf("csv query: %+v", r)
			}
		})

		t.Run("delete keeps saved queries without a source", func(t *testing.T) {
			s.call(http.MethodDelete, "/api/v1/data-sources/"+ds.ID, admin, nil, http.StatusNoContent, nil)
			var list struct {
				Items []struct {
					DataSourceID *string `json:"data_source_id"`
				} `json:"items"`
			}
			s.call(http.MethodGet, "/api/v1/queries", admin, nil, http.StatusOK, &list)
			if len(list.Items) != 1 || list.Items[0].DataSourceID != nil {
				t.Fatalf("queries after delete: %+v", list.Items)
			}
		})
	})
}

// TestSecretsAtRest: a data source's password is sealed in the database,
// never returned, kept across edits that do not mention it, and absent from
// a dump of the database.
func TestSecretsAtRest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *database) {
		adminEmail, adminPW := "root@example.com", newPassword()
		s := startServer(t, db, "DATAPULSE_ADMIN_EMAIL="+adminEmail, "DATAPULSE_ADMIN_PASSWORD="+adminPW)
		admin := s.login(adminEmail, adminPW).AccessToken
		secret := "pw-" + randHex(16)
		cfg := map[string]any{"host": "127.0.0.1", "port": 5432, "database": "test", "user": "reporting", "password": secret, "sslmode": "disable"}
		var ds struct {
			ID     string         `json:"id"`
			Config map[string]any `json:"config"`
		}
		body := s.call(http.MethodPost, "/api/v1/data-sources", admin, map[string]any{"name": "Warehouse", "type": "postgres", "config": cfg}, http.StatusCreated, &ds)
		if strings.Contains(string(body), secret) || ds.Config["password_set"] != true || ds.Config["password"] != nil {
			t.Fatalf("create answer reveals or loses the password: %s", body)
		}
		for _, path := range []string{"/api/v1/data-sources/" + ds.ID, "/api/v1/data-sources"} {
			if b := s.call(http.MethodGet, path, admin, nil, http.StatusOK, nil); strings.Contains(string(b), secret) {
				t.Fatalf("GET %s reveals the password", path)
			}
		}
		// An edit that does not mention the password keeps it.
		s.call(http.MethodPatch, "/api/v1/data-sources/"+ds.ID, admin, map[string]any{"config": map[string]any{"database": "postgres"}}, http.StatusOK, &ds)
		if ds.Config["password_set"] != true || ds.Config["database"] != "postgres" {
			t.Fatalf("edit lost the password or the change: %+v", ds.Config)
		}

		// The stored form: never the plaintext, in any file or column.
		var dump []byte
		if db.url == "" {
			for _, f := range []string{"datapulse.db", "datapulse.db-wal"} {
				b, err := os.ReadFile(filepath.Join(db.dataDir, f))
				if err == nil {
					dump = append(dump, b...)
				}
			}
		} else {
			pg, err := sql.Open("pgx", db.url)
			if err != nil {
				t.Fatal(err)
			}
			defer pg.Close()
			var c, sec string
			if err := pg.QueryRow("SELECT config::text, secrets::text FROM data_sources").Scan(&c, &sec); err != nil {
				t.Fatal(err)
			}
			dump = []byte(c + sec)
			if !strings.Contains(sec, `"password"`) {
				t.Fatalf("no sealed password stored: %s", sec)
			}
		}
		if len(dump) == 0 || strings.Contains(string(dump), secret) {
			t.Fatalf("the password is in the database in plain text (or nothing was read)")
		}
		if strings.Contains(s.stderr.String(), secret) {
			t.Fatalf("the password is in the server log")
		}
		// Clearing it.
		s.call(http.MethodPatch, "/api/v1/data-sources/"+ds.ID, admin, map[string]any{"config": map[string]any{"password": ""}}, http.StatusOK, &ds)
		if ds.Config["password_set"] != false {
			t.Fatalf("password not cleared: %+v", ds.Config)
		}
	})
}

// connectorPID finds the server's child process serving connector name.
func connectorPID(t *testing.T, serverPID int, name string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), "plugin\x00serve\x00"+name) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// ppid is the 4th field, after the parenthesised command name.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(serverPID) {
			return pid
		}
	}
	return 0
}

// TestConnectorCrashMidQuery: killing a connector while it runs a query fails
// that request with a clear 502 envelope; the server stays up and the next
// query runs on a restarted connector. A query past its timeout is a 504.
func TestConnectorCrashMidQuery(t *testing.T) {
	db := newSQLite(t)
	adminEmail, adminPW := "root@example.com", newPassword()
	s := startServer(t, db, "DATAPULSE_ADMIN_EMAIL="+adminEmail, "DATAPULSE_ADMIN_PASSWORD="+adminPW)
	admin := s.login(adminEmail, adminPW).AccessToken
	var ds struct {
		ID string `json:"id"`
	}
	s.call(http.MethodPost, "/api/v1/data-sources", admin, map[string]any{"name": "S", "type": "sqlite", "config": map[string]any{"path": makeSalesDB(t, 10)}}, http.StatusCreated, &ds)
	// Warm the connector up, then find its process.
	s.call(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query", admin, map[string]any{"sql": "SELECT 1"}, http.StatusOK, nil)
	pid := connectorPID(t, s.cmd.Process.Pid, "sqlite")
	if pid == 0 {
		t.Fatal("no sqlite connector process under the server")
	}
	slow := "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000000) SELECT count(*) FROM c"
	type answer struct {
		status int
		body   string
	}
	done := make(chan answer, 1)
	go func() {
		st, b := s.raw(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query", admin, "", map[string]any{"sql": slow})
		done <- answer{st, b}
	}()
	time.Sleep(300 * time.Millisecond) // the query is running (it needs seconds)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-done:
		var eb errorBody
		if a.status != http.StatusBadGateway || json.Unmarshal([]byte(a.body), &eb) != nil || eb.Error.Code == "" || eb.Error.RequestID == "" {
			t.Fatalf("query on a killed connector: %d %s", a.status, a.body)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the request did not end after its connector was killed")
	}
	var r runResult
	s.call(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query", admin, map[string]any{"sql": "SELECT count(*) FROM sales"}, http.StatusOK, &r)
	if r.Rows[0][0].(float64) != 10 {
		t.Fatalf("after restart: %+v", r)
	}
	if p2 := connectorPID(t, s.cmd.Process.Pid, "sqlite"); p2 == 0 || p2 == pid {
		t.Fatalf("connector not restarted (pid %d, before %d)", p2, pid)
	}
	st, body := s.raw(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query?timeout_ms=300", admin, "", map[string]any{"sql": slow})
	if st != http.StatusGatewayTimeout {
		t.Fatalf("a query past its timeout: %d %s", st, body)
	}
	s.call(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query", admin, map[string]any{"sql": "SELECT 1"}, http.StatusOK, nil)
}

// cpuTicks is a process's user+system CPU time in clock ticks.
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}

// TestDisconnectCancelsQuery: a client that hangs up while its (JSON) query
// runs cancels the query at the source: the connector stops working on it.
func TestDisconnectCancelsQuery(t *testing.T) {
	db := newSQLite(t)
	adminEmail, adminPW := "root@example.com", newPassword()
	s := startServer(t, db, "DATAPULSE_ADMIN_EMAIL="+adminEmail, "DATAPULSE_ADMIN_PASSWORD="+adminPW)
	admin := s.login(adminEmail, adminPW).AccessToken
	var ds struct {
		ID string `json:"id"`
	}
	s.call(http.MethodPost, "/api/v1/data-sources", admin, map[string]any{"name": "S", "type": "sqlite", "config": map[string]any{"path": makeSalesDB(t, 10)}}, http.StatusCreated, &ds)
	s.call(http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query", admin, map[string]any{"sql": "SELECT 1"}, http.StatusOK, nil)
	pid := connectorPID(t, s.cmd.Process.Pid, "sqlite")
	if pid == 0 {
		t.Fatal("no sqlite connector process under the server")
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Runs for minutes unless cancelled.
		s.do(ctx, http.MethodPost, "/api/v1/data-sources/"+ds.ID+"/query", admin, map[string]any{
			"sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000000) SELECT count(*) FROM c",
		})
	}()
	time.Sleep(500 * time.Millisecond)
	busy := cpuTicks(t, pid)
	time.Sleep(500 * time.Millisecond)
	if cpuTicks(t, pid)-busy < 10 {
		t.Fatal("the connector is not working on the query: the test proves nothing")
	}
	cancel() // the client hangs up
	time.Sleep(700 * time.Millisecond)
	before := cpuTicks(t, pid)
	time.Sleep(time.Second)
	if used := cpuTicks(t, pid) - before; used > 20 {
		t.Fatalf("the connector still works on a query whose client left (%d ticks in 1 s)", used)
	}
}
