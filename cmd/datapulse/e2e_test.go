package main_test

// Black-box tests of the real datapulse binary: TestMain builds it once, every
// test starts it as a child process on 127.0.0.1 (port 0: the kernel picks a
// free port, the server logs the one it got) and talks to it over HTTP only.
// Each test runs on embedded SQLite and, when DATAPULSE_TEST_POSTGRES_URL is
// set, on a throw-away PostgreSQL database.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/store"
)

// binary is the datapulse executable TestMain built.
var binary string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "datapulse-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "datapulse")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// go test runs the test binary in the package directory and puts its own
	// GOROOT/bin first on PATH, so this builds this very command with the same Go.
	build := exec.CommandContext(ctx, "go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the datapulse binary failed:", err)
		return 1
	}
	return m.Run()
}

// Bounds for everything that waits.
const (
	startTimeout = 60 * time.Second // process start → listening → /readyz 200
	exitTimeout  = 30 * time.Second // SIGTERM → process exit
	cliTimeout   = 60 * time.Second // one CLI command
	httpTimeout  = 20 * time.Second // one HTTP request
	pollEvery    = 5 * time.Millisecond
	argon2Marker = "$argon2id$"
)

// ---------------------------------------------------------------------------
// Databases

// database is where one test's DataPulse keeps its state: a data directory
// (SQLite file and generated keys) and, for PostgreSQL, a database URL.
type database struct {
	name    string
	dataDir string
	url     string // empty: embedded SQLite in dataDir
}

func newSQLite(tb testing.TB) *database {
	return &database{name: "sqlite", dataDir: tb.TempDir()}
}

func newPostgres(tb testing.TB, serverURL string) *database {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, drop, err := store.CreateTempDatabase(ctx, serverURL, "datapulse_e2e")
	if err != nil {
		tb.Fatalf("create a temporary PostgreSQL database: %v", err)
	}
	tb.Cleanup(drop)
	return &database{name: "postgres", dataDir: tb.TempDir(), url: u}
}

// forEachBackend runs fn on SQLite and, when configured, on PostgreSQL.
func forEachBackend(t *testing.T, fn func(t *testing.T, db *database)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newSQLite(t)) })
	t.Run("postgres", func(t *testing.T) {
		u := os.Getenv("DATAPULSE_TEST_POSTGRES_URL")
		if u == "" {
			t.Skip("DATAPULSE_TEST_POSTGRES_URL is not set")
		}
		fn(t, newPostgres(t, u))
	})
}

// env is the child's environment: ours without any DATAPULSE_* variable (so
// the developer's settings cannot leak in), the database URL, and extra.
func (db *database) env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATAPULSE_") {
			env = append(env, kv)
		}
	}
	if db.url != "" {
		env = append(env, "DATAPULSE_DATABASE_URL="+db.url)
	}
	return append(env, extra...)
}

// ---------------------------------------------------------------------------
// Processes

// syncBuffer collects a child's output while it runs; changed gets a value
// after each write (it is never closed).
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// server is one running `datapulse serve`.
type server struct {
	tb      testing.TB
	cmd     *exec.Cmd
	stdout  *syncBuffer
	stderr  *syncBuffer
	exited  chan struct{}
	waitErr error // valid once exited is closed
	base    string
	started time.Time
}

// startServer starts serve on db and waits until /readyz answers 200.
func startServer(tb testing.TB, db *database, env ...string) *server {
	tb.Helper()
	s := launchServer(tb, db, env...)
	s.waitReady(startTimeout)
	return s
}

