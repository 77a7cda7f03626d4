package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/dashboards"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/ent/schema/types"
)

type dashboardOutput struct {
	Body dashboards.Dashboard
}

type dashboardPageOutput struct {
	Body paging.Page[dashboards.Dashboard]
}

type createDashboardInput struct {
	Body struct {
		Name            string                  `json:"name" minLength:"1" maxLength:"255"`
		Description     *string                 `json:"description,omitempty" maxLength:"10000"`
		Filters         []types.DashboardFilter `json:"filters,omitempty" maxItems:"20" doc:"filters whose values are given when the dashboard renders"`
		CacheTTLSeconds *int                    `json:"cache_ttl_seconds,omitempty" minimum:"0" maximum:"604800" doc:"result cache TTL for this dashboard's widgets (0: no caching); absent: each data source's"`
	}
}

type listDashboardsInput struct {
	ListParams
	Q            string `query:"q" maxLength:"255" doc:"substring of the name"`
	Owned        bool   `query:"owned" doc:"only dashboards the caller owns"`
	SharedWithMe bool   `query:"shared_with_me" doc:"only dashboards shared with the caller"`
}

type updateDashboardInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		Name            *string                  `json:"name,omitempty" minLength:"1" maxLength:"255"`
		Description     *string                  `json:"description,omitempty" maxLength:"10000" doc:"empty string clears it"`
		Filters         *[]types.DashboardFilter `json:"filters,omitempty" maxItems:"20"`
		CacheTTLSeconds *int                     `json:"cache_ttl_seconds,omitempty" minimum:"-1" maximum:"604800" doc:"-1: back to the data sources' TTL"`
	}
}

type duplicateDashboardInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body *struct {
		Name *string `json:"name,omitempty" minLength:"1" maxLength:"255"`
	} `required:"false"`
}

type widgetOutput struct {
	Body dashboards.Widget
}

type widgetListOutput struct {
	Body struct {
		Items []dashboards.Widget `json:"items"`
	}
}

type createWidgetInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		Type     string         `json:"type" maxLength:"50" doc:"table, number, line, bar, area, pie or text"`
		Config   map[string]any `json:"config,omitempty" doc:"type-specific settings, validated per type"`
		Position types.Position `json:"position" doc:"place on the 24-column grid"`
	}
}

type widgetPathInput struct {
	ID       string `path:"id" maxLength:"64"`
	WidgetID string `path:"widget_id" maxLength:"64"`
}

type updateWidgetInput struct {
	ID       string `path:"id" maxLength:"64"`
	WidgetID string `path:"widget_id" maxLength:"64"`
	Body     struct {
		Type     *string         `json:"type,omitempty" maxLength:"50"`
		Config   map[string]any  `json:"config,omitempty"`
		Position *types.Position `json:"position,omitempty"`
	}
}

type layoutInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		Widgets []struct {
			ID       uuid.UUID      `json:"id"`
			Position types.Position `json:"position"`
		} `json:"widgets" minItems:"1" maxItems:"200"`
	}
}

type shareListOutput struct {
	Body struct {
		Items []dashboards.Share `json:"items"`
	}
}

type shareOutput struct {
	Body dashboards.Share
}

type sharePathInput struct {
	ID     string `path:"id" maxLength:"64"`
	UserID string `path:"user_id" maxLength:"64"`
}

type putShareInput struct {
	ID     string `path:"id" maxLength:"64"`
	UserID string `path:"user_id" maxLength:"64"`
	Body   struct {
		PermissionLevel string `json:"permission_level" enum:"view,edit"`
	}
}

type exportOutput struct {
	Body dashboards.Document
}

type importInput struct {
	Body dashboards.Document
}

