package dashboards

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/dashboardshare"
	"github.com/datapulse/datapulse/policy"
)

// Share grants one user access to a dashboard.
type Share struct {
	UserID          uuid.UUID `json:"user_id"`
	Email           string    `json:"email"`
	Name            *string   `json:"name"`
	PermissionLevel string    `json:"permission_level" enum:"view,edit"`
	SharedAt        time.Time `json:"shared_at"`
}

func toShare(s *ent.DashboardShare) Share {
	out := Share{UserID: s.UserID, PermissionLevel: string(s.PermissionLevel), SharedAt: s.SharedAt}
	if u := s.Edges.User; u != nil {
		out.Email, out.Name = u.Email, u.Name
	}
	return out
}

// ListShares lists who a dashboard is shared with (owners and admins).
func (s *Service) ListShares(ctx context.Context, dashboardID uuid.UUID) ([]Share, error) {
	if _, _, err := s.authorize(ctx, dashboardID, policy.DashboardsShare); err != nil {
		return nil, err
	}
	rows, err := s.db.DashboardShare.Query().Where(dashboardshare.DashboardID(dashboardID)).
		WithUser().Order(ent.Asc(dashboardshare.FieldSharedAt)).All(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Share, len(rows))
	for i, r := range rows {
		out[i] = toShare(r)
	}
	return out, nil
}

// PutShare shares a dashboard with a user at a level, or changes the level.
// Only owners and admins share; the levels are view and edit, both below the
// owner's, so nobody grants more than they hold.
func (s *Service) PutShare(ctx context.Context, dashboardID, userID uuid.UUID, level string) (Share, error) {
	sub, d, err := s.authorize(ctx, dashboardID, policy.DashboardsShare)
	if err != nil {
		return Share{}, err
	}
	lv := policy.ParseLevel(level)
	if lv == policy.LevelNone {
		return Share{}, errs.Invalid("permission_level", "permission_level must be view or edit")
	}
	if userID == sub.UserID {
		return Share{}, errs.Invalid("user_id", "you cannot share a dashboard with yourself")
	}
	if userID == d.OwnerID {
		return Share{}, errs.Invalid("user_id", "the owner already has every right on this dashboard")
	}
	u, err := s.db.User.Get(ctx, userID)
	if err != nil {
		return Share{}, notFound(err, "user")
	}
	err = s.db.DashboardShare.Create().SetDashboardID(dashboardID).SetUserID(userID).
		SetPermissionLevel(dashboardshare.PermissionLevel(level)).
		OnConflictColumns(dashboardshare.FieldDashboardID, dashboardshare.FieldUserID).
		UpdatePermissionLevel().Exec(ctx)
	if err != nil {
		return Share{}, err
	}
	row, err := s.db.DashboardShare.Query().Where(dashboardshare.DashboardID(dashboardID), dashboardshare.UserID(userID)).Only(ctx)
	if err != nil {
		return Share{}, err
	}
	s.pol.Facts().SetShare(dashboardID, userID, lv)
	row.Edges.User = u
	return toShare(row), nil
}

// DeleteShare stops sharing a dashboard with a user.
func (s *Service) DeleteShare(ctx context.Context, dashboardID, userID uuid.UUID) error {
	if _, _, err := s.authorize(ctx, dashboardID, policy.DashboardsShare); err != nil {
		return err
	}
	n, err := s.db.DashboardShare.Delete().Where(dashboardshare.DashboardID(dashboardID), dashboardshare.UserID(userID)).Exec(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return errs.NotFound("share")
	}
	s.pol.Facts().SetShare(dashboardID, userID, policy.LevelNone)
	return nil
}