// launchServer starts serve on db without waiting for anything.
func launchServer(tb testing.TB, db *database, env ...string) *server {
	tb.Helper()
	s := &server{tb: tb, stdout: newSyncBuffer(), stderr: newSyncBuffer(), exited: make(chan struct{})}
	s.cmd = exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", db.dataDir,
		"--log-format", "json", "--shutdown-timeout", "20s")
	s.cmd.Env = db.env(env...)
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	s.started = time.Now()
	if err := s.cmd.Start(); err != nil {
		tb.Fatalf("start datapulse serve: %v", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	tb.Cleanup(func() {
		if !s.hasExited() {
			s.cmd.Process.Kill() //nolint:errcheck // it may be exiting already
			select {
			case <-s.exited:
			case <-time.After(exitTimeout):
				tb.Errorf("datapulse serve (pid %d) did not die after SIGKILL", s.cmd.Process.Pid)
			}
		}
		if tb.Failed() {
			tb.Logf("datapulse serve (pid %d) stderr:\n%s", s.cmd.Process.Pid, s.stderr.String())
		}
	})
	return s
}

func (s *server) hasExited() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// exitCode is the process's exit status (-1 when killed by a signal).
func (s *server) exitCode() int {
	if s.waitErr == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(s.waitErr, &ee) {
		return ee.ExitCode()
	}
	return -2
}

// waitReady waits for the "listening" log line (which names the port the
// kernel chose), then polls /readyz until it answers 200.
func (s *server) waitReady(timeout time.Duration) {
	s.tb.Helper()
	deadline := time.Now().Add(timeout)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for s.base == "" {
		if rec, ok := logRecord(s.stderr.String(), "listening"); ok {
			if addr, _ := rec["addr"].(string); addr != "" {
				s.base = "http://" + addr
				break
			}
		}
		s.checkAlive(deadline, "a \"listening\" log line")
		select { // woken by the next log line, the exit or the deadline
		case <-s.stderr.changed:
		case <-s.exited:
		case <-timer.C:
		}
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		status, _, err := s.do(ctx, http.MethodGet, "/readyz", "", nil)
		cancel()
		if err == nil && status == http.StatusOK {
			return
		}
		s.checkAlive(deadline, "GET /readyz 200")
		time.Sleep(pollEvery)
	}
}

func (s *server) checkAlive(deadline time.Time, waitingFor string) {
	s.tb.Helper()
	if s.hasExited() {
		s.tb.Fatalf("datapulse serve exited (%v) while waiting for %s; stderr:\n%s", s.waitErr, waitingFor, s.stderr.String())
	}
	if time.Now().After(deadline) {
		s.tb.Fatalf("datapulse serve: no %s within the deadline; stderr:\n%s", waitingFor, s.stderr.String())
	}
}

func (s *server) signal(sig syscall.Signal) {
	s.tb.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("send %v to datapulse serve: %v", sig, err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (s *server) wait(timeout time.Duration) int {
	s.tb.Helper()
	select {
	case <-s.exited:
		return s.exitCode()
	case <-time.After(timeout):
		s.tb.Fatalf("datapulse serve did not exit within %v; stderr:\n%s", timeout, s.stderr.String())
		return 0
	}
}

// stop sends SIGTERM and requires a clean exit.
func (s *server) stop() {
	s.tb.Helper()
	s.signal(syscall.SIGTERM)
	if code := s.wait(exitTimeout); code != 0 {
		s.tb.Fatalf("datapulse serve exited with %d after SIGTERM, want 0; stderr:\n%s", code, s.stderr.String())
	}
}

// logRecords parses the JSON log lines of a server's stderr (other lines are skipped).
func logRecords(out string) []map[string]any {
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			recs = append(recs, rec)
		}
	}
	return recs
}

// logRecord returns the first log record with message msg.
func logRecord(out, msg string) (map[string]any, bool) {
	for _, rec := range logRecords(out) {
		if rec["msg"] == msg {
			return rec, true
		}
	}
	return nil, false
}

// cliResult is a finished CLI command.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs the binary with args to completion (bounded).
func runCLI(tb testing.TB, db *database, stdin string, env []string, args ...string) cliResult {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = db.env(env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		tb.Fatalf("datapulse %s did not exit within %v (killed); stderr:\n%s", strings.Join(args, " "), cliTimeout, stderr.String())
	}
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		tb.Fatalf("run datapulse %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// ---------------------------------------------------------------------------
// HTTP

var httpClient = &http.Client{Timeout: httpTimeout}

// argon2Leaks counts response bodies that carried a password hash; every
// request made through do is checked.
var argon2Leaks atomic.Int64

// do sends one request and reads the whole answer. A transport error is
// returned, not reported: callers decide whether it is expected.
func (s *server) do(ctx context.Context, method, path, token string, in any) (int, []byte, error) {
	return s.doWith(ctx, httpClient, method, path, token, in)
}

func (s *server) doWith(ctx context.Context, hc *http.Client, method, path, token string, in any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, body)
	if err != nil {
		return 0, nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, b, err
	}
	if bytes.Contains(b, []byte(argon2Marker)) {
		argon2Leaks.Add(1)
		s.tb.Errorf("%s %s: the response body contains a password hash: %s", method, path, b)
	}
	return resp.StatusCode, b, nil
}

// call sends one request, requires status want and decodes the body into out.
func (s *server) call(method, path, token string, in any, want int, out any) []byte {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
	defer cancel()
	status, b, err := s.do(ctx, method, path, token, in)
	if err != nil {
		s.tb.Fatalf("%s %s: %v", method, path, err)
	}
	if status != want {
		s.tb.Fatalf("%s %s: status %d, want %d; body: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.tb.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return b
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
}

type user struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Role  string `json:"role"`
}

type errorBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

func (s *server) login(email, password string) tokens {
	s.tb.Helper()
	var t tokens
	s.call(http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": email, "password": password}, http.StatusOK, &t)
	if t.AccessToken == "" || t.RefreshToken == "" || !strings.EqualFold(t.TokenType, "bearer") || t.ExpiresIn <= 0 {
		s.tb.Fatalf("login %s: incomplete token answer %+v", email, t)
	}
	return t
}

func (s *server) me(token string) user {
	s.tb.Helper()
	var u user
	s.call(http.MethodGet, "/api/v1/me", token, nil, http.StatusOK, &u)
	return u
}

// listUsers returns every user, page by page.
func (s *server) listUsers(token string) []user {
	s.tb.Helper()
	var all []user
	for page := 1; ; page++ {
		var p struct {
			Items   []user `json:"items"`
			Page    int    `json:"page"`
			PerPage int    `json:"per_page"`
			Total   int    `json:"total"`
		}
		s.call(http.MethodGet, fmt.Sprintf("/api/v1/users?per_page=500&page=%d", page), token, nil, http.StatusOK, &p)
		all = append(all, p.Items...)
		if len(p.Items) == 0 || len(all) >= p.Total {
			if len(all) != p.Total {
				s.tb.Fatalf("listed %d users, but total says %d", len(all), p.Total)
			}
			return all
		}
		if page > 100 {
			s.tb.Fatalf("paging through users does not end (total %d)", p.Total)
		}
	}
}

func emails(us []user) []string {
	out := make([]string, 0, len(us))
	for _, u := range us {
		out = append(out, u.Email)
	}
	slices.Sort(out)
	return out
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newPassword is a unique, policy-compliant password (so finding it in a log
// can only mean a leak).
func newPassword() string { return "Pw-" + randHex(12) + "-x" }

// ---------------------------------------------------------------------------
// Tests

// TestLifecycle: first start on an empty database bootstraps the admin from
// the environment and applies the migrations; users, logins and API tokens
// work; SIGTERM exits 0; a restart on the same database keeps everything,
// applies nothing and `migrate status` agrees. Finally no secret reached the
// logs and no response carried a password hash.
func TestLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *database) {
		adminEmail, adminPW := "root@example.com", newPassword()
		userEmail, userPW := "ada@example.com", newPassword()
		adminEnv := []string{"DATAPULSE_ADMIN_EMAIL=" + adminEmail, "DATAPULSE_ADMIN_PASSWORD=" + adminPW}
		leaksBefore := argon2Leaks.Load()
		var secrets []string // every secret string a log must never contain

		// First start: empty database.
		s1 := startServer(t, db, adminEnv...)
		t.Logf("first start ready after %v", time.Since(s1.started).Round(time.Millisecond))
		s1.call(http.MethodGet, "/healthz", "", nil, http.StatusOK, nil)

		// A wrong password is a 401 in the one error envelope.
		var eb errorBody
		s1.call(http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": adminEmail, "password": "Wrong-" + adminPW}, http.StatusUnauthorized, &eb)
		if eb.Error.Code == "" || eb.Error.Message == "" || eb.Error.RequestID == "" {
			t.Errorf("401 body is not the error envelope {error:{code,message,request_id}}: %+v", eb)
		}

		// A bad bearer token is a 401 too, not a server error.
		eb = errorBody{}
		s1.call(http.MethodGet, "/api/v1/me", "not-a-token", nil, http.StatusUnauthorized, &eb)
		if eb.Error.Code == "" || eb.Error.RequestID == "" {
			t.Errorf("401 body is not the error envelope: %+v", eb)
		}
		s1.call(http.MethodGet, "/api/v1/me", "dp_"+randHex(20), nil, http.StatusUnauthorized, nil)

		adminTok := s1.login(adminEmail, adminPW)
		secrets = append(secrets, adminTok.AccessToken, adminTok.RefreshToken)
		if me := s1.me(adminTok.AccessToken); me.Email != adminEmail || me.Role != "admin" {
			t.Fatalf("/me of the bootstrapped admin = %+v, want %s with role admin", me, adminEmail)
		}

		var created user
		s1.call(http.MethodPost, "/api/v1/users", adminTok.AccessToken,
			map[string]string{"email": userEmail, "password": userPW, "name": "Ada"}, http.StatusCreated, &created)
		if created.ID == "" || created.Email != userEmail || created.Role != "user" {
			t.Fatalf("created user = %+v", created)
		}
		userTok := s1.login(userEmail, userPW)
		secrets = append(secrets, userTok.AccessToken, userTok.RefreshToken)
		if me := s1.me(userTok.AccessToken); me.ID != created.ID || me.Email != userEmail || me.Role != "user" {
			t.Fatalf("/me of the new user = %+v, want %+v", me, created)
		}
		// A plain user may not create users.
		s1.call(http.MethodPost, "/api/v1/users", userTok.AccessToken,
			map[string]string{"email": "eve@example.com", "password": newPassword()}, http.StatusForbidden, nil)

		// A personal API token works as a bearer token.
		var apiTok struct {
			Token string `json:"token"`
		}
		s1.call(http.MethodPost, "/api/v1/tokens", userTok.AccessToken, map[string]string{"name": "e2e"}, http.StatusCreated, &apiTok)
		if !strings.HasPrefix(apiTok.Token, "dp_") {
			t.Fatalf("API token %q does not start with dp_", apiTok.Token)
		}
		secrets = append(secrets, apiTok.Token)
		if me := s1.me(apiTok.Token); me.ID != created.ID {
			t.Fatalf("/me with the API token = %+v, want user %s", me, created.ID)
		}

		s1.stop()
		log1 := s1.stderr.String()
		ready1, ok := logRecord(log1, "database ready")
		if !ok {
			t.Fatalf("first start logged no \"database ready\" line; stderr:\n%s", log1)
		}
		if n, _ := ready1["migrations_applied"].(float64); n < 1 {
			t.Errorf("first start on an empty database: migrations_applied = %v, want ≥ 1", ready1["migrations_applied"])
		}
		if _, ok := logRecord(log1, "first admin created from environment"); !ok {
			t.Errorf("first start did not log that it created the first admin")
		}

		// Second start on the same data: the admin variables are still set
		// (as in a real deployment) and must not create anything.
		s2 := startServer(t, db, adminEnv...)
		t.Logf("restart ready after %v", time.Since(s2.started).Round(time.Millisecond))
		adminTok2 := s2.login(adminEmail, adminPW)
		userTok2 := s2.login(userEmail, userPW)
		secrets = append(secrets, adminTok2.AccessToken, adminTok2.RefreshToken, userTok2.AccessToken, userTok2.RefreshToken)
		if me := s2.me(userTok2.AccessToken); me.ID != created.ID {
			t.Errorf("/me after restart = %+v, want user %s", me, created.ID)
		}
		// The API token survives the restart (it is stored, hashed).
		if me := s2.me(apiTok.Token); me.ID != created.ID {
			t.Errorf("/me with the API token after restart = %+v, want user %s", me, created.ID)
		}
		if got, want := emails(s2.listUsers(adminTok2.AccessToken)), []string{userEmail, adminEmail}; !slices.Equal(got, want) {
			t.Errorf("users after restart = %v, want %v", got, want)
		}
		s2.stop()
		log2 := s2.stderr.String()
		ready2, ok := logRecord(log2, "database ready")
		if !ok {
			t.Fatalf("restart logged no \"database ready\" line; stderr:\n%s", log2)
		}
		if n, ok := ready2["migrations_applied"].(float64); !ok || n != 0 {
			t.Errorf("restart: migrations_applied = %v, want 0", ready2["migrations_applied"])
		}
		if _, ok := logRecord(log2, "first admin created from environment"); ok {
			t.Errorf("restart created a first admin again although users exist")
		}

		st := runCLI(t, db, "", nil, "migrate", "status", "--data-dir", db.dataDir)
		if st.code != 0 || !strings.Contains(st.stdout, "database is up to date") || strings.Contains(st.stdout, "pending") {
			t.Errorf("migrate status: exit %d, want 0 and \"database is up to date\" with nothing pending; stdout:\n%s\nstderr:\n%s", st.code, st.stdout, st.stderr)
		}

		t.Run("secrets", func(t *testing.T) {
			// The exact strings and the parts that are secret on their own:
			// a JWT's signature, the secret half of a refresh token.
			var needles []string
			for _, s := range append([]string{adminPW, userPW}, secrets...) {
				needles = append(needles, s)
				if i := strings.LastIndexAny(s, ".") + 1; i > 0 && len(s)-i >= 16 {
					needles = append(needles, s[i:])
				}
			}
			outputs := map[string]string{
				"first start stderr": log1, "first start stdout": s1.stdout.String(),
				"restart stderr": log2, "restart stdout": s2.stdout.String(),
				"migrate status output": st.stdout + st.stderr,
			}
			for where, out := range outputs {
				for _, n := range needles {
					if strings.Contains(out, n) {
						t.Errorf("%s contains a secret (%.8s…)", where, n)
					}
				}
				if strings.Contains(out, argon2Marker) {
					t.Errorf("%s contains a password hash", where)
				}
			}
			if n := argon2Leaks.Load() - leaksBefore; n > 0 {
				t.Errorf("%d response bodies contained a password hash (%s)", n, argon2Marker)
			}
		})
	})
}

// TestCrashDurability: kill -9 in the middle of a burst of concurrent user
// creations; after a restart every user whose creation was answered 201 is
// there, nothing unasked-for appeared, and the server is ready again.
func TestCrashDurability(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *database) {
		adminEmail, adminPW := "root@example.com", newPassword()
		adminEnv := []string{"DATAPULSE_ADMIN_EMAIL=" + adminEmail, "DATAPULSE_ADMIN_PASSWORD=" + adminPW}
		s := startServer(t, db, adminEnv...)
		tok := s.login(adminEmail, adminPW).AccessToken

		const (
			total     = 150
			workers   = 4
			killAfter = 50 // answered 201s before kill -9
		)
		run := randHex(4)
		email := func(i int) string { return fmt.Sprintf("crash-%03d-%s@example.com", i, run) }
		password := newPassword()

		var (
			mu         sync.Mutex
			answered   []string // emails answered 201
			attempted  = map[string]bool{}
			transport  int // requests that got no HTTP answer
			killOnce   sync.Once
			killed     = make(chan struct{})
			killedAt   time.Time
			answeredAt int
		)
		kill := func() {
			killOnce.Do(func() {
				// Closed first: a request that fails from here on failed
				// because of the kill.
				killedAt = time.Now()
				close(killed)
				if err := s.cmd.Process.Kill(); err != nil {
					t.Errorf("kill -9: %v", err)
				}
			})
		}
		jobs := make(chan int)
		go func() {
			defer close(jobs)
			for i := range total {
				select {
				case jobs <- i:
				case <-killed:
					return
				}
			}
		}()
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := range jobs {
					e := email(i)
					mu.Lock()
					attempted[e] = true
					mu.Unlock()
					ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
					status, body, err := s.do(ctx, http.MethodPost, "/api/v1/users", tok, map[string]string{"email": e, "password": password})
					cancel()
					mu.Lock()
					switch {
					case err != nil:
						transport++
						select {
						case <-killed:
						default:
							t.Errorf("POST /api/v1/users %s failed before the kill: %v", e, err)
						}
					case status == http.StatusCreated:
						answered = append(answered, e)
						if len(answered) == killAfter {
							answeredAt = len(answered)
							kill()
						}
					default:
						t.Errorf("POST /api/v1/users %s: status %d, want 201; body: %s", e, status, body)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		select {
		case <-killed:
		default:
			t.Fatalf("the burst ended before %d users were created: %d answered 201", killAfter, len(answered))
		}
		if code := s.wait(exitTimeout); code == 0 {
			t.Fatalf("the killed server exited 0")
		}
		t.Logf("killed after %d answered 201 of %d requests sent (%d without an answer), %v after start",
			answeredAt, len(attempted), transport, killedAt.Sub(s.started).Round(time.Millisecond))

		if len(attempted) >= total {
			t.Logf("note: every request had been sent before the kill landed")
		}

		s2 := startServer(t, db, adminEnv...)
		tok2 := s2.login(adminEmail, adminPW).AccessToken
		have := map[string]bool{}
		for _, u := range s2.listUsers(tok2) {
			have[u.Email] = true
			if u.Email != adminEmail && !attempted[u.Email] {
				t.Errorf("user %s exists but was never requested", u.Email)
			}
		}
		missing := 0
		for _, e := range answered {
			if !have[e] {
				missing++
				t.Errorf("user %s was answered 201 before the crash but is gone after the restart", e)
			}
		}
		// Each worker had at most one request in flight at the kill: only
		// those may have been committed without their 201 arriving.
		extra := len(have) - 1 - (len(answered) - missing)
		if extra > workers {
			t.Errorf("%d users exist that were never answered 201, want at most %d (one in flight per worker)", extra, workers)
		}
		t.Logf("after the restart: %d users = the admin + %d answered 201 + %d committed while their answer was cut off",
			len(have), len(answered)-missing, extra)
		// The restarted server is fully usable: it takes writes again.
		s2.call(http.MethodPost, "/api/v1/users", tok2, map[string]string{"email": "after-crash-" + run + "@example.com", "password": password}, http.StatusCreated, nil)
		s2.stop()
	})
}

// TestGracefulShutdown: requests in flight when SIGTERM arrives all get
// their real answer, and the process then exits 0.
//
// "In flight" is made exact: SIGTERM is sent only once every request has been
// written and the server process holds (has accepted) every connection. A
// connection still in the kernel's accept queue when the listener closes is
// reset by the kernel, as with any server; that is not what this tests.
func TestGracefulShutdown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *database) {
		adminEmail, adminPW := "root@example.com", newPassword()
		s := startServer(t, db, "DATAPULSE_ADMIN_EMAIL="+adminEmail, "DATAPULSE_ADMIN_PASSWORD="+adminPW)

		// Each login costs an argon2id hash (~25 ms of one core), so n logins
		// on 2 cores keep the server busy for ≥ n/2 × 25 ms. n stays below the
		// per-account login burst (10). Fresh connections: an accepted
		// connection that has not sent its first request is not idle for the
		// server, so it is not cut at shutdown.
		const n = 8
		hc := &http.Client{Timeout: httpTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
		defer hc.CloseIdleConnections()
		type result struct {
			status int
			body   []byte
			err    error
			at     time.Time
		}
		results := make(chan result, n)
		ports := make(chan int, n) // client ports of the connections, -1 when none
		var finished sync.Map      // client port → true once its request has its answer
		var wrote sync.WaitGroup
		wrote.Add(n)
		for range n {
			go func() {
				var wroteOnce, portOnce sync.Once
				port := -1
				ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
					GotConn: func(ci httptrace.GotConnInfo) {
						if a, ok := ci.Conn.LocalAddr().(*net.TCPAddr); ok {
							port = a.Port
						}
						portOnce.Do(func() { ports <- port })
					},
					WroteRequest: func(httptrace.WroteRequestInfo) { wroteOnce.Do(wrote.Done) },
				})
				ctx, cancel := context.WithTimeout(ctx, httpTimeout)
				defer cancel()
				status, body, err := s.doWith(ctx, hc, http.MethodPost, "/api/v1/auth/login", "",
					map[string]string{"email": adminEmail, "password": adminPW})
				// In case it failed before connecting or writing.
				portOnce.Do(func() { ports <- -1 })
				wroteOnce.Do(wrote.Done)
				finished.Store(port, true)
				results <- result{status, body, err, time.Now()}
			}()
		}
		deadline := time.Now().Add(httpTimeout)
		var clientPorts []int
		for range n {
			select {
			case p := <-ports:
				if p < 0 {
					t.Fatalf("a login request could not connect")
				}
				clientPorts = append(clientPorts, p)
			case <-time.After(time.Until(deadline)):
				t.Fatalf("the %d login requests did not all connect within %v", n, httpTimeout)
			}
		}
		allWritten := make(chan struct{})
		go func() { wrote.Wait(); close(allWritten) }()
		select {
		case <-allWritten:
		case <-time.After(time.Until(deadline)):
			t.Fatalf("the %d login requests were not all written within %v", n, httpTimeout)
		}
		serverPort := s.port()
		for {
			// A request that already has its answer no longer needs its
			// connection held.
			var pending []int
			for _, p := range clientPorts {
				if _, ok := finished.Load(p); !ok {
					pending = append(pending, p)
				}
			}
			held, err := holdsConnections(s.cmd.Process.Pid, serverPort, pending)
			if err != nil {
				// No /proc (not Linux): the server accepts within
				// milliseconds unless starved; give it a moment.
				t.Logf("cannot see the server's sockets (%v); waiting 50ms instead", err)
				time.Sleep(50 * time.Millisecond)
				break
			}
			if held {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the server did not accept all %d connections within %v", n, httpTimeout)
			}
			time.Sleep(time.Millisecond)
		}
		termAt := time.Now()
		s.signal(syscall.SIGTERM)

		after := 0
		for range n {
			r := <-results // bounded: every request has a client timeout
			switch {
			case r.err != nil:
				t.Errorf("a login in flight at SIGTERM got no HTTP answer: %v", r.err)
			case r.status != http.StatusOK:
				t.Errorf("a login in flight at SIGTERM: status %d, want 200; body: %s", r.status, r.body)
			case r.at.After(termAt):
				after++
			}
		}
		if code := s.wait(exitTimeout); code != 0 {
			t.Errorf("exit code %d after SIGTERM, want 0; stderr:\n%s", code, s.stderr.String())
		}
		if after == 0 {
			t.Errorf("no login was answered after SIGTERM was sent: the test did not exercise in-flight requests")
		}
		t.Logf("%d of %d logins were answered after SIGTERM", after, n)
		if _, ok := logRecord(s.stderr.String(), "shutting down"); !ok {
			t.Errorf("no \"shutting down\" log line")
		}
	})
}

