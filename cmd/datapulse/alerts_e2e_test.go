package main_test

// End to end tests of alerts with the real binary: a real SMTP server
// (emersion/go-smtp) and real HTTP listeners on loopback addresses stand for
// the mail relay and the webhook receivers. Nothing leaves the machine.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/mail"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// alertWait bounds every wait for a delivery (a timeout, not a measurement).
const alertWait = 45 * time.Second

// ---------------------------------------------------------------------------
// A real SMTP server

type mailMsg struct {
	To   []string
	Data []byte
}

type mailbox struct {
	Addr string
	mu   sync.Mutex
	msgs []mailMsg
}

func (m *mailbox) messages() []mailMsg {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]mailMsg(nil), m.msgs...)
}

type mailSession struct {
	box *mailbox
	cur mailMsg
}

func (s *mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = b
	s.box.mu.Lock()
	s.box.msgs = append(s.box.msgs, s.cur)
	s.box.mu.Unlock()
	return nil
}
func (s *mailSession) Reset()        { s.cur = mailMsg{} }
func (s *mailSession) Logout() error { return nil }

func startMailbox(t *testing.T) *mailbox {
	t.Helper()
	box := &mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{box: box}, nil }))
	srv.Domain = "mx.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	box.Addr = l.Addr().String()
	return box
}

// emailParts parses a message: its headers and decoded text and HTML bodies.
func emailParts(t *testing.T, data []byte) (mail.Header, string, string) {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("parse email: %v\n%s", err, data)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("email content type %q: %v", m.Header.Get("Content-Type"), err)
	}
	var text, html string
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			text = string(b)
		case "text/html":
			html = string(b)
		}
	}
	return m.Header, text, html
}

// ---------------------------------------------------------------------------
// A webhook receiver

type hookCall struct {
	Delivery, Event, Signature string
	Body                       []byte
	Status                     int
}

type hookReceiver struct {
	URL    string
	secret string
	mu     sync.Mutex
	calls  []hookCall
	// status decides the answer to a call (nil: 200); n counts earlier calls
	// with that delivery id.
	status func(delivery string, n int) int
	// redirect, when set, answers every call with a 302 to it.
	redirect string
}

func startHook(t *testing.T, addr, secret string) *hookReceiver {
	t.Helper()
	h := &hookReceiver{secret: secret}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	h.URL = "http://" + l.Addr().String() + "/hook"
	return h
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c := hookCall{Delivery: r.Header.Get("X-DataPulse-Delivery"), Event: r.Header.Get("X-DataPulse-Event"),
		Signature: r.Header.Get("X-DataPulse-Signature"), Body: b, Status: http.StatusOK}
	h.mu.Lock()
	n := 0
	for _, p := range h.calls {
		if p.Delivery == c.Delivery {
			n++
		}
	}
	if h.status != nil {
		c.Status = h.status(c.Delivery, n)
	}
	redirect := h.redirect
	if redirect != "" {
		c.Status = http.StatusFound
	}
	h.calls = append(h.calls, c)
	h.mu.Unlock()
	if redirect != "" {
		http.Redirect(w, r, redirect, http.StatusFound)
		return
	}
	w.WriteHeader(c.Status)
}

func (h *hookReceiver) all() []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookCall(nil), h.calls...)
}

// accepted returns the calls answered 2xx.
func (h *hookReceiver) accepted() []hookCall {
	var out []hookCall
	for _, c := range h.all() {
		if c.Status/100 == 2 {
			out = append(out, c)
		}
	}
	return out
}

func (h *hookReceiver) signedOK(c hookCall) bool {
	m := hmac.New(sha256.New, []byte(h.secret))
	m.Write(c.Body)
	return hmac.Equal([]byte(c.Signature), []byte("sha256="+hex.EncodeToString(m.Sum(nil))))
}

// ---------------------------------------------------------------------------
// Helpers

// waitUntil polls cond until it holds or alertWait passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(alertWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// makeValueDB writes an SQLite source with one table m(v) holding v.
func makeValueDB(t *testing.T, v float64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "metric.db")
	setValue(t, path, v, true)
	return path
}

