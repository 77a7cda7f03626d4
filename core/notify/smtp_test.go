package notify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/datapulse/datapulse/core/egress"
	"github.com/datapulse/datapulse/core/notify"
)

// received is one message as the test SMTP server saw it.
type received struct {
	From     string
	To       []string
	Data     []byte
	TLS      bool // the session was encrypted when MAIL FROM came
	AuthUser string
	AuthPass string
}

// smtpServer is a real go-smtp server on a loopback address.
type smtpServer struct {
	Addr string
	mu   sync.Mutex
	msgs []received
	// connections counts accepted sessions.
	conns int
}

func (s *smtpServer) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

func (s *smtpServer) sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

type session struct {
	srv  *smtpServer
	conn *smtp.Conn
	auth bool // AUTH offered
	cur  received
}

func (s *session) AuthMechanisms() []string {
	if !s.auth {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != "alerts" || pass != testSMTPPassword {
			return errors.New("invalid credentials")
		}
		s.cur.AuthUser, s.cur.AuthPass = user, pass
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.auth && s.cur.AuthUser == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	_, s.cur.TLS = s.conn.TLSConnectionState()
	s.cur.From = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = b
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, s.cur)
	s.srv.mu.Unlock()
	return nil
}

func (s *session) Reset() {
	user, pass := s.cur.AuthUser, s.cur.AuthPass
	s.cur = received{AuthUser: user, AuthPass: pass}
}
func (s *session) Logout() error { return nil }

const testSMTPPassword = "s3cr!t p@ss/word"

type smtpMode int

const (
	plainOnly   smtpMode = iota // no STARTTLS offered
	startTLS                    // STARTTLS offered
	implicitTLS                 // TLS from the first byte (smtps)
)

// startSMTP runs a go-smtp server on addr (a loopback address).
func startSMTP(t *testing.T, addr string, mode smtpMode, auth bool, cert *tls.Certificate) *smtpServer {
	t.Helper()
	srv := &smtpServer{}
	be := smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		srv.mu.Lock()
		srv.conns++
		srv.mu.Unlock()
		return &session{srv: srv, conn: c, auth: auth}, nil
	})
	s := smtp.NewServer(be)
	s.Domain = "mx.test"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	s.AllowInsecureAuth = true // the client, not the server, must refuse clear-text passwords
	var l net.Listener
	var err error
	switch mode {
	case plainOnly:
		l, err = net.Listen("tcp", addr)
	case startTLS:
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
		l, err = net.Listen("tcp", addr)
	case implicitTLS:
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
		l, err = tls.Listen("tcp", addr, s.TLSConfig)
	}
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	srv.Addr = l.Addr().String()
	return srv
}

// selfSigned makes a certificate for 127.0.0.1 and mail.test, and a pool
// trusting it.
func selfSigned(t *testing.T) (*tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"mail.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func testMessage() notify.Message {
	return notify.Message{
		DeliveryID: "dlv-0001",
		Event:      "alert.triggered",
		Title:      "Revenue <b>dropped</b> & fell",
		Text:       "Daily revenue is below the threshold.\n<script>alert(1)</script>",
		Fields:     []notify.Field{{Name: "Value", Value: "42"}, {Name: "Threshold", Value: "< 50"}},
		LinkPath:   "/alerts/7",
		OccurredAt: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC),
	}
}

// parts returns the decoded text/plain and text/html parts of a message.
func parts(t *testing.T, m *mail.Message) (text, html string) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q: %v", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p) // quoted-printable is decoded by multipart
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			text = string(b)
		case "text/html":
			html = string(b)
		}
	}
	return text, html
}

