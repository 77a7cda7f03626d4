package policy

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/principal"
)

// SubjectFrom returns the caller of ctx as a subject, or an unauthenticated
// error (errs.ErrUnauthenticated) when there is none.
func SubjectFrom(ctx context.Context) (Subject, error) {
	p, ok := principal.From(ctx)
	if !ok {
		return Subject{}, errs.Unauthenticated("authentication required")
	}
	return SubjectOf(p), nil
}

// SubjectOf is a principal as the enforcer sees it.
func SubjectOf(p *principal.Principal) Subject {
	return Subject{UserID: p.UserID, Scopes: p.Scopes, System: p.System}
}

// Require decides whether the caller in ctx may do act on obj; it is the one
// call services make per operation. It answers nil when allowed, else an
// errs error:
//   - errs.ErrUnauthenticated: ctx carries no caller;
//   - errs.ErrNotFound ("<noun> not found"): obj is one object the caller may
//     not even read (ReadAction of its kind), so an unknown id and an
//     unreadable one answer alike;
//   - errs.ErrForbidden: the caller may read obj but not do act on it, or
//     obj is a collection and act is not allowed on it.
//
// For a specific object Require vouches for access, not existence: an admin
// (who may read anything) gets nil for an unknown id, and the service's own
// load answers "not found".
func (e *Enforcer) Require(ctx context.Context, obj Object, act Action) error {
	sub, err := SubjectFrom(ctx)
	if err != nil {
		return err
	}
	return e.RequireSubject(ctx, sub, obj, act)
}

// RequireSubject is Require for a subject already at hand.
func (e *Enforcer) RequireSubject(ctx context.Context, sub Subject, obj Object, act Action) error {
	if obj.ID == uuid.Nil {
		if e.Can(ctx, sub, obj, act) {
			return nil
		}
		return e.forbidden(sub, act, "")
	}
	rule := ruleOf(obj.Kind)
	if !e.Can(ctx, sub, obj, rule.read) {
		return errs.NotFound(rule.noun)
	}
	if act == rule.read || e.Can(ctx, sub, obj, act) {
		return nil
	}
	return e.forbidden(sub, act, rule.noun)
}

// forbidden explains a refusal: the token's scope, the role (collections),
// or the object.
func (e *Enforcer) forbidden(sub Subject, act Action, noun string) error {
	switch {
	case !scopeAllows(sub.Scopes, act):
		return errs.Forbidden("this token is read-only")
	case noun != "":
		_, verb, _ := strings.Cut(string(act), ":")
		return errs.Forbidden("you may not " + verb + " this " + noun)
	}
	if alts, ok := anyOf[act]; ok {
		names := make([]string, len(alts))
		for i, a := range alts {
			names[i] = string(a)
		}
		return errs.Forbidden("your role allows neither " + strings.Join(names, " nor "))
	}
	return errs.Forbidden("your role does not allow " + string(act))
}