func setValue(t *testing.T, path string, v float64, create bool) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if create {
		if _, err := db.Exec("CREATE TABLE m (v REAL)"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("INSERT INTO m VALUES (?)", v); err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := db.Exec("UPDATE m SET v = ?", v); err != nil {
		t.Fatal(err)
	}
}

type alertEnv struct {
	s       *server
	admin   string
	adminPW string
	query   string // saved query id: SELECT v FROM m
	source  string // SQLite file
}

// newAlertEnv starts the server with env and a saved query on a fresh
// SQLite source holding v.
func newAlertEnv(t *testing.T, db *database, v float64, env ...string) *alertEnv {
	t.Helper()
	adminEmail, adminPW := "root@example.com", newPassword()
	env = append(env, "DATAPULSE_ADMIN_EMAIL="+adminEmail, "DATAPULSE_ADMIN_PASSWORD="+adminPW)
	s := startServer(t, db, env...)
	e := &alertEnv{s: s, admin: s.login(adminEmail, adminPW).AccessToken, adminPW: adminPW, source: makeValueDB(t, v)}
	var ds, q struct {
		ID string `json:"id"`
	}
	s.call(http.MethodPost, "/api/v1/data-sources", e.admin, map[string]any{"name": "Metric", "type": "sqlite", "config": map[string]any{"path": e.source}}, http.StatusCreated, &ds)
	s.call(http.MethodPost, "/api/v1/queries", e.admin, map[string]any{"name": "metric", "sql": "SELECT v FROM m", "data_source_id": ds.ID}, http.StatusCreated, &q)
	e.query = q.ID
	return e
}

type alertOut struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	State  string `json:"state"`
}

type evalOut struct {
	State     string `json:"state"`
	Status    string `json:"status"`
	Instances []struct {
		State string `json:"state"`
	} `json:"instances"`
}

type notificationOut struct {
	ID     string `json:"id"`
	UserID string `json:"user_id"`
	State  string `json:"state"`
}

func (e *alertEnv) alertBody(interval int, channels []map[string]any) map[string]any {
	return map[string]any{
		"metric": "metric above 100", "threshold_type": "above", "threshold_value": 100,
		"source":           map[string]any{"query_id": e.query, "column": "v"},
		"interval_seconds": interval, "channels": channels,
	}
}

var linkRE = regexp.MustCompile(`/api/v1/alert-links/([A-Za-z0-9_\-.~]+)`)

// ---------------------------------------------------------------------------
// Tests

