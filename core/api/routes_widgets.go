package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/dashboards"
	"github.com/datapulse/datapulse/ent/schema/types"
)

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

// widgetRoutes are a dashboard's widgets and their layout.
func (s *Server) widgetRoutes() {
	tags := []string{"widgets"}
	ds := s.deps.Dashboards
	register(s, Authenticated, huma.Operation{
		OperationID: "createWidget", Method: http.MethodPost, Path: "/api/v1/dashboards/{id}/widgets", Tags: tags,
		Summary: "Add a widget", DefaultStatus: http.StatusCreated, Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, func(ctx context.Context, in *createWidgetInput) (*widgetOutput, error) {
		out := &widgetOutput{}
		return out, withDashboardID(in.ID, func(id uuid.UUID) (err error) {
			pos := in.Body.Position
			out.Body, err = ds.CreateWidget(ctx, id, dashboards.WidgetInput{Type: &in.Body.Type, Config: in.Body.Config, Position: &pos})
			return
		})
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "listWidgets", Method: http.MethodGet, Path: "/api/v1/dashboards/{id}/widgets", Tags: tags,
		Summary: "A dashboard's widgets", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *idInput) (*widgetListOutput, error) {
		out := &widgetListOutput{}
		return out, withDashboardID(in.ID, func(id uuid.UUID) (err error) { out.Body.Items, err = ds.ListWidgets(ctx, id); return })
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
		OperationID: "getWidget", Method: http.MethodGet, Path: "/api/v1/dashboards/{id}/widgets/{widget_id}", Tags: tags,
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
		OperationID: "updateWidget", Method: http.MethodPatch, Path: "/api/v1/dashboards/{id}/widgets/{widget_id}", Tags: tags,
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
		OperationID: "deleteWidget", Method: http.MethodDelete, Path: "/api/v1/dashboards/{id}/widgets/{widget_id}", Tags: tags,
		Summary: "Remove a widget", DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *widgetPathInput) (*struct{}, error) {
		d, w, err := widgetIDs(*in)
		if err != nil {
			return nil, err
		}
		return nil, ds.DeleteWidget(ctx, d, w)
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "updateLayout", Method: http.MethodPut, Path: "/api/v1/dashboards/{id}/layout", Tags: tags,
		Summary: "Move many widgets at once (all or nothing)", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *layoutInput) (*widgetListOutput, error) {
		out := &widgetListOutput{}
		return out, withDashboardID(in.ID, func(id uuid.UUID) (err error) {
			moves := make([]dashboards.Move, len(in.Body.Widgets))
			for i, w := range in.Body.Widgets {
				moves[i] = dashboards.Move{WidgetID: w.ID, Position: w.Position}
			}
			out.Body.Items, err = ds.UpdateLayout(ctx, id, moves)
			return
		})
	})
}
