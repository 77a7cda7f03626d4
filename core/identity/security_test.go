package identity_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/store/storetest"
)

// TestChangePasswordRules (A5): only a session may change the password, and
// attempts share the login limits per account and per client address.
func TestChangePasswordRules(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		st := storetest.Migrated(t, tg)
		now := time.Now().UTC()
		s, err := identity.New(st.Client, identity.Options{SigningKey: []byte("0123456789abcdef0123456789abcdef"), Argon2: fast,
			LoginBurst: 5, ClientBurst: 4,
			// A stopped clock: no bucket refills while the test runs.
			Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		sys := principal.System(ctx)
		const pw = "long enough pw 1"
		sessionOf := func(email string) context.Context {
			t.Helper()
			if _, err := s.CreateUser(sys, identity.CreateUserInput{Email: email, Password: pw}); err != nil {
				t.Fatal(err)
			}
			tok, err := s.Login(ctx, identity.LoginInput{Email: email, Password: pw, ClientIP: "login-" + email})
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.Authenticate(ctx, tok.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			return principal.With(ctx, p)
		}
		a, b := sessionOf("a@example.com"), sessionOf("b@example.com")

		tok, err := s.CreateAPIToken(a, "ci", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.Authenticate(ctx, tok.Token)
		if err != nil {
			t.Fatal(err)
		}
		err = s.ChangePassword(principal.With(ctx, p), identity.ChangePasswordInput{Current: pw, New: "taken over account", ClientIP: "t"})
		if !errors.Is(err, errs.ErrForbidden) {
			t.Fatalf("change by API token: %v, want forbidden", err)
		}
		if err := s.ChangePassword(sys, identity.ChangePasswordInput{Current: pw, New: "taken over account", ClientIP: "t"}); !errors.Is(err, errs.ErrForbidden) {
			t.Fatalf("change by the system principal: %v, want forbidden", err)
		}

		// Per account: the login used 1 of 5; four wrong guesses, then refused.
		guess := func(who context.Context, ip string, i int) error {
			return s.ChangePassword(who, identity.ChangePasswordInput{Current: fmt.Sprintf("wrong guess %d!", i), New: "brand new password", ClientIP: ip})
		}
		for i := 0; i < 4; i++ {
			if err := guess(a, fmt.Sprintf("ip%d", i), i); !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("guess %d: %v, want invalid current password", i, err)
			}
		}
		err = guess(a, "ip-other", 99)
		var de *errs.Error
		if !errors.Is(err, errs.ErrRateLimited) || !errors.As(err, &de) || de.RetryAfter <= 0 {
			t.Fatalf("fifth guess for one account: %v, want rate limited with RetryAfter", err)
		}
		// The login of that account is limited too: the budget is shared.
		if _, err := s.Login(ctx, identity.LoginInput{Email: "a@example.com", Password: pw, ClientIP: "fresh"}); !errors.Is(err, errs.ErrRateLimited) {
			t.Fatalf("login after the guesses: %v, want rate limited", err)
		}

		// Per client address: b's account has budget left, the address not.
		for i := 0; i < 2; i++ { // b: 3 of 5 used, the address 2 of 4
			if err := guess(b, "one-address", i); !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("b guess %d: %v", i, err)
			}
		}
		for i := 0; i < 2; i++ { // refused for a's account, after taking the address's last 2
			if err := guess(a, "one-address", i); !errors.Is(err, errs.ErrRateLimited) {
				t.Fatalf("a guess %d: %v", i, err)
			}
		}
		err = guess(b, "one-address", 5)
		if !errors.Is(err, errs.ErrRateLimited) || !strings.Contains(err.Error(), "address") {
			t.Fatalf("guess from an exhausted address: %v, want rate limited for the address", err)
		}
		// The right current password still works from elsewhere.
		if err := s.ChangePassword(b, identity.ChangePasswordInput{Current: pw, New: "brand new password", ClientIP: "home"}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRefreshTokensIssuedBeforeMACs: sessions opened before refresh secrets
// carried a MAC keep working after an upgrade; their next secret has one.
func TestRefreshTokensIssuedBeforeMACs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		st := storetest.Migrated(t, tg)
		s, err := identity.New(st.Client, identity.Options{SigningKey: []byte("0123456789abcdef0123456789abcdef"), Argon2: fast})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		u, err := s.CreateUser(principal.System(ctx), identity.CreateUserInput{Email: "old@example.com", Password: "long enough pw 1"})
		if err != nil {
			t.Fatal(err)
		}
		const legacy = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // 32 bytes, base64url, as secrets were made
		sum := sha256.Sum256([]byte(legacy))
		sess, err := st.Client.Session.Create().SetUserID(u.ID).SetRefreshHash(hex.EncodeToString(sum[:])).
			SetExpiresAt(time.Now().Add(time.Hour)).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		prefix := identity.RefreshTokenPrefix + sess.ID.String() + "."
		if _, err := s.Refresh(ctx, prefix+"BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", ""); !errors.Is(err, errs.ErrUnauthenticated) {
			t.Fatalf("wrong secret: %v", err)
		}
		tok, err := s.Refresh(ctx, prefix+legacy, "")
		if err != nil {
			t.Fatalf("legacy secret after a wrong guess: %v", err)
		}
		if _, err := s.Refresh(ctx, tok.RefreshToken, ""); err != nil {
			t.Fatalf("the new secret: %v", err)
		}
	})
}