func newNotifier(t *testing.T, g *egress.Guard, smtpURL string, pool *x509.CertPool) *notify.Notifier {
	t.Helper()
	cfg := notify.Config{
		Guard:     g,
		PublicURL: "https://bi.example.com/",
		Timeout:   10 * time.Second,
		SMTP:      notify.SMTPConfig{URL: smtpURL, From: "DataPulse <alerts@example.com>"},
	}
	if pool != nil {
		cfg.SMTP.TLSConfig = &tls.Config{RootCAs: pool}
	}
	n, err := notify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func smtpURL(scheme, user string, addr string) string {
	u := url.URL{Scheme: scheme, Host: addr}
	if user != "" {
		u.User = url.UserPassword(user, testSMTPPassword)
	}
	return u.String()
}

func TestEmailSTARTTLSWithAuth(t *testing.T) {
	cert, pool := selfSigned(t)
	srv := startSMTP(t, "127.0.0.1:0", startTLS, true, cert)
	n := newNotifier(t, egress.New(egress.MustParseAllowList("127.0.0.1")), smtpURL("smtp", "alerts", srv.Addr), pool)

	res := n.Send(context.Background(), notify.Channel{Type: notify.TypeEmail, Target: "ops@example.org"}, testMessage())
	if !res.OK() {
		t.Fatalf("send: %v", res.Err)
	}
	msgs := srv.messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages", len(msgs))
	}
	got := msgs[0]
	if !got.TLS {
		t.Fatal("STARTTLS was offered but the message went in clear")
	}
	if got.AuthUser != "alerts" || got.AuthPass != testSMTPPassword {
		t.Fatalf("auth: %q", got.AuthUser)
	}
	if got.From != "alerts@example.com" || len(got.To) != 1 || got.To[0] != "ops@example.org" {
		t.Fatalf("envelope: from %q to %v", got.From, got.To)
	}
	m, err := mail.ReadMessage(strings.NewReader(string(got.Data)))
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if subj != "Revenue <b>dropped</b> & fell" {
		t.Errorf("subject %q", subj)
	}
	if from, _ := m.Header.AddressList("From"); len(from) != 1 || from[0].Address != "alerts@example.com" || from[0].Name != "DataPulse" {
		t.Errorf("From %q", m.Header.Get("From"))
	}
	if to, _ := m.Header.AddressList("To"); len(to) != 1 || to[0].Address != "ops@example.org" {
		t.Errorf("To %q", m.Header.Get("To"))
	}
	if m.Header.Get("X-DataPulse-Delivery") != "dlv-0001" || m.Header.Get("Message-ID") != "<dlv-0001@example.com>" {
		t.Errorf("delivery %q, message id %q", m.Header.Get("X-DataPulse-Delivery"), m.Header.Get("Message-ID"))
	}
	text, html := parts(t, m)
	for _, want := range []string{"Daily revenue is below the threshold.", "Value: 42", "Threshold: < 50", "Open in DataPulse: https://bi.example.com/alerts/7", "<script>alert(1)</script>"} {
		if !strings.Contains(text, want) {
			t.Errorf("text body lacks %q:\n%s", want, text)
		}
	}
	for _, want := range []string{"Revenue &lt;b&gt;dropped&lt;/b&gt; &amp; fell", "&lt;script&gt;alert(1)&lt;/script&gt;", "<td>42</td>", "<td>&lt; 50</td>", `<a href="https://bi.example.com/alerts/7">Open in DataPulse</a>`} {
		if !strings.Contains(html, want) {
			t.Errorf("html body lacks %q:\n%s", want, html)
		}
	}
	if strings.Contains(html, "<script>") || strings.Contains(html, "<b>dropped") {
		t.Errorf("html body is not escaped:\n%s", html)
	}
}

func TestEmailPlainWhenSTARTTLSNotOffered(t *testing.T) {
	srv := startSMTP(t, "127.0.0.1:0", plainOnly, false, nil)
	n := newNotifier(t, egress.New(egress.MustParseAllowList("127.0.0.1")), smtpURL("smtp", "", srv.Addr), nil)
	res := n.SendEmail(context.Background(), "ops@example.org", testMessage())
	if !res.OK() {
		t.Fatalf("send: %v", res.Err)
	}
	msgs := srv.messages()
	if len(msgs) != 1 || msgs[0].TLS || msgs[0].To[0] != "ops@example.org" {
		t.Fatalf("want one message in clear, got %+v", msgs)
	}
}

func TestEmailImplicitTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	srv := startSMTP(t, "127.0.0.1:0", implicitTLS, true, cert)
	n := newNotifier(t, egress.New(egress.MustParseAllowList("127.0.0.1")), smtpURL("smtps", "alerts", srv.Addr), pool)
	res := n.SendEmail(context.Background(), "ops@example.org", testMessage())
	if !res.OK() {
		t.Fatalf("send: %v", res.Err)
	}
	msgs := srv.messages()
	if len(msgs) != 1 || !msgs[0].TLS || msgs[0].AuthPass != testSMTPPassword {
		t.Fatalf("want one message over TLS with auth, got %d", len(msgs))
	}
}

func TestEmailUntrustedCertificateFails(t *testing.T) {
	cert, _ := selfSigned(t)
	srv := startSMTP(t, "127.0.0.1:0", startTLS, false, cert)
	// No RootCAs: the system roots do not trust the test certificate, and
	// there is no silent fallback to clear text.
	n := newNotifier(t, egress.New(egress.MustParseAllowList("127.0.0.1")), smtpURL("smtp", "", srv.Addr), nil)
	res := n.SendEmail(context.Background(), "ops@example.org", testMessage())
	if res.OK() || len(srv.messages()) != 0 {
		t.Fatalf("want a TLS failure, got err=%v, %d messages", res.Err, len(srv.messages()))
	}
	if !strings.Contains(res.Err.Error(), "certificate") {
		t.Fatalf("error should name the certificate problem: %v", res.Err)
	}
}

