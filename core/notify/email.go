package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"

	"github.com/datapulse/datapulse/core/egress"
)

// SMTPConfig configures email delivery.
type SMTPConfig struct {
	// URL is smtp://user:pass@host:port (STARTTLS when the server offers
	// it, plain otherwise — e.g. a local relay) or smtps://user:pass@host:port
	// (implicit TLS). Default ports: 587 for smtp, 465 for smtps. User and
	// password are optional; a password is never sent over an unencrypted
	// connection except to a loopback host.
	URL string
	// From is the sender address (--smtp-from), e.g. "DataPulse <alerts@example.com>".
	From string
	// TLSConfig overrides the TLS settings (e.g. RootCAs for a private CA,
	// and tests). Nil: system roots, TLS 1.2+. ServerName is always the URL host.
	TLSConfig *tls.Config
}

// SMTPURL is a parsed --smtp-url. Its String never shows the password.
type SMTPURL struct {
	ImplicitTLS bool
	Host        string
	Port        int
	Username    string
	Password    string
}

func (u SMTPURL) String() string {
	scheme := "smtp"
	if u.ImplicitTLS {
		scheme = "smtps"
	}
	userinfo := ""
	if u.Username != "" {
		userinfo = url.User(u.Username).String()
		if u.Password != "" {
			userinfo += ":xxxxx"
		}
		userinfo += "@"
	}
	return scheme + "://" + userinfo + net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
}

// ParseSMTPURL reads smtp:// or smtps:// URLs. Errors never contain the URL
// (it holds the password).
func ParseSMTPURL(s string) (SMTPURL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return SMTPURL{}, errors.New("smtp-url is not a URL (want smtp://user:pass@host:port or smtps://…)")
	}
	var out SMTPURL
	switch u.Scheme {
	case "smtp":
		out.Port = 587
	case "smtps":
		out.ImplicitTLS, out.Port = true, 465
	default:
		return SMTPURL{}, errors.New("smtp-url must start with smtp:// or smtps://")
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return SMTPURL{}, errors.New("smtp-url needs a host (smtp://user:pass@host:port)")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return SMTPURL{}, errors.New("smtp-url takes no path, query or fragment")
	}
	out.Host = u.Hostname()
	if p := u.Port(); p != "" {
		n, err := parsePort(p)
		if err != nil || n == 0 {
			return SMTPURL{}, errors.New("smtp-url has a bad port")
		}
		out.Port = n
	}
	if u.User != nil {
		out.Username = u.User.Username()
		out.Password, _ = u.User.Password()
		if out.Username == "" {
			return SMTPURL{}, errors.New("smtp-url has a password without a user name")
		}
	}
	return out, nil
}

// ParseFrom checks --smtp-from: one address, display name allowed.
func ParseFrom(s string) (*mail.Address, error) {
	a, err := mail.ParseAddress(s)
	if err != nil || strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("smtp-from is not an email address (want alerts@example.com or \"DataPulse <alerts@example.com>\")")
	}
	return a, nil
}

type emailSender struct {
	u       SMTPURL
	from    *mail.Address
	tls     *tls.Config
	guard   *egress.Guard
	timeout time.Duration
}

