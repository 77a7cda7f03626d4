package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
)

// postKeyed sends a create with an Idempotency-Key.
func (s *server) postKeyed(path, token, key string, in any) (int, http.Header, []byte, error) {
	b, _ := json.Marshal(in)
	ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", key)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body, err
}

// TestIdempotentRetriesAfterKill: clients create dashboards with an
// Idempotency-Key each; the server is killed (-9) in the middle; after a
// restart every request is retried with its key. No dashboard exists twice,
// every acknowledged one exists, an acknowledged one's retry replays the
// same object, and an interrupted one's retry is a 201 or a 409 (in use /
// outcome unknown; on SQLite at once outcome unknown), never a second object.
func TestIdempotentRetriesAfterKill(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *database) {
		adminEmail, adminPW := "root@example.com", newPassword()
		s := startServer(t, db, "DATAPULSE_ADMIN_EMAIL="+adminEmail, "DATAPULSE_ADMIN_PASSWORD="+adminPW)
		tok := s.login(adminEmail, adminPW).AccessToken
		run := randHex(4)
		name := func(i int) string { return fmt.Sprintf("idem-%s-%04d", run, i) }

		var (
			mu       sync.Mutex
			acked    = map[string]string{} // name → id
			tried    = map[string]bool{}
			killOnce sync.Once
			wg       sync.WaitGroup
			next     int
		)
		for range 6 {
			wg.Go(func() {
				for {
					mu.Lock()
					i := next
					next++
					n := name(i)
					tried[n] = true
					mu.Unlock()
					status, _, body, err := s.postKeyed("/api/v1/dashboards", tok, "key-"+n, map[string]string{"name": n})
					if err != nil {
						return // the kill
					}
					if status != http.StatusCreated {
						t.Errorf("%s: %d %s", n, status, body)
						return
					}
					var d struct {
						ID string `json:"id"`
					}
					json.Unmarshal(body, &d) //nolint:errcheck // checked by use
					mu.Lock()
					acked[n] = d.ID
					if len(acked) == 60 {
						killOnce.Do(func() { s.cmd.Process.Kill() }) //nolint:errcheck // checked by the restart
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		s.wait(exitTimeout)

		s2 := startServer(t, db)
		tok = s2.login(adminEmail, adminPW).AccessToken
		outcomes := map[string]int{}
		for n := range tried {
			status, h, body, err := s2.postKeyed("/api/v1/dashboards", tok, "key-"+n, map[string]string{"name": n})
			if err != nil {
				t.Fatalf("retry %s: %v", n, err)
			}
			var e errorBody
			json.Unmarshal(body, &e) //nolint:errcheck // only read for 409
			switch {
			case status == http.StatusCreated && h.Get("Idempotent-Replayed") == "true":
				outcomes["replayed"]++
				var d struct {
					ID string `json:"id"`
				}
				json.Unmarshal(body, &d) //nolint:errcheck
				if id, ok := acked[n]; ok && d.ID != id {
					t.Errorf("%s: replay names %s, the acknowledged create %s", n, d.ID, id)
				}
			case status == http.StatusCreated:
				outcomes["ran"]++
				if _, ok := acked[n]; ok {
					t.Errorf("%s was acknowledged but its retry ran again", n)
				}
			case status == http.StatusConflict && (e.Error.Code == "idempotency_key_in_use" || e.Error.Code == "idempotency_outcome_unknown"):
				outcomes[e.Error.Code]++
				if _, ok := acked[n]; ok {
					t.Errorf("%s was acknowledged but its retry is %s", n, e.Error.Code)
				}
			default:
				t.Errorf("retry %s: %d %s", n, status, body)
			}
		}
		count := map[string]int{}
		for page := 1; page < 100; page++ {
			var p struct {
				Items []struct {
					Name string `json:"name"`
				} `json:"items"`
				Total int `json:"total"`
			}
			s2.call(http.MethodGet, fmt.Sprintf("/api/v1/dashboards?per_page=500&page=%d&q=idem-%s", page, run), tok, nil, http.StatusOK, &p)
			seen := 0
			for _, it := range p.Items {
				count[it.Name]++
			}
			for _, c := range count {
				seen += c
			}
			if len(p.Items) == 0 || seen >= p.Total {
				break
			}
		}
		for n, c := range count {
			if c > 1 {
				t.Errorf("%s exists %d times", n, c)
			}
		}
		for n := range acked {
			if count[n] != 1 {
				t.Errorf("acknowledged %s: %d rows", n, count[n])
			}
		}
		t.Logf("%d requests, %d acknowledged before kill -9; retries after restart: %v; %d dashboards", len(tried), len(acked), outcomes, len(count))
		if db.url == "" && outcomes["idempotency_key_in_use"] > 0 {
			t.Errorf("SQLite: %d retries of requests interrupted by the kill were told in_use (retry later) instead of outcome_unknown", outcomes["idempotency_key_in_use"])
		}
		if len(tried) == len(acked) {
			t.Errorf("no request was in flight at the kill: the test proved nothing")
		}
	})
}