// TestShutdownWithSilentConnection: a client that opened a connection and
// sent nothing (a TCP health check, a browser's preconnect, a slow client)
// must not hold up SIGTERM. fasthttp counts such a connection as active, so
// the server drops connections that never sent a byte when it shuts down.
func TestShutdownWithSilentConnection(t *testing.T) {
	db := newSQLite(t)
	s := startServer(t, db) // --shutdown-timeout 20s
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !waitHeld(s, c) {
		t.Fatalf("the server did not accept the connection")
	}
	start := time.Now()
	s.signal(syscall.SIGTERM)
	const limit = 10 * time.Second
	select {
	case <-s.exited:
		if code := s.exitCode(); code != 0 {
			t.Fatalf("exit code %d after a clean shutdown", code)
		}
		t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	case <-time.After(limit):
		t.Fatalf("still running %v after SIGTERM because of one connection that sent nothing", limit)
	}
}

// waitHeld waits (bounded) until the server process holds c's server end.
func waitHeld(s *server, c net.Conn) bool {
	port := c.LocalAddr().(*net.TCPAddr).Port
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		held, err := holdsConnections(s.cmd.Process.Pid, s.port(), []int{port})
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			return true
		}
		if held {
			return true
		}
	}
	return false
}

// port is the TCP port the server listens on.
func (s *server) port() int {
	s.tb.Helper()
	u := strings.TrimPrefix(s.base, "http://")
	_, p, err := net.SplitHostPort(u)
	if err != nil {
		s.tb.Fatalf("server address %q: %v", u, err)
	}
	var n int
	fmt.Sscanf(p, "%d", &n)
	return n
}

