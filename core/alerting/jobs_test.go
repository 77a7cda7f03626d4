package alerting

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/egress"
	"github.com/datapulse/datapulse/core/jobs"
	"github.com/datapulse/datapulse/core/notify"
	"github.com/datapulse/datapulse/core/store/storetest"
)

// With River: the leader's periodic job evaluates the due alert, the firing
// and the recovery each insert their delivery job in the state change's
// transaction, and the webhook receives one signed POST per change, each
// with its own stable delivery id.
func TestDeliveriesThroughJobs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newTenv(t, tg)
		const secret = "webhook secret for tests"
		var mu sync.Mutex
		deliveries := map[string]int{}
		events := map[string]string{}
		bad := 0
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			defer mu.Unlock()
			if !notify.Verify(secret, body, r.Header.Get(notify.HeaderSignature)) {
				bad++
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			var p notify.WebhookPayload
			_ = json.Unmarshal(body, &p)
			id := r.Header.Get(notify.HeaderDelivery)
			deliveries[id]++
			events[id] = p.Event
			w.WriteHeader(http.StatusNoContent)
		}))
		t.Cleanup(hook.Close)
		var slackBodies []string
		slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			slackBodies = append(slackBodies, string(body))
			mu.Unlock()
			w.WriteHeader(http.StatusOK)
		}))
		t.Cleanup(slack.Close)
		allow, err := egress.ParseAllowList("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		e.svc.allow = allow
		n, err := notify.New(notify.Config{Guard: egress.New(allow), PublicURL: "https://bi.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		js, err := jobs.New(context.Background(), e.st, jobs.Options{DatabaseURL: e.so.DatabaseURL,
			FetchPollInterval: 50 * time.Millisecond, FetchCooldown: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.UseJobs(js, n); err != nil {
			t.Fatal(err)
		}
		if err := js.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			js.Stop(ctx) //nolint:errcheck
		})
		waitFor := func(what string, cond func() bool) {
			t.Helper()
			deadline := time.Now().Add(60 * time.Second)
			for !cond() {
				if time.Now().After(deadline) {
					mu.Lock()
					defer mu.Unlock()
					t.Fatalf("waiting for %s: deliveries %v events %v bad %d", what, deliveries, events, bad)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		count := func() int { mu.Lock(); defer mu.Unlock(); return len(deliveries) }

		e.setValue(500)
		in := queryAlert(e, "above", 100, 0)
		in.Channels = &[]ChannelInput{{Type: "webhook", Target: hook.URL + "/hook", Secret: ptr(secret)},
			{Type: "slack", Target: slack.URL + "/services/T/B/X"}}
		a := e.create(e.owner, in)
		// Due at once: the periodic job evaluates it (the clock is fixed).
		waitFor("the firing delivery", func() bool { return count() == 1 })
		got, _ := e.svc.Get(e.as(e.owner), a.ID)
		if got.State != StateAlerting {
			t.Fatalf("state %s", got.State)
		}
		e.setValue(20)
		e.advance(61 * time.Second)
		waitFor("the resolve delivery", func() bool { return count() == 2 })
		waitFor("both Slack messages", func() bool { mu.Lock(); defer mu.Unlock(); return len(slackBodies) == 2 })
		mu.Lock()
		defer mu.Unlock()
		if bad != 0 {
			t.Errorf("%d deliveries with a bad signature", bad)
		}
		kinds := map[string]int{}
		for id, n := range deliveries {
			if n != 1 {
				t.Errorf("delivery %s received %d times", id, n)
			}
			kinds[events[id]]++
		}
		if kinds["alert.triggered"] != 1 || kinds["alert.resolved"] != 1 {
			t.Errorf("events %v", events)
		}
		// The firing Slack message carries the owner's one-click link.
		links := 0
		for _, b := range slackBodies {
			i := strings.Index(b, "https://bi.example.com/api/v1/alert-links/")
			if i < 0 {
				continue
			}
			links++
			tok := b[i+len("https://bi.example.com/api/v1/alert-links/"):]
			tok = tok[:strings.IndexAny(tok, `"|>\`)]
			lt, err := e.svc.InspectLink(context.Background(), tok)
			if err != nil || lt.Link.UserID != e.owner {
				t.Errorf("link in the Slack message: %+v %v", lt, err)
			}
		}
		if links != 1 {
			t.Errorf("%d Slack messages with an acknowledge link, want 1 (the firing one): %v", links, slackBodies)
		}
	})
}
