package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/datapulse/datapulse/core/egress"
)

// Message is what one notification says, independent of the channel.
type Message struct {
	// DeliveryID identifies one delivery to one channel and stays the same
	// across its retries (receivers deduplicate on it). Required.
	DeliveryID string
	// Event is a machine-readable kind, e.g. "alert.triggered".
	Event string
	// Title is one line: email subject, Slack header.
	Title string
	// Text is the plain-text summary.
	Text string
	// Fields are labelled values, e.g. {"Value", "42"}, {"Threshold", "> 40"}.
	Fields []Field
	// LinkPath is a path under --public-url (e.g. "/alerts/7"); the link is
	// left out when the public URL is not configured.
	LinkPath string
	// LinkText labels the link (default "Open in DataPulse").
	LinkText string
	// OccurredAt is when the event happened (default: now).
	OccurredAt time.Time
	// Data is extra machine-readable detail, sent as "data" in webhook
	// bodies only. It must marshal to JSON.
	Data map[string]any
}

// Field is a labelled value.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Result is the outcome of one delivery attempt to one channel.
type Result struct {
	Type       Type
	DeliveryID string
	// Status is the HTTP status of webhook/Slack answers (0 when none).
	Status int
	// Err is nil on success. Its message never contains secrets, the SMTP
	// password or a Slack URL, and at most a short sanitized snippet of a
	// receiver's answer.
	Err error
	// Permanent means retrying the same message will not help (invalid
	// channel, refused address, 4xx other than 408/429, a redirect).
	Permanent bool
}

// OK reports success.
func (r Result) OK() bool { return r.Err == nil }

// Config configures a Notifier.
type Config struct {
	// Guard checks every outbound connection. Required.
	Guard *egress.Guard
	// SMTP configures email; an empty SMTP.URL disables email channels.
	SMTP SMTPConfig
	// PublicURL is --public-url, the base of links back to DataPulse.
	PublicURL string
	// Timeout bounds one attempt (connect + send + answer); default 15s.
	Timeout time.Duration
}

// Notifier sends messages to channels, one attempt each. It is safe for
// concurrent use.
type Notifier struct {
	guard     *egress.Guard
	http      *http.Client
	email     *emailSender
	publicURL string
	timeout   time.Duration
}

// DefaultTimeout bounds one attempt when Config.Timeout is zero.
const DefaultTimeout = 15 * time.Second

// New builds a Notifier. It fails on a bad SMTP URL or from address (the
// error never repeats the password).
func New(cfg Config) (*Notifier, error) {
	if cfg.Guard == nil {
		return nil, errors.New("notify: an egress guard is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	n := &Notifier{
		guard:     cfg.Guard,
		http:      cfg.Guard.HTTPClient(cfg.Timeout, false),
		publicURL: strings.TrimRight(cfg.PublicURL, "/"),
		timeout:   cfg.Timeout,
	}
	if cfg.SMTP.URL != "" {
		e, err := newEmailSender(cfg.SMTP, cfg.Guard, cfg.Timeout)
		if err != nil {
			return nil, err
		}
		n.email = e
	}
	return n, nil
}

// EmailEnabled reports whether --smtp-url is configured.
func (n *Notifier) EmailEnabled() bool { return n.email != nil }

// Send delivers msg to ch (one attempt). The channel is validated first
// (against the guard's allow list).
func (n *Notifier) Send(ctx context.Context, ch Channel, msg Message) Result {
	if err := ch.Validate(n.guard.Allow()); err != nil {
		return Result{Type: ch.Type, DeliveryID: msg.DeliveryID, Err: fmt.Errorf("%s: %w", ch.Type, err), Permanent: true}
	}
	switch ch.Type {
	case TypeEmail:
		return n.SendEmail(ctx, ch.Target, msg)
	case TypeWebhook:
		return n.SendWebhook(ctx, ch.Target, ch.Secret, msg)
	default:
		return n.SendSlack(ctx, ch.Target, msg)
	}
}

// link is the absolute link of msg, or "" without a public URL or path.
func (n *Notifier) link(msg Message) string {
	if n.publicURL == "" || msg.LinkPath == "" || !strings.HasPrefix(msg.LinkPath, "/") || strings.HasPrefix(msg.LinkPath, "//") {
		return ""
	}
	return n.publicURL + msg.LinkPath
}

func linkText(msg Message) string {
	if msg.LinkText != "" {
		return msg.LinkText
	}
	return "Open in DataPulse"
}

func occurredAt(msg Message) time.Time {
	if msg.OccurredAt.IsZero() {
		return time.Now().UTC()
	}
	return msg.OccurredAt.UTC()
}

// permanentStatus: answers that a retry of the same request will not change.
func permanentStatus(code int) bool {
	if code >= 300 && code < 400 {
		return true
	}
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

// transportError rewrites an http.Client error so it names the target as
// shown (redacted), not the URL: *url.Error repeats the full URL, and a
// Slack URL is a credential.
func transportError(kind, shown string, err error) (error, bool) {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, egress.ErrRefused) {
		return fmt.Errorf("%s %s: %w", kind, shown, err), true
	}
	if errors.Is(err, context.DeadlineExceeded) || (ue != nil && ue.Timeout()) {
		return fmt.Errorf("%s %s: timed out: %w", kind, shown, err), false
	}
	return fmt.Errorf("%s %s: %w", kind, shown, err), false
}

// snippetLen is how much of a failed answer's body appears in an error.
const snippetLen = 200

// snippet keeps printable ASCII of the first snippetLen bytes.
func snippet(b []byte) string {
	if len(b) > snippetLen {
		b = b[:snippetLen]
	}
	var sb strings.Builder
	for _, c := range b {
		switch {
		case c == '\n' || c == '\r' || c == '\t':
			sb.WriteByte(' ')
		case c >= 0x20 && c < 0x7f:
			sb.WriteByte(c)
		default:
			sb.WriteByte('?')
		}
	}
	return strings.TrimSpace(sb.String())
}
