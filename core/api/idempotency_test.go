package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/api"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/ent/idempotencykey"
)

// doKey sends a JSON POST with an Idempotency-Key (set even when empty).
func (e *env) doKey(path, token, key string, body any) resp {
	e.t.Helper()
	j, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, e.base+path, bytes.NewReader(j))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header[api.IdempotencyKeyHeader] = []string{key}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Errorf("POST %s: %v", path, err)
		return resp{}
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 {
		json.Unmarshal(raw, &r.body) //nolint:errcheck // checked by the callers' status checks
	}
	return r
}

func (e *env) countDashboards(token, name string) int {
	e.t.Helper()
	r := e.want(e.do("GET", "/api/v1/dashboards?q="+url.QueryEscape(name), token, nil), 200, "list dashboards")
	n := 0
	items, _ := r.body["items"].([]any)
	for _, it := range items {
		if m, _ := it.(map[string]any); m["name"] == name {
			n++
		}
	}
	return n
}

// TestIdempotencyKeys: concurrent retries with one key create one row and all
// get the identical answer; a key reused with another body or route is 422;
// keys are per user; malformed keys are 400; an interrupted first request
// (in progress, lease run out) is 409 "outcome unknown", never run again;
// expired keys are pruned and free.
func TestIdempotencyKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg)
		_, alice := e.createUser("alice@example.com", "user")
		_, bob := e.createUser("bob@example.com", "user")

		// Concurrent retries: 12 clients send the same create with the same
		// key at once, each retrying on 409 in_use until it gets an answer.
		const clients = 12
		name := "idem-concurrent"
		body := map[string]any{"name": name, "description": "made once"}
		var wg sync.WaitGroup
		answers := make([]resp, clients)
		inUse := make([]int, clients)
		start := make(chan struct{})
		for i := range clients {
			wg.Go(func() {
				<-start
				for try := 0; try < 200; try++ {
					r := e.doKey("/api/v1/dashboards", alice, "key-1", body)
					if r.status == http.StatusConflict && r.str("error", "code") == "idempotency_key_in_use" {
						if r.header.Get("Retry-After") == "" {
							t.Errorf("409 in_use without Retry-After")
						}
						inUse[i]++
						time.Sleep(5 * time.Millisecond)
						continue
					}
					answers[i] = r
					return
				}
				t.Errorf("client %d: still in use after 200 tries", i)
			})
		}
		close(start)
		wg.Wait()
		replayed := 0
		for i, r := range answers {
			if r.status != http.StatusCreated {
				t.Fatalf("client %d: status %d: %s", i, r.status, r.raw)
			}
			if !bytes.Equal(r.raw, answers[0].raw) {
				t.Errorf("client %d got another body:\n%s\nvs\n%s", i, r.raw, answers[0].raw)
			}
			if r.header.Get(api.IdempotentReplayHeader) == "true" {
				replayed++
			}
		}
		if replayed != clients-1 {
			t.Errorf("%d answers replayed, want %d (one ran)", replayed, clients-1)
		}
		if n := e.countDashboards(alice, name); n != 1 {
			t.Fatalf("%d dashboards named %q after %d concurrent requests with one key, want 1", n, name, clients)
		}
		// A later retry: the identical stored answer, marked replayed.
		r := e.doKey("/api/v1/dashboards", alice, "key-1", body)
		if r.status != 201 || !bytes.Equal(r.raw, answers[0].raw) || r.header.Get(api.IdempotentReplayHeader) != "true" {
			t.Fatalf("replay: %d %q replayed=%q", r.status, r.raw, r.header.Get(api.IdempotentReplayHeader))
		}
		if r.header.Get("Content-Type") != answers[0].header.Get("Content-Type") {
			t.Errorf("replayed Content-Type %q, first %q", r.header.Get("Content-Type"), answers[0].header.Get("Content-Type"))
		}
		// JSON whitespace does not make another request.
		r = e.doKey("/api/v1/dashboards", alice, "key-1", map[string]any{"description": "made once", "name": name})
		if r.status != 201 || r.header.Get(api.IdempotentReplayHeader) != "true" {
			t.Errorf("same fields in another order: %d %s", r.status, r.raw)
		}

		// The same key with another body, or on another route: refused, nothing runs.
		r = e.doKey("/api/v1/dashboards", alice, "key-1", map[string]any{"name": "something else"})
		if r.status != http.StatusUnprocessableEntity || r.str("error", "code") != "idempotency_key_reused" || r.str("error", "request_id") == "" {
			t.Fatalf("reuse with another body: %d %s", r.status, r.raw)
		}
		if n := e.countDashboards(alice, "something else"); n != 0 {
			t.Fatalf("the refused request created %d dashboards", n)
		}
		dashID := answers[0].str("id")
		r = e.doKey("/api/v1/dashboards/"+dashID+"/duplicate", alice, "key-1", body)
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.str("error", "message"), "POST /api/v1/dashboards") {
			t.Fatalf("reuse on another route: %d %s", r.status, r.raw)
		}

		// Keys are per user: bob's key-1 is his own and runs.
		r = e.doKey("/api/v1/dashboards", bob, "key-1", body)
		if r.status != 201 || r.header.Get(api.IdempotentReplayHeader) != "" || r.str("id") == dashID {
			t.Fatalf("another user's same key: %d replayed=%q %s", r.status, r.header.Get(api.IdempotentReplayHeader), r.raw)
		}
		if n := e.countDashboards(bob, name); n != 1 {
			t.Errorf("bob sees %d dashboards named %q, want his 1", n, name)
		}
		// …and with another body, bob's reuse is judged against bob's request only.
		r = e.doKey("/api/v1/dashboards", bob, "key-1", body)
		if r.status != 201 || r.header.Get(api.IdempotentReplayHeader) != "true" {
			t.Errorf("bob's retry: %d %s", r.status, r.raw)
		}

		// Malformed keys.
		for _, k := range []string{"", strings.Repeat("k", 256), "has space", "tab\tkey", "ümlaut"} {
			r := e.doKey("/api/v1/dashboards", alice, k, map[string]any{"name": "bad key"})
			if r.status != 400 || r.str("error", "code") != "validation_failed" {
				t.Errorf("key %q: %d %s", k, r.status, r.raw)
			}
		}
		if r := e.doKey("/api/v1/dashboards", alice, strings.Repeat("~", 255), map[string]any{"name": "long key"}); r.status != 201 {
			t.Errorf("255-character key: %d %s", r.status, r.raw)
		}
		if n := e.countDashboards(alice, "bad key"); n != 0 {
			t.Errorf("a request with a malformed key ran (%d dashboards)", n)
		}

		// A stored client error is replayed too (the request did run).
		r1 := e.doKey("/api/v1/dashboards/"+dashID+"/widgets", bob, "key-2", map[string]any{"type": "text", "title": "x"})
		r2 := e.doKey("/api/v1/dashboards/"+dashID+"/widgets", bob, "key-2", map[string]any{"type": "text", "title": "x"})
		if r1.status < 400 || r1.status >= 500 || r2.status != r1.status || r2.header.Get(api.IdempotentReplayHeader) != "true" {
			t.Errorf("4xx replay: first %d, retry %d replayed=%q", r1.status, r2.status, r2.header.Get(api.IdempotentReplayHeader))
		}

		ctx := context.Background()
		c := e.store.Client.IdempotencyKey
		// In progress (the first request still runs): 409 with Retry-After.
		r = e.doKey("/api/v1/dashboards", alice, "key-3", map[string]any{"name": "interrupted"})
		if r.status != 201 {
			t.Fatalf("key-3: %d %s", r.status, r.raw)
		}
		if _, err := c.Update().Where(idempotencykey.Key("key-3")).SetState(idempotencykey.StateInProgress).
			SetLockedUntil(time.Now().Add(time.Minute)).Save(ctx); err != nil {
			t.Fatal(err)
		}
		r = e.doKey("/api/v1/dashboards", alice, "key-3", map[string]any{"name": "interrupted"})
		if r.status != 409 || r.str("error", "code") != "idempotency_key_in_use" || r.header.Get("Retry-After") == "" {
			t.Errorf("in progress: %d %s (Retry-After %q)", r.status, r.raw, r.header.Get("Retry-After"))
		}
		// Interrupted (the process died; the lease ran out): outcome unknown, never run again.
		if _, err := c.Update().Where(idempotencykey.Key("key-3")).SetLockedUntil(time.Now().Add(-time.Second)).Save(ctx); err != nil {
			t.Fatal(err)
		}
		r = e.doKey("/api/v1/dashboards", alice, "key-3", map[string]any{"name": "interrupted"})
		if r.status != 409 || r.str("error", "code") != "idempotency_outcome_unknown" {
			t.Errorf("interrupted: %d %s", r.status, r.raw)
		}
		if n := e.countDashboards(alice, "interrupted"); n != 1 {
			t.Errorf("%d dashboards named interrupted, want 1", n)
		}

		// Expired keys: free again, and pruned.
		if _, err := c.Update().Where(idempotencykey.Key("key-1")).SetExpiresAt(time.Now().Add(-time.Minute)).Save(ctx); err != nil {
			t.Fatal(err)
		}
		r = e.doKey("/api/v1/dashboards", alice, "key-1", map[string]any{"name": "after expiry"})
		if r.status != 201 || r.header.Get(api.IdempotentReplayHeader) != "" {
			t.Errorf("expired key reused: %d %s", r.status, r.raw)
		}
		n, err := api.PruneIdempotencyKeys(ctx, e.store.Client, time.Now().Add(api.IdempotencyTTL+time.Minute))
		if err != nil || n == 0 {
			t.Errorf("prune: %d, %v", n, err)
		}
		if left, _ := c.Query().Count(ctx); left != 0 {
			t.Errorf("%d keys left after pruning everything", left)
		}
	})
}

