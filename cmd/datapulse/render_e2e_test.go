package main_test

// End-to-end tests of data models, the result cache and dashboards whose
// widgets are bound to data, through the real binary's HTTP API with real
// connector subprocesses. The server keeps its own state on SQLite; the data
// lives in an SQLite file and, for the cross-database test, in a PostgreSQL
// schema and a MariaDB/MySQL database seeded with the same rows.
//
// Servers: DATAPULSE_TEST_POSTGRES_URL (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable) and
// DATAPULSE_TEST_MYSQL_DSN (default root@tcp(127.0.0.1:3306)/test), each
// used by its (super)user for setup only: the data sources log in as a
// dedicated read-only user. A server named by its variable must answer; a
// default one is skipped when it does not, except on CI (CI set), where
// every server must answer.
//
// Helpers here are prefixed rt so they cannot clash with other files of the
// package.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

const (
	rtPostgresEnv     = "DATAPULSE_TEST_POSTGRES_URL"
	rtPostgresDefault = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	rtMySQLEnv        = "DATAPULSE_TEST_MYSQL_DSN"
	rtMySQLDefault    = "root@tcp(127.0.0.1:3306)/test"
	rtTimeLayout      = "2006-01-02 15:04:05"
	// rtHostile is a filter value that would drop the table if it were
	// spliced into SQL.
	rtHostile = "x'; DROP TABLE orders; --"
)

// ---------------------------------------------------------------------------
// The seeded rows

type rtOrder struct {
	ID       int
	Region   string
	Customer string
	Amount   float64 // multiples of 0.25: sums are exact in binary
	Created  time.Time
}

// rtOrders are the rows every data source holds, placed relative to now,
// each at least a day away from the "last 7/30 days" boundaries.
func rtOrders(now time.Time) []rtOrder {
	ago := func(days, hours int) time.Time { return now.Add(-time.Duration(days*24+hours) * time.Hour) }
	return []rtOrder{
		{1, "EU", "ada", 10.25, ago(1, 2)},
		{2, "EU", "bob", 20.5, ago(3, 0)},
		{3, "US", "cyd", 5.75, ago(6, 1)},
		{4, "US", "ada", 100, ago(9, 0)},
		{5, "APAC", "dan", 42.5, ago(20, 0)},
		{6, "EU", "eve", 7.25, ago(28, 0)},
		{7, "US", "bob", 12, ago(32, 0)},
		{8, "APAC", "ada", 60.75, ago(45, 0)},
		{9, "EU", "fay", 3.5, ago(70, 0)},
		{10, "US", "gus", 99.25, ago(100, 0)},
		{11, "EU", "bob", 1.5, ago(150, 0)},
		{12, "US", "ada", 30, ago(200, 0)},
	}
}

func rtNow() time.Time { return time.Now().UTC().Truncate(time.Second) }

// rtKeep selects rows.
type rtKeep func(rtOrder) bool

func rtAll(rtOrder) bool { return true }

func rtAnd(fs ...rtKeep) rtKeep {
	return func(o rtOrder) bool {
		for _, f := range fs {
			if !f(o) {
				return false
			}
		}
		return true
	}
}

func rtRegionIn(rs ...string) rtKeep {
	return func(o rtOrder) bool { return slices.Contains(rs, o.Region) }
}

func rtSince(t time.Time) rtKeep { return func(o rtOrder) bool { return !o.Created.Before(t) } }

// rtAgg is what the model's measures give over some rows.
type rtAgg struct {
	n         int
	sum       float64
	customers map[string]bool
}

func rtAggregate(rows []rtOrder, keep rtKeep) rtAgg {
	a := rtAgg{customers: map[string]bool{}}
	for _, o := range rows {
		if keep(o) {
			a.n++
			a.sum += o.Amount
			a.customers[o.Customer] = true
		}
	}
	return a
}

func (a rtAgg) avg() float64 { return a.sum / float64(a.n) }

// rtGroup aggregates rows by key, keys sorted ascending.
func rtGroup(rows []rtOrder, keep rtKeep, key func(rtOrder) string) ([]string, map[string]rtAgg) {
	groups := map[string][]rtOrder{}
	for _, o := range rows {
		if keep(o) {
			groups[key(o)] = append(groups[key(o)], o)
		}
	}
	keys := make([]string, 0, len(groups))
	out := map[string]rtAgg{}
	for k, g := range groups {
		keys = append(keys, k)
		out[k] = rtAggregate(g, rtAll)
	}
	sort.Strings(keys)
	return keys, out
}

func rtMonth(o rtOrder) string {
	return time.Date(o.Created.Year(), o.Created.Month(), 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
}

// ---------------------------------------------------------------------------
// Normalized results: numbers rounded to 2 decimals, timestamps to their
// date (month starts compare across dialects), one "a|b|c" line per row.

var rtDateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}([ T]|$)`)

func rtCell(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case int:
		return rtCell(float64(x))
	case float64:
		return strconv.FormatFloat(math.Round(x*100)/100, 'f', -1, 64)
	case string:
		if rtDateRE.MatchString(x) {
			return x[:10]
		}
		return x
	}
	return fmt.Sprint(v)
}

func rtLine(vals ...any) string {
	cells := make([]string, len(vals))
	for i, v := range vals {
		cells[i] = rtCell(v)
	}
	return strings.Join(cells, "|")
}

type rtResult struct {
	Columns []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"columns"`
	Rows      [][]any `json:"rows"`
	RowCount  *int    `json:"row_count"`
	Truncated bool    `json:"truncated"`
	ElapsedMS *int64  `json:"elapsed_ms"`
}

func (r rtResult) lines() []string {
	out := make([]string, len(r.Rows))
	for i, row := range r.Rows {
		out[i] = rtLine(row...)
	}
	return out
}

func (r rtResult) columnNames() []string {
	out := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		out[i] = c.Name
	}
	return out
}

// check requires the JSON result shape and the expected lines.
func (r rtResult) check(t *testing.T, what string, want []string) {
	t.Helper()
	if r.RowCount == nil || r.ElapsedMS == nil || r.Rows == nil {
		t.Errorf("%s: incomplete result (columns, rows, row_count, truncated, elapsed_ms): %+v", what, r)
		return
	}
	if *r.RowCount != len(r.Rows) || r.Truncated {
		t.Errorf("%s: row_count %d for %d rows, truncated %v", what, *r.RowCount, len(r.Rows), r.Truncated)
	}
	if got := r.lines(); !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

// ---------------------------------------------------------------------------
// HTTP

type rtResp struct {
	status int
	header http.Header
	body   []byte
}

func (r rtResp) cache() string { return r.header.Get("X-DataPulse-Cache") }

// rtSend sends one request. body is nil, a []byte sent as it is (JSON
// content type), or a value sent as JSON; hdr are header name/value pairs.
func rtSend(s *server, method, path, token string, body any, hdr ...string) rtResp {
	s.tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			s.tb.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		s.tb.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		s.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.tb.Fatalf("%s %s: read the answer: %v", method, path, err)
	}
	return rtResp{status: resp.StatusCode, header: resp.Header, body: b}
}

// rtOK sends a request, requires status want and decodes the answer into out.
func rtOK(t testing.TB, s *server, method, path, token string, body any, want int, out any, hdr ...string) rtResp {
	t.Helper()
	r := rtSend(s, method, path, token, body, hdr...)
	if r.status != want {
		t.Fatalf("%s %s: status %d, want %d; body: %s", method, path, r.status, want, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, r.body, err)
		}
	}
	return r
}

type rtFieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

type rtError struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
		Details   struct {
			Fields []rtFieldError `json:"fields"`
		} `json:"details"`
	} `json:"error"`
}

func (e rtError) fields() []string {
	var out []string
	for _, f := range e.Error.Details.Fields {
		out = append(out, f.Field)
	}
	return out
}

// rtEnvelope requires an error answer with status and (when not empty) code
// in the API's envelope {"error": {"code", "message", "request_id", …}}.
func rtEnvelope(t *testing.T, what string, r rtResp, status int, code string) rtError {
	t.Helper()
	var e rtError
	if r.status != status {
		t.Errorf("%s: status %d, want %d; body: %s", what, r.status, status, r.body)
		return e
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" || e.Error.RequestID == "" {
		t.Errorf("%s: not the error envelope (%v): %s", what, err, r.body)
		return e
	}
	if code != "" && e.Error.Code != code {
		t.Errorf("%s: code %q, want %q; body: %s", what, e.Error.Code, code, r.body)
	}
	return e
}

// ---------------------------------------------------------------------------
// Server, users, sources

func rtStart(t *testing.T, db ...*database) (*server, string) {
	t.Helper()
	email, pw := "root@example.com", newPassword()
	meta := newSQLite(t)
	if len(db) > 0 {
		meta = db[0]
	}
	s := startServer(t, meta, "DATAPULSE_ADMIN_EMAIL="+email, "DATAPULSE_ADMIN_PASSWORD="+pw)
	return s, s.login(email, pw).AccessToken
}

type rtUser struct {
	id, email, token string
}

// rtNewUser creates a user (default role: editor), gives them roleIDs, then
// logs them in.
func rtNewUser(t testing.TB, s *server, admin, prefix string, roleIDs ...string) rtUser {
	t.Helper()
	email, pw := prefix+"-"+randHex(4)+"@example.com", newPassword()
	var u user
	rtOK(t, s, http.MethodPost, "/api/v1/users", admin, map[string]any{"email": email, "password": pw}, http.StatusCreated, &u)
	for _, r := range roleIDs {
		rtOK(t, s, http.MethodPost, "/api/v1/users/"+u.ID+"/roles", admin, map[string]any{"role_id": r}, http.StatusCreated, nil)
	}
	return rtUser{id: u.ID, email: email, token: s.login(email, pw).AccessToken}
}

