// Package identity holds users, departments, profiles, roles, sessions and
// API tokens: who somebody is and how they prove it. Its services check the
// caller themselves, so a Go caller gets the same rules as an HTTP one.
package identity

import (
	"context"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/principal"
)

func requireUser(ctx context.Context) (*principal.Principal, error) {
	p, ok := principal.From(ctx)
	if !ok {
		return nil, errs.Unauthenticated("authentication required")
	}
	return p, nil
}

func requireAdmin(ctx context.Context) (*principal.Principal, error) {
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
