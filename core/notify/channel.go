// Package notify delivers notifications over email (SMTP), signed webhooks
// and Slack incoming webhooks. Every outbound connection goes through the
// egress guard. A send is one attempt: retries, backoff and deduplication
// belong to the caller (River jobs), which passes a delivery id that stays
// the same across the attempts of one delivery.
package notify

import (
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"

	"github.com/datapulse/datapulse/core/egress"
	"github.com/datapulse/datapulse/core/secrets"
)

// Type is a channel kind.
type Type string

const (
	TypeEmail   Type = "email"
	TypeWebhook Type = "webhook"
	TypeSlack   Type = "slack"
)

// Limits of a channel's fields.
const (
	MaxTargetLen       = 2048
	MinWebhookSecret   = 16
	MaxWebhookSecret   = 512
	SlackHost          = "hooks.slack.com"
	slackPathPrefix    = "/services/"
	maxEmailAddressLen = 254
)

// Channel is where a notification goes, in clear (as received from an API
// request or after Sealed.Open). Store it only sealed (Channel.Seal).
//
//   - email:   Target is one email address (no display name); no secret.
//   - webhook: Target is an https URL (http only when its host is on
//     --egress-allow); Secret (16–512 bytes) signs every body.
//   - slack:   Target is the incoming-webhook URL, https://hooks.slack.com/services/…
//     (another host, e.g. a Slack-compatible Mattermost, only when that host
//     is on --egress-allow); the URL is the credential; no secret.
type Channel struct {
	Type   Type   `json:"type"`
	Target string `json:"target"`
	Secret string `json:"secret,omitempty"`
}

// ErrInvalidChannel is matched by every validation error.
var ErrInvalidChannel = errors.New("invalid channel")

type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalidChannel }

