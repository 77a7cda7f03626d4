package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Webhook headers.
const (
	HeaderSignature = "X-DataPulse-Signature"
	HeaderDelivery  = "X-DataPulse-Delivery"
	HeaderEvent     = "X-DataPulse-Event"
	userAgent       = "DataPulse-Notify/1"
)

// WebhookPayload is the JSON body of a webhook delivery.
type WebhookPayload struct {
	DeliveryID string         `json:"delivery_id"`
	Event      string         `json:"event,omitempty"`
	Title      string         `json:"title"`
	Text       string         `json:"text,omitempty"`
	Fields     []Field        `json:"fields,omitempty"`
	URL        string         `json:"url,omitempty"`
	OccurredAt time.Time      `json:"occurred_at"`
	Data       map[string]any `json:"data,omitempty"`
}

// Sign returns the X-DataPulse-Signature value of body: "sha256=" and the
// hex HMAC-SHA256 of the exact body bytes keyed with the channel secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header against body in constant time (what a
// receiver does; also used by tests).
func Verify(secret string, body []byte, header string) bool {
	got, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	sig, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hmac.Equal(sig, m.Sum(nil))
}

// SendWebhook POSTs msg as JSON to target, signed with secret. Redirects are
// not followed: a 3xx answer is a (permanent) failure. Validate the channel
// first (Send does).
func (n *Notifier) SendWebhook(ctx context.Context, target, secret string, msg Message) Result {
	res := Result{Type: TypeWebhook, DeliveryID: msg.DeliveryID}
	if msg.DeliveryID == "" {
		res.Err, res.Permanent = fmt.Errorf("webhook: a delivery id is required"), true
		return res
	}
	body, err := json.Marshal(WebhookPayload{
		DeliveryID: msg.DeliveryID,
		Event:      msg.Event,
		Title:      msg.Title,
		Text:       msg.Text,
		Fields:     msg.Fields,
		URL:        n.link(msg),
		OccurredAt: occurredAt(msg),
		Data:       msg.Data,
	})
	if err != nil {
		res.Err, res.Permanent = fmt.Errorf("webhook: encode body: %w", err), true
		return res
	}
	hdr := http.Header{}
	hdr.Set(HeaderSignature, Sign(secret, body))
	hdr.Set(HeaderDelivery, msg.DeliveryID)
	if msg.Event != "" {
		hdr.Set(HeaderEvent, msg.Event)
	}
	res.Status, res.Err, res.Permanent = n.post(ctx, "webhook", target, maskWebhook(target), hdr, body, nil)
	return res
}

// post sends one JSON POST through the guarded client. ok, when set,
// checks a 2xx answer's body (Slack answers "ok").
func (n *Notifier) post(ctx context.Context, kind, target, shown string, hdr http.Header, body []byte, ok func([]byte) error) (int, error, bool) {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%s %s: bad target", kind, shown), true
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := n.http.Do(req)
	if err != nil {
		err, perm := transportError(kind, shown, err)
		return 0, err, perm
	}
	defer resp.Body.Close()
	// Read a little for the error snippet / Slack's "ok", drain a bounded
	// amount more so the connection can be reused, never echo the rest.
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		if ok != nil {
			if err := ok(head); err != nil {
				return code, fmt.Errorf("%s %s: %w", kind, shown, err), false
			}
		}
		return code, nil, false
	case code >= 300 && code < 400:
		return code, fmt.Errorf("%s %s: receiver answered %s (redirects are not followed)", kind, shown, statusText(code)), true
	default:
		msg := fmt.Sprintf("%s %s: receiver answered %s", kind, shown, statusText(code))
		if s := snippet(head); s != "" {
			msg += fmt.Sprintf(": %q", s)
		}
		return code, fmt.Errorf("%s", msg), permanentStatus(code)
	}
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprint(code)
}
