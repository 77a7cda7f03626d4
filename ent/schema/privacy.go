package schema

import (
	"context"

	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/dashboard"
	"github.com/datapulse/datapulse/ent/dashboardshare"
	"github.com/datapulse/datapulse/ent/predicate"
	"github.com/datapulse/datapulse/ent/privacy"
	"github.com/datapulse/datapulse/ent/widget"
)

// The privacy policies below are a backstop, not the authorization: the
// services decide through the policy enforcer before they touch data. These
// rules make a query that forgot to do so fail closed: without a caller in
// the context nothing is read or written, and a non-admin caller only ever
// reads dashboards they own or that are shared with them (and their widgets
// and shares).

// caller returns the principal of the context, if any.
func caller(ctx context.Context) (*principal.Principal, bool) { return principal.From(ctx) }

// visibleDashboards is the widest set any non-admin may read: owned or shared.
func visibleDashboards(p *principal.Principal) predicate.Dashboard {
	return dashboard.Or(
		dashboard.OwnerID(p.UserID),
		dashboard.HasDashboardSharesWith(dashboardshare.UserID(p.UserID)),
	)
}

// requireCaller denies any operation made without a caller.
var requireCaller = privacy.ContextQueryMutationRule(func(ctx context.Context) error {
	if _, ok := caller(ctx); !ok {
		return privacy.Denyf("no authenticated caller in context")
	}
	return privacy.Skip
})

// allowAdmins lets instance admins and in-process system callers through.
var allowAdmins = privacy.ContextQueryMutationRule(func(ctx context.Context) error {
	if p, ok := caller(ctx); ok && p.IsAdmin() {
		return privacy.Allow
	}
	return privacy.Skip
})

func dashboardPolicy() ent.Policy {
	return privacy.Policy{
		Query: privacy.QueryPolicy{
			requireCaller,
			allowAdmins,
			privacy.DashboardQueryRuleFunc(func(ctx context.Context, q *ent.DashboardQuery) error {
				p, _ := caller(ctx)
				q.Where(visibleDashboards(p))
				return privacy.Allow
			}),
		},
		Mutation: privacy.MutationPolicy{requireCaller, privacy.AlwaysAllowRule()},
	}
}

func widgetPolicy() ent.Policy {
	return privacy.Policy{
		Query: privacy.QueryPolicy{
			requireCaller,
			allowAdmins,
			privacy.WidgetQueryRuleFunc(func(ctx context.Context, q *ent.WidgetQuery) error {
				p, _ := caller(ctx)
				q.Where(widget.HasDashboardWith(visibleDashboards(p)))
				return privacy.Allow
			}),
		},
		Mutation: privacy.MutationPolicy{requireCaller, privacy.AlwaysAllowRule()},
	}
}

func dashboardSharePolicy() ent.Policy {
	return privacy.Policy{
		Query: privacy.QueryPolicy{
			requireCaller,
			allowAdmins,
			privacy.DashboardShareQueryRuleFunc(func(ctx context.Context, q *ent.DashboardShareQuery) error {
				p, _ := caller(ctx)
				q.Where(dashboardshare.HasDashboardWith(visibleDashboards(p)))
				return privacy.Allow
			}),
		},
		Mutation: privacy.MutationPolicy{requireCaller, privacy.AlwaysAllowRule()},
	}
}
