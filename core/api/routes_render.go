package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/queries"
	"github.com/datapulse/datapulse/core/rendering"
)

// RenderParams are the query parameters of a render (exported: huma reads
// parameters of exported embedded structs only).
type RenderParams struct {
	Filters      string `query:"filters" maxLength:"65536" doc:"filter values as a JSON object, e.g. {\"region\":\"EU\",\"period\":\"last 30 days\"}; declared filters not given take their default"`
	CacheControl string `header:"Cache-Control" doc:"no-cache: run every widget at its source even when a cached result is fresh"`
}

func (p RenderParams) parse() (map[string]any, rendering.Options, error) {
	o := rendering.Options{Bypass: noCache(p.CacheControl)}
	values := map[string]any{}
	if strings.TrimSpace(p.Filters) != "" {
		if err := json.Unmarshal([]byte(p.Filters), &values); err != nil {
			return nil, o, errs.Invalid("filters", "filters must be a JSON object of filter values")
		}
	}
	return values, o, nil
}

type dashboardDataInput struct {
	ID string `path:"id" maxLength:"64"`
	RenderParams
}

type widgetDataInput struct {
	ID       string `path:"id" maxLength:"64"`
	WidgetID string `path:"widget_id" maxLength:"64"`
	RenderParams
}

// widgetDataView is one widget's data as the API shows it.
type widgetDataView struct {
	WidgetID  uuid.UUID       `json:"widget_id"`
	Type      string          `json:"type"`
	Status    string          `json:"status" enum:"ok,error,no_data" doc:"no_data: the widget names no data (text)"`
	Cache     string          `json:"cache,omitempty" enum:"hit,miss,bypass"`
	ElapsedMS int64           `json:"elapsed_ms"`
	Result    *queries.Result `json:"result,omitempty"`
	Error     *widgetError    `json:"error,omitempty"`
}

type widgetError struct {
	Status int `json:"status" doc:"the HTTP status this error would have on its own"`
	ErrorInfo
}

type dashboardDataOutput struct {
	Cache string `header:"X-DataPulse-Cache"`
	Body  struct {
		DashboardID uuid.UUID        `json:"dashboard_id"`
		Filters     map[string]any   `json:"filters" doc:"the filter values applied"`
		Widgets     []widgetDataView `json:"widgets"`
		ElapsedMS   int64            `json:"elapsed_ms"`
	}
}

type widgetDataOutput struct {
	Cache string `header:"X-DataPulse-Cache"`
	Body  widgetDataView
}

// view maps a widget's own error to the envelope it would have had alone.
func (s *Server) view(ctx context.Context, w rendering.WidgetData) widgetDataView {
	v := widgetDataView{WidgetID: w.WidgetID, Type: w.Type, Status: w.Status, Cache: w.Cache, ElapsedMS: w.ElapsedMS, Result: w.Result}
	if w.Err != nil {
		e, ok := fromDomain(w.Err)
		if !ok {
			s.log.ErrorContext(ctx, "widget failed", "widget_id", w.WidgetID, "error", w.Err)
			e = newError(http.StatusInternalServerError, "internal", "the widget failed; quote the request id when reporting it")
		}
		v.Error = &widgetError{Status: e.status, ErrorInfo: e.Err}
	}
	return v
}

func (s *Server) renderRoutes() {
	rsv := s.deps.Rendering
	tags := []string{"dashboards"}
	register(s, Authenticated, huma.Operation{
		OperationID: "getDashboardData", Method: http.MethodGet, Path: "/api/v1/dashboards/{id}/data", Tags: tags,
		Summary: "Run every widget of a dashboard, concurrently, under your own permissions",
		Description: "Each widget answers its result or its own error; one failing widget does not fail the dashboard. " +
			"X-DataPulse-Cache is hit when every widget came from the result cache.",
	}, func(ctx context.Context, in *dashboardDataInput) (*dashboardDataOutput, error) {
		id, err := parseID(in.ID, "dashboard")
		if err != nil {
			return nil, err
		}
		values, o, err := in.parse()
		if err != nil {
			return nil, err
		}
		// A client that hangs up stops waiting; queries nobody else waits
		// for are cancelled at their source.
		ctx, stop := untilDisconnect(ctx)
		defer stop()
		d, err := rsv.Dashboard(ctx, id, values, o)
		if err != nil {
			return nil, err
		}
		out := &dashboardDataOutput{Cache: d.Cache()}
		out.Body.DashboardID, out.Body.Filters, out.Body.ElapsedMS = d.DashboardID, d.Filters, d.ElapsedMS
		out.Body.Widgets = make([]widgetDataView, len(d.Widgets))
		for i, w := range d.Widgets {
			out.Body.Widgets[i] = s.view(ctx, w)
		}
		return out, nil
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "getWidgetData", Method: http.MethodGet, Path: "/api/v1/dashboards/{id}/widgets/{widget_id}/data", Tags: tags,
		Summary: "Run one widget of a dashboard under your own permissions",
	}, func(ctx context.Context, in *widgetDataInput) (*widgetDataOutput, error) {
		id, err := parseID(in.ID, "dashboard")
		if err != nil {
			return nil, err
		}
		wid, err := parseID(in.WidgetID, "widget")
		if err != nil {
			return nil, err
		}
		values, o, err := in.parse()
		if err != nil {
			return nil, err
		}
		ctx, stop := untilDisconnect(ctx)
		defer stop()
		w, err := rsv.Widget(ctx, id, wid, values, o)
		if err != nil {
			return nil, err
		}
		return &widgetDataOutput{Cache: w.Cache, Body: s.view(ctx, w)}, nil
	})
}