// TestAlertFiresAndResolves: an alert on a saved query of a real SQLite
// source fires (evaluate now): each email channel gets exactly one email and
// the webhook one POST whose signature verifies with the secret; the value
// recovers and the *schedule* (interval 10 s) resolves it: exactly one
// resolve message per channel. The owner acknowledges through the API, the
// colleague through the signed link of their email (GET changes nothing,
// POST acknowledges).
func TestAlertFiresAndResolves(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *database) {
		box := startMailbox(t)
		secret := "webhook-secret-" + randHex(8)
		hook := startHook(t, "127.0.0.1:0", secret)
		e := newAlertEnv(t, db, 500,
			"DATAPULSE_SMTP_URL=smtp://"+box.Addr, "DATAPULSE_SMTP_FROM=DataPulse <alerts@example.com>",
			"DATAPULSE_PUBLIC_URL=https://bi.example.com", "DATAPULSE_EGRESS_ALLOW=127.0.0.1")
		s := e.s
		colleague, colleaguePW := "colleague@example.com", newPassword()
		var colleagueUser user
		s.call(http.MethodPost, "/api/v1/users", e.admin, map[string]string{"email": colleague, "password": colleaguePW}, http.StatusCreated, &colleagueUser)
		const outsider = "ops@example.com" // an address of no DataPulse user

		var a alertOut
		body := s.call(http.MethodPost, "/api/v1/alerts", e.admin, e.alertBody(10, []map[string]any{
			{"type": "email", "target": colleague},
			{"type": "email", "target": outsider},
			{"type": "webhook", "target": hook.URL, "secret": secret},
		}), http.StatusCreated, &a)
		if strings.Contains(string(body), secret) {
			t.Fatalf("the create answer contains the webhook secret: %s", body)
		}
		var ev evalOut
		s.call(http.MethodPost, "/api/v1/alerts/"+a.ID+"/evaluate", e.admin, nil, http.StatusOK, &ev)
		if ev.State != "alerting" || ev.Status != "triggered" {
			t.Fatalf("evaluation: %+v", ev)
		}

		// Firing: one email per address, one signed POST.
		waitUntil(t, "the firing email and webhook", func() bool { return len(box.messages()) >= 2 && len(hook.accepted()) >= 1 })
		var colleagueMail []byte
		perRcpt := map[string]int{}
		for _, m := range box.messages() {
			for _, to := range m.To {
				perRcpt[to]++
			}
			if len(m.To) == 1 && m.To[0] == colleague {
				colleagueMail = m.Data
			}
		}
		if perRcpt[colleague] != 1 || perRcpt[outsider] != 1 || len(perRcpt) != 2 {
			t.Fatalf("firing emails per recipient: %v", perRcpt)
		}
		firing := hook.accepted()
		if len(firing) != 1 || !hook.signedOK(firing[0]) || firing[0].Event != "alert.triggered" || firing[0].Delivery == "" {
			t.Fatalf("firing webhook calls: %+v", firing)
		}

		// Notifications: the owner's and the colleague's.
		var notes struct {
			Items []notificationOut `json:"items"`
		}
		s.call(http.MethodGet, "/api/v1/alert-notifications?alert="+a.ID, e.admin, nil, http.StatusOK, &notes)
		var ownerNote, colleagueNote notificationOut
		for _, n := range notes.Items {
			if n.UserID == colleagueUser.ID {
				colleagueNote = n
			} else {
				ownerNote = n
			}
		}
		if len(notes.Items) != 2 || ownerNote.ID == "" || colleagueNote.ID == "" {
			t.Fatalf("notifications: %+v", notes.Items)
		}

		// The owner acknowledges through the API.
		var acked notificationOut
		s.call(http.MethodPost, "/api/v1/alert-notifications/"+ownerNote.ID+"/acknowledge", e.admin, nil, http.StatusOK, &acked)
		if acked.State != "acknowledged" {
			t.Fatalf("acknowledged through the API: %+v", acked)
		}

		// The colleague acknowledges with the link in their email.
		hdr, text, html := emailParts(t, colleagueMail)
		if hdr.Get("X-DataPulse-Delivery") == "" || !strings.Contains(text, "500") {
			t.Errorf("firing email: headers %v, text %q", hdr, text)
		}
		mt := linkRE.FindStringSubmatch(text)
		if mt == nil || !strings.Contains(text, "https://bi.example.com/api/v1/alert-links/") || !strings.Contains(html, mt[1]) {
			t.Fatalf("no acknowledge link in the email: %q", text)
		}
		linkPath := "/api/v1/alert-links/" + mt[1]
		ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
		defer cancel()
		status, page, err := s.do(ctx, http.MethodGet, linkPath, "", nil)
		if err != nil || status != http.StatusOK || !strings.Contains(strings.ToLower(string(page)), `method="post"`) {
			t.Fatalf("GET link: %d %v %s", status, err, page)
		}
		colleagueTok := s.login(colleague, colleaguePW).AccessToken
		var mine struct {
			Items []notificationOut `json:"items"`
		}
		s.call(http.MethodGet, "/api/v1/alert-notifications?alert="+a.ID, colleagueTok, nil, http.StatusOK, &mine)
		if len(mine.Items) != 1 || mine.Items[0].ID != colleagueNote.ID || mine.Items[0].State != "open" {
			t.Fatalf("after GET of the link the colleague's notification is %+v, want open", mine.Items)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.base+linkPath, strings.NewReader(""))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("POST link: %d", res.StatusCode)
		}
		s.call(http.MethodGet, "/api/v1/alert-notifications?alert="+a.ID, colleagueTok, nil, http.StatusOK, &mine)
		if len(mine.Items) != 1 || mine.Items[0].State != "acknowledged" {
			t.Fatalf("after POST of the link: %+v", mine.Items)
		}

		// Recovery, applied by the schedule (no evaluate call).
		setValue(t, e.source, 5, false)
		waitUntil(t, "the resolve email and webhook", func() bool { return len(box.messages()) >= 4 && len(hook.accepted()) >= 2 })
		var got alertOut
		s.call(http.MethodGet, "/api/v1/alerts/"+a.ID, e.admin, nil, http.StatusOK, &got)
		if got.Status != "resolved" || got.State != "normal" {
			t.Errorf("alert after recovery: %+v", got)
		}
		s.call(http.MethodGet, "/api/v1/alert-notifications?alert="+a.ID, e.admin, nil, http.StatusOK, &notes)
		for _, n := range notes.Items {
			if n.State != "resolved" {
				t.Errorf("notification after recovery: %+v", n)
			}
		}
		// One more evaluation in the normal state changes nothing and sends
		// nothing (deliveries are inserted with the state change, so a
		// message from it would already be queued when evaluate answers).
		s.call(http.MethodPost, "/api/v1/alerts/"+a.ID+"/evaluate", e.admin, nil, http.StatusOK, &ev)
		if ev.State != "normal" {
			t.Errorf("evaluation after recovery: %+v", ev)
		}
		perRcpt = map[string]int{}
		for _, m := range box.messages() {
			for _, to := range m.To {
				perRcpt[to]++
			}
		}
		if perRcpt[colleague] != 2 || perRcpt[outsider] != 2 || len(perRcpt) != 2 {
			t.Errorf("emails per recipient after recovery: %v, want 2 each", perRcpt)
		}
		calls := hook.accepted()
		if len(calls) != 2 || !hook.signedOK(calls[1]) || calls[1].Event != "alert.resolved" || calls[1].Delivery == calls[0].Delivery {
			t.Errorf("webhook calls after recovery: %+v", calls)
		}
		if strings.Contains(s.stderr.String(), secret) {
			t.Errorf("the webhook secret is in the server log")
		}
	})
}