// holdsConnections reports whether process pid has accepted, i.e. holds as
// open files, the server end of a TCP connection to serverPort from each of
// clientPorts (Linux: /proc/PID/fd and /proc/net/tcp{,6}). A connection still
// in the accept queue has no file in the process yet.
func holdsConnections(pid, serverPort int, clientPorts []int) (bool, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") && strings.HasSuffix(l, "]") {
			inodes[l[len("socket:["):len(l)-1]] = true
		}
	}
	held := map[int]bool{}
	read := false
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		read = true
		for _, line := range strings.Split(string(b), "\n") {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
			fs := strings.Fields(line)
			if len(fs) < 10 || !inodes[fs[9]] {
				continue
			}
			if hexPort(fs[1]) == serverPort {
				held[hexPort(fs[2])] = true
			}
		}
	}
	if !read {
		return false, errors.New("no /proc/net/tcp")
	}
	for _, p := range clientPorts {
		if !held[p] {
			return false, nil
		}
	}
	return true, nil
}

// hexPort reads the port of a /proc/net/tcp address such as 0100007F:1F90.
func hexPort(addr string) int {
	_, p, ok := strings.Cut(addr, ":")
	if !ok {
		return -1
	}
	var n int
	if _, err := fmt.Sscanf(p, "%x", &n); err != nil {
		return -1
	}
	return n
}

