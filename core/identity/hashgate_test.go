package identity_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/store/storetest"
)

func newGatedService(t *testing.T, tg storetest.Target, o identity.Options) *identity.Service {
	t.Helper()
	st := storetest.Migrated(t, tg)
	o.SigningKey = []byte("0123456789abcdef0123456789abcdef")
	o.Argon2 = fast
	o.LoginBurst, o.ClientBurst = 1000, 1000
	s, err := identity.New(st.Client, o)
	if err != nil {
		t.Fatal(err)
	}
	s.WaitReadyForTest()
	return s
}

// concurrencyMeter counts argon2id computations in flight and the most seen.
type concurrencyMeter struct {
	inFlight, peak, calls atomic.Int64
	overlap               time.Duration
}

func (m *concurrencyMeter) kdf(real func([]byte, []byte, uint32, uint32, uint8, uint32) []byte,
	pw, salt []byte, t, mem uint32, th uint8, n uint32) []byte {
	cur := m.inFlight.Add(1)
	defer m.inFlight.Add(-1)
	m.calls.Add(1)
	for {
		p := m.peak.Load()
		if cur <= p || m.peak.CompareAndSwap(p, cur) {
			break
		}
	}
	// Stay inside long enough for unbounded callers to pile up; this only
	// widens the window, nothing is asserted about time.
	time.Sleep(m.overlap)
	return real(pw, salt, t, mem, th, n)
}

// TestHashConcurrencyIsBounded: logins, password changes, user creation and
// resets in parallel never run more argon2id computations at once than the
// bound (A4: each holds 19 MiB in production).
func TestHashConcurrencyIsBounded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		const bound = 2
		s := newGatedService(t, tg, identity.Options{MaxConcurrentHashes: bound, HashQueueWait: time.Minute})
		sys := principal.System(context.Background())
		const pw = "long enough pw 1"
		users := make([]identity.User, 4)
		for i := range users {
			u, err := s.CreateUser(sys, identity.CreateUserInput{Email: fmt.Sprintf("u%d@example.com", i), Password: pw})
			if err != nil {
				t.Fatal(err)
			}
			users[i] = u
		}
		tok, err := s.Login(context.Background(), identity.LoginInput{Email: "u0@example.com", Password: pw, ClientIP: "a"})
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.Authenticate(context.Background(), tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		asU0 := principal.With(context.Background(), p)

		m := &concurrencyMeter{overlap: 5 * time.Millisecond}
		defer identity.SetKDFForTest(m.kdf)()
		ops := []func(i int) error{
			func(i int) error { // login, right password
				_, err := s.Login(context.Background(), identity.LoginInput{Email: fmt.Sprintf("u%d@example.com", 1+i%2), Password: pw, ClientIP: "b"})
				return err
			},
			func(i int) error { // login, wrong password or unknown email: refused
				_, err := s.Login(context.Background(), identity.LoginInput{Email: fmt.Sprintf("x%d@example.com", i%2), Password: "not it at all", ClientIP: "c"})
				if errors.Is(err, errs.ErrUnauthenticated) {
					return nil
				}
				return fmt.Errorf("bad login: %v", err)
			},
			func(i int) error {
				_, err := s.CreateUser(sys, identity.CreateUserInput{Email: fmt.Sprintf("new%d@example.com", i), Password: pw})
				return err
			},
			func(i int) error { // admin reset
				np := fmt.Sprintf("reset password %d", i)
				_, err := s.UpdateUser(sys, users[3].ID, identity.UpdateUserInput{Password: &np})
				return err
			},
			func(i int) error { // own change with a wrong current password
				err := s.ChangePassword(asU0, identity.ChangePasswordInput{Current: "wrong current pw", New: "brand new password", ClientIP: "d"})
				if errors.Is(err, errs.ErrInvalid) {
					return nil
				}
				return fmt.Errorf("change password: %v", err)
			},
		}
		var wg sync.WaitGroup
		errc := make(chan error, 40)
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := ops[i%len(ops)](i); err != nil {
					errc <- err
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
		if got := m.peak.Load(); got > bound || got < 1 {
			t.Fatalf("%d argon2id computations ran at once (of %d), want at most %d", got, m.calls.Load(), bound)
		}
		if m.calls.Load() < 40 {
			t.Fatalf("only %d computations for 40 operations: the meter missed some", m.calls.Load())
		}
	})
}

// TestHashQueueDeadline: a caller that cannot get a slot in time is turned
// away with a rate-limit error carrying Retry-After, not left queuing.
func TestHashQueueDeadline(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		s := newGatedService(t, tg, identity.Options{MaxConcurrentHashes: 1, HashQueueWait: 20 * time.Millisecond})
		sys := principal.System(context.Background())
		if _, err := s.CreateUser(sys, identity.CreateUserInput{Email: "a@example.com", Password: "long enough pw 1"}); err != nil {
			t.Fatal(err)
		}
		entered, hold := make(chan struct{}), make(chan struct{})
		var once sync.Once
		defer identity.SetKDFForTest(func(real func([]byte, []byte, uint32, uint32, uint8, uint32) []byte, pw, salt []byte, ti, mem uint32, th uint8, n uint32) []byte {
			first := false
			once.Do(func() { first = true })
			if first { // the first computation keeps the only slot until released
				close(entered)
				<-hold
			}
			return real(pw, salt, ti, mem, th, n)
		})()
		done := make(chan error, 1)
		go func() {
			_, err := s.Login(context.Background(), identity.LoginInput{Email: "a@example.com", Password: "long enough pw 1", ClientIP: "x"})
			done <- err
		}()
		<-entered
		_, err := s.Login(context.Background(), identity.LoginInput{Email: "a@example.com", Password: "long enough pw 1", ClientIP: "y"})
		var de *errs.Error
		if !errors.Is(err, errs.ErrRateLimited) || !errors.As(err, &de) || de.RetryAfter <= 0 {
			t.Errorf("login while the gate is full: %v, want a rate-limit error with RetryAfter", err)
		}
		_, err = s.CreateUser(sys, identity.CreateUserInput{Email: "b@example.com", Password: "long enough pw 1"})
		if !errors.Is(err, errs.ErrRateLimited) {
			t.Errorf("create user while the gate is full: %v, want a rate-limit error", err)
		}
		close(hold)
		if err := <-done; err != nil {
			t.Fatalf("the login holding the slot: %v", err)
		}
		// Free again.
		if _, err := s.Login(context.Background(), identity.LoginInput{Email: "a@example.com", Password: "long enough pw 1", ClientIP: "z"}); err != nil {
			t.Fatal(err)
		}
	})
}