// TestAlertEgressGuard: webhook and Slack targets on internal addresses are
// refused when the alert is created (400 naming the channel) unless their
// host is on --egress-allow; a webhook to an allowed host that redirects to
// a non-allowed loopback address fails without reaching it.
func TestAlertEgressGuard(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *database) {
		secret := "webhook-secret-" + randHex(8)
		allowed := startHook(t, "127.0.0.2:0", secret)
		forbidden := startHook(t, "127.0.0.3:0", secret)
		target := strings.TrimSuffix(forbidden.URL, "/hook") + "/stolen"
		e := newAlertEnv(t, db, 500, "DATAPULSE_EGRESS_ALLOW=127.0.0.2")
		s := e.s

		_, forbiddenPort, _ := net.SplitHostPort(strings.TrimPrefix(strings.TrimSuffix(forbidden.URL, "/hook"), "http://"))
		for _, ch := range []map[string]any{
			{"type": "webhook", "target": "https://127.0.0.1/hook", "secret": secret},
			{"type": "webhook", "target": "http://127.0.0.1:" + forbiddenPort + "/hook", "secret": secret},
			{"type": "webhook", "target": "https://[::1]/hook", "secret": secret},
			{"type": "webhook", "target": "https://10.0.0.1/hook", "secret": secret},
			{"type": "webhook", "target": "https://169.254.169.254/latest/meta-data", "secret": secret},
			{"type": "webhook", "target": "https://localhost/hook", "secret": secret},
			{"type": "webhook", "target": forbidden.URL, "secret": secret},
			{"type": "slack", "target": "https://127.0.0.1/services/T0/B0/x"},
			{"type": "slack", "target": "https://[::1]/services/T0/B0/x"},
			{"type": "slack", "target": "https://10.0.0.1/services/T0/B0/x"},
			{"type": "slack", "target": "https://169.254.169.254/services/T0/B0/x"},
			{"type": "slack", "target": "https://localhost/services/T0/B0/x"},
		} {
			chans := []map[string]any{{"type": "email", "target": "ops@example.com"}, ch}
			b := s.call(http.MethodPost, "/api/v1/alerts", e.admin, e.alertBody(60, chans), http.StatusBadRequest, nil)
			if !strings.Contains(string(b), "channels[1]") {
				t.Errorf("%v: the refusal does not name the channel: %s", ch, b)
			}
			if strings.Contains(string(b), secret) {
				t.Errorf("%v: the refusal contains the secret: %s", ch, b)
			}
		}
		var list struct {
			Items []alertOut `json:"items"`
		}
		s.call(http.MethodGet, "/api/v1/alerts", e.admin, nil, http.StatusOK, &list)
		if len(list.Items) != 0 {
			t.Fatalf("refused alerts were created: %+v", list.Items)
		}

		// The allowed host answers with a redirect to a forbidden one.
		var a alertOut
		s.call(http.MethodPost, "/api/v1/alerts", e.admin, e.alertBody(60, []map[string]any{
			{"type": "webhook", "target": allowed.URL, "secret": secret},
		}), http.StatusCreated, &a)
		allowed.redirect = target
		var tr struct {
			Results []struct {
				Type  string `json:"type"`
				OK    bool   `json:"ok"`
				Error string `json:"error"`
			} `json:"results"`
		}
		s.call(http.MethodPost, "/api/v1/alerts/"+a.ID+"/test-notification", e.admin, nil, http.StatusOK, &tr)
		if len(tr.Results) != 1 || tr.Results[0].OK || tr.Results[0].Error == "" {
			t.Errorf("test notification through a redirecting webhook: %+v", tr.Results)
		}
		if len(allowed.all()) == 0 {
			t.Errorf("the allowed webhook host was not called")
		}
		// A fired alert's delivery job fails the same way.
		var ev evalOut
		s.call(http.MethodPost, "/api/v1/alerts/"+a.ID+"/evaluate", e.admin, nil, http.StatusOK, &ev)
		if ev.State != "alerting" {
			t.Fatalf("evaluation: %+v", ev)
		}
		before := len(allowed.all())
		waitUntil(t, "the firing delivery to reach the allowed host", func() bool { return len(allowed.all()) > before })
		if n := len(forbidden.all()); n != 0 {
			t.Fatalf("the forbidden listener behind the redirect was reached %d times", n)
		}
	})
}

