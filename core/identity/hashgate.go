package identity

import (
	"context"
	"time"

	"github.com/datapulse/datapulse/core/errs"
)

// hashGate bounds how many argon2id computations run at once. Each one holds
// Argon2Params.MemoryKiB (19 MiB by default) for its duration, so without a
// bound N parallel logins cost N×19 MiB: 90 of them took a server from 70 MB
// to 1.8 GB. With at most GOMAXPROCS at once nothing is lost (the work is
// CPU-bound) and memory stays at a few hashes' worth. Callers queue for a
// slot for at most wait; past that they get a 429 with Retry-After, cheaply,
// instead of piling up.
type hashGate struct {
	slots chan struct{}
	wait  time.Duration
}

// busyRetryAfter is what a caller turned away is told to wait.
const busyRetryAfter = 2 * time.Second

var errHashBusy = errs.RateLimited("the server is busy checking passwords; try again in a moment", busyRetryAfter)

func newHashGate(n int, wait time.Duration) *hashGate {
	return &hashGate{slots: make(chan struct{}, n), wait: wait}
}

// acquire takes a slot, waiting at most the gate's queue time (or until ctx
// ends); the caller must call release exactly once after it got nil.
func (g *hashGate) acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-t.C:
		return errHashBusy
	case <-ctx.Done():
		return errHashBusy
	}
}

func (g *hashGate) release() { <-g.slots }

// hashPassword is HashPassword within the gate.
func (s *Service) hashPassword(ctx context.Context, pw string) (string, error) {
	if err := s.hashes.acquire(ctx); err != nil {
		return "", err
	}
	defer s.hashes.release()
	return HashPassword(pw, s.opt.Argon2)
}

// verifyPassword is VerifyPassword within the gate. A gate refusal is
// returned as err with ok false; callers must not take it for a wrong
// password.
func (s *Service) verifyPassword(ctx context.Context, pw, encoded string) (ok bool, malformed, err error) {
	if err := s.hashes.acquire(ctx); err != nil {
		return false, nil, err
	}
	defer s.hashes.release()
	ok, malformed = VerifyPassword(pw, encoded)
	return ok, malformed, nil
}