func rtRoleID(t testing.TB, s *server, admin, name string) string {
	t.Helper()
	var page struct {
		Items []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"items"`
	}
	rtOK(t, s, http.MethodGet, "/api/v1/roles?per_page=100", admin, nil, http.StatusOK, &page)
	for _, r := range page.Items {
		if r.Name == name {
			return r.ID
		}
	}
	t.Fatalf("no role %q in %+v", name, page.Items)
	return ""
}

func rtCreateRole(t testing.TB, s *server, admin, name string, perms ...string) string {
	t.Helper()
	var r struct {
		ID string `json:"id"`
	}
	rtOK(t, s, http.MethodPost, "/api/v1/roles", admin, map[string]any{"name": name, "permissions": perms}, http.StatusCreated, &r)
	return r.ID
}

type rtID struct {
	ID string `json:"id"`
}

func rtDataSource(t testing.TB, s *server, admin, name, typ string, cfg map[string]any, ttl *int) string {
	t.Helper()
	body := map[string]any{"name": name, "type": typ, "config": cfg}
	if ttl != nil {
		body["cache_ttl_seconds"] = *ttl
	}
	var ds rtID
	rtOK(t, s, http.MethodPost, "/api/v1/data-sources", admin, body, http.StatusCreated, &ds)
	return ds.ID
}

// rtModelConfig is the orders model over table of data source dsID.
func rtModelConfig(dsID string, table map[string]any) map[string]any {
	return map[string]any{
		"data_source_id": dsID,
		"table":          table,
		"dimensions": []map[string]any{
			{"name": "region", "column": "region", "type": "string"},
			{"name": "customer", "column": "customer", "type": "string"},
			{"name": "created_at", "column": "created_at", "type": "time"},
		},
		"measures": []map[string]any{
			{"name": "orders", "agg": "count"},
			{"name": "revenue", "agg": "sum", "column": "amount"},
			{"name": "avg_amount", "agg": "avg", "column": "amount"},
			{"name": "customers", "agg": "count_distinct", "column": "customer"},
		},
	}
}

func rtModel(t testing.TB, s *server, token, name string, cfg map[string]any) string {
	t.Helper()
	var m rtID
	rtOK(t, s, http.MethodPost, "/api/v1/data-models", token, map[string]any{"name": name, "config": cfg}, http.StatusCreated, &m)
	return m.ID
}

// rtReq is a model query body; dimensions is always sent (the API requires
// both lists).
func rtReq(measures, dimensions []string, extra ...any) map[string]any {
	if measures == nil {
		measures = []string{}
	}
	if dimensions == nil {
		dimensions = []string{}
	}
	r := map[string]any{"measures": measures, "dimensions": dimensions}
	for i := 0; i+1 < len(extra); i += 2 {
		r[extra[i].(string)] = extra[i+1]
	}
	return r
}

func rtFilter(field, op string, value any) map[string]any {
	f := map[string]any{"field": field, "op": op}
	if value != nil {
		f["value"] = value
	}
	return f
}

func rtList(v ...string) []string { return v }

// ---------------------------------------------------------------------------
// The data sources

// rtSQLiteOrders writes an SQLite file with the orders table (and a scratch
// table).
func rtSQLiteOrders(t *testing.T, rows []rtOrder) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "orders-"+randHex(3)+".db")
	rtSQLiteExec(t, path,
		"CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT, customer TEXT, amount REAL, created_at TEXT)",
		"CREATE TABLE scratch (id INTEGER PRIMARY KEY, label TEXT)",
		"INSERT INTO scratch VALUES (1, 'a'), (2, 'b')")
	rtSQLiteInsert(t, path, rows...)
	return path
}

func rtSQLiteExec(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func rtSQLiteInsert(t *testing.T, path string, rows ...rtOrder) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, o := range rows {
		if _, err := db.Exec("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", o.ID, o.Region, o.Customer, o.Amount, o.Created.Format(rtTimeLayout)); err != nil {
			t.Fatal(err)
		}
	}
}

func rtInCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "0" && v != "false"
}

// rtServerURL returns the server of env (or its default) and whether env
// named it.
func rtServerURL(env, def string) (string, bool) {
	if v, ok := os.LookupEnv(env); ok && v != "" {
		return v, true
	}
	return def, false
}

// rtPing: a server named by its variable, or any on CI, must answer; the
// default one may be absent (skip).
func rtPing(t *testing.T, db *sql.DB, what, env string, explicit bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		if explicit || rtInCI() {
			t.Fatalf("%s (%s) does not answer: %v", what, env, err)
		}
		t.Skipf("no %s to test against (%v); set %s", what, err, env)
	}
}

// rtPostgres creates a schema with the orders table and a read-only login
// role on the PostgreSQL server, and returns the connector config (as that
// role) and the model's table.
func rtPostgres(t *testing.T, rows []rtOrder) (cfg, table map[string]any, alter func(t *testing.T, stmt string)) {
	t.Helper()
	raw, explicit := rtServerURL(rtPostgresEnv, rtPostgresDefault)
	admin, err := sql.Open("pgx", raw)
	if err != nil {
		t.Fatal(err)
	}
	rtPing(t, admin, "PostgreSQL", rtPostgresEnv, explicit)
	t.Cleanup(func() { admin.Close() })
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	port := 5432
	if p := u.Port(); p != "" {
		port, _ = strconv.Atoi(p)
	}
	ns := "dp_rte2e_" + randHex(5)
	role, pw := ns, newPassword()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := admin.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE ROLE ` + role + ` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '` + pw + `'`)
	t.Cleanup(func() {
		admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, role)
		admin.Exec(`DROP SCHEMA IF EXISTS ` + ns + ` CASCADE`)
		admin.Exec(`DROP OWNED BY ` + role)
		if _, err := admin.Exec(`DROP ROLE IF EXISTS ` + role); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	exec(`CREATE SCHEMA ` + ns)
	exec(`CREATE TABLE ` + ns + `.orders (id int4 PRIMARY KEY, region text, customer text, amount float8, created_at timestamp)`)
	for _, o := range rows {
		exec(`INSERT INTO `+ns+`.orders VALUES ($1, $2, $3, $4, $5::timestamp)`, o.ID, o.Region, o.Customer, o.Amount, o.Created.Format(rtTimeLayout))
	}
	exec(`GRANT USAGE ON SCHEMA ` + ns + ` TO ` + role)
	exec(`GRANT SELECT ON ALL TABLES IN SCHEMA ` + ns + ` TO ` + role)
	cfg = map[string]any{"host": u.Hostname(), "port": port, "database": strings.TrimPrefix(u.Path, "/"),
		"user": role, "password": pw, "sslmode": "disable"}
	return cfg, map[string]any{"namespace": ns, "name": "orders"}, func(t *testing.T, stmt string) {
		t.Helper()
		if _, err := admin.Exec(strings.ReplaceAll(stmt, "{orders}", ns+".orders")); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// rtMySQL creates a database with the orders table and a user that may only
// SELECT from it, and returns the connector config (as that user) and the
// model's table.
func rtMySQL(t *testing.T, rows []rtOrder) (cfg, table map[string]any, alter func(t *testing.T, stmt string)) {
	t.Helper()
	dsn, explicit := rtServerURL(rtMySQLEnv, rtMySQLDefault)
	dc, err := mysqldrv.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	rtPing(t, admin, "MySQL/MariaDB", rtMySQLEnv, explicit)
	t.Cleanup(func() { admin.Close() })
	host, portS, err := net.SplitHostPort(dc.Addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portS)
	name, pw := "dp_rte2e_"+randHex(5), newPassword()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := admin.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE USER '" + name + "'@'%' IDENTIFIED BY '" + pw + "'")
	t.Cleanup(func() {
		admin.Exec("DROP DATABASE IF EXISTS " + name)
		if _, err := admin.Exec("DROP USER IF EXISTS '" + name + "'@'%'"); err != nil {
			t.Errorf("drop user %s: %v", name, err)
		}
	})
	exec("CREATE DATABASE " + name)
	exec("CREATE TABLE " + name + ".orders (id INT PRIMARY KEY, region VARCHAR(20), customer VARCHAR(100), amount DOUBLE, created_at DATETIME)")
	for _, o := range rows {
		exec("INSERT INTO "+name+".orders VALUES (?, ?, ?, ?, ?)", o.ID, o.Region, o.Customer, o.Amount, o.Created.Format(rtTimeLayout))
	}
	exec("GRANT SELECT ON " + name + ".* TO '" + name + "'@'%'")
	cfg = map[string]any{"host": host, "port": port, "database": name, "user": name, "password": pw, "tls": "disable"}
	return cfg, map[string]any{"name": "orders"}, func(t *testing.T, stmt string) {
		t.Helper()
		if _, err := admin.Exec(strings.ReplaceAll(stmt, "{orders}", name+".orders")); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// ---------------------------------------------------------------------------
// Tests

// rtCase is a model query and the lines it must answer.
type rtCase struct {
	name string
	req  map[string]any
	want []string
}

// rtModelCases are model queries with their answers computed in Go from
// the seeded rows.
func rtModelCases(rows []rtOrder, now time.Time) []rtCase {
	all := rtAggregate(rows, rtAll)
	var cases []rtCase
	cases = append(cases, rtCase{"totals", rtReq(rtList("orders", "revenue", "avg_amount", "customers"), nil),
		[]string{rtLine(all.n, all.sum, all.avg(), len(all.customers))}})

	keys, g := rtGroup(rows, rtAll, func(o rtOrder) string { return o.Region })
	var want []string
	for _, k := range keys {
		want = append(want, rtLine(k, g[k].n, g[k].sum, g[k].avg()))
	}
	cases = append(cases, rtCase{"by region", rtReq(rtList("orders", "revenue", "avg_amount"), rtList("region"), "sort", rtList("region")), want})

	keys, g = rtGroup(rows, rtAll, rtMonth)
	want = nil
	for _, k := range keys {
		want = append(want, rtLine(k, g[k].n, g[k].sum))
	}
	cases = append(cases, rtCase{"month grain", rtReq(rtList("orders", "revenue"), rtList("created_at.month"), "sort", rtList("created_at.month")), want})
	want = nil
	for _, k := range keys {
		want = append(want, rtLine(k, g[k].n))
	}
	cases = append(cases, rtCase{"time_grain month", rtReq(rtList("orders"), rtList("created_at"), "time_grain", "month", "sort", rtList("created_at")), want})

	in := rtAggregate(rows, rtRegionIn("EU", "APAC"))
	cases = append(cases, rtCase{"region in", rtReq(rtList("orders", "revenue", "customers"), nil,
		"filters", []any{rtFilter("region", "in", []string{"EU", "APAC"})}),
		[]string{rtLine(in.n, in.sum, len(in.customers))}})

	last30 := rtSince(now.AddDate(0, 0, -30))
	l := rtAggregate(rows, last30)
	cases = append(cases, rtCase{"last 30 days", rtReq(rtList("orders", "revenue"), nil,
		"filters", []any{rtFilter("created_at", "last", "30 days")}),
		[]string{rtLine(l.n, l.sum)}})
	keys, g = rtGroup(rows, last30, func(o rtOrder) string { return o.Region })
	want = nil
	for _, k := range keys {
		want = append(want, rtLine(k, g[k].n, g[k].sum))
	}
	cases = append(cases, rtCase{"last 30 days by region", rtReq(rtList("orders", "revenue"), rtList("region"),
		"filters", []any{rtFilter("created_at", "last", "30 days")}, "sort", rtList("region")), want})

	keys, g = rtGroup(rows, rtAll, func(o rtOrder) string { return o.Region })
	want = nil
	for _, k := range keys {
		if g[k].n > 3 {
			want = append(want, rtLine(k, g[k].n))
		}
	}
	cases = append(cases, rtCase{"measure filter (having)", rtReq(rtList("orders"), rtList("region"),
		"filters", []any{rtFilter("orders", ">", 3)}, "sort", rtList("region")), want})

	keys, g = rtGroup(rows, rtAll, func(o rtOrder) string { return o.Customer })
	sort.Slice(keys, func(i, j int) bool { return g[keys[i]].sum > g[keys[j]].sum })
	cases = append(cases, rtCase{"top 2 customers", rtReq(rtList("revenue"), rtList("customer"), "sort", rtList("-revenue"), "limit", 2),
		[]string{rtLine(keys[0], g[keys[0]].sum), rtLine(keys[1], g[keys[1]].sum)}})

	day := now.AddDate(0, 0, -50).Format(time.DateOnly)
	from, _ := time.Parse(time.DateOnly, day)
	b := rtAggregate(rows, rtAnd(rtSince(from), func(o rtOrder) bool { return o.Region != "US" }))
	cases = append(cases, rtCase{"date bound and not in", rtReq(rtList("orders", "revenue"), nil,
		"filters", []any{rtFilter("created_at", ">=", day), rtFilter("region", "not in", []string{"US"})}),
		[]string{rtLine(b.n, b.sum)}})

	cases = append(cases, rtCase{"hostile value is bound", rtReq(rtList("orders"), nil,
		"filters", []any{rtFilter("customer", "=", rtHostile)}), []string{rtLine(0)}})

	// The text form of the same filters gives the same numbers.
	cases = append(cases, rtCase{"where (text filters)", rtReq(rtList("orders", "revenue"), nil,
		"where", []string{"created_at >= '" + day + "'", "region not in ('US')"}),
		[]string{rtLine(b.n, b.sum)}})
	return cases
}

// TestModelAcrossDatabases: the same model over the same rows in an SQLite
// file, a PostgreSQL schema and a MariaDB database answers the same numbers
// (count, sum, avg, count_distinct, month grain, in / not in, a relative
// date range, a HAVING filter, sort and limit); explain shows quoted
// identifiers and bound values only; NDJSON and CSV stream the same rows.
func TestModelAcrossDatabases(t *testing.T) {
	now := rtNow()
	rows := rtOrders(now)
	s, admin := rtStart(t)
	cases := rtModelCases(rows, now)

	type backend struct {
		name, connector, dialect string
		quote                    func(string) string
		placeholder              string
		// setup seeds the rows; alter runs a statement ({orders} names the table) as the server's admin.
		setup func(t *testing.T) (cfg, table map[string]any, alter func(t *testing.T, stmt string))
	}
	dq := func(id string) string { return `"` + id + `"` }
	backends := []backend{
		{"sqlite", "sqlite", "sqlite", dq, "?", func(t *testing.T) (map[string]any, map[string]any, func(*testing.T, string)) {
			path := rtSQLiteOrders(t, rows)
			return map[string]any{"path": path}, map[string]any{"name": "orders"}, func(t *testing.T, stmt string) {
				rtSQLiteExec(t, path, strings.ReplaceAll(stmt, "{orders}", "orders"))
			}
		}},
		{"postgres", "postgres", "postgres", dq, "$1", func(t *testing.T) (map[string]any, map[string]any, func(*testing.T, string)) {
			return rtPostgres(t, rows)
		}},
		{"mysql", "mysql", "mysql", func(id string) string { return "`" + id + "`" }, "?", func(t *testing.T) (map[string]any, map[string]any, func(*testing.T, string)) { return rtMySQL(t, rows) }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			cfg, table, alter := b.setup(t)
			dsID := rtDataSource(t, s, admin, "orders on "+b.name, b.connector, cfg, nil)
			var health struct {
				OK      bool   `json:"ok"`
				Message string `json:"message"`
			}
			rtOK(t, s, http.MethodPost, "/api/v1/data-sources/"+dsID+"/health", admin, nil, http.StatusOK, &health)
			if !health.OK {
				t.Fatalf("the %s data source is not healthy: %s", b.name, health.Message)
			}
			mID := rtModel(t, s, admin, "Orders "+b.name, rtModelConfig(dsID, table))
			var check struct {
				OK       bool           `json:"ok"`
				Problems []rtFieldError `json:"problems"`
			}
			rtOK(t, s, http.MethodGet, "/api/v1/data-models/"+mID+"/check", admin, nil, http.StatusOK, &check)
			if !check.OK || len(check.Problems) != 0 {
				t.Errorf("check of a fresh model: %+v", check)
			}
			qpath := "/api/v1/data-models/" + mID + "/query"
			for _, c := range cases {
				var r rtResult
				rtOK(t, s, http.MethodPost, qpath, admin, c.req, http.StatusOK, &r)
				r.check(t, c.name, c.want)
				// Columns are named as requested: dimensions, then measures.
				cols := append(slices.Clone(c.req["dimensions"].([]string)), c.req["measures"].([]string)...)
				if got := r.columnNames(); !slices.Equal(got, cols) {
					t.Errorf("%s: columns %v, want %v", c.name, got, cols)
				}
			}

			t.Run("explain", func(t *testing.T) {
				req := rtReq(rtList("orders", "revenue"), rtList("region"), "filters", []any{
					rtFilter("customer", "=", rtHostile), rtFilter("region", "in", []string{"EU", "it's"}),
				}, "sort", rtList("-revenue"), "limit", 5)
				var ex struct {
					Dialect string `json:"dialect"`
					SQL     string `json:"sql"`
					Params  []any  `json:"params"`
				}
				rtOK(t, s, http.MethodPost, qpath+"?explain=true", admin, req, http.StatusOK, &ex)
				if ex.Dialect != b.dialect {
					t.Errorf("dialect %q, want %q", ex.Dialect, b.dialect)
				}
				for _, want := range []string{b.quote("base") + "." + b.quote("region"), b.quote("base") + "." + b.quote("customer"), b.quote("orders"), b.quote("revenue"), b.placeholder, "LIMIT 5"} {
					if !strings.Contains(ex.SQL, want) {
						t.Errorf("explain SQL lacks %s: %s", want, ex.SQL)
					}
				}
				for _, bad := range []string{"DROP", rtHostile, "it's", "'EU'"} {
					if strings.Contains(ex.SQL, bad) {
						t.Errorf("explain SQL contains the value %q: %s", bad, ex.SQL)
					}
				}
				if !slices.Equal(ex.Params, []any{rtHostile, "EU", "it's"}) {
					t.Errorf("params %#v, want the hostile value then EU and it's", ex.Params)
				}
				// Explain runs nothing, and the hostile run did no harm.
				var r rtResult
				rtOK(t, s, http.MethodPost, qpath, admin, req, http.StatusOK, &r)
				if len(r.Rows) != 0 {
					t.Errorf("the hostile filter matched: %v", r.Rows)
				}
				rtOK(t, s, http.MethodPost, qpath, admin, cases[0].req, http.StatusOK, &r)
				r.check(t, "totals after the hostile query", cases[0].want)
			})

			t.Run("streamed", func(t *testing.T) {
				req := rtReq(rtList("orders"), rtList("region"), "sort", rtList("region"))
				keys, g := rtGroup(rows, rtAll, func(o rtOrder) string { return o.Region })
				r := rtSend(s, http.MethodPost, qpath+"?format=csv", admin, req)
				wantCSV := "region,orders\n"
				for _, k := range keys {
					wantCSV += fmt.Sprintf("%s,%d\n", k, g[k].n)
				}
				if r.status != http.StatusOK || string(r.body) != wantCSV || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
					t.Errorf("csv: %d %q %q, want %q", r.status, r.header.Get("Content-Type"), r.body, wantCSV)
				}
				r = rtSend(s, http.MethodPost, qpath, admin, req, "Accept", "application/x-ndjson")
				lines := strings.Split(strings.TrimSpace(string(r.body)), "\n")
				if r.status != http.StatusOK || len(lines) != len(keys)+1 {
					t.Fatalf("ndjson: %d %q", r.status, r.body)
				}
				for i, k := range keys {
					var row map[string]any
					if err := json.Unmarshal([]byte(lines[i]), &row); err != nil || row["region"] != k || row["orders"] != float64(g[k].n) {
						t.Errorf("ndjson line %d: %s (want region %s, orders %d)", i, lines[i], k, g[k].n)
					}
				}
				if !strings.Contains(lines[len(keys)], `"_meta"`) || !strings.Contains(lines[len(keys)], fmt.Sprintf(`"row_count":%d`, len(keys))) {
					t.Errorf("ndjson meta line: %s", lines[len(keys)])
				}
			})

			// The source changes under the model: /check names the fields
			// that read the renamed column.
			t.Run("check after a column rename", func(t *testing.T) {
				alter(t, "ALTER TABLE {orders} RENAME COLUMN customer TO client")
				var c struct {
					OK       bool           `json:"ok"`
					Problems []rtFieldError `json:"problems"`
				}
				body := rtOK(t, s, http.MethodGet, "/api/v1/data-models/"+mID+"/check", admin, nil, http.StatusOK, &c).body
				var fields []string
				for _, p := range c.Problems {
					fields = append(fields, p.Field)
				}
				slices.Sort(fields)
				if c.OK || !slices.Equal(fields, []string{"dimensions[1].column", "measures[3].column"}) {
					t.Errorf("check: %s (want ok=false naming dimensions[1].column and measures[3].column)", body)
				}
				var r rtResult
				// (The result cached before the rename is still fresh: skip it.)
				rtEnvelope(t, "totals after the rename", rtSend(s, http.MethodPost, qpath, admin, cases[0].req, "Cache-Control", "no-cache"), http.StatusBadRequest, "validation_failed")
				rtOK(t, s, http.MethodPost, qpath, admin, rtReq(rtList("orders", "revenue"), rtList("region"), "sort", rtList("region")), http.StatusOK, &r)
				if len(r.Rows) != 3 {
					t.Errorf("by region after the rename: %v", r.Rows)
				}
			})
		})
	}
}

// TestModelLifecycle: saving checks every column against the source (400
// naming the field); a valid model is created, listed, renamed; when the
// source changes under it, /check names the broken fields; invalid requests
// are 400 in the error envelope, never 500; permissions: queries:run to
// query, models:manage to create, ownership to change.
func TestModelLifecycle(t *testing.T) {
	// The metadata on both backends: models, dashboards and widgets are stored there.
	forEachBackend(t, testModelLifecycle)
}

func testModelLifecycle(t *testing.T, db *database) {
	now := rtNow()
	rows := rtOrders(now)
	s, admin := rtStart(t, db)
	path := rtSQLiteOrders(t, rows)
	dsID := rtDataSource(t, s, admin, "Orders", "sqlite", map[string]any{"path": path}, nil)
	table := map[string]any{"name": "orders"}

	viewerRole := rtRoleID(t, s, admin, "viewer")
	runnerRole := rtCreateRole(t, s, admin, "runner", "queries:run", "dashboards:read")
	owner := rtNewUser(t, s, admin, "owner")  // editor (the default role)
	other := rtNewUser(t, s, admin, "editor") // another editor
	viewer := rtNewUser(t, s, admin, "viewer", viewerRole)
	runner := rtNewUser(t, s, admin, "runner", runnerRole)

	t.Run("save checks the source", func(t *testing.T) {
		mutate := []struct {
			name  string
			edit  func(cfg map[string]any)
			field string
		}{
			{"missing dimension column", func(cfg map[string]any) {
				cfg["dimensions"].([]map[string]any)[0]["column"] = "no_such_column"
			}, "dimensions[0].column"},
			{"missing measure column", func(cfg map[string]any) {
				cfg["measures"].([]map[string]any)[1]["column"] = "price"
			}, "measures[1].column"},
			{"unknown data source", func(cfg map[string]any) { cfg["data_source_id"] = "0193aaaa-0000-7000-8000-000000000000" }, "data_source_id"},
			{"bad aggregation", func(cfg map[string]any) { cfg["measures"].([]map[string]any)[0]["agg"] = "median" }, "measures[0].agg"},
			{"bad dimension type", func(cfg map[string]any) { cfg["dimensions"].([]map[string]any)[2]["type"] = "date" }, "dimensions[2].type"},
			{"duplicate name", func(cfg map[string]any) { cfg["measures"].([]map[string]any)[3]["name"] = "region" }, "measures[3].name"},
		}
		for _, m := range mutate {
			cfg := rtModelConfig(dsID, table)
			m.edit(cfg)
			r := rtSend(s, http.MethodPost, "/api/v1/data-models", owner.token, map[string]any{"name": "Broken", "config": cfg})
			e := rtEnvelope(t, m.name, r, http.StatusBadRequest, "validation_failed")
			if !slices.Contains(e.fields(), m.field) {
				t.Errorf("%s: fields at fault %v do not name %s; body: %s", m.name, e.fields(), m.field, r.body)
			}
		}
		var list struct {
			Total int `json:"total"`
		}
		rtOK(t, s, http.MethodGet, "/api/v1/data-models", admin, nil, http.StatusOK, &list)
		if list.Total != 0 {
			t.Errorf("%d models exist after only refused saves", list.Total)
		}
	})

	var model struct {
		ID     string         `json:"id"`
		UserID string         `json:"user_id"`
		Name   string         `json:"name"`
		Config map[string]any `json:"config"`
	}
	rtOK(t, s, http.MethodPost, "/api/v1/data-models", owner.token, map[string]any{"name": "Orders", "config": rtModelConfig(dsID, table)}, http.StatusCreated, &model)
	if model.UserID != owner.id || model.Name != "Orders" || model.Config["data_source_id"] != dsID {
		t.Fatalf("created model: %+v", model)
	}
	mpath := "/api/v1/data-models/" + model.ID
	qpath := mpath + "/query"
	totals := rtReq(rtList("orders", "revenue"), nil)
	all := rtAggregate(rows, rtAll)

	t.Run("read and change", func(t *testing.T) {
		for _, u := range []rtUser{owner, other, runner} {
			var list struct {
				Items []struct {
					ID string `json:"id"`
				} `json:"items"`
				Total int `json:"total"`
			}
			rtOK(t, s, http.MethodGet, "/api/v1/data-models?q=ord", u.token, nil, http.StatusOK, &list)
			if list.Total != 1 || len(list.Items) != 1 || list.Items[0].ID != model.ID {
				t.Errorf("%s lists %+v", u.email, list)
			}
			rtOK(t, s, http.MethodGet, mpath, u.token, nil, http.StatusOK, nil)
		}
		rtOK(t, s, http.MethodPatch, mpath, owner.token, map[string]any{"name": "Orders (all)"}, http.StatusOK, &model)
		if model.Name != "Orders (all)" {
			t.Errorf("rename: %+v", model)
		}
		// A changed config is checked against the source as on create.
		cfg := rtModelConfig(dsID, table)
		cfg["dimensions"].([]map[string]any)[1]["column"] = "client"
		e := rtEnvelope(t, "patch with a missing column", rtSend(s, http.MethodPatch, mpath, owner.token, map[string]any{"config": cfg}), http.StatusBadRequest, "validation_failed")
		if !slices.Contains(e.fields(), "dimensions[1].column") {
			t.Errorf("patch: fields %v", e.fields())
		}
		rtOK(t, s, http.MethodPatch, mpath, admin, map[string]any{"name": "Orders"}, http.StatusOK, &model)
	})

	t.Run("permissions", func(t *testing.T) {
		rtEnvelope(t, "viewer queries", rtSend(s, http.MethodPost, qpath, viewer.token, totals), http.StatusForbidden, "forbidden")
		rtEnvelope(t, "viewer explains", rtSend(s, http.MethodPost, qpath+"?explain=true", viewer.token, totals), http.StatusForbidden, "forbidden")
		rtEnvelope(t, "viewer streams", rtSend(s, http.MethodPost, qpath+"?format=csv", viewer.token, totals), http.StatusForbidden, "forbidden")
		rtEnvelope(t, "viewer reads", rtSend(s, http.MethodGet, mpath, viewer.token, nil), http.StatusForbidden, "forbidden")
		rtEnvelope(t, "viewer lists", rtSend(s, http.MethodGet, "/api/v1/data-models", viewer.token, nil), http.StatusForbidden, "forbidden")
		rtEnvelope(t, "viewer creates", rtSend(s, http.MethodPost, "/api/v1/data-models", viewer.token, map[string]any{"name": "V", "config": rtModelConfig(dsID, table)}), http.StatusForbidden, "forbidden")

		// queries:run without models:manage: may query, may not create.
		var r rtResult
		rtOK(t, s, http.MethodPost, qpath, runner.token, totals, http.StatusOK, &r)
		r.check(t, "runner totals", []string{rtLine(all.n, all.sum)})
		rtEnvelope(t, "runner creates", rtSend(s, http.MethodPost, "/api/v1/data-models", runner.token, map[string]any{"name": "R", "config": rtModelConfig(dsID, table)}), http.StatusForbidden, "forbidden")
		rtEnvelope(t, "runner renames", rtSend(s, http.MethodPatch, mpath, runner.token, map[string]any{"name": "R"}), http.StatusForbidden, "forbidden")

		// Another editor: may query and read, not change or delete.
		rtOK(t, s, http.MethodPost, qpath, other.token, totals, http.StatusOK, nil)
		rtEnvelope(t, "other editor renames", rtSend(s, http.MethodPatch, mpath, other.token, map[string]any{"name": "Mine"}), http.StatusForbidden, "forbidden")
		rtEnvelope(t, "other editor changes the config", rtSend(s, http.MethodPatch, mpath, other.token, map[string]any{"config": rtModelConfig(dsID, table)}), http.StatusForbidden, "forbidden")
		rtEnvelope(t, "other editor deletes", rtSend(s, http.MethodDelete, mpath, other.token, nil), http.StatusForbidden, "forbidden")
		rtOK(t, s, http.MethodGet, mpath, owner.token, nil, http.StatusOK, &model)
		if model.Name != "Orders" {
			t.Errorf("the model changed: %+v", model)
		}
		// Without a token: 401.
		rtEnvelope(t, "anonymous", rtSend(s, http.MethodPost, qpath, "", totals), http.StatusUnauthorized, "unauthenticated")
	})

	t.Run("invalid requests", func(t *testing.T) {
		cases := []struct {
			name  string
			body  any
			field string // a field the error must name ("" : any)
		}{
			{"unknown measure", rtReq(rtList("profit"), nil), "measures[0]"},
			{"unknown dimension", rtReq(rtList("orders"), rtList("country")), "dimensions[0]"},
			{"bad operator", rtReq(rtList("orders"), nil, "filters", []any{rtFilter("region", "~~", "EU")}), ""},
			{"bad grain", rtReq(rtList("orders"), rtList("created_at.fortnight")), "dimensions[0]"},
			{"bad time_grain", rtReq(rtList("orders"), rtList("created_at"), "time_grain", "fortnight"), "time_grain"},
			{"grain on a string", rtReq(rtList("orders"), rtList("region.month")), "dimensions[0]"},
			{"number for a string", rtReq(rtList("orders"), nil, "filters", []any{rtFilter("region", "=", 5)}), ""},
			{"empty in list", rtReq(rtList("orders"), nil, "filters", []any{rtFilter("region", "in", []string{})}), ""},
			{"bad relative date", rtReq(rtList("orders"), nil, "filters", []any{rtFilter("created_at", "last", "many days")}), ""},
			{"relative date on a string", rtReq(rtList("orders"), nil, "filters", []any{rtFilter("region", "last", "7 days")}), ""},
			{"not a date", rtReq(rtList("orders"), nil, "filters", []any{rtFilter("created_at", ">", "yesterday-ish")}), ""},
			{"filter on an unknown field", rtReq(rtList("orders"), nil, "filters", []any{rtFilter("price", ">", 1)}), "filters[0].field"},
			{"sort on an unrequested field", rtReq(rtList("orders"), nil, "sort", rtList("region")), "sort"},
			{"negative limit", rtReq(rtList("orders"), nil, "limit", -1), ""},
			{"limit too large", rtReq(rtList("orders"), nil, "limit", 100001), ""},
			{"nothing requested", rtReq(nil, nil), ""},
			{"duplicate field", rtReq(rtList("orders", "orders"), nil), "measures[1]"},
			{"measures not a list", map[string]any{"measures": "orders", "dimensions": []string{}}, ""},
			{"no dimensions key", map[string]any{"measures": []string{"orders"}}, ""},
			{"empty object", map[string]any{}, ""},
			{"garbage JSON", []byte(`{"measures": ["orders"], "dimensions": [`), ""},
			{"not JSON at all", []byte(`measures=orders`), ""},
		}
		for _, c := range cases {
			for _, suffix := range []string{"", "?explain=true", "?format=ndjson"} {
				what := c.name + " " + suffix
				r := rtSend(s, http.MethodPost, qpath+suffix, runner.token, c.body)
				e := rtEnvelope(t, what, r, http.StatusBadRequest, "validation_failed")
				if c.field != "" && e.Error.Code != "" && !slices.Contains(e.fields(), c.field) {
					t.Errorf("%s: fields %v do not name %s; body: %s", what, e.fields(), c.field, r.body)
				}
			}
		}
		rtEnvelope(t, "unknown model", rtSend(s, http.MethodPost, "/api/v1/data-models/0193aaaa-0000-7000-8000-000000000000/query", runner.token, totals), http.StatusNotFound, "not_found")
		rtEnvelope(t, "malformed model id", rtSend(s, http.MethodPost, "/api/v1/data-models/nope/query", runner.token, totals), http.StatusNotFound, "not_found")
		rtEnvelope(t, "check of an unknown model", rtSend(s, http.MethodGet, "/api/v1/data-models/0193aaaa-0000-7000-8000-000000000000/check", runner.token, nil), http.StatusNotFound, "not_found")
	})

	type checkResult struct {
		OK       bool           `json:"ok"`
		Problems []rtFieldError `json:"problems"`
	}
	// checkModel answers GET /check, requiring 200 and every problem to have a message.
	checkModel := func(t *testing.T) (checkResult, []string, string) {
		t.Helper()
		var c checkResult
		r := rtOK(t, s, http.MethodGet, mpath+"/check", runner.token, nil, http.StatusOK, &c)
		var fields []string
		for _, p := range c.Problems {
			fields = append(fields, p.Field)
			if p.Message == "" {
				t.Errorf("a problem without a message: %s", r.body)
			}
		}
		slices.Sort(fields)
		if c.Problems == nil {
			t.Errorf("problems is not a list: %s", r.body)
		}
		return c, fields, string(r.body)
	}

	t.Run("a column goes", func(t *testing.T) {
		if c, _, body := checkModel(t); !c.OK || len(c.Problems) != 0 {
			t.Fatalf("check before the change: %s", body)
		}
		rtSQLiteExec(t, path, "ALTER TABLE orders RENAME COLUMN customer TO client")
		defer rtSQLiteExec(t, path, "ALTER TABLE orders RENAME COLUMN client TO customer")
		if c, fields, body := checkModel(t); c.OK || !slices.Equal(fields, []string{"dimensions[1].column", "measures[3].column"}) {
			t.Errorf("check after renaming customer: %s (want ok=false naming dimensions[1].column and measures[3].column)", body)
		}
		// What does not read the column still runs; what does fails at
		// the source with a client error, not a 500.
		var r rtResult
		rtOK(t, s, http.MethodPost, qpath, runner.token, totals, http.StatusOK, &r)
		r.check(t, "totals after the change", []string{rtLine(all.n, all.sum)})
		r2 := rtSend(s, http.MethodPost, qpath, runner.token, rtReq(rtList("customers"), nil))
		if r2.status < 400 || r2.status == http.StatusInternalServerError {
			t.Errorf("a query on the renamed column: %d %s", r2.status, r2.body)
		} else {
			rtEnvelope(t, "query on the renamed column", r2, r2.status, "")
		}
	})

	t.Run("the table goes", func(t *testing.T) {
		if c, _, body := checkModel(t); !c.OK {
			t.Fatalf("check before the change: %s", body)
		}
		rtSQLiteExec(t, path, "ALTER TABLE orders RENAME TO orders_old")
		defer rtSQLiteExec(t, path, "ALTER TABLE orders_old RENAME TO orders")
		if c, fields, body := checkModel(t); c.OK || !slices.Equal(fields, []string{"table"}) {
			t.Errorf("check after the table went: %s (want ok=false naming table)", body)
		}
	})

	t.Run("a missing table is refused on save", func(t *testing.T) {
		cfg := rtModelConfig(dsID, map[string]any{"name": "no_such_table"})
		r := rtSend(s, http.MethodPost, "/api/v1/data-models", owner.token, map[string]any{"name": "Nowhere", "config": cfg})
		e := rtEnvelope(t, "missing table", r, http.StatusBadRequest, "validation_failed")
		if !slices.Contains(e.fields(), "table") {
			t.Errorf("fields at fault %v do not name table; body: %s", e.fields(), r.body)
		}
	})

	if c, _, body := checkModel(t); !c.OK {
		t.Fatalf("check after the source was restored: %s", body)
	}

	t.Run("saved query as base", func(t *testing.T) {
		var q rtID
		rtOK(t, s, http.MethodPost, "/api/v1/queries", owner.token, map[string]any{
			"name": "Big orders", "data_source_id": dsID,
			"sql":        "SELECT region, customer, amount, created_at FROM orders WHERE amount >= {{min}}",
			"parameters": []map[string]any{{"name": "min", "type": "number", "default": 10}},
		}, http.StatusCreated, &q)
		cfg := func() map[string]any {
			return map[string]any{
				"data_source_id": dsID, "saved_query_id": q.ID,
				"dimensions": []map[string]any{
					{"name": "region", "column": "region", "type": "string"},
					{"name": "customer", "column": "customer", "type": "string"},
				},
				"measures": []map[string]any{{"name": "orders", "agg": "count"}, {"name": "revenue", "agg": "sum", "column": "amount"}},
			}
		}
		// Another editor cannot build on a saved query they cannot see.
		r := rtSend(s, http.MethodPost, "/api/v1/data-models", other.token, map[string]any{"name": "Not mine", "config": cfg()})
		if e := rtEnvelope(t, "a model on another user's saved query", r, http.StatusBadRequest, "validation_failed"); !slices.Contains(e.fields(), "saved_query_id") {
			t.Errorf("fields %v do not name saved_query_id; body: %s", e.fields(), r.body)
		}
		// The derived table's columns are checked.
		bad := cfg()
		bad["dimensions"].([]map[string]any)[1]["column"] = "note"
		r = rtSend(s, http.MethodPost, "/api/v1/data-models", owner.token, map[string]any{"name": "Bad", "config": bad})
		if e := rtEnvelope(t, "a missing column of the saved query", r, http.StatusBadRequest, "validation_failed"); !slices.Contains(e.fields(), "dimensions[1].column") {
			t.Errorf("fields %v do not name dimensions[1].column; body: %s", e.fields(), r.body)
		}
		var m rtID
		rtOK(t, s, http.MethodPost, "/api/v1/data-models", owner.token, map[string]any{"name": "Big orders", "config": cfg()}, http.StatusCreated, &m)
		big := func(o rtOrder) bool { return o.Amount >= 10 }
		keys, g := rtGroup(rows, big, func(o rtOrder) string { return o.Region })
		var want []string
		for _, k := range keys {
			want = append(want, rtLine(k, g[k].n, g[k].sum))
		}
		req := rtReq(rtList("orders", "revenue"), rtList("region"), "sort", rtList("region"), "filters", []any{rtFilter("customer", "!=", rtHostile)})
		for _, u := range []rtUser{owner, runner} { // runner cannot open the saved query, but may query the model
			var res rtResult
			rtOK(t, s, http.MethodPost, "/api/v1/data-models/"+m.ID+"/query", u.token, req, http.StatusOK, &res)
			res.check(t, "model on a saved query, as "+u.email, want)
		}
		var c checkResult
		rtOK(t, s, http.MethodGet, "/api/v1/data-models/"+m.ID+"/check", runner.token, nil, http.StatusOK, &c)
		if !c.OK {
			t.Errorf("check of the saved-query model: %+v", c)
		}
		// The saved query goes: check names it, queries are refused.
		rtOK(t, s, http.MethodDelete, "/api/v1/queries/"+q.ID, owner.token, nil, http.StatusNoContent, nil)
		body := rtOK(t, s, http.MethodGet, "/api/v1/data-models/"+m.ID+"/check", runner.token, nil, http.StatusOK, &c).body
		if c.OK || len(c.Problems) != 1 || c.Problems[0].Field != "saved_query_id" {
			t.Errorf("check after the saved query was deleted: %s", body)
		}
		rtEnvelope(t, "query after the saved query was deleted", rtSend(s, http.MethodPost, "/api/v1/data-models/"+m.ID+"/query", runner.token, req), http.StatusBadRequest, "validation_failed")
	})

	t.Run("delete", func(t *testing.T) {
		rtOK(t, s, http.MethodDelete, mpath, owner.token, nil, http.StatusNoContent, nil)
		rtEnvelope(t, "get a deleted model", rtSend(s, http.MethodGet, mpath, owner.token, nil), http.StatusNotFound, "not_found")
		rtEnvelope(t, "query a deleted model", rtSend(s, http.MethodPost, qpath, owner.token, totals), http.StatusNotFound, "not_found")
		// An admin may delete anyone's model.
		id := rtModel(t, s, other.token, "Theirs", rtModelConfig(dsID, table))
		rtOK(t, s, http.MethodDelete, "/api/v1/data-models/"+id, admin, nil, http.StatusNoContent, nil)
	})

	t.Run("the data source goes", func(t *testing.T) {
		ds2 := rtDataSource(t, s, admin, "Orders copy", "sqlite", map[string]any{"path": rtSQLiteOrders(t, rows)}, nil)
		var m rtID
		rtOK(t, s, http.MethodPost, "/api/v1/data-models", owner.token, map[string]any{"name": "On the copy", "config": rtModelConfig(ds2, table)}, http.StatusCreated, &m)
		rtOK(t, s, http.MethodDelete, "/api/v1/data-sources/"+ds2, admin, nil, http.StatusNoContent, nil)
		var c checkResult
		body := rtOK(t, s, http.MethodGet, "/api/v1/data-models/"+m.ID+"/check", owner.token, nil, http.StatusOK, &c).body
		if c.OK || len(c.Problems) != 1 || c.Problems[0].Field != "data_source_id" {
			t.Errorf("check after the data source was deleted: %s (want ok=false naming data_source_id)", body)
		}
		r := rtSend(s, http.MethodPost, "/api/v1/data-models/"+m.ID+"/query", owner.token, totals)
		if r.status < 400 || r.status >= 500 {
			t.Errorf("query on a model whose data source was deleted: %d %s", r.status, r.body)
		} else {
			rtEnvelope(t, "query on a model whose data source was deleted", r, r.status, "")
		}
	})
}

// TestResultCache: JSON runs of saved queries and model queries are cached
// (miss, then hit), Cache-Control: no-cache bypasses and refreshes,
// invalidation drops a source's entries, a TTL of 0 disables caching, and
// entries are shared by users with the same roles only.
func TestResultCache(t *testing.T) {
	now := rtNow()
	rows := rtOrders(now)
	s, admin := rtStart(t)
	path := rtSQLiteOrders(t, rows)
	dsID := rtDataSource(t, s, admin, "Orders", "sqlite", map[string]any{"path": path}, nil)
	zero := 0
	noCachePath := rtSQLiteOrders(t, rows)
	noCacheID := rtDataSource(t, s, admin, "Orders uncached", "sqlite", map[string]any{"path": noCachePath}, &zero)
	nextID := 1000
	insert := func(p, region string) {
		nextID++
		rtSQLiteInsert(t, p, rtOrder{nextID, region, "new", 1, now.Add(-time.Hour)})
	}
	eu := rtAggregate(rows, rtRegionIn("EU")).n

	// count runs a saved query (JSON) and returns the count and the cache status.
	type run struct {
		n     int
		cache string
	}
	runQuery := func(token, qid string, params map[string]any, hdr ...string) run {
		t.Helper()
		var r rtResult
		resp := rtOK(t, s, http.MethodPost, "/api/v1/queries/"+qid+"/run", token, map[string]any{"parameters": params}, http.StatusOK, &r, hdr...)
		if len(r.Rows) != 1 {
			t.Fatalf("run: %s", resp.body)
		}
		return run{int(r.Rows[0][0].(float64)), resp.cache()}
	}
	want := func(what string, got run, n int, cache string) {
		t.Helper()
		if got.n != n || got.cache != cache {
			t.Errorf("%s: count %d with X-DataPulse-Cache %q, want %d with %q", what, got.n, got.cache, n, cache)
		}
	}
	newQuery := func(source string, ttl *int) string {
		body := map[string]any{"name": "by region " + randHex(3), "sql": "SELECT count(*) AS n FROM orders WHERE region = {{region}}", "data_source_id": source,
			"parameters": []map[string]any{{"name": "region", "type": "text", "default": "EU"}}}
		if ttl != nil {
			body["cache_ttl_seconds"] = *ttl
		}
		var q rtID
		rtOK(t, s, http.MethodPost, "/api/v1/queries", admin, body, http.StatusCreated, &q)
		return q.ID
	}

	t.Run("saved query", func(t *testing.T) {
		q := newQuery(dsID, nil)
		want("first run", runQuery(admin, q, nil), eu, "miss")
		want("second run", runQuery(admin, q, nil), eu, "hit")
		want("another parameter value", runQuery(admin, q, map[string]any{"region": "US"}), rtAggregate(rows, rtRegionIn("US")).n, "miss")
		want("the same value given explicitly", runQuery(admin, q, map[string]any{"region": "EU"}), eu, "hit")

		insert(path, "EU")
		want("cached after an insert", runQuery(admin, q, nil), eu, "hit")
		want("no-cache", runQuery(admin, q, nil, "Cache-Control", "no-cache"), eu+1, "bypass")
		want("after no-cache: the fresh result is cached", runQuery(admin, q, nil), eu+1, "hit")

		// Streams are never cached: they see the source as it is.
		insert(path, "EU")
		want("cached after a second insert", runQuery(admin, q, nil), eu+1, "hit")
		r := rtSend(s, http.MethodPost, "/api/v1/queries/"+q+"/run?format=ndjson", admin, map[string]any{})
		if r.status != http.StatusOK || !strings.HasPrefix(string(r.body), fmt.Sprintf(`{"n":%d}`, eu+2)) {
			t.Errorf("ndjson run: %d %s (want n=%d)", r.status, r.body, eu+2)
		}

		var inv struct {
			Invalidated *int `json:"invalidated"`
		}
		rtOK(t, s, http.MethodPost, "/api/v1/data-sources/"+dsID+"/cache/invalidate", admin, nil, http.StatusOK, &inv)
		if inv.Invalidated == nil || *inv.Invalidated < 2 { // EU and US entries at least
			t.Errorf("invalidate answered %+v, want at least 2 entries", inv)
		}
		want("after invalidation", runQuery(admin, q, nil), eu+2, "miss")
		want("after invalidation, again", runQuery(admin, q, nil), eu+2, "hit")
		rtOK(t, s, http.MethodPost, "/api/v1/data-sources/"+noCacheID+"/cache/invalidate", admin, nil, http.StatusOK, &inv)
		if inv.Invalidated == nil || *inv.Invalidated != 0 {
			t.Errorf("invalidating an uncached source answered %+v, want 0", inv)
		}

		// A query's own TTL of 0 overrides its source's.
		q0 := newQuery(dsID, &zero)
		want("query TTL 0, first", runQuery(admin, q0, nil), eu+2, "miss")
		want("query TTL 0, second", runQuery(admin, q0, nil), eu+2, "miss")
	})

	t.Run("source TTL 0", func(t *testing.T) {
		q := newQuery(noCacheID, nil)
		want("first", runQuery(admin, q, nil), eu, "miss")
		want("second", runQuery(admin, q, nil), eu, "miss")
		insert(noCachePath, "EU")
		want("third sees the insert", runQuery(admin, q, nil), eu+1, "miss")
		want("no-cache", runQuery(admin, q, nil, "Cache-Control", "no-cache"), eu+1, "bypass")
		mID := rtModel(t, s, admin, "Uncached", rtModelConfig(noCacheID, map[string]any{"name": "orders"}))
		for i := range 2 {
			r := rtOK(t, s, http.MethodPost, "/api/v1/data-models/"+mID+"/query", admin, rtReq(rtList("orders"), nil), http.StatusOK, nil)
			if r.cache() != "miss" {
				t.Errorf("model query %d on a TTL 0 source: X-DataPulse-Cache %q, want miss", i, r.cache())
			}
		}
		// Giving the source a TTL turns caching on (and drops nothing stale).
		ttl := 300
		rtOK(t, s, http.MethodPatch, "/api/v1/data-sources/"+noCacheID, admin, map[string]any{"cache_ttl_seconds": ttl}, http.StatusOK, nil)
		want("TTL 300, first", runQuery(admin, q, nil), eu+1, "miss")
		want("TTL 300, second", runQuery(admin, q, nil), eu+1, "hit")
		// Changing the source's settings drops its entries.
		rtOK(t, s, http.MethodPatch, "/api/v1/data-sources/"+noCacheID, admin, map[string]any{"cache_ttl_seconds": 301}, http.StatusOK, nil)
		want("after a settings change", runQuery(admin, q, nil), eu+1, "miss")
	})

	t.Run("model query and users", func(t *testing.T) {
		analyst := rtCreateRole(t, s, admin, "analyst", "queries:run")
		ed1 := rtNewUser(t, s, admin, "ed1")
		ed2 := rtNewUser(t, s, admin, "ed2")
		an1 := rtNewUser(t, s, admin, "an1", analyst)
		an2 := rtNewUser(t, s, admin, "an2", analyst)
		mID := rtModel(t, s, admin, "Orders", rtModelConfig(dsID, map[string]any{"name": "orders"}))
		qpath := "/api/v1/data-models/" + mID + "/query"
		req := rtReq(rtList("orders", "revenue"), rtList("region"), "sort", rtList("region"))
		var first rtResult
		steps := []struct {
			who   string
			token string
			hdr   []string
			cache string
		}{
			{"ed1", ed1.token, nil, "miss"},
			{"ed1 again", ed1.token, nil, "hit"},
			{"ed2 (same role)", ed2.token, nil, "hit"},
			{"an1 (another role)", an1.token, nil, "miss"},
			{"an2 (the same other role)", an2.token, nil, "hit"},
			{"admin", admin, nil, "miss"},
			{"admin again", admin, nil, "hit"},
			{"ed2 with no-cache", ed2.token, []string{"Cache-Control", "no-cache"}, "bypass"},
			{"ed1 after ed2's bypass", ed1.token, nil, "hit"},
		}
		for i, st := range steps {
			var r rtResult
			resp := rtOK(t, s, http.MethodPost, qpath, st.token, req, http.StatusOK, &r, st.hdr...)
			if resp.cache() != st.cache {
				t.Errorf("%s: X-DataPulse-Cache %q, want %q", st.who, resp.cache(), st.cache)
			}
			if i == 0 {
				first = r
			} else if !slices.Equal(r.lines(), first.lines()) {
				t.Errorf("%s: %v, want the same rows as the first run %v", st.who, r.lines(), first.lines())
			}
		}
		// The row cap is part of the key.
		var capped rtResult
		resp0 := rtOK(t, s, http.MethodPost, qpath+"?max_rows=1", ed1.token, req, http.StatusOK, &capped)
		if resp0.cache() != "miss" || len(capped.Rows) != 1 || !capped.Truncated {
			t.Errorf("max_rows=1: X-DataPulse-Cache %q, %d rows, truncated %v; want a miss with 1 truncated row", resp0.cache(), len(capped.Rows), capped.Truncated)
		}
		rtOK(t, s, http.MethodPost, qpath, ed1.token, req, http.StatusOK, &capped)
		if len(capped.Rows) != len(first.Rows) || capped.Truncated {
			t.Errorf("after a capped run, the full run answers %d rows (truncated %v), want %d", len(capped.Rows), capped.Truncated, len(first.Rows))
		}
		// A different request is a different entry.
		resp := rtOK(t, s, http.MethodPost, qpath, ed1.token, rtReq(rtList("orders"), rtList("region"), "sort", rtList("region")), http.StatusOK, nil)
		if resp.cache() != "miss" {
			t.Errorf("another request: X-DataPulse-Cache %q, want miss", resp.cache())
		}
		// Explain and streams carry no cache status; only admins (datasources:manage) invalidate.
		if r := rtOK(t, s, http.MethodPost, qpath+"?explain=true", ed1.token, req, http.StatusOK, nil); r.cache() != "" {
			t.Errorf("explain: X-DataPulse-Cache %q", r.cache())
		}
		rtEnvelope(t, "invalidate an unknown source", rtSend(s, http.MethodPost, "/api/v1/data-sources/0193aaaa-0000-7000-8000-000000000000/cache/invalidate", admin, nil), http.StatusNotFound, "not_found")
		rtEnvelope(t, "editor invalidates", rtSend(s, http.MethodPost, "/api/v1/data-sources/"+dsID+"/cache/invalidate", ed1.token, nil), http.StatusForbidden, "forbidden")
	})
}

type rtWidgetData struct {
	WidgetID  string    `json:"widget_id"`
	Type      string    `json:"type"`
	Status    string    `json:"status"`
	Cache     string    `json:"cache"`
	ElapsedMS *int64    `json:"elapsed_ms"`
	Result    *rtResult `json:"result"`
	Error     *struct {
		Status  int    `json:"status"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type rtDashboardData struct {
	DashboardID string         `json:"dashboard_id"`
	Filters     map[string]any `json:"filters"`
	Widgets     []rtWidgetData `json:"widgets"`
}

func (d rtDashboardData) widget(t *testing.T, id string) rtWidgetData {
	t.Helper()
	for _, w := range d.Widgets {
		if w.WidgetID == id {
			return w
		}
	}
	t.Fatalf("no widget %s in the dashboard data %+v", id, d)
	return rtWidgetData{}
}

func rtFiltersQuery(filters map[string]any) string {
	if filters == nil {
		return ""
	}
	b, _ := json.Marshal(filters)
	return "?filters=" + url.QueryEscape(string(b))
}

// TestWidgetData: a dashboard with region and period filters and widgets
// bound to a saved query and to a model; /data runs them all under the
// caller's permissions, filter values change the numbers as they should, a
// widget failing at its source fails alone, a text widget has no data;
// widget validation refuses sources the owner cannot read; a shared viewer
// without queries:run gets per-widget forbidden errors.
func TestWidgetData(t *testing.T) {
	// The metadata on both backends: models, dashboards and widgets are stored there.
	forEachBackend(t, testWidgetData)
}

func testWidgetData(t *testing.T, db *database) {
	now := rtNow()
	rows := rtOrders(now)
	s, admin := rtStart(t, db)
	path := rtSQLiteOrders(t, rows)
	dsID := rtDataSource(t, s, admin, "Orders", "sqlite", map[string]any{"path": path}, nil)
	viewerRole := rtRoleID(t, s, admin, "viewer")
	owner := rtNewUser(t, s, admin, "owner")
	other := rtNewUser(t, s, admin, "other")
	stranger := rtNewUser(t, s, admin, "stranger")
	viewer := rtNewUser(t, s, admin, "viewer", viewerRole)

	// The owner's sources.
	var q, bad rtID
	rtOK(t, s, http.MethodPost, "/api/v1/queries", owner.token, map[string]any{
		"name": "Orders", "data_source_id": dsID,
		"sql":        "SELECT count(*) AS n, sum(amount) AS total FROM orders WHERE ({{region}} = '' OR region = {{region}})",
		"parameters": []map[string]any{{"name": "region", "type": "text", "default": ""}},
	}, http.StatusCreated, &q)
	rtOK(t, s, http.MethodPost, "/api/v1/queries", owner.token, map[string]any{
		"name": "Broken", "data_source_id": dsID, "sql": "SELECT no_such_column FROM orders",
	}, http.StatusCreated, &bad)
	model := rtModel(t, s, owner.token, "Orders", rtModelConfig(dsID, map[string]any{"name": "orders"}))
	scratch := rtModel(t, s, owner.token, "Scratch", map[string]any{
		"data_source_id": dsID, "table": map[string]any{"name": "scratch"},
		"dimensions": []map[string]any{{"name": "label", "column": "label", "type": "string"}},
		"measures":   []map[string]any{{"name": "n", "agg": "count"}},
	})
	// Someone else's saved query.
	var theirs rtID
	rtOK(t, s, http.MethodPost, "/api/v1/queries", other.token, map[string]any{
		"name": "Theirs", "data_source_id": dsID, "sql": "SELECT count(*) AS n FROM orders WHERE region = {{region}}",
		"parameters": []map[string]any{{"name": "region", "type": "text", "default": "EU"}},
	}, http.StatusCreated, &theirs)

	var dash rtID
	rtOK(t, s, http.MethodPost, "/api/v1/dashboards", owner.token, map[string]any{
		"name":    "Sales",
		"filters": []map[string]any{{"name": "region", "type": "text"}, {"name": "period", "type": "date"}},
	}, http.StatusCreated, &dash)
	dpath := "/api/v1/dashboards/" + dash.ID
	y := 0
	addWidget := func(token, typ string, cfg map[string]any) rtResp {
		t.Helper()
		pos := map[string]any{"x": (y % 2) * 12, "y": (y / 2) * 4, "w": 12, "h": 4}
		y++
		return rtSend(s, http.MethodPost, dpath+"/widgets", token, map[string]any{"type": typ, "config": cfg, "position": pos})
	}
	mustWidget := func(typ string, cfg map[string]any) string {
		t.Helper()
		r := addWidget(owner.token, typ, cfg)
		var w rtID
		if r.status != http.StatusCreated || json.Unmarshal(r.body, &w) != nil || w.ID == "" {
			t.Fatalf("create a %s widget: %d %s", typ, r.status, r.body)
		}
		return w.ID
	}
	byRegion := map[string]any{"region": "region", "period": "created_at"}
	wNumber := mustWidget("number", map[string]any{"title": "Orders", "query_id": q.ID, "parameters": map[string]any{}, "filter_map": map[string]any{"region": "region"}, "column": "n"})
	wBar := mustWidget("bar", map[string]any{"title": "Revenue by region", "model_id": model,
		"model_query": rtReq(rtList("revenue"), rtList("region"), "sort", rtList("region")), "filter_map": byRegion, "x": "region", "y": []string{"revenue"}})
	wTable := mustWidget("table", map[string]any{"title": "Totals", "model_id": model,
		"model_query": rtReq(rtList("orders", "revenue"), nil), "filter_map": byRegion})
	wText := mustWidget("text", map[string]any{"content": "Numbers are in EUR", "format": "markdown"})
	wBadSQL := mustWidget("table", map[string]any{"title": "Broken SQL", "query_id": bad.ID})
	wDropped := mustWidget("number", map[string]any{"title": "Scratch", "model_id": scratch, "model_query": rtReq(rtList("n"), nil)})
	rtSQLiteExec(t, path, "DROP TABLE scratch")

	// expect checks every widget of a render against the rows that filters keep.
	expect := func(t *testing.T, d rtDashboardData, numberKeep, modelKeep rtKeep, forbidden bool) {
		t.Helper()
		if d.DashboardID != dash.ID || len(d.Widgets) != 6 {
			t.Fatalf("dashboard data: %+v", d)
		}
		for _, w := range d.Widgets {
			if w.ElapsedMS == nil {
				t.Errorf("widget %s has no elapsed_ms", w.WidgetID)
			}
		}
		if w := d.widget(t, wText); w.Status != "no_data" || w.Result != nil || w.Error != nil || w.Type != "text" {
			t.Errorf("text widget: %+v", w)
		}
		data := []string{wNumber, wBar, wTable, wBadSQL, wDropped}
		if forbidden {
			for _, id := range data {
				w := d.widget(t, id)
				if w.Status != "error" || w.Error == nil || w.Error.Code != "forbidden" || w.Error.Status != http.StatusForbidden || w.Result != nil {
					t.Errorf("widget %s (%s) for a viewer without queries:run: %+v (error %+v), want error forbidden", id, w.Type, w, w.Error)
				}
			}
			return
		}
		for _, id := range []string{wBadSQL, wDropped} {
			w := d.widget(t, id)
			if w.Status != "error" || w.Error == nil || w.Error.Code == "" || w.Error.Message == "" || w.Error.Status < 400 || w.Result != nil {
				t.Errorf("failing widget %s: %+v (error %+v), want status error with its own code", id, w, w.Error)
			} else if w.Error.Code == "internal" || w.Error.Status == http.StatusInternalServerError {
				t.Errorf("failing widget %s: a source failure reported as an internal error: %+v", id, w.Error)
			}
		}
		ok := func(id string) rtResult {
			w := d.widget(t, id)
			if w.Status != "ok" || w.Result == nil || w.Error != nil || (w.Cache != "hit" && w.Cache != "miss" && w.Cache != "bypass") {
				t.Errorf("widget %s (%s): %+v (error %+v), want ok with a result and a cache status", id, w.Type, w, w.Error)
				return rtResult{}
			}
			return *w.Result
		}
		n := rtAggregate(rows, numberKeep)
		ok(wNumber).check(t, "number widget", []string{rtLine(n.n, n.sum)})
		keys, g := rtGroup(rows, modelKeep, func(o rtOrder) string { return o.Region })
		var want []string
		for _, k := range keys {
			want = append(want, rtLine(k, g[k].sum))
		}
		ok(wBar).check(t, "bar widget", want)
		m := rtAggregate(rows, modelKeep)
		ok(wTable).check(t, "table widget", []string{rtLine(m.n, m.sum)})
	}
	render := func(t *testing.T, token string, filters map[string]any, hdr ...string) (rtDashboardData, rtResp) {
		t.Helper()
		var d rtDashboardData
		r := rtOK(t, s, http.MethodGet, dpath+"/data"+rtFiltersQuery(filters), token, nil, http.StatusOK, &d, hdr...)
		return d, r
	}
	last7 := rtSince(now.AddDate(0, 0, -7))

	t.Run("filters", func(t *testing.T) {
		d, _ := render(t, owner.token, nil)
		if len(d.Filters) != 0 {
			t.Errorf("filters applied without any given: %v", d.Filters)
		}
		expect(t, d, rtAll, rtAll, false)

		d, _ = render(t, owner.token, map[string]any{"region": "EU"})
		if d.Filters["region"] != "EU" || len(d.Filters) != 1 {
			t.Errorf("applied filters: %v", d.Filters)
		}
		expect(t, d, rtRegionIn("EU"), rtRegionIn("EU"), false)

		// period maps to the models' time dimension only.
		d, _ = render(t, owner.token, map[string]any{"period": "last 7 days"})
		expect(t, d, rtAll, last7, false)
		// Relative ranges end at the next whole minute, so a repeat is a
		// cache hit (tried twice in case the first pair straddles a minute).
		// (The dashboard header stays "miss": its broken widgets never hit.)
		hit := false
		for range 2 {
			d, _ := render(t, owner.token, map[string]any{"period": "last 7 days"})
			hit = true
			for _, w := range d.Widgets {
				if w.Status == "ok" && w.Cache != "hit" {
					hit = false
				}
			}
			if hit {
				break
			}
		}
		if !hit {
			t.Errorf("a repeated render with a relative date filter never hit the cache")
		}

		d, _ = render(t, owner.token, map[string]any{"region": "US", "period": "last 7 days"})
		expect(t, d, rtRegionIn("US"), rtAnd(rtRegionIn("US"), last7), false)

		// One widget alone, with the same filter values.
		var w rtWidgetData
		r := rtOK(t, s, http.MethodGet, dpath+"/widgets/"+wBar+"/data"+rtFiltersQuery(map[string]any{"region": "EU"}), owner.token, nil, http.StatusOK, &w)
		eu := rtAggregate(rows, rtRegionIn("EU"))
		if w.WidgetID != wBar || w.Status != "ok" || w.Result == nil || r.cache() == "" || r.cache() != w.Cache {
			t.Fatalf("one widget: %s (X-DataPulse-Cache %q)", r.body, r.cache())
		}
		w.Result.check(t, "one widget", []string{rtLine("EU", eu.sum)})
		r = rtOK(t, s, http.MethodGet, dpath+"/widgets/"+wDropped+"/data", owner.token, nil, http.StatusOK, &w)
		if w.Status != "error" || w.Error == nil || w.Error.Code == "" {
			t.Errorf("one failing widget: %s", r.body)
		}
		r = rtOK(t, s, http.MethodGet, dpath+"/widgets/"+wText+"/data", owner.token, nil, http.StatusOK, &w)
		if w.Status != "no_data" {
			t.Errorf("one text widget: %s", r.body)
		}
		rtEnvelope(t, "unknown widget", rtSend(s, http.MethodGet, dpath+"/widgets/0193aaaa-0000-7000-8000-000000000000/data", owner.token, nil), http.StatusNotFound, "not_found")
	})

	t.Run("bad filter values", func(t *testing.T) {
		for _, c := range []struct {
			name, query string
		}{
			{"unknown filter", rtFiltersQuery(map[string]any{"country": "FR"})},
			{"unknown filter next to a known one", rtFiltersQuery(map[string]any{"region": "EU", "country": "FR"})},
			{"number for a text filter", rtFiltersQuery(map[string]any{"region": 5})},
			{"list for a single-valued filter", rtFiltersQuery(map[string]any{"region": []string{"EU", "US"}})},
			{"not a date", rtFiltersQuery(map[string]any{"period": "the other day"})},
			{"not JSON", "?filters=" + url.QueryEscape(`{"region":`)},
			{"not an object", "?filters=" + url.QueryEscape(`["EU"]`)},
		} {
			rtEnvelope(t, c.name, rtSend(s, http.MethodGet, dpath+"/data"+c.query, owner.token, nil), http.StatusBadRequest, "validation_failed")
			rtEnvelope(t, c.name+" (one widget)", rtSend(s, http.MethodGet, dpath+"/widgets/"+wBar+"/data"+c.query, owner.token, nil), http.StatusBadRequest, "validation_failed")
		}
	})

	t.Run("cache", func(t *testing.T) {
		render(t, owner.token, nil)
		d, r := render(t, owner.token, nil)
		for _, id := range []string{wNumber, wBar, wTable} {
			if w := d.widget(t, id); w.Cache != "hit" {
				t.Errorf("widget %s on a second render: cache %q, want hit", id, w.Cache)
			}
		}
		if r.cache() == "hit" || r.cache() == "" {
			t.Errorf("dashboard X-DataPulse-Cache %q with failing widgets, want miss", r.cache())
		}
		d, r = render(t, owner.token, nil, "Cache-Control", "no-cache")
		for _, id := range []string{wNumber, wBar, wTable} {
			if w := d.widget(t, id); w.Cache != "bypass" {
				t.Errorf("widget %s with no-cache: cache %q, want bypass", id, w.Cache)
			}
		}
		if r.cache() != "bypass" {
			t.Errorf("dashboard X-DataPulse-Cache %q with no-cache, want bypass", r.cache())
		}
		expect(t, d, rtAll, rtAll, false)
	})

	t.Run("widget validation", func(t *testing.T) {
		for _, c := range []struct {
			name, typ string
			cfg       map[string]any
			field     string
		}{
			{"another user's saved query", "number", map[string]any{"query_id": theirs.ID}, "config.query_id"},
			{"unknown saved query", "number", map[string]any{"query_id": "0193aaaa-0000-7000-8000-000000000000"}, "config.query_id"},
			{"unknown parameter", "number", map[string]any{"query_id": q.ID, "parameters": map[string]any{"country": "FR"}}, "config.parameters.country"},
			{"filter mapped to an unknown parameter", "number", map[string]any{"query_id": q.ID, "filter_map": map[string]any{"region": "country"}}, "config.filter_map.region"},
			{"undeclared dashboard filter", "number", map[string]any{"query_id": q.ID, "filter_map": map[string]any{"country": "region"}}, "config.filter_map"},
			{"unknown model", "bar", map[string]any{"model_id": "0193aaaa-0000-7000-8000-000000000000", "model_query": rtReq(rtList("orders"), nil)}, "config.model_id"},
			{"unknown measure", "bar", map[string]any{"model_id": model, "model_query": rtReq(rtList("profit"), nil)}, ""},
			{"filter mapped to an unknown dimension", "bar", map[string]any{"model_id": model, "model_query": rtReq(rtList("orders"), nil), "filter_map": map[string]any{"region": "country"}}, "config.filter_map.region"},
			{"model without a query", "bar", map[string]any{"model_id": model}, "config"},
			{"query and model", "bar", map[string]any{"query_id": q.ID, "model_id": model, "model_query": rtReq(rtList("orders"), nil)}, "config"},
			{"unknown config field", "bar", map[string]any{"query_id": q.ID, "sql": "SELECT 1"}, "config"},
		} {
			r := addWidget(owner.token, c.typ, c.cfg)
			e := rtEnvelope(t, c.name, r, http.StatusBadRequest, "validation_failed")
			if c.field != "" && e.Error.Code != "" && !slices.Contains(e.fields(), c.field) {
				t.Errorf("%s: fields %v do not name %s; body: %s", c.name, e.fields(), c.field, r.body)
			}
		}
		// Moving a widget onto someone else's query is refused as well.
		r := rtSend(s, http.MethodPatch, dpath+"/widgets/"+wNumber, owner.token, map[string]any{"config": map[string]any{"query_id": theirs.ID}})
		rtEnvelope(t, "patch onto another user's query", r, http.StatusBadRequest, "validation_failed")
		var d struct {
			Widgets []struct {
				ID string `json:"id"`
			} `json:"widgets"`
		}
		rtOK(t, s, http.MethodGet, dpath, owner.token, nil, http.StatusOK, &d)
		if len(d.Widgets) != 6 {
			t.Errorf("%d widgets after refused saves, want 6", len(d.Widgets))
		}
		// An owner whose role lacks queries:run cannot bind widgets to data.
		designerRole := rtCreateRole(t, s, admin, "designer", "dashboards:create", "dashboards:read", "dashboards:edit")
		designer := rtNewUser(t, s, admin, "designer", designerRole)
		var dd rtID
		rtOK(t, s, http.MethodPost, "/api/v1/dashboards", designer.token, map[string]any{"name": "Designer's"}, http.StatusCreated, &dd)
		pos := map[string]any{"x": 0, "y": 0, "w": 6, "h": 3}
		r = rtSend(s, http.MethodPost, "/api/v1/dashboards/"+dd.ID+"/widgets", designer.token, map[string]any{"type": "bar",
			"config": map[string]any{"model_id": model, "model_query": rtReq(rtList("orders"), nil)}, "position": pos})
		if e := rtEnvelope(t, "a data widget on the dashboard of an owner without queries:run", r, http.StatusBadRequest, "validation_failed"); !slices.Contains(e.fields(), "config") {
			t.Errorf("fields %v do not name config; body: %s", e.fields(), r.body)
		}
		rtOK(t, s, http.MethodPost, "/api/v1/dashboards/"+dd.ID+"/widgets", designer.token, map[string]any{"type": "text",
			"config": map[string]any{"content": "hi"}, "position": pos}, http.StatusCreated, nil)
		// An admin's dashboard may use anyone's query: admins read them all.
		var ad rtID
		rtOK(t, s, http.MethodPost, "/api/v1/dashboards", admin, map[string]any{"name": "Admin's"}, http.StatusCreated, &ad)
		rtOK(t, s, http.MethodPost, "/api/v1/dashboards/"+ad.ID+"/widgets", admin, map[string]any{"type": "number",
			"config": map[string]any{"query_id": theirs.ID}, "position": map[string]any{"x": 0, "y": 0, "w": 6, "h": 3}}, http.StatusCreated, nil)
	})

	t.Run("shared", func(t *testing.T) {
		// Not shared: not found.
		rtEnvelope(t, "stranger", rtSend(s, http.MethodGet, dpath+"/data", stranger.token, nil), http.StatusNotFound, "not_found")
		rtEnvelope(t, "stranger, one widget", rtSend(s, http.MethodGet, dpath+"/widgets/"+wBar+"/data", stranger.token, nil), http.StatusNotFound, "not_found")
		for _, u := range []rtUser{viewer, other} {
			rtOK(t, s, http.MethodPut, dpath+"/shares/"+u.id, owner.token, map[string]any{"permission_level": "view"}, http.StatusOK, nil)
		}
		// A viewer (no queries:run) sees the dashboard, each data widget
		// fails with forbidden on its own.
		d, _ := render(t, viewer.token, map[string]any{"region": "EU"})
		expect(t, d, nil, nil, true)
		var w rtWidgetData
		r := rtOK(t, s, http.MethodGet, dpath+"/widgets/"+wNumber+"/data", viewer.token, nil, http.StatusOK, &w)
		if w.Status != "error" || w.Error == nil || w.Error.Code != "forbidden" {
			t.Errorf("one widget for the viewer: %s", r.body)
		}
		// An editor with a view share gets the data, through the owner's
		// saved query they cannot open themselves.
		rtEnvelope(t, "the shared editor opens the owner's query", rtSend(s, http.MethodGet, "/api/v1/queries/"+q.ID, other.token, nil), http.StatusNotFound, "not_found")
		d, _ = render(t, other.token, map[string]any{"region": "EU"})
		expect(t, d, rtRegionIn("EU"), rtRegionIn("EU"), false)
		d, _ = render(t, other.token, map[string]any{"period": "last 7 days"})
		expect(t, d, rtAll, last7, false)

		// A token scoped to reading renders what it may read (the widgets'
		// SQL is the dashboard's), but still runs no SQL of its own.
		var tok struct {
			Token string `json:"token"`
		}
		rtOK(t, s, http.MethodPost, "/api/v1/tokens", other.token, map[string]any{"name": "read only", "scopes": []string{"read"}}, http.StatusCreated, &tok)
		d, _ = render(t, tok.Token, map[string]any{"region": "EU"})
		expect(t, d, rtRegionIn("EU"), rtRegionIn("EU"), false)
		rtEnvelope(t, "a read token runs SQL", rtSend(s, http.MethodPost, "/api/v1/data-sources/"+dsID+"/query", tok.Token, map[string]any{"sql": "SELECT 1"}), http.StatusForbidden, "forbidden")

		// With an edit share, the editor may add widgets, but only on data
		// the owner can read: not on the editor's own saved query.
		rtOK(t, s, http.MethodPut, dpath+"/shares/"+other.id, owner.token, map[string]any{"permission_level": "edit"}, http.StatusOK, nil)
		r = addWidget(other.token, "number", map[string]any{"query_id": theirs.ID})
		if e := rtEnvelope(t, "an edit-shared editor binds a widget to their own query", r, http.StatusBadRequest, "validation_failed"); !slices.Contains(e.fields(), "config.query_id") {
			t.Errorf("fields %v do not name config.query_id; body: %s", e.fields(), r.body)
		}
		r = addWidget(other.token, "number", map[string]any{"model_id": model, "model_query": rtReq(rtList("orders"), nil)})
		var w2 rtID
		if r.status != http.StatusCreated || json.Unmarshal(r.body, &w2) != nil {
			t.Fatalf("an edit-shared editor adds a model widget: %d %s", r.status, r.body)
		}
		rtOK(t, s, http.MethodDelete, dpath+"/widgets/"+w2.ID, other.token, nil, http.StatusNoContent, nil)
		rtOK(t, s, http.MethodPut, dpath+"/shares/"+other.id, owner.token, map[string]any{"permission_level": "view"}, http.StatusOK, nil)
	})

	t.Run("dashboard TTL 0", func(t *testing.T) {
		rtOK(t, s, http.MethodPatch, dpath, owner.token, map[string]any{"cache_ttl_seconds": 0}, http.StatusOK, nil)
		for i := range 2 {
			d, _ := render(t, owner.token, nil)
			for _, id := range []string{wNumber, wBar, wTable} {
				if w := d.widget(t, id); w.Cache != "miss" {
					t.Errorf("render %d, widget %s with dashboard TTL 0: cache %q, want miss", i, id, w.Cache)
				}
			}
		}
		// New rows show at once.
		rtSQLiteInsert(t, path, rtOrder{100, "EU", "new", 1000, now.Add(-time.Hour)})
		rows = append(rows, rtOrder{100, "EU", "new", 1000, now.Add(-time.Hour)})
		d, _ := render(t, owner.token, nil)
		expect(t, d, rtAll, rtAll, false)
	})

	t.Run("defaults and lists", func(t *testing.T) {
		rtOK(t, s, http.MethodPatch, dpath, owner.token, map[string]any{
			"filters": []map[string]any{
				{"name": "region", "type": "text", "multiple": true},
				{"name": "period", "type": "date", "default": "last 30 days"},
			},
			"cache_ttl_seconds": -1,
		}, http.StatusOK, nil)
		// Entries cached before the insert of the TTL 0 subtest are still
		// fresh under the source's TTL: drop them.
		rtOK(t, s, http.MethodPost, "/api/v1/data-sources/"+dsID+"/cache/invalidate", admin, nil, http.StatusOK, nil)
		last30 := rtSince(now.AddDate(0, 0, -30))
		d, _ := render(t, owner.token, nil)
		if len(d.Filters) != 1 || d.Filters["period"] != "last 30 days" {
			t.Errorf("applied filters %v, want the period default only", d.Filters)
		}
		expect(t, d, rtAll, last30, false)
		// A list filters models with in; the default still applies.
		d, _ = render(t, owner.token, map[string]any{"region": []string{"EU", "APAC"}})
		keep := rtAnd(rtRegionIn("EU", "APAC"), last30)
		keys, g := rtGroup(rows, keep, func(o rtOrder) string { return o.Region })
		var want []string
		for _, k := range keys {
			want = append(want, rtLine(k, g[k].sum))
		}
		if w := d.widget(t, wBar); w.Status != "ok" || w.Result == nil {
			t.Errorf("bar widget with a list: %+v %+v", w, w.Error)
		} else {
			w.Result.check(t, "bar widget with a list", want)
		}
		m := rtAggregate(rows, keep)
		if w := d.widget(t, wTable); w.Status != "ok" || w.Result == nil {
			t.Errorf("table widget with a list: %+v %+v", w, w.Error)
		} else {
			w.Result.check(t, "table widget with a list", []string{rtLine(m.n, m.sum)})
		}
		// The saved query's text parameter takes one value: that widget
		// fails alone, as a client error.
		if w := d.widget(t, wNumber); w.Status == "error" && (w.Error == nil || w.Error.Status == http.StatusInternalServerError) {
			t.Errorf("number widget with a list for its text parameter: %+v", w.Error)
		}
		// An explicit value replaces the default.
		d, _ = render(t, owner.token, map[string]any{"period": "last 7 days"})
		if d.Filters["period"] != "last 7 days" {
			t.Errorf("applied filters %v", d.Filters)
		}
		expect(t, d, rtAll, last7, false)
	})

	t.Run("a widget of another dashboard", func(t *testing.T) {
		var other rtID
		rtOK(t, s, http.MethodPost, "/api/v1/dashboards", owner.token, map[string]any{"name": "Other"}, http.StatusCreated, &other)
		var w rtID
		rtOK(t, s, http.MethodPost, "/api/v1/dashboards/"+other.ID+"/widgets", owner.token, map[string]any{"type": "number",
			"config": map[string]any{"query_id": q.ID}, "position": map[string]any{"x": 0, "y": 0, "w": 6, "h": 3}}, http.StatusCreated, &w)
		rtOK(t, s, http.MethodGet, "/api/v1/dashboards/"+other.ID+"/widgets/"+w.ID+"/data", owner.token, nil, http.StatusOK, nil)
		// Every widget answered from the cache: the dashboard's header says hit.
		var d rtDashboardData
		rtOK(t, s, http.MethodGet, "/api/v1/dashboards/"+other.ID+"/data", owner.token, nil, http.StatusOK, &d)
		r := rtOK(t, s, http.MethodGet, "/api/v1/dashboards/"+other.ID+"/data", owner.token, nil, http.StatusOK, &d)
		if r.cache() != "hit" || len(d.Widgets) != 1 || d.Widgets[0].Cache != "hit" || d.Widgets[0].Status != "ok" {
			t.Errorf("second render of a one-widget dashboard: X-DataPulse-Cache %q, %s", r.cache(), r.body)
		}
		rtEnvelope(t, "a widget under another dashboard's path", rtSend(s, http.MethodGet, dpath+"/widgets/"+w.ID+"/data", owner.token, nil), http.StatusNotFound, "not_found")
		rtEnvelope(t, "unknown dashboard", rtSend(s, http.MethodGet, "/api/v1/dashboards/0193aaaa-0000-7000-8000-000000000000/data", owner.token, nil), http.StatusNotFound, "not_found")
	})
}

// TestResultCacheAcrossReplicas: two servers sharing one PostgreSQL database
// each cache results, and an invalidation on one reaches the other.
func TestResultCacheAcrossReplicas(t *testing.T) {
	u := os.Getenv("DATAPULSE_TEST_POSTGRES_URL")
	if u == "" {
		t.Skip("DATAPULSE_TEST_POSTGRES_URL is not set")
	}
	db := newPostgres(t, u)
	email, pw := "root@example.com", newPassword()
	a := startServer(t, db, "DATAPULSE_ADMIN_EMAIL="+email, "DATAPULSE_ADMIN_PASSWORD="+pw)
	b := startServer(t, db) // same database and data directory (keys)
	tokA, tokB := a.login(email, pw).AccessToken, b.login(email, pw).AccessToken

	path := makeSalesDB(t, 10)
	dsID := rtDataSource(t, a, tokA, "Sales", "sqlite", map[string]any{"path": path}, nil)
	var q rtID
	rtOK(t, a, http.MethodPost, "/api/v1/queries", tokA, map[string]any{"name": "count", "sql": "SELECT count(*) AS n FROM sales", "data_source_id": dsID}, http.StatusCreated, &q)
	run := func(s *server, tok string) (int, string) {
		t.Helper()
		var res runResult
		r := rtOK(t, s, http.MethodPost, "/api/v1/queries/"+q.ID+"/run", tok, map[string]any{}, http.StatusOK, &res)
		return int(res.Rows[0][0].(float64)), r.cache()
	}
	if n, c := run(a, tokA); n != 10 || c != "miss" {
		t.Fatalf("a, first run: %d %s", n, c)
	}
	if n, c := run(b, tokB); n != 10 || c != "miss" {
		t.Fatalf("b, first run: %d %s (each replica has its own cache)", n, c)
	}
	if n, c := run(b, tokB); n != 10 || c != "hit" {
		t.Fatalf("b, second run: %d %s", n, c)
	}
	sdb, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sdb.Exec("INSERT INTO sales VALUES (100, 'EU', 1, 'late')"); err != nil {
		t.Fatal(err)
	}
	sdb.Close()
	// Invalidated on a: b drops its entry too, shortly after.
	rtOK(t, a, http.MethodPost, "/api/v1/data-sources/"+dsID+"/cache/invalidate", tokA, nil, http.StatusOK, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, c := run(b, tokB)
		if n == 11 && c == "miss" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b still answers %d (%s) after the invalidation on a", n, c)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
