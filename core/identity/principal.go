// Package identity holds users, departments, profiles, roles, sessions and
// API tokens: who somebody is and how they prove it. Its services check the
// caller themselves, so a Go caller gets the same rules as an HTTP one.
package identity

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/policy"
)

// Principal is the authenticated caller of a request.
type Principal struct {
	UserID uuid.UUID
	Email  string
	Role   string // users.role: "user" or "admin"
	// SessionID is set when the caller used an access token.
	SessionID uuid.UUID
	// TokenID is set when the caller used a personal API token.
	TokenID uuid.UUID
	// Scopes narrow an API token; empty means all of its user's rights.
	Scopes []string
	// System marks in-process callers (CLI, bootstrap) that act as admin.
	System bool
}

// IsAdmin reports whether the principal is an instance admin.
func (p *Principal) IsAdmin() bool { return p != nil && (p.System || p.Role == RoleAdmin) }

// CanWrite reports whether the principal's token scopes allow changes.
func (p *Principal) CanWrite() bool {
	return len(p.Scopes) == 0 || slices.Contains(p.Scopes, ScopeWrite)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller in ctx, if any.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// SystemContext marks ctx as an in-process administrative caller: the CLI's
// `admin create-user` and the first-start bootstrap, never HTTP.
func SystemContext(ctx context.Context) context.Context {
	return WithPrincipal(ctx, &Principal{System: true, Role: RoleAdmin})
}

func requireUser(ctx context.Context) (*Principal, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return nil, errs.Unauthenticated("authentication required")
	}
	return p, nil
}

func requireAdmin(ctx context.Context) (*Principal, error) {
	p, err := requireUser(ctx)
	if err != nil {
		return nil, err
	}
	if !p.IsAdmin() {
		return nil, errs.Forbidden("this needs an administrator")
	}
	return p, nil
}

// Roles of users.role.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// Scopes an API token may be narrowed to.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
)

// Subject is the principal as the policy enforcer sees it.
func (p *Principal) Subject() policy.Subject {
	return policy.Subject{UserID: p.UserID, Scopes: p.Scopes, System: p.System}
}

// SubjectFrom returns the caller of ctx as a policy subject, or an
// unauthenticated error when there is none.
func SubjectFrom(ctx context.Context) (policy.Subject, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return policy.Subject{}, errs.Unauthenticated("authentication required")
	}
	return p.Subject(), nil
}
