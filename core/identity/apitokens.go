package identity

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/apitoken"
)

// APIToken describes a personal API token; the secret is never in it.
type APIToken struct {
	ID         uuid.UUID  `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix" doc:"first characters of the token, to tell tokens apart"`
	Scopes     []string   `json:"scopes"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	CreatedAt  time.Time  `json:"created_at"`
}

// NewAPIToken is returned once, at creation: Token is not stored anywhere.
type NewAPIToken struct {
	APIToken
	Token string `json:"token" doc:"the token; shown only in this response"`
}

func toAPIToken(t *ent.APIToken) APIToken {
	scopes := t.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return APIToken{ID: t.ID, Name: t.Name, Prefix: t.Prefix, Scopes: scopes, ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt, CreatedAt: t.CreatedAt}
}

// MaxTokensPerUser bounds how many tokens one user may hold.
const MaxTokensPerUser = 100

// CreateAPIToken issues a personal token for the caller. A token cannot be
// used to mint tokens: that needs an interactive login.
func (s *Service) CreateAPIToken(ctx context.Context, name string, scopes []string, expiresAt *time.Time) (NewAPIToken, error) {
	p, err := requireUser(ctx)
	if err != nil {
		return NewAPIToken{}, err
	}
	if p.TokenID != uuid.Nil {
		return NewAPIToken{}, errs.Forbidden("API tokens cannot create API tokens; log in to create one")
	}
	n, err := checkLabel("name", &name, 100, true)
	if err != nil {
		return NewAPIToken{}, err
	}
	clean := []string{}
	for _, sc := range scopes {
		if sc != ScopeRead && sc != ScopeWrite {
			return NewAPIToken{}, errs.Invalid("scopes", "scopes may contain only read and write")
		}
		if !slices.Contains(clean, sc) {
			clean = append(clean, sc)
		}
	}
	if expiresAt != nil && !expiresAt.After(s.now()) {
		return NewAPIToken{}, errs.Invalid("expires_at", "expires_at must be in the future")
	}
	count, err := s.db.APIToken.Query().Where(apitoken.UserID(p.UserID)).Count(ctx)
	if err != nil {
		return NewAPIToken{}, err
	}
	if count >= MaxTokensPerUser {
		return NewAPIToken{}, errs.Conflict("token limit reached; delete unused tokens first")
	}
	secret, _ := newSecret()
	token := APITokenPrefix + secret
	c := s.db.APIToken.Create().SetUserID(p.UserID).SetName(n).SetTokenHash(hashSecret(token)).
		SetPrefix(token[:len(APITokenPrefix)+6]).SetScopes(clean)
	if expiresAt != nil {
		c.SetExpiresAt(expiresAt.UTC())
	}
	t, err := c.Save(ctx)
	if err != nil {
		return NewAPIToken{}, err
	}
	return NewAPIToken{APIToken: toAPIToken(t), Token: token}, nil
}

// ListAPITokens lists the caller's tokens.
func (s *Service) ListAPITokens(ctx context.Context) ([]APIToken, error) {
	p, err := requireUser(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.APIToken.Query().Where(apitoken.UserID(p.UserID)).Order(ent.Desc(apitoken.FieldCreatedAt)).All(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]APIToken, len(rows))
	for i, t := range rows {
		out[i] = toAPIToken(t)
	}
	return out, nil
}

// RevokeAPIToken deletes one of the caller's tokens. Another user's token is
// "not found", so ids cannot be probed.
func (s *Service) RevokeAPIToken(ctx context.Context, id uuid.UUID) error {
	p, err := requireUser(ctx)
	if err != nil {
		return err
	}
	n, err := s.db.APIToken.Delete().Where(apitoken.ID(id), apitoken.UserID(p.UserID)).Exec(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return errs.NotFound("token")
	}
	return nil
}
