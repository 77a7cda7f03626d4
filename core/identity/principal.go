// Package identity holds users, departments, profiles, roles, sessions and
// API tokens: who somebody is and how they prove it. Its services check the
// caller themselves, so a Go caller gets the same rules as an HTTP one.
package identity

import (
	"context"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/policy"
)

// Principal is the authenticated caller of a request (core/principal). The
// names below are aliases kept so callers compile unchanged; new code uses
// core/principal directly.
type Principal = principal.Principal

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context { return principal.With(ctx, p) }

// PrincipalFrom returns the caller in ctx, if any.
func PrincipalFrom(ctx context.Context) (*Principal, bool) { return principal.From(ctx) }

// SystemContext marks ctx as an in-process administrative caller: the CLI's
// `admin create-user` and the first-start bootstrap, never HTTP.
func SystemContext(ctx context.Context) context.Context { return principal.System(ctx) }

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
	RoleUser  = principal.RoleUser
	RoleAdmin = principal.RoleAdmin
)

// Scopes an API token may be narrowed to.
const (
	ScopeRead  = principal.ScopeRead
	ScopeWrite = principal.ScopeWrite
)

// SubjectFrom returns the caller of ctx as a policy subject, or an
// unauthenticated error when there is none (policy.SubjectFrom).
func SubjectFrom(ctx context.Context) (policy.Subject, error) { return policy.SubjectFrom(ctx) }
