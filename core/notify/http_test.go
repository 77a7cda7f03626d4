package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/egress"
	"github.com/datapulse/datapulse/core/notify"
)

// request is one request as the test receiver saw it.
type request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// receiver is a real net/http listener on a loopback address.
type receiver struct {
	URL  string
	mu   sync.Mutex
	reqs []request
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

func startReceiver(t *testing.T, addr string, answer func(w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	rc := &receiver{URL: "http://" + l.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, request{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: b})
		rc.mu.Unlock()
		if answer != nil {
			answer(w, r)
			return
		}
		io.WriteString(w, "ok")
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return rc
}

const webhookSecret = "0123456789abcdef-webhook-secret"

// hmacHex is the receiver's own computation, independent of notify.Sign.
func hmacHex(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func loopbackNotifier(t *testing.T, allow string) *notify.Notifier {
	t.Helper()
	n, err := notify.New(notify.Config{Guard: egress.New(egress.MustParseAllowList(allow)), PublicURL: "https://bi.example.com", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWebhookSignedDelivery(t *testing.T) {
	rc := startReceiver(t, "127.0.0.1:0", nil)
	n := loopbackNotifier(t, "127.0.0.1")
	ch := notify.Channel{Type: notify.TypeWebhook, Target: rc.URL + "/hook?team=ops", Secret: webhookSecret}
	msg := testMessage()
	msg.Data = map[string]any{"alert_id": "7"}
	for i := 0; i < 2; i++ { // a retry: same delivery id, same signature scheme
		if res := n.Send(context.Background(), ch, msg); !res.OK() || res.Status != 200 {
			t.Fatalf("attempt %d: %v (status %d)", i, res.Err, res.Status)
		}
	}
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests", len(reqs))
	}
	for _, r := range reqs {
		if r.Method != http.MethodPost || r.Path != "/hook?team=ops" || r.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("request %s %s %s", r.Method, r.Path, r.Header.Get("Content-Type"))
		}
		if got, want := r.Header.Get("X-DataPulse-Signature"), hmacHex(webhookSecret, r.Body); got != want {
			t.Fatalf("signature %q, want %q", got, want)
		}
		if !notify.Verify(webhookSecret, r.Body, r.Header.Get("X-DataPulse-Signature")) || notify.Verify("another secret 123456", r.Body, r.Header.Get("X-DataPulse-Signature")) {
			t.Fatal("Verify disagrees with the receiver's check")
		}
		if r.Header.Get("X-DataPulse-Delivery") != "dlv-0001" || r.Header.Get("X-DataPulse-Event") != "alert.triggered" {
			t.Fatalf("headers %v", r.Header)
		}
		var p struct {
			DeliveryID string         `json:"delivery_id"`
			Event      string         `json:"event"`
			Title      string         `json:"title"`
			Text       string         `json:"text"`
			Fields     []notify.Field `json:"fields"`
			URL        string         `json:"url"`
			OccurredAt time.Time      `json:"occurred_at"`
			Data       map[string]any `json:"data"`
		}
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		if p.DeliveryID != "dlv-0001" || p.Title != msg.Title || p.URL != "https://bi.example.com/alerts/7" || len(p.Fields) != 2 || p.Fields[1].Value != "< 50" || !p.OccurredAt.Equal(msg.OccurredAt) || p.Data["alert_id"] != "7" {
			t.Fatalf("payload %+v", p)
		}
	}
	// A tampered body fails verification.
	tampered := append([]byte(nil), reqs[0].Body...)
	tampered[len(tampered)-2] ^= 1
	if notify.Verify(webhookSecret, tampered, reqs[0].Header.Get("X-DataPulse-Signature")) {
		t.Fatal("tampered body verified")
	}
}

func TestWebhookNon2xxIsAFailureWithShortSnippet(t *testing.T) {
	long := "upstream exploded\x00\x1b[31m" + strings.Repeat("A", 5000) + "SECRET-TAIL"
	rc := startReceiver(t, "127.0.0.1:0", func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusInternalServerError
		if strings.HasPrefix(r.URL.Path, "/gone") {
			code = http.StatusNotFound
		}
		if strings.HasPrefix(r.URL.Path, "/busy") {
			code = http.StatusTooManyRequests
		}
		w.WriteHeader(code)
		io.WriteString(w, long)
	})
	n := loopbackNotifier(t, "127.0.0.1")
	res := n.SendWebhook(context.Background(), rc.URL+"/x", webhookSecret, testMessage())
	if res.OK() || res.Status != 500 || res.Permanent {
		t.Fatalf("500: %+v", res)
	}
	msg := res.Err.Error()
	if !strings.Contains(msg, "receiver answered 500 Internal Server Error") || !strings.Contains(msg, "upstream exploded") {
		t.Fatalf("error: %s", msg)
	}
	if strings.Contains(msg, "SECRET-TAIL") || strings.ContainsAny(msg, "\x00\x1b") || len(msg) > 400 {
		t.Fatalf("error echoes too much of the body (%d bytes): %q", len(msg), msg)
	}
	if res := n.SendWebhook(context.Background(), rc.URL+"/gone", webhookSecret, testMessage()); res.Status != 404 || !res.Permanent {
		t.Fatalf("404: %+v", res)
	}
	if res := n.SendWebhook(context.Background(), rc.URL+"/busy", webhookSecret, testMessage()); res.Status != 429 || res.Permanent {
		t.Fatalf("429 must be retryable: %+v", res)
	}
}

func TestWebhookRedirectIsAFailure(t *testing.T) {
	// 127.0.0.2 and 127.0.0.3 are both allowed: the redirect is not refused
	// by the guard but by the client, which never follows redirects.
	target := startReceiver(t, "127.0.0.3:0", nil)
	rc := startReceiver(t, "127.0.0.2:0", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/stolen", http.StatusFound)
	})
	n := loopbackNotifier(t, "127.0.0.2,127.0.0.3")
	res := n.Send(context.Background(), notify.Channel{Type: notify.TypeWebhook, Target: rc.URL + "/hook", Secret: webhookSecret}, testMessage())
	if res.OK() || res.Status != http.StatusFound || !res.Permanent || !strings.Contains(res.Err.Error(), "redirects are not followed") {
		t.Fatalf("want a permanent redirect failure, got %+v", res)
	}
	if len(target.requests()) != 0 {
		t.Fatal("the redirect target was reached")
	}
}

func TestWebhookAndSlackSSRFRefused(t *testing.T) {
	rc := startReceiver(t, "127.0.0.1:0", nil)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(rc.URL, "http://"))
	// No allow list; "hooks.evil.test" resolves to loopback (as a rebinding
	// name would on its second lookup).
	g := egress.New(egress.AllowList{}, egress.WithLookup(func(_ context.Context, _, host string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}))
	n, err := notify.New(notify.Config{Guard: g, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Validation says no before any connection for internal IP literals and
	// plain http.
	for _, ch := range []notify.Channel{
		{Type: notify.TypeWebhook, Target: "https://127.0.0.1:" + port + "/", Secret: webhookSecret},
		{Type: notify.TypeWebhook, Target: "https://[::ffff:169.254.169.254]/latest/meta-data", Secret: webhookSecret},
		{Type: notify.TypeWebhook, Target: "http://hooks.evil.test:" + port + "/", Secret: webhookSecret},
		{Type: notify.TypeSlack, Target: "https://10.0.0.1/services/T/B/X"},
	} {
		res := n.Send(ctx, ch, testMessage())
		if res.OK() || !res.Permanent || !errors.Is(res.Err, notify.ErrInvalidChannel) {
			t.Errorf("%s %s: want invalid channel, got %v", ch.Type, ch.Target, res.Err)
		}
	}
	// The guard refuses at connect time what validation cannot know.
	cases := []func() notify.Result{
		func() notify.Result { return n.SendWebhook(ctx, rc.URL+"/", webhookSecret, testMessage()) },
		func() notify.Result {
			return n.SendWebhook(ctx, "http://hooks.evil.test:"+port+"/", webhookSecret, testMessage())
		},
		func() notify.Result { return n.SendSlack(ctx, rc.URL+"/services/T0/B0/SLACKTOKEN", testMessage()) },
		func() notify.Result {
			return n.SendSlack(ctx, "http://[::ffff:127.0.0.1]:"+port+"/services/T0/B0/SLACKTOKEN", testMessage())
		},
	}
	for i, send := range cases {
		res := send()
		if !errors.Is(res.Err, egress.ErrRefused) || !res.Permanent {
			t.Errorf("case %d: want a permanent egress refusal, got %v", i, res.Err)
			continue
		}
		if strings.Contains(res.Err.Error(), "SLACKTOKEN") {
			t.Errorf("case %d: error leaks the Slack URL: %v", i, res.Err)
		}
	}
	if len(rc.requests()) != 0 {
		t.Fatal("the receiver was reached")
	}
}

func TestSlackBlockKit(t *testing.T) {
	rc := startReceiver(t, "127.0.0.1:0", nil)
	n := loopbackNotifier(t, "127.0.0.1")
	ch := notify.Channel{Type: notify.TypeSlack, Target: rc.URL + "/services/T000/B000/XXXXSLACKTOKEN"}
	if res := n.Send(context.Background(), ch, testMessage()); !res.OK() {
		t.Fatal(res.Err)
	}
	reqs := rc.requests()
	if len(reqs) != 1 || reqs[0].Header.Get("Content-Type") != "application/json" || reqs[0].Header.Get("X-DataPulse-Delivery") != "dlv-0001" {
		t.Fatalf("requests %+v", reqs)
	}
	var body struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text *struct {
				Type, Text string
			} `json:"text"`
			Fields []struct {
				Type, Text string
			} `json:"fields"`
			Elements []map[string]any `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Text != "Revenue <b>dropped</b> & fell" || len(body.Blocks) != 5 {
		t.Fatalf("body: %s", reqs[0].Body)
	}
	b := body.Blocks
	if b[0].Type != "header" || b[0].Text.Type != "plain_text" || b[0].Text.Text != "Revenue <b>dropped</b> & fell" {
		t.Errorf("header block: %+v", b[0])
	}
	if b[1].Type != "section" || b[1].Text.Type != "mrkdwn" || !strings.Contains(b[1].Text.Text, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("text block: %+v", b[1])
	}
	if b[2].Type != "section" || len(b[2].Fields) != 2 || b[2].Fields[0].Text != "*Value*\n42" || b[2].Fields[1].Text != "*Threshold*\n&lt; 50" || b[2].Fields[0].Type != "mrkdwn" {
		t.Errorf("fields block: %+v", b[2])
	}
	if b[3].Type != "actions" || len(b[3].Elements) != 1 || b[3].Elements[0]["type"] != "button" || b[3].Elements[0]["url"] != "https://bi.example.com/alerts/7" {
		t.Errorf("actions block: %+v", b[3])
	}
	if btn, _ := b[3].Elements[0]["text"].(map[string]any); btn["type"] != "plain_text" || btn["text"] != "Open in DataPulse" {
		t.Errorf("button text: %+v", b[3].Elements[0])
	}
	if b[4].Type != "context" || b[4].Elements[0]["type"] != "mrkdwn" || !strings.Contains(b[4].Elements[0]["text"].(string), "dlv-0001") {
		t.Errorf("context block: %+v", b[4])
	}
}

func TestSlackErrorDoesNotLeakURL(t *testing.T) {
	rc := startReceiver(t, "127.0.0.1:0", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "invalid_token")
	})
	n := loopbackNotifier(t, "127.0.0.1")
	res := n.SendSlack(context.Background(), rc.URL+"/services/T000/B000/XXXXSLACKTOKEN", testMessage())
	if res.OK() || res.Status != 403 || !res.Permanent || strings.Contains(res.Err.Error(), "XXXXSLACKTOKEN") || !strings.Contains(res.Err.Error(), "/services/…") {
		t.Fatalf("result %+v", res)
	}
	// A connection error (nothing listens) goes through *url.Error, which
	// would repeat the URL.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	res = n.SendSlack(context.Background(), "http://"+addr+"/services/T000/B000/XXXXSLACKTOKEN", testMessage())
	if res.OK() || res.Permanent || strings.Contains(res.Err.Error(), "XXXXSLACKTOKEN") {
		t.Fatalf("result %+v", res)
	}
}

func TestWebhookAnswerBodyIsNotReadWithoutBound(t *testing.T) {
	// The receiver streams an endless body; the sender must stop reading and
	// hang up long before it ends (1 GiB), with success or failure alike.
	for _, code := range []int{200, 500} {
		written := make(chan int64, 1)
		rc := startReceiver(t, "127.0.0.1:0", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			chunk := []byte(strings.Repeat("x", 32<<10))
			var n int64
			for n < 1<<30 {
				k, err := w.Write(chunk)
				n += int64(k)
				if err != nil {
					break
				}
			}
			written <- n
		})
		n := loopbackNotifier(t, "127.0.0.1")
		res := n.SendWebhook(context.Background(), rc.URL+"/big", webhookSecret, testMessage())
		if (code == 200) != res.OK() || res.Status != code {
			t.Fatalf("status %d: %+v", code, res)
		}
		if res.Err != nil && len(res.Err.Error()) > 400 {
			t.Fatalf("error too long: %d bytes", len(res.Err.Error()))
		}
		select {
		case got := <-written:
			// 4 KiB read + 64 KiB drained + socket buffers: far below 1 GiB.
			if got >= 1<<30 {
				t.Fatalf("status %d: the whole body was consumed (%d bytes)", code, got)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("status %d: the receiver is still writing: the sender did not hang up", code)
		}
	}
}

func TestWebhookTimeoutIsRetryable(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc := startReceiver(t, "127.0.0.1:0", func(w http.ResponseWriter, r *http.Request) {
		select { // never answers within the sender's timeout
		case <-release:
		case <-r.Context().Done():
		}
	})
	n, err := notify.New(notify.Config{Guard: egress.New(egress.MustParseAllowList("127.0.0.1")), Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	res := n.SendWebhook(context.Background(), rc.URL+"/slow", webhookSecret, testMessage())
	if res.OK() || res.Permanent || res.Status != 0 || !strings.Contains(res.Err.Error(), "timed out") {
		t.Fatalf("want a retryable timeout, got %+v", res)
	}
	if len(rc.requests()) != 1 {
		t.Fatalf("receiver got %d requests", len(rc.requests()))
	}
}