func newEmailSender(cfg SMTPConfig, g *egress.Guard, timeout time.Duration) (*emailSender, error) {
	u, err := ParseSMTPURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	if cfg.From == "" {
		return nil, errors.New("notify: smtp-from is required with smtp-url")
	}
	from, err := ParseFrom(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	tc.ServerName = u.Host
	return &emailSender{u: u, from: from, tls: tc, guard: g, timeout: timeout}, nil
}

// errCleartextAuth: the server offered no TLS and is not on loopback.
var errCleartextAuth = errors.New("the server did not offer TLS (STARTTLS): refusing to send the SMTP password in clear; use smtps:// or a server with STARTTLS")

// guardedAuth picks PLAIN or LOGIN and refuses to send the password over
// an unencrypted connection (loopback hosts excepted: a local relay).
type guardedAuth struct {
	user, pass, host string
	inner            gosmtp.Auth
}

func (a *guardedAuth) Start(s *gosmtp.ServerInfo) (string, []byte, error) {
	if !s.TLS && !isLoopbackHost(a.host) {
		return "", nil, errCleartextAuth
	}
	switch {
	case slices.Contains(s.Auth, "PLAIN"):
		a.inner = gosmtp.PlainAuth("", a.user, a.pass, a.host, true)
	case slices.Contains(s.Auth, "LOGIN"):
		a.inner = gosmtp.LoginAuth(a.user, a.pass, a.host, true)
	default:
		return "", nil, errors.New("the server offers neither AUTH PLAIN nor AUTH LOGIN")
	}
	return a.inner.Start(s)
}

func (a *guardedAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	return a.inner.Next(fromServer, more)
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Unmap().IsLoopback()
}

// dial connects through the egress guard; for smtps it does the TLS
// handshake itself (go-mail does not wrap a custom dialer's connection).
func (e *emailSender) dial(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := e.guard.DialContext(ctx, network, address)
	if err != nil || !e.u.ImplicitTLS {
		return c, err
	}
	tc := tls.Client(c, e.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

var emailHTML = htmltemplate.Must(htmltemplate.New("email").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body style="font-family:sans-serif">
<h2>{{.Title}}</h2>
{{if .Text}}<p style="white-space:pre-line">{{.Text}}</p>{{end}}
{{if .Fields}}<table cellpadding="4">{{range .Fields}}
<tr><th align="left">{{.Name}}</th><td>{{.Value}}</td></tr>{{end}}
</table>{{end}}
{{if .Link}}<p><a href="{{.Link}}">{{.LinkText}}</a></p>{{end}}
<p style="color:#888;font-size:small">DataPulse · delivery {{.DeliveryID}}</p>
</body></html>
`))

// emailBodies renders the plain-text and HTML bodies (the HTML escapes
// everything it is given).
func emailBodies(msg Message, link string) (text, html string, err error) {
	var tb strings.Builder
	tb.WriteString(msg.Title + "\n\n")
	if msg.Text != "" {
		tb.WriteString(msg.Text + "\n\n")
	}
	for _, f := range msg.Fields {
		tb.WriteString(oneLine(f.Name) + ": " + f.Value + "\n")
	}
	if len(msg.Fields) > 0 {
		tb.WriteString("\n")
	}
	if link != "" {
		tb.WriteString(linkText(msg) + ": " + link + "\n\n")
	}
	tb.WriteString("-- \nDataPulse · delivery " + msg.DeliveryID + "\n")
	var hb bytes.Buffer
	err = emailHTML.Execute(&hb, map[string]any{
		"Title": msg.Title, "Text": msg.Text, "Fields": msg.Fields,
		"Link": link, "LinkText": linkText(msg), "DeliveryID": msg.DeliveryID,
	})
	return tb.String(), hb.String(), err
}

// messageID is stable per delivery, so a retried send is recognisably the
// same message.
func (e *emailSender) messageID(deliveryID string) string {
	id := strings.Map(func(r rune) rune {
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-_", r)) {
			return r
		}
		return '_'
	}, deliveryID)
	domain := "datapulse.invalid"
	if at := strings.LastIndexByte(e.from.Address, '@'); at >= 0 {
		domain = e.from.Address[at+1:]
	}
	return id + "@" + domain
}

// SendEmail sends msg to one address (one attempt). Validate the address
// first (Send does).
func (n *Notifier) SendEmail(ctx context.Context, to string, msg Message) Result {
	res := Result{Type: TypeEmail, DeliveryID: msg.DeliveryID}
	e := n.email
	if e == nil {
		res.Err, res.Permanent = errors.New("email: not configured (set --smtp-url and --smtp-from)"), true
		return res
	}
	if msg.DeliveryID == "" {
		res.Err, res.Permanent = errors.New("email: a delivery id is required"), true
		return res
	}
	text, html, err := emailBodies(msg, n.link(msg))
	if err != nil {
		res.Err, res.Permanent = fmt.Errorf("email: render: %w", err), true
		return res
	}
	m := gomail.NewMsg()
	if err := m.From(e.from.String()); err != nil {
		res.Err, res.Permanent = fmt.Errorf("email: from: %w", err), true
		return res
	}
	if err := m.To(to); err != nil {
		res.Err, res.Permanent = fmt.Errorf("email: recipient %q: %w", to, err), true
		return res
	}
	subject := oneLine(msg.Title)
	if subject == "" {
		subject = "DataPulse notification"
	}
	m.Subject(subject)
	m.SetMessageIDWithValue(e.messageID(msg.DeliveryID))
	m.SetDateWithValue(occurredAt(msg))
	m.SetGenHeader(gomail.Header(HeaderDelivery), msg.DeliveryID)
	if msg.Event != "" {
		m.SetGenHeader(gomail.Header(HeaderEvent), msg.Event)
	}
	m.SetUserAgent(userAgent)
	m.SetBodyString(gomail.TypeTextPlain, text)
	m.AddAlternativeString(gomail.TypeTextHTML, html)

	opts := []gomail.Option{
		gomail.WithPort(e.u.Port),
		gomail.WithTimeout(n.timeout),
		gomail.WithDialContextFunc(e.dial),
		gomail.WithTLSConfig(e.tls),
	}
	if e.u.ImplicitTLS {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if e.u.Username != "" {
		opts = append(opts, gomail.WithSMTPAuthCustom(&guardedAuth{user: e.u.Username, pass: e.u.Password, host: e.u.Host}))
	}
	c, err := gomail.NewClient(e.u.Host, opts...)
	if err != nil {
		res.Err, res.Permanent = fmt.Errorf("email: %s", e.redact(err)), true
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		res.Permanent = errors.Is(err, egress.ErrRefused) || errors.Is(err, errCleartextAuth) || permanentSMTP(err)
		shown := e.u.String()
		if errors.Is(err, egress.ErrRefused) {
			var re *egress.RefusedError
			errors.As(err, &re)
			res.Err = fmt.Errorf("email via %s: %w", shown, re)
		} else {
			res.Err = fmt.Errorf("email via %s: %s", shown, e.redact(err))
		}
		return res
	}
	return res
}

// redact removes the password from an error text, whatever produced it.
func (e *emailSender) redact(err error) string {
	s := err.Error()
	if e.u.Password != "" {
		s = strings.ReplaceAll(s, e.u.Password, "xxxxx")
		s = strings.ReplaceAll(s, url.QueryEscape(e.u.Password), "xxxxx")
		s = strings.ReplaceAll(s, url.PathEscape(e.u.Password), "xxxxx")
	}
	return s
}

// permanentSMTP: a 5xx reply (other than temporary 4xx ones).
func permanentSMTP(err error) bool {
	var se *gomail.SendError
	if errors.As(err, &se) {
		return !se.IsTemp()
	}
	return false
}
