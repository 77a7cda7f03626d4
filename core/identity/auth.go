package identity

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/apitoken"
	"github.com/datapulse/datapulse/ent/session"
	"github.com/datapulse/datapulse/ent/user"
)

// Token prefixes tell the kinds apart at a glance and let secret scanners
// recognise leaked DataPulse tokens.
const (
	APITokenPrefix     = "dp_"
	RefreshTokenPrefix = "dpr_"
	issuer             = "datapulse"
)

// Tokens is what a login or refresh returns.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type" example:"Bearer"`
	ExpiresIn    int    `json:"expires_in" doc:"seconds until the access token expires"`
}

// LoginInput is a password login.
type LoginInput struct {
	Email     string
	Password  string
	ClientIP  string
	UserAgent string
}

var errBadCredentials = errs.Unauthenticated("invalid email or password")

// Login checks a password and opens a session. A wrong password and an
// unknown email fail identically (same message, same work).
func (s *Service) Login(ctx context.Context, in LoginInput) (*Tokens, error) {
	now := s.now()
	email := normalizeEmail(in.Email)
	if ok, wait := s.client.allow(in.ClientIP, now); !ok {
		return nil, errs.RateLimited("too many login attempts from this address; try again later", wait)
	}
	if ok, wait := s.account.allow(email, now); !ok {
		return nil, errs.RateLimited("too many login attempts for this account; try again later", wait)
	}
	u, err := s.db.User.Query().Where(user.Email(email)).Only(ctx)
	if err != nil && !ent.IsNotFound(err) {
		return nil, err
	}
	hash := s.dummy()
	if u != nil {
		hash = u.Password
	}
	match, verr, err := s.verifyPassword(ctx, in.Password, hash)
	if err != nil {
		return nil, err // the server is busy hashing: 429, not a wrong password
	}
	if u == nil || verr != nil || !match {
		if verr != nil && u != nil {
			s.log.ErrorContext(ctx, "stored password hash is unreadable", "user_id", u.ID)
		}
		return nil, errBadCredentials
	}
	if NeedsRehash(u.Password, s.opt.Argon2) {
		// Best effort: when the gate is busy, the next login rehashes.
		if h, err := s.hashPassword(ctx, in.Password); err == nil {
			if err := s.db.User.UpdateOne(u).SetPassword(h).Exec(ctx); err != nil {
				s.log.WarnContext(ctx, "password rehash failed", "user_id", u.ID, "error", err)
			}
		}
	}
	return s.openSession(ctx, u, in.UserAgent)
}

func (s *Service) openSession(ctx context.Context, u *ent.User, userAgent string) (*Tokens, error) {
	sid := uuid.Must(uuid.NewV7())
	secret, hash := s.newRefreshSecret(sid)
	_, err := s.db.Session.Create().
		SetID(sid).
		SetUserID(u.ID).
		SetRefreshHash(hash).
		SetExpiresAt(s.now().Add(s.opt.RefreshTokenTTL)).
		SetUserAgent(truncate(userAgent, 255)).
		Save(ctx)
	if err != nil {
		return nil, err
	}
	return s.tokensFor(u.ID, sid, secret)
}

// Refresh secrets are base64url(nonce ‖ mac): 32 random bytes and the first
// 16 bytes of HMAC-SHA256(refreshMACKey, session id ‖ nonce). A session
// stores only the hash of its current secret; the MAC tells a secret this
// server issued for the session (an earlier one presented again after
// rotation: the token was copied) from a guess at a public session id, which
// must not touch the session.
const (
	refreshNonceLen = 32
	refreshMACLen   = 16
)

func (s *Service) refreshMAC(sid uuid.UUID, nonce []byte) []byte {
	m := hmac.New(sha256.New, s.refreshKey)
	m.Write(sid[:])
	m.Write(nonce)
	return m.Sum(nil)[:refreshMACLen]
}