func invalid(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// Validate checks the channel against the rules above. allow is the
// --egress-allow list (it relaxes the URL rules for listed hosts). Error
// messages never contain the secret nor a Slack URL.
func (c Channel) Validate(allow egress.AllowList) error {
	if len(c.Target) > MaxTargetLen {
		return invalid("target is longer than %d bytes", MaxTargetLen)
	}
	if strings.TrimSpace(c.Target) != c.Target || c.Target == "" {
		return invalid("target is empty or has surrounding spaces")
	}
	if strings.ContainsFunc(c.Target, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return invalid("target contains control characters")
	}
	switch c.Type {
	case TypeEmail:
		if c.Secret != "" {
			return invalid("an email channel has no secret")
		}
		return validateEmail(c.Target)
	case TypeWebhook:
		if err := validateURL("webhook", c.Target, allow, false); err != nil {
			return err
		}
		if len(c.Secret) < MinWebhookSecret || len(c.Secret) > MaxWebhookSecret {
			return invalid("webhook secret must be %d to %d bytes long", MinWebhookSecret, MaxWebhookSecret)
		}
		return nil
	case TypeSlack:
		if c.Secret != "" {
			return invalid("a slack channel has no secret (the webhook URL is the credential)")
		}
		return validateURL("slack", c.Target, allow, true)
	default:
		return invalid("type must be email, webhook or slack")
	}
}

func validateEmail(s string) error {
	if len(s) > maxEmailAddressLen {
		return invalid("email address is longer than %d bytes", maxEmailAddressLen)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return invalid("target is not a plain email address (want name@example.com)")
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.ContainsAny(s, " \"(),:;<>[\\]") {
		return invalid("target is not a plain email address (want name@example.com)")
	}
	return nil
}

// validateURL: absolute http(s) URL with a host, no user info, no
// fragment; https unless the host is on the allow list; an IP literal host
// must not be an internal address unless listed (the dial would be refused
// anyway: say it now). For slack the host must be hooks.slack.com with a
// /services/ path unless the host is listed.
func validateURL(kind, s string, allow egress.AllowList, slack bool) error {
	u, err := url.Parse(s)
	if err != nil {
		// url.Error would repeat the URL, which may be a credential.
		return invalid("%s target is not a URL", kind)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return invalid("%s target must be an https:// URL", kind)
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return invalid("%s target must be an absolute URL with a host", kind)
	}
	if u.User != nil {
		return invalid("%s target must not contain user:password@ (use the secret)", kind)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return invalid("%s target must not contain a #fragment", kind)
	}
	if p := u.Port(); p != "" {
		if n, err := parsePort(p); err != nil || n == 0 {
			return invalid("%s target has a bad port", kind)
		}
	}
	host := u.Hostname()
	if egress.LooksNumeric(host) {
		return invalid("%s target host is a numeric IP spelling; write the address in dotted form", kind)
	}
	listed := allow.AllowsTarget(host)
	if u.Scheme != "https" && !listed {
		return invalid("%s target must be an https:// URL (plain http only for hosts on --egress-allow)", kind)
	}
	if ip, err := netip.ParseAddr(host); err == nil && !listed {
		if reason := egress.Classify(ip); reason != "" {
			return invalid("%s target host %s is %s; add it to --egress-allow to allow it", kind, ip.WithZone(""), reason)
		}
	}
	// "localhost" and *.localhost always name the loopback (RFC 6761): refuse
	// them now, as a loopback IP literal is, not only at connect time.
	if h := strings.ToLower(strings.TrimSuffix(host, ".")); !listed && (h == "localhost" || strings.HasSuffix(h, ".localhost")) {
		return invalid("%s target host %s is loopback; add it to --egress-allow to allow it", kind, host)
	}
	if slack && !listed {
		if !strings.EqualFold(host, SlackHost) || u.Port() != "" || !strings.HasPrefix(u.Path, slackPathPrefix) || len(u.Path) <= len(slackPathPrefix) {
			return invalid("slack target must be an incoming-webhook URL https://%s/services/… (another host only when on --egress-allow)", SlackHost)
		}
	}
	return nil
}

func parsePort(p string) (int, error) {
	n := 0
	if p == "" || len(p) > 5 {
		return 0, errors.New("bad port")
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, errors.New("bad port")
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, errors.New("bad port")
	}
	return n, nil
}

// Sealed is a channel as stored: the credential parts encrypted with
// core/secrets (the webhook secret; the whole Slack URL), plus what is safe
// to show.
type Sealed struct {
	Type Type `json:"type"`
	// Target is the email address or webhook URL in clear; empty for slack.
	Target string `json:"target,omitempty"`
	// TargetSealed is the sealed Slack URL.
	TargetSealed string `json:"target_sealed,omitempty"`
	// TargetMasked is the Slack URL with its credential path cut off.
	TargetMasked string `json:"target_masked,omitempty"`
	// SecretSealed is the sealed webhook secret.
	SecretSealed string `json:"secret_sealed,omitempty"`
}

// Seal encrypts the credential parts, bound to binding (e.g.
// "alert_channel/<id>"): a sealed value copied to another row does not open.
func (c Channel) Seal(box *secrets.Box, binding string) (Sealed, error) {
	s := Sealed{Type: c.Type}
	var err error
	switch c.Type {
	case TypeSlack:
		if s.TargetSealed, err = box.Seal(c.Target, binding+"/target"); err != nil {
			return Sealed{}, err
		}
		s.TargetMasked = maskSlack(c.Target)
	default:
		s.Target = c.Target
	}
	if c.Secret != "" {
		if s.SecretSealed, err = box.Seal(c.Secret, binding+"/secret"); err != nil {
			return Sealed{}, err
		}
	}
	return s, nil
}

// Open decrypts a sealed channel stored under binding.
func (s Sealed) Open(box *secrets.Box, binding string) (Channel, error) {
	c := Channel{Type: s.Type, Target: s.Target}
	var err error
	if s.TargetSealed != "" {
		if c.Target, err = box.Open(s.TargetSealed, binding+"/target"); err != nil {
			return Channel{}, fmt.Errorf("open channel target: %w", err)
		}
	}
	if s.SecretSealed != "" {
		if c.Secret, err = box.Open(s.SecretSealed, binding+"/secret"); err != nil {
			return Channel{}, fmt.Errorf("open channel secret: %w", err)
		}
	}
	return c, nil
}

// Redacted is a channel as shown by the API: never the secret, never the
// Slack URL.
type Redacted struct {
	Type      Type   `json:"type"`
	Target    string `json:"target"`
	SecretSet bool   `json:"secret_set"`
}

// Redacted renders the stored channel for display.
func (s Sealed) Redacted() Redacted {
	r := Redacted{Type: s.Type, Target: s.Target, SecretSet: s.SecretSealed != ""}
	switch s.Type {
	case TypeSlack:
		r.Target = s.TargetMasked
	case TypeWebhook:
		r.Target = maskWebhook(s.Target)
	}
	return r
}

// Redacted renders a clear channel for display (same output as sealing it
// and redacting the sealed form).
func (c Channel) Redacted() Redacted {
	r := Redacted{Type: c.Type, Target: c.Target, SecretSet: c.Secret != ""}
	switch c.Type {
	case TypeSlack:
		r.Target = maskSlack(c.Target)
	case TypeWebhook:
		r.Target = maskWebhook(c.Target)
	}
	return r
}

// maskSlack keeps scheme and host: https://hooks.slack.com/services/…
func maskSlack(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "…"
	}
	if strings.HasPrefix(u.Path, slackPathPrefix) {
		return u.Scheme + "://" + u.Host + slackPathPrefix + "…"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// maskWebhook drops user info and query values (tokens often live there).
func maskWebhook(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "…"
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	if u.RawQuery != "" {
		u.RawQuery = ""
		return u.String() + "?…"
	}
	return u.String()
}