// TestIdempotencyKeyDocumented: every create declares the optional header and
// its 409/422 answers; reads do not.
func TestIdempotencyKeyDocumented(t *testing.T) {
	e := newEnv(t, storetest.Targets()[0])
	raw, err := e.srv.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Parameters  []struct {
				Name     string `json:"name"`
				In       string `json:"in"`
				Required bool   `json:"required"`
			} `json:"parameters"`
			Responses map[string]any `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	// createToken is left out on purpose: its answer carries the token
	// secret, which is never stored (see docs/operations.md).
	notIdempotent := map[string]bool{"createToken": true}
	// Non-creating POSTs whose repetition has effects opt in too: an
	// evaluation can fire notifications, a test notification sends messages.
	alsoIdempotent := map[string]bool{"evaluateAlert": true, "testAlertNotification": true}
	seen := 0
	for path, ops := range doc.Paths {
		for method, op := range ops {
			has := false
			for _, p := range op.Parameters {
				if p.Name == api.IdempotencyKeyHeader && p.In == "header" {
					has = true
					if p.Required {
						t.Errorf("%s: Idempotency-Key must be optional", op.OperationID)
					}
				}
			}
			_, creates := op.Responses["201"]
			want := method == "post" && (creates || alsoIdempotent[op.OperationID]) && !notIdempotent[op.OperationID]
			if has != want {
				t.Errorf("%s %s (%s): Idempotency-Key declared %v, want %v", method, path, op.OperationID, has, want)
			}
			if has {
				seen++
				if op.Responses["409"] == nil || op.Responses["422"] == nil {
					t.Errorf("%s: 409/422 not declared", op.OperationID)
				}
			}
		}
	}
	if seen < 10 {
		t.Errorf("only %d operations take Idempotency-Key", seen)
	}
}
