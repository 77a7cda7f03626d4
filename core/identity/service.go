package identity

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/policy"
)

// Options configure the identity service.
type Options struct {
	// SigningKey signs access tokens (HS256); at least 32 bytes.
	SigningKey      []byte
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	Argon2          Argon2Params
	Logger          *slog.Logger
	// Now is the clock; tests may replace it.
	Now func() time.Time
	// LoginBurst and ClientBurst are how many login attempts an account and a
	// client address may make at once before being slowed to one every 30 s
	// and one every 2 s (defaults 10 and 30).
	LoginBurst, ClientBurst int
	// MaxConcurrentHashes bounds argon2id computations running at once
	// (logins, password changes, user creation, resets); default GOMAXPROCS.
	// HashQueueWait is how long a request waits for one before a 429 with
	// Retry-After (default 3 s).
	MaxConcurrentHashes int
	HashQueueWait       time.Duration
	// Facts, when set, is kept current with every change to users, roles and
	// role assignments, so authorization sees it on the next request.
	Facts *policy.Facts
}

// Service is the identity domain.
type Service struct {
	db      *ent.Client
	opt     Options
	facts   *policy.Facts
	log     *slog.Logger
	now     func() time.Time
	account *keyedLimiter // login attempts per account
	client  *keyedLimiter // login attempts per client address
	hashes  *hashGate     // bounds concurrent argon2id work (memory)
	// refreshKey authenticates refresh secrets (see newRefreshSecret).
	refreshKey []byte
	// dummyHash makes a login for an unknown email cost the same as one for
	// a known email, so timing does not reveal which accounts exist. Made on
	// first use: hashing at start would be most of the start-up time.
	dummyOnce sync.Once
	dummyHash string
}

// New returns the identity service over db.
func New(db *ent.Client, o Options) (*Service, error) {
	if len(o.SigningKey) < 32 {
		return nil, errors.New("identity: signing key shorter than 32 bytes")
	}
	if o.AccessTokenTTL <= 0 {
		o.AccessTokenTTL = 15 * time.Minute
	}
	if o.RefreshTokenTTL <= 0 {
		o.RefreshTokenTTL = 30 * 24 * time.Hour
	}
	if o.Argon2 == (Argon2Params{}) {
		o.Argon2 = DefaultArgon2
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = func() time.Time { return time.Now().UTC() }
	}
	if o.LoginBurst <= 0 {
		o.LoginBurst = 10
	}
	if o.ClientBurst <= 0 {
		o.ClientBurst = 30
	}
	if o.MaxConcurrentHashes <= 0 {
		o.MaxConcurrentHashes = runtime.GOMAXPROCS(0)
	}
	if o.HashQueueWait <= 0 {
		o.HashQueueWait = 3 * time.Second
	}
	if o.Facts == nil {
		o.Facts = policy.NewFacts(policy.RoleEditor)
	}
	svc := &Service{
		db: db, opt: o, log: o.Logger, now: o.Now, facts: o.Facts,
		account: newKeyedLimiter(30*time.Second, o.LoginBurst),
		client:  newKeyedLimiter(2*time.Second, o.ClientBurst),
		hashes:  newHashGate(o.MaxConcurrentHashes, o.HashQueueWait),
	}
	mac := hmac.New(sha256.New, o.SigningKey)
	mac.Write([]byte("datapulse refresh-token secret MAC v1"))
	svc.refreshKey = mac.Sum(nil)
	go svc.dummy() // ready before the first unknown-email login, off the start-up path
	return svc, nil
}

func (s *Service) dummy() string {
	s.dummyOnce.Do(func() {
		s.hashes.slots <- struct{}{} // wait as long as it takes: needed once
		defer s.hashes.release()
		h, err := HashPassword("dummy password for timing equalisation", s.opt.Argon2)
		if err != nil {
			panic(err) // crypto/rand failed
		}
		s.dummyHash = h
	})
	return s.dummyHash
}

// AccessTokenTTL is the lifetime of access tokens.
func (s *Service) AccessTokenTTL() time.Duration { return s.opt.AccessTokenTTL }

// notFound maps ent's not-found to the domain's.
func notFound(err error, what string) error {
	if ent.IsNotFound(err) {
		return errs.NotFound(what)
	}
	return err
}

// withTx runs fn in one transaction (store.WithTx).
func (s *Service) withTx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	return store.WithTx(ctx, s.db, fn)
}
