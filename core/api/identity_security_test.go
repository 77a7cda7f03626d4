package api_test

// Regression tests for the identity findings of the outside security review
// (A5, A7, A8, A10, A11). Each runs on SQLite and, with
// DATAPULSE_TEST_POSTGRES_URL set, on PostgreSQL.

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/datapulse/datapulse/core/store/storetest"
)

// postStatus posts JSON without failing the test, so goroutines may call it.
func (e *env) postStatus(path, body string) (int, error) {
	res, err := http.Post(e.base+path, "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

func randomSecret(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// A5: a personal API token cannot change the password (a stolen token must
// not become the account), and password changes are rate limited like logins.
func TestChangePasswordNeedsSessionAndIsRateLimited(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg)
		_, session := e.createUser("ivy@example.com", "user")
		apiTok := e.want(e.do("POST", "/api/v1/tokens", session, map[string]any{"name": "ci"}), 201, "create token").str("token")

		r := e.want(e.do("POST", "/api/v1/me/password", apiTok, map[string]any{"current_password": "user password 123", "new_password": "taken over account 1"}), 403, "password change with an API token")
		if msg := r.str("error", "message"); !strings.Contains(msg, "log in") {
			t.Errorf("403 message does not say to log in: %q", msg)
		}
		// The password is unchanged.
		e.login("ivy@example.com", "user password 123")

		// Guessing the current password through a session is slowed like a login.
		var last resp
		for i := 0; i < 20; i++ {
			last = e.do("POST", "/api/v1/me/password", session, map[string]any{"current_password": "guess number " + strings.Repeat("x", i), "new_password": "taken over account 1"})
			if last.status != 400 {
				break
			}
		}
		if last.status != 429 || last.header.Get("Retry-After") == "" {
			t.Fatalf("no 429 with Retry-After after repeated wrong current passwords: %d %v %s", last.status, last.header, last.raw)
		}
	})
}

// A7: one refresh token refreshed by several clients at once: exactly one wins.
func TestRefreshRotationIsAtomic(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg)
		e.createUser("jack@example.com", "user")
		const parallel = 8
		for round := 0; round < 3; round++ {
			r := e.want(e.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "jack@example.com", "password": "user password 123"}), 200, "login")
			body := `{"refresh_token":"` + r.str("refresh_token") + `"}`
			start := make(chan struct{})
			statuses := make(chan int, parallel)
			var wg sync.WaitGroup
			for i := 0; i < parallel; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					st, err := e.postStatus("/api/v1/auth/refresh", body)
					if err != nil {
						t.Error(err)
					}
					statuses <- st
				}()
			}
			close(start)
			wg.Wait()
			close(statuses)
			won, lost := 0, 0
			for st := range statuses {
				switch st {
				case 200:
					won++
				case 401:
					lost++
				default:
					t.Errorf("round %d: refresh answered %d", round, st)
				}
			}
			if won != 1 || lost != parallel-1 {
				t.Fatalf("round %d: %d of %d concurrent refreshes of one token succeeded (%d refused), want exactly 1", round, won, parallel, lost)
			}
		}
	})
}

// A8: the session id in a refresh token is public; a wrong secret must not
// end the victim's session. A really rotated (reused) secret still does.
func TestRefreshWithWrongSecretLeavesSessionAlone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg)
		e.createUser("kim@example.com", "user")
		r := e.want(e.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "kim@example.com", "password": "user password 123"}), 200, "login")
		refresh, access := r.str("refresh_token"), r.str("access_token")
		sid, _, ok := strings.Cut(strings.TrimPrefix(refresh, "dpr_"), ".")
		if !ok {
			t.Fatalf("refresh token format: %q", refresh)
		}
		for _, forged := range []string{
			"dpr_" + sid + "." + randomSecret(32), // the old secret format
			"dpr_" + sid + "." + randomSecret(48), // the length of a current secret
			"dpr_" + sid + ".x",
		} {
			e.want(e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": forged}), 401, "refresh with a guessed secret")
			e.want(e.do("POST", "/api/v1/auth/logout", "", map[string]string{"refresh_token": forged}), 401, "logout with a guessed secret")
		}
		e.want(e.do("GET", "/api/v1/me", access, nil), 200, "access token after guessed secrets")
		r2 := e.want(e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh}), 200, "victim's refresh after guessed secrets")

		// Reuse detection still holds for a secret this session really had.
		e.want(e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh}), 401, "reuse of the rotated secret")
		e.want(e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": r2.str("refresh_token")}), 401, "current secret after reuse")
		e.want(e.do("GET", "/api/v1/me", r2.str("access_token"), nil), 401, "access token after reuse")
	})
}

// A10: the password policy counts characters, not bytes, refuses text that
// JSON decoding replaced (lone surrogates, invalid UTF-8) and knows a real
// list of common passwords.
func TestPasswordPolicyOverHTTP(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg)
		for i, c := range []struct{ name, rawPassword string }{
			{"one character repeated, two bytes each", `"` + strings.Repeat("é", 12) + `"`},
			{"six characters, decomposed into twelve code points", `"` + strings.Repeat("e\u0301", 6) + `"`},
			{"lone surrogate", `"abcdefgh jklm\ud800nop"`},
			{"invalid UTF-8", "\"abcdefgh jklm\xffnop\""},
			{"breached password", `"1qaz2wsx3edc"`},
			{"breached password, other case", `"Qwerty123456"`},
		} {
			body := `{"email":"p` + string(rune('a'+i)) + `@example.com","password":` + c.rawPassword + `}`
			r := e.do("POST", "/api/v1/users", e.admin, body)
			if r.status != 400 || !strings.Contains(string(r.raw), "password") {
				t.Errorf("%s: %d %s, want 400 naming the password", c.name, r.status, r.raw)
			}
		}
		// Non-ASCII passwords of real length are fine.
		e.want(e.do("POST", "/api/v1/users", e.admin, map[string]any{"email": "ok@example.com", "password": "pâté à la crème"}), 201, "accented password")
	})
}

// A11: an administrator's password reset ends the user's API tokens and
// sessions.
func TestAdminResetRevokesTokensAndSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg)
		id, session := e.createUser("lee@example.com", "user")
		apiTok := e.want(e.do("POST", "/api/v1/tokens", session, map[string]any{"name": "ci"}), 201, "create token").str("token")
		e.want(e.do("GET", "/api/v1/me", apiTok, nil), 200, "API token before reset")
		e.want(e.do("GET", "/api/v1/me", session, nil), 200, "session before reset")

		e.want(e.do("PATCH", "/api/v1/users/"+id, e.admin, map[string]any{"password": "reset by admin 42"}), 200, "admin reset")

		e.want(e.do("GET", "/api/v1/me", apiTok, nil), 401, "API token after reset")
		e.want(e.do("GET", "/api/v1/me", session, nil), 401, "session after reset")
		fresh := e.login("lee@example.com", "reset by admin 42")
		if list := e.want(e.do("GET", "/api/v1/tokens", fresh, nil), 200, "tokens after reset"); strings.Contains(string(list.raw), `"ci"`) {
			t.Errorf("token still listed after reset: %s", list.raw)
		}
		// A change that is not a reset leaves tokens alone.
		tok2 := e.want(e.do("POST", "/api/v1/tokens", fresh, map[string]any{"name": "ci2"}), 201, "new token").str("token")
		e.want(e.do("PATCH", "/api/v1/users/"+id, e.admin, map[string]any{"name": "Lee"}), 200, "rename")
		e.want(e.do("GET", "/api/v1/me", tok2, nil), 200, "API token after rename")
	})
}