func TestEmailPasswordNotSentInClear(t *testing.T) {
	// "mail.test" resolves to 127.0.0.1 through the test resolver: not a
	// loopback *name*, so a password must not go over a clear connection.
	srv := startSMTP(t, "127.0.0.1:0", plainOnly, true, nil)
	_, port, _ := net.SplitHostPort(srv.Addr)
	g := egress.New(egress.MustParseAllowList("mail.test"), egress.WithLookup(func(context.Context, string, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}))
	n := newNotifier(t, g, smtpURL("smtp", "alerts", "mail.test:"+port), nil)
	res := n.SendEmail(context.Background(), "ops@example.org", testMessage())
	if res.OK() || len(srv.messages()) != 0 {
		t.Fatalf("want a refusal, got err=%v", res.Err)
	}
	if !strings.Contains(res.Err.Error(), "refusing to send the SMTP password in clear") || !res.Permanent {
		t.Fatalf("error: %v (permanent %v)", res.Err, res.Permanent)
	}
	if strings.Contains(res.Err.Error(), testSMTPPassword) {
		t.Fatal("password in error")
	}
}

func TestEmailPasswordNeverInErrors(t *testing.T) {
	cert, pool := selfSigned(t)
	srv := startSMTP(t, "127.0.0.1:0", startTLS, true, cert)
	u := url.URL{Scheme: "smtp", Host: srv.Addr, User: url.UserPassword("alerts", "wrong-"+testSMTPPassword)}
	n := newNotifier(t, egress.New(egress.MustParseAllowList("127.0.0.1")), u.String(), pool)
	res := n.SendEmail(context.Background(), "ops@example.org", testMessage())
	if res.OK() {
		t.Fatal("wrong password accepted")
	}
	for _, leak := range []string{"wrong-" + testSMTPPassword, url.QueryEscape("wrong-" + testSMTPPassword), testSMTPPassword} {
		if strings.Contains(res.Err.Error(), leak) {
			t.Fatalf("error leaks the password: %v", res.Err)
		}
	}
	if !strings.Contains(res.Err.Error(), "smtp://alerts:xxxxx@127.0.0.1:") {
		t.Fatalf("error should name the redacted server: %v", res.Err)
	}

	// Parse errors of a URL with a password do not repeat it either.
	for _, bad := range []string{"smtp://alerts:" + testSMTPPassword + "@host:99999", "ftp://alerts:" + testSMTPPassword + "@host", "smtp://alerts:" + testSMTPPassword + "@host/path", "smtp://:" + testSMTPPassword + "@host", "smtp://alerts:" + testSMTPPassword + "@[::1"} {
		_, err := notify.ParseSMTPURL(bad)
		if err == nil {
			t.Errorf("ParseSMTPURL accepted %q", bad)
			continue
		}
		if strings.Contains(err.Error(), "s3cr") {
			t.Errorf("parse error leaks the password: %v", err)
		}
		if _, err := notify.New(notify.Config{Guard: egress.New(egress.AllowList{}), SMTP: notify.SMTPConfig{URL: bad, From: "a@b.example"}}); err == nil || strings.Contains(err.Error(), "s3cr") {
			t.Errorf("New(%q): %v", bad, err)
		}
	}
	p, err := notify.ParseSMTPURL((&url.URL{Scheme: "smtps", User: url.UserPassword("alerts", testSMTPPassword), Host: "mail.example.com"}).String())
	if err != nil || p.Port != 465 || !p.ImplicitTLS || p.Password != testSMTPPassword || p.String() != "smtps://alerts:xxxxx@mail.example.com:465" {
		t.Fatalf("parse: %+v %v", p, err)
	}
}

func TestEmailRefusedByEgressGuard(t *testing.T) {
	srv := startSMTP(t, "127.0.0.1:0", plainOnly, false, nil)
	n := newNotifier(t, egress.New(egress.AllowList{}), smtpURL("smtp", "alerts", srv.Addr), nil)
	res := n.SendEmail(context.Background(), "ops@example.org", testMessage())
	if !errors.Is(res.Err, egress.ErrRefused) || !res.Permanent {
		t.Fatalf("want an egress refusal, got %v", res.Err)
	}
	if !strings.Contains(res.Err.Error(), "127.0.0.1 is a loopback address") || strings.Contains(res.Err.Error(), testSMTPPassword) {
		t.Fatalf("error: %v", res.Err)
	}
	if srv.sessions() != 0 {
		t.Fatal("the SMTP server was reached")
	}
}

func TestEmailNotConfigured(t *testing.T) {
	n, err := notify.New(notify.Config{Guard: egress.New(egress.AllowList{})})
	if err != nil {
		t.Fatal(err)
	}
	res := n.Send(context.Background(), notify.Channel{Type: notify.TypeEmail, Target: "ops@example.org"}, testMessage())
	if res.OK() || !res.Permanent || !strings.Contains(res.Err.Error(), "--smtp-url") || n.EmailEnabled() {
		t.Fatalf("want a permanent 'not configured' error, got %v", res.Err)
	}
}