// jobCounts reads datapulse_jobs{kind,state} for kind from /metrics (admin).
func jobCounts(t *testing.T, s *server, admin, kind string) map[string]int {
	t.Helper()
	b := s.call(http.MethodGet, "/metrics", admin, nil, http.StatusOK, nil)
	out := map[string]int{}
	prefix := `datapulse_jobs{kind="` + kind + `",state="`
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		rest := line[len(prefix):]
		i := strings.Index(rest, `"} `)
		if i < 0 {
			continue
		}
		var n float64
		if _, err := fmt.Sscan(rest[i+3:], &n); err == nil {
			out[rest[:i]] = int(n)
		}
	}
	return out
}

// TestAlertDeliveriesSurviveKill9: two alerts fire with an email and two
// webhook channels each. The emails go out at once; the webhook receiver
// refuses the first two attempts of every delivery (503), so River holds
// them for a retry. The server is killed with SIGKILL while they wait (none
// running), restarted on the same data: every delivery arrives, each
// delivery id is accepted exactly once, and no email is sent again.
func TestAlertDeliveriesSurviveKill9(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *database) {
		box := startMailbox(t)
		secret := "webhook-secret-" + randHex(8)
		hook := startHook(t, "127.0.0.1:0", secret)
		hook.status = func(_ string, n int) int {
			if n < 2 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		}
		env := []string{"DATAPULSE_SMTP_URL=smtp://" + box.Addr, "DATAPULSE_SMTP_FROM=alerts@example.com",
			"DATAPULSE_PUBLIC_URL=https://bi.example.com", "DATAPULSE_EGRESS_ALLOW=127.0.0.1"}
		e := newAlertEnv(t, db, 500, env...)
		s := e.s
		var ids []string
		for i := range 2 {
			var a alertOut
			s.call(http.MethodPost, "/api/v1/alerts", e.admin, e.alertBody(3600, []map[string]any{
				{"type": "email", "target": "ops@example.com"},
				{"type": "webhook", "target": hook.URL + "?c=1", "secret": secret},
				{"type": "webhook", "target": hook.URL + "?c=2", "secret": secret},
			}), http.StatusCreated, &a)
			ids = append(ids, a.ID)
			var ev evalOut
			s.call(http.MethodPost, "/api/v1/alerts/"+a.ID+"/evaluate", e.admin, nil, http.StatusOK, &ev)
			if ev.State != "alerting" {
				t.Fatalf("alert %d: evaluation %+v", i, ev)
			}
		}
		const webhooks, emails = 4, 2
		attempts := func() map[string]int {
			m := map[string]int{}
			for _, c := range hook.all() {
				m[c.Delivery]++
			}
			return m
		}
		// Every webhook delivery failed twice and is recorded as waiting for
		// its third attempt (attempt⁴ s: about 16 s away), nothing runs.
		waitUntil(t, "two failed attempts of every webhook delivery, recorded", func() bool {
			a := attempts()
			if len(a) != webhooks {
				return false
			}
			for _, n := range a {
				if n != 2 {
					return false
				}
			}
			c := jobCounts(t, s, e.admin, "alerts.deliver")
			return c["running"] == 0 && c["available"] == 0 && c["retryable"]+c["scheduled"] == webhooks && c["completed"] == emails
		})
		if n := len(box.messages()); n != emails {
			t.Fatalf("%d emails before the kill, want %d", n, emails)
		}
		s.signal(syscall.SIGKILL)
		s.wait(exitTimeout)

		s2 := startServer(t, db, env...)
		admin2 := s2.login("root@example.com", e.adminPW).AccessToken
		deadline := time.Now().Add(2 * alertWait) // River's third attempt comes ~16 s after the second
		for {
			c := jobCounts(t, s2, admin2, "alerts.deliver")
			if c["completed"] == webhooks+emails && len(hook.accepted()) == webhooks {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("deliveries not finished after the restart: jobs %v, attempts per delivery id %v", c, attempts())
			}
			time.Sleep(200 * time.Millisecond)
		}
		okPerID := map[string]int{}
		for _, c := range hook.accepted() {
			okPerID[c.Delivery]++
			if !hook.signedOK(c) {
				t.Errorf("delivery %s: bad signature %q", c.Delivery, c.Signature)
			}
		}
		for id := range attempts() {
			if okPerID[id] != 1 {
				t.Errorf("delivery %s accepted %d times, want 1", id, okPerID[id])
			}
		}
		if len(okPerID) != webhooks {
			t.Errorf("accepted delivery ids %v, want %d distinct", okPerID, webhooks)
		}
		mailIDs := map[string]int{}
		for _, m := range box.messages() {
			hdr, _, _ := emailParts(t, m.Data)
			mailIDs[hdr.Get("X-DataPulse-Delivery")]++
		}
		if len(box.messages()) != emails || len(mailIDs) != emails {
			t.Errorf("emails after the restart: %d messages, delivery ids %v; want %d distinct, once each", len(box.messages()), mailIDs, emails)
		}
		// Each alert's notifications were written once (owner only).
		for _, id := range ids {
			var notes struct {
				Items []notificationOut `json:"items"`
			}
			s2.call(http.MethodGet, "/api/v1/alert-notifications?alert="+id, admin2, nil, http.StatusOK, &notes)
			if len(notes.Items) != 1 {
				t.Errorf("alert %s: notifications %+v, want 1", id, notes.Items)
			}
		}
	})
}