// newRefreshSecret returns a refresh secret for session sid and its stored hash.
func (s *Service) newRefreshSecret(sid uuid.UUID) (secret, hash string) {
	b := make([]byte, refreshNonceLen, refreshNonceLen+refreshMACLen)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	b = append(b, s.refreshMAC(sid, b)...)
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, hashSecret(secret)
}

// issuedFor reports whether this server made secret for session sid.
// Secrets made before secrets carried a MAC report false.
func (s *Service) issuedFor(sid uuid.UUID, secret string) bool {
	b, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil || len(b) != refreshNonceLen+refreshMACLen {
		return false
	}
	return hmac.Equal(b[refreshNonceLen:], s.refreshMAC(sid, b[:refreshNonceLen]))
}

func (s *Service) tokensFor(userID, sessionID uuid.UUID, secret string) (*Tokens, error) {
	now := s.now()
	claims := jwt.RegisteredClaims{
		Issuer:    issuer,
		Subject:   userID.String(),
		ID:        sessionID.String(),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(s.opt.AccessTokenTTL)),
	}
	access, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.opt.SigningKey)
	if err != nil {
		return nil, err
	}
	return &Tokens{
		AccessToken:  access,
		RefreshToken: RefreshTokenPrefix + sessionID.String() + "." + secret,
		TokenType:    "Bearer",
		ExpiresIn:    int(s.opt.AccessTokenTTL / time.Second),
	}, nil
}

// Refresh rotates a refresh token: the presented one stops working and a new
// pair is returned. Exactly one of several concurrent refreshes of one token
// wins: the rotation is a conditional update of the stored hash. Presenting a
// secret this session had before (an already rotated one, or one that lost
// such a race) means it was copied: the whole session is revoked. A secret
// the session never had (a guess) is refused and changes nothing.
func (s *Service) Refresh(ctx context.Context, refreshToken, userAgent string) (*Tokens, error) {
	sid, secret, ok := parseRefresh(refreshToken)
	if !ok {
		return nil, errs.Unauthenticated("invalid refresh token")
	}
	sess, err := s.db.Session.Get(ctx, sid)
	if err != nil {
		if ent.IsNotFound(err) {
			return nil, errs.Unauthenticated("invalid refresh token")
		}
		return nil, err
	}
	now := s.now()
	if sess.RevokedAt != nil || !now.Before(sess.ExpiresAt) {
		return nil, errs.Unauthenticated("session expired or revoked; log in again")
	}
	presented := hashSecret(secret)
	switch {
	case subtle.ConstantTimeCompare([]byte(presented), []byte(sess.RefreshHash)) == 1:
		next, nextHash := s.newRefreshSecret(sid)
		n, err := s.db.Session.Update().
			Where(session.ID(sid), session.RefreshHash(presented), session.RevokedAtIsNil(), session.ExpiresAtGT(now)).
			SetRefreshHash(nextHash).SetUserAgent(truncate(userAgent, 255)).
			Save(ctx)
		if err != nil {
			return nil, err
		}
		if n == 1 {
			return s.tokensFor(sess.UserID, sid, next)
		}
		// Rotated (or revoked) by another request since it was read: this
		// secret is being used twice.
	case !s.issuedFor(sid, secret):
		return nil, errs.Unauthenticated("invalid refresh token")
	}
	if err := s.db.Session.Update().Where(session.ID(sid), session.RevokedAtIsNil()).SetRevokedAt(now).Exec(ctx); err != nil {
		return nil, err
	}
	s.log.WarnContext(ctx, "refresh token reuse detected; session revoked", "session_id", sid, "user_id", sess.UserID)
	return nil, errs.Unauthenticated("refresh token was already used; the session has been revoked")
}