// TestConfigErrors: bad configuration fails fast with a message that names
// the culprit, and an admin created from the CLI can log in.
func TestConfigErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *database) {
		t.Run("short signing key", func(t *testing.T) {
			const weak = "weak-key-0123456789"
			r := runCLI(t, db, "", []string{"DATAPULSE_TOKEN_SIGNING_KEY=" + weak},
				"serve", "--addr", "127.0.0.1:0", "--data-dir", db.dataDir)
			if r.code == 0 {
				t.Fatalf("serve with a %d-byte signing key exited 0", len(weak))
			}
			if !strings.Contains(r.stderr, "DATAPULSE_TOKEN_SIGNING_KEY") {
				t.Errorf("the error does not name DATAPULSE_TOKEN_SIGNING_KEY:\n%s", r.stderr)
			}
			if strings.Contains(r.stderr+r.stdout, weak) {
				t.Errorf("the error repeats the key itself:\n%s", r.stderr)
			}
		})
		t.Run("bad addr", func(t *testing.T) {
			r := runCLI(t, db, "", nil, "serve", "--addr", "nonsense", "--data-dir", db.dataDir)
			if r.code == 0 {
				t.Fatalf("serve --addr nonsense exited 0")
			}
			if !strings.Contains(r.stderr, "addr") || !strings.Contains(r.stderr, "nonsense") {
				t.Errorf("the error does not name the address option and its value:\n%s", r.stderr)
			}
		})
		t.Run("addr in use", func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			r := runCLI(t, db, "", nil, "serve", "--addr", ln.Addr().String(), "--data-dir", db.dataDir)
			if r.code == 0 {
				t.Fatalf("serve on an address in use exited 0")
			}
			if !strings.Contains(r.stderr, ln.Addr().String()) {
				t.Errorf("the error does not name the address %s:\n%s", ln.Addr(), r.stderr)
			}
		})
		t.Run("admin create-user", func(t *testing.T) {
			email, pw := "ops@example.com", newPassword()
			r := runCLI(t, db, pw+"\n", nil, "admin", "create-user", "--email", email, "--password-stdin", "--admin", "--data-dir", db.dataDir)
			if r.code != 0 {
				t.Fatalf("admin create-user: exit %d; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, email) {
				t.Errorf("admin create-user does not confirm the user:\n%s", r.stdout)
			}
			if strings.Contains(r.stdout+r.stderr, pw) {
				t.Errorf("admin create-user printed the password")
			}
			s := startServer(t, db) // no admin variables: the CLI's admin is the only user
			tok := s.login(email, pw)
			if me := s.me(tok.AccessToken); me.Email != email || me.Role != "admin" {
				t.Errorf("/me of the CLI-created admin = %+v, want %s with role admin", me, email)
			}
			// An admin: may list users.
			if got := emails(s.listUsers(tok.AccessToken)); !slices.Equal(got, []string{email}) {
				t.Errorf("users = %v, want [%s]", got, email)
			}
			s.stop()
			if strings.Contains(s.stderr.String(), pw) || strings.Contains(s.stderr.String(), tok.AccessToken) {
				t.Errorf("the server log contains the password or the access token")
			}
		})
	})
}
