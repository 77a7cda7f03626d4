package dashboards

import (
	"context"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/schema/types"
	"github.com/datapulse/datapulse/ent/widget"
	"github.com/datapulse/datapulse/policy"
)

// WidgetInput creates a widget, or changes one (nil fields stay).
type WidgetInput struct {
	Type     *string
	Config   map[string]any
	Position *types.Position
}

// CreateWidget adds a widget to a dashboard the caller may edit.
func (s *Service) CreateWidget(ctx context.Context, dashboardID uuid.UUID, in WidgetInput) (Widget, error) {
	_, d, err := s.authorize(ctx, dashboardID, policy.DashboardsEdit)
	if err != nil {
		return Widget{}, err
	}
	if in.Type == nil {
		return Widget{}, errs.Invalid("type", "type is required")
	}
	if in.Position == nil {
		return Widget{}, errs.Invalid("position", "position is required")
	}
	if err := checkPosition("position", *in.Position); err != nil {
		return Widget{}, err
	}
	cfg, err := s.widgetConfig(ctx, d.OwnerID, d.Filters, *in.Type, in.Config)
	if err != nil {
		return Widget{}, err
	}
	n, err := s.db.Widget.Query().Where(widget.DashboardID(dashboardID)).Count(ctx)
	if err != nil {
		return Widget{}, err
	}
	if n >= MaxWidgetsPerDashboard {
		return Widget{}, errs.Conflict("a dashboard holds at most 200 widgets")
	}
	w, err := s.db.Widget.Create().SetDashboardID(dashboardID).SetType(*in.Type).SetConfig(cfg).SetPosition(*in.Position).Save(ctx)
	if err != nil {
		return Widget{}, err
	}
	s.touch(ctx, dashboardID)
	return toWidget(w), nil
}

// touch marks a dashboard changed when its widgets change.
func (s *Service) touch(ctx context.Context, id uuid.UUID) {
	if err := s.db.Dashboard.UpdateOneID(id).Exec(ctx); err != nil && !ent.IsNotFound(err) {
		s.log.WarnContext(ctx, "update dashboard timestamp", "dashboard_id", id, "error", err)
	}
}

// ListWidgets lists a readable dashboard's widgets.
func (s *Service) ListWidgets(ctx context.Context, dashboardID uuid.UUID) ([]Widget, error) {
	if _, _, err := s.authorize(ctx, dashboardID, policy.DashboardsRead); err != nil {
		return nil, err
	}
	ws, err := s.db.Widget.Query().Where(widget.DashboardID(dashboardID)).Order(ent.Asc(widget.FieldCreatedAt), ent.Asc(widget.FieldID)).All(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Widget, len(ws))
	for i, w := range ws {
		out[i] = toWidget(w)
	}
	return out, nil
}

// widgetOf loads a widget only through its own dashboard: a widget id under
// another dashboard's path is not found.
func (s *Service) widgetOf(ctx context.Context, dashboardID, widgetID uuid.UUID) (*ent.Widget, error) {
	w, err := s.db.Widget.Query().Where(widget.ID(widgetID), widget.DashboardID(dashboardID)).Only(ctx)
	return w, notFound(err, "widget")
}

// GetWidget returns one widget of a readable dashboard.
func (s *Service) GetWidget(ctx context.Context, dashboardID, widgetID uuid.UUID) (Widget, error) {
	if _, _, err := s.authorize(ctx, dashboardID, policy.DashboardsRead); err != nil {
		return Widget{}, err
	}
	w, err := s.widgetOf(ctx, dashboardID, widgetID)
	if err != nil {
		return Widget{}, err
	}
	return toWidget(w), nil
}

// UpdateWidget changes a widget's type, config or position. A new type needs
// a config valid for it.
func (s *Service) UpdateWidget(ctx context.Context, dashboardID, widgetID uuid.UUID, in WidgetInput) (Widget, error) {
	_, d, err := s.authorize(ctx, dashboardID, policy.DashboardsEdit)
	if err != nil {
		return Widget{}, err
	}
	w, err := s.widgetOf(ctx, dashboardID, widgetID)
	if err != nil {
		return Widget{}, err
	}
	typ, cfg := w.Type, w.Config
	if in.Type != nil {
		typ = *in.Type
	}
	if in.Config != nil {
		cfg = in.Config
	}
	if in.Type != nil || in.Config != nil {
		if cfg, err = s.widgetConfig(ctx, d.OwnerID, d.Filters, typ, cfg); err != nil {
			return Widget{}, err
		}
	}
	up := s.db.Widget.UpdateOne(w).SetType(typ).SetConfig(cfg)
	if in.Position != nil {
		if err := checkPosition("position", *in.Position); err != nil {
			return Widget{}, err
		}
		up.SetPosition(*in.Position)
	}
	w, err = up.Save(ctx)
	if err != nil {
		return Widget{}, notFound(err, "widget")
	}
	s.touch(ctx, dashboardID)
	return toWidget(w), nil
}

// DeleteWidget removes a widget.
func (s *Service) DeleteWidget(ctx context.Context, dashboardID, widgetID uuid.UUID) error {
	if _, _, err := s.authorize(ctx, dashboardID, policy.DashboardsEdit); err != nil {
		return err
	}
	n, err := s.db.Widget.Delete().Where(widget.ID(widgetID), widget.DashboardID(dashboardID)).Exec(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return errs.NotFound("widget")
	}
	s.touch(ctx, dashboardID)
	return nil
}

// Move is one widget's new position in a layout change.
type Move struct {
	WidgetID uuid.UUID
	Position types.Position
}

// UpdateLayout moves many widgets at once, all or nothing.
func (s *Service) UpdateLayout(ctx context.Context, dashboardID uuid.UUID, moves []Move) ([]Widget, error) {
	if _, _, err := s.authorize(ctx, dashboardID, policy.DashboardsEdit); err != nil {
		return nil, err
	}
	if len(moves) == 0 || len(moves) > MaxWidgetsPerDashboard {
		return nil, errs.Invalid("widgets", "give between 1 and 200 widget positions")
	}
	seen := map[uuid.UUID]bool{}
	for i, m := range moves {
		if seen[m.WidgetID] {
			return nil, errs.Invalid("widgets", "widget "+m.WidgetID.String()+" is listed twice")
		}
		seen[m.WidgetID] = true
		if err := checkPosition("position", m.Position); err != nil {
			return nil, prefixField(err, i)
		}
	}
	err := store.WithTx(ctx, s.db, func(tx *ent.Tx) error {
		for _, m := range moves {
			n, err := tx.Widget.Update().Where(widget.ID(m.WidgetID), widget.DashboardID(dashboardID)).SetPosition(m.Position).Save(ctx)
			if err != nil {
				return err
			}
			if n == 0 {
				return errs.Invalid("widgets", "widget "+m.WidgetID.String()+" is not on this dashboard")
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.touch(ctx, dashboardID)
	return s.ListWidgets(ctx, dashboardID)
}