// Logout revokes the caller's session (access token) or the session of the
// given refresh token.
func (s *Service) Logout(ctx context.Context, refreshToken string) error {
	if refreshToken != "" {
		sid, secret, ok := parseRefresh(refreshToken)
		if !ok {
			return errs.Unauthenticated("invalid refresh token")
		}
		sess, err := s.db.Session.Get(ctx, sid)
		if err != nil || subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(sess.RefreshHash)) != 1 {
			return errs.Unauthenticated("invalid refresh token")
		}
		err = s.db.Session.UpdateOneID(sid).Where(session.RevokedAtIsNil()).SetRevokedAt(s.now()).Exec(ctx)
		if ent.IsNotFound(err) { // already revoked: logging out twice is fine
			return nil
		}
		return err
	}
	p, err := requireUser(ctx)
	if err != nil {
		return err
	}
	if p.SessionID == uuid.Nil {
		return errs.Invalid("refresh_token", "an API token has no session: revoke the token instead, or pass refresh_token")
	}
	err = s.db.Session.UpdateOneID(p.SessionID).Where(session.RevokedAtIsNil()).SetRevokedAt(s.now()).Exec(ctx)
	if ent.IsNotFound(err) {
		return nil
	}
	return err
}

// Authenticate resolves a bearer credential (access token or API token) to a
// principal. Every failure is the same 401 to the client; the reason is logged.
func (s *Service) Authenticate(ctx context.Context, bearer string) (*principal.Principal, error) {
	if strings.HasPrefix(bearer, APITokenPrefix) {
		return s.authenticateAPIToken(ctx, bearer)
	}
	return s.authenticateAccessToken(ctx, bearer)
}

var errBadToken = errs.Unauthenticated("invalid or expired token")

func (s *Service) authenticateAccessToken(ctx context.Context, raw string) (*principal.Principal, error) {
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return s.opt.SigningKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(30*time.Second),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil {
		return nil, errBadToken
	}
	sid, err1 := uuid.Parse(claims.ID)
	uid, err2 := uuid.Parse(claims.Subject)
	if err1 != nil || err2 != nil {
		return nil, errBadToken
	}
	// One query: the user, provided the session is live.
	u, err := s.db.User.Query().Where(user.ID(uid), user.HasSessionsWith(
		session.ID(sid), session.RevokedAtIsNil(), session.ExpiresAtGT(s.now()),
	)).Only(ctx)
	if err != nil {
		if ent.IsNotFound(err) {
			return nil, errBadToken
		}
		return nil, err
	}
	return &principal.Principal{UserID: u.ID, Email: u.Email, Role: string(u.Role), SessionID: sid}, nil
}

func (s *Service) authenticateAPIToken(ctx context.Context, raw string) (*principal.Principal, error) {
	if len(raw) > 128 {
		return nil, errBadToken
	}
	t, err := s.db.APIToken.Query().Where(apitoken.TokenHash(hashSecret(raw))).WithUser().Only(ctx)
	if err != nil {
		if ent.IsNotFound(err) {
			return nil, errBadToken
		}
		return nil, err
	}
	now := s.now()
	if t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) {
		return nil, errBadToken
	}
	// Record use at most once a minute: a write per request would serialise
	// every API call on SQLite's single writer.
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > time.Minute {
		if err := s.db.APIToken.UpdateOneID(t.ID).SetLastUsedAt(now).Exec(ctx); err != nil && !ent.IsNotFound(err) {
			s.log.WarnContext(ctx, "record token use failed", "token_id", t.ID, "error", err)
		}
	}
	u := t.Edges.User
	return &principal.Principal{UserID: u.ID, Email: u.Email, Role: string(u.Role), TokenID: t.ID, Scopes: t.Scopes}, nil
}

// newSecret returns a random URL-safe secret and its stored hash.
func newSecret() (secret, hash string) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, hashSecret(secret)
}

// hashSecret is SHA-256: the secrets are 256-bit random, so a slow hash adds
// nothing while a fast one keeps authentication cheap.
func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func parseRefresh(tok string) (uuid.UUID, string, bool) {
	rest, ok := strings.CutPrefix(tok, RefreshTokenPrefix)
	if !ok || len(tok) > 200 {
		return uuid.Nil, "", false
	}
	idPart, secret, ok := strings.Cut(rest, ".")
	if !ok || secret == "" {
		return uuid.Nil, "", false
	}
	id, err := uuid.Parse(idPart)
	if err != nil {
		return uuid.Nil, "", false
	}
	return id, secret, true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n]
}
