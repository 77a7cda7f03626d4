// Package principal holds the authenticated caller of a request and how it
// travels in a context. It is a leaf: it imports nothing of DataPulse, so the
// policy, the ent privacy rules and every service can depend on it.
package principal

import (
	"context"
	"slices"

	"github.com/google/uuid"
)

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

type key struct{}

// With returns ctx carrying p.
func With(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, key{}, p)
}

// From returns the caller in ctx, if any.
func From(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(key{}).(*Principal)
	return p, ok && p != nil
}

// System marks ctx as an in-process administrative caller: the CLI's
// `admin create-user` and the first-start bootstrap, never HTTP.
func System(ctx context.Context) context.Context {
	return With(ctx, &Principal{System: true, Role: RoleAdmin})
}