func (s *Server) dashboardRoutes() {
	tags := []string{"dashboards"}
	ds := s.deps.Dashboards
	register(s, Authenticated, huma.Operation{
		OperationID: "createDashboard", Method: http.MethodPost, Path: "/api/v1/dashboards", Tags: tags,
		Summary: "Create a dashboard owned by the caller", DefaultStatus: http.StatusCreated,
	}, func(ctx context.Context, in *createDashboardInput) (*dashboardOutput, error) {
		d, err := ds.Create(ctx, dashboards.Input{Name: &in.Body.Name, Description: in.Body.Description,
			Filters: &in.Body.Filters, CacheTTLSeconds: in.Body.CacheTTLSeconds})
		if err != nil {
			return nil, err
		}
		return &dashboardOutput{Body: d}, nil
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "listDashboards", Method: http.MethodGet, Path: "/api/v1/dashboards", Tags: tags,
		Summary: "Dashboards the caller may see", Description: "Owned and shared dashboards (all for admins). Sort by name, created_at or updated_at (default -updated_at).",
	}, func(ctx context.Context, in *listDashboardsInput) (*dashboardPageOutput, error) {
		page, err := ds.List(ctx, dashboards.Filter{Q: in.Q, Owned: in.Owned, SharedWithMe: in.SharedWithMe}, in.paging())
		if err != nil {
			return nil, err
		}
		return &dashboardPageOutput{Body: page}, nil
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "importDashboard", Method: http.MethodPost, Path: "/api/v1/dashboards/import", Tags: tags,
		Summary: "Create a dashboard from an exported document", DefaultStatus: http.StatusCreated,
	}, func(ctx context.Context, in *importInput) (*dashboardOutput, error) {
		d, err := ds.Import(ctx, in.Body)
		if err != nil {
			return nil, err
		}
		return &dashboardOutput{Body: d}, nil
	})
	withID := func(raw string, fn func(uuid.UUID) error) error {
		id, err := parseID(raw, "dashboard")
		if err != nil {
			return err
		}
		return fn(id)
	}
	register(s, Authenticated, huma.Operation{
		OperationID: "getDashboard", Method: http.MethodGet, Path: "/api/v1/dashboards/{id}", Tags: tags,
		Summary: "A dashboard with its widgets", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *idInput) (*dashboardOutput, error) {
		out := &dashboardOutput{}
		return out, withID(in.ID, func(id uuid.UUID) (err error) { out.Body, err = ds.Get(ctx, id); return })
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "updateDashboard", Method: http.MethodPatch, Path: "/api/v1/dashboards/{id}", Tags: tags,
		Summary: "Rename or describe a dashboard", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *updateDashboardInput) (*dashboardOutput, error) {
		out := &dashboardOutput{}
		return out, withID(in.ID, func(id uuid.UUID) (err error) {
			out.Body, err = ds.Update(ctx, id, dashboards.Input{Name: in.Body.Name, Description: in.Body.Description,
				Filters: in.Body.Filters, CacheTTLSeconds: in.Body.CacheTTLSeconds})
			return
		})
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "deleteDashboard", Method: http.MethodDelete, Path: "/api/v1/dashboards/{id}", Tags: tags,
		Summary: "Delete a dashboard with its widgets, shares and reports", DefaultStatus: http.StatusNoContent,
		Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *idInput) (*struct{}, error) {
		return nil, withID(in.ID, func(id uuid.UUID) error { return ds.Delete(ctx, id) })
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "duplicateDashboard", Method: http.MethodPost, Path: "/api/v1/dashboards/{id}/duplicate", Tags: tags,
		Summary: "Copy a dashboard (with widgets, without shares) into one the caller owns", DefaultStatus: http.StatusCreated,
		Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *duplicateDashboardInput) (*dashboardOutput, error) {
		out := &dashboardOutput{}
		var name *string
		if in.Body != nil {
			name = in.Body.Name
		}
		return out, withID(in.ID, func(id uuid.UUID) (err error) { out.Body, err = ds.Duplicate(ctx, id, name); return })
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "exportDashboard", Method: http.MethodGet, Path: "/api/v1/dashboards/{id}/export", Tags: tags,
		Summary: "A dashboard as a portable document (no ids or owners)", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *idInput) (*exportOutput, error) {
		out := &exportOutput{}
		return out, withID(in.ID, func(id uuid.UUID) (err error) { out.Body, err = ds.Export(ctx, id); return })
	})

	wtags := []string{"widgets"}
	register(s, Authenticated, huma.Operation{
		OperationID: "createWidget", Method: http.MethodPost, Path: "/api/v1/dashboards/{id}/widgets", Tags: wtags,
		Summary: "Add a widget", DefaultStatus: http.StatusCreated, Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, func(ctx context.Context, in *createWidgetInput) (*widgetOutput, error) {
		out := &widgetOutput{}
		return out, withID(in.ID, func(id uuid.UUID) (err error) {
			pos := in.Body.Position
			out.Body, err = ds.CreateWidget(ctx, id, dashboards.WidgetInput{Type: &in.Body.Type, Config: in.Body.Config, Position: &pos})
			return
		})
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "listWidgets", Method: http.MethodGet, Path: "/api/v1/dashboards/{id}/widgets", Tags: wtags,
		Summary: "A dashboard's widgets", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *idInput) (*widgetListOutput, error) {
		out := &widgetListOutput{}
		return out, withID(in.ID, func(id uuid.UUID) (err error) { out.Body.Items, err = ds.ListWidgets(ctx, id); return })
	})
	widgetIDs := func(in widgetPathInput) (uuid.UUID, uuid.UUID, error) {
		d, err := parseID(in.ID, "dashboard")
		if err != nil {
			return d, d, err
		}
		w, err := parseID(in.WidgetID, "widget")
		return d, w, err
	}
	register(s, Authenticated, huma.Operation{
		OperationID: "getWidget", Method: http.MethodGet, Path: "/api/v1/dashboards/{id}/widgets/{widget_id}", Tags: wtags,
		Summary: "One widget", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *widgetPathInput) (*widgetOutput, error) {
		d, w, err := widgetIDs(*in)
		if err != nil {
			return nil, err
		}
		wd, err := ds.GetWidget(ctx, d, w)
		return &widgetOutput{Body: wd}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "updateWidget", Method: http.MethodPatch, Path: "/api/v1/dashboards/{id}/widgets/{widget_id}", Tags: wtags,
		Summary: "Change a widget", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *updateWidgetInput) (*widgetOutput, error) {
		d, w, err := widgetIDs(widgetPathInput{ID: in.ID, WidgetID: in.WidgetID})
		if err != nil {
			return nil, err
		}
		wd, err := ds.UpdateWidget(ctx, d, w, dashboards.WidgetInput{Type: in.Body.Type, Config: in.Body.Config, Position: in.Body.Position})
		return &widgetOutput{Body: wd}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "deleteWidget", Method: http.MethodDelete, Path: "/api/v1/dashboards/{id}/widgets/{widget_id}", Tags: wtags,
		Summary: "Remove a widget", DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *widgetPathInput) (*struct{}, error) {
		d, w, err := widgetIDs(*in)
		if err != nil {
			return nil, err
		}
		return nil, ds.DeleteWidget(ctx, d, w)
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "updateLayout", Method: http.MethodPut, Path: "/api/v1/dashboards/{id}/layout", Tags: wtags,
		Summary: "Move many widgets at once (all or nothing)", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *layoutInput) (*widgetListOutput, error) {
		out := &widgetListOutput{}
		return out, withID(in.ID, func(id uuid.UUID) (err error) {
			moves := make([]dashboards.Move, len(in.Body.Widgets))
			for i, w := range in.Body.Widgets {
				moves[i] = dashboards.Move{WidgetID: w.ID, Position: w.Position}
			}
			out.Body.Items, err = ds.UpdateLayout(ctx, id, moves)
			return
		})
	})

	stags := []string{"shares"}
	register(s, Authenticated, huma.Operation{
		OperationID: "listShares", Method: http.MethodGet, Path: "/api/v1/dashboards/{id}/shares", Tags: stags,
		Summary: "Who a dashboard is shared with (owner and admins)", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *idInput) (*shareListOutput, error) {
		out := &shareListOutput{}
		return out, withID(in.ID, func(id uuid.UUID) (err error) { out.Body.Items, err = ds.ListShares(ctx, id); return })
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "putShare", Method: http.MethodPut, Path: "/api/v1/dashboards/{id}/shares/{user_id}", Tags: stags,
		Summary: "Share a dashboard with a user, or change the level", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *putShareInput) (*shareOutput, error) {
		d, err := parseID(in.ID, "dashboard")
		if err != nil {
			return nil, err
		}
		u, err := parseID(in.UserID, "user")
		if err != nil {
			return nil, err
		}
		sh, err := ds.PutShare(ctx, d, u, in.Body.PermissionLevel)
		return &shareOutput{Body: sh}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "deleteShare", Method: http.MethodDelete, Path: "/api/v1/dashboards/{id}/shares/{user_id}", Tags: stags,
		Summary: "Stop sharing a dashboard with a user", DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *sharePathInput) (*struct{}, error) {
		d, err := parseID(in.ID, "dashboard")
		if err != nil {
			return nil, err
		}
		u, err := parseID(in.UserID, "share")
		if err != nil {
			return nil, err
		}
		return nil, ds.DeleteShare(ctx, d, u)
	})
}
