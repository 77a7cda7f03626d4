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
	register(s, Authenticated, huma.Operation{
		OperationID: "getDashboard", Method: http.MethodGet, Path: "/api/v1/dashboards/{id}", Tags: tags,
		Summary: "A dashboard with its widgets", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *idInput) (*dashboardOutput, error) {
		out := &dashboardOutput{}
		return out, withDashboardID(in.ID, func(id uuid.UUID) (err error) { out.Body, err = ds.Get(ctx, id); return })
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "updateDashboard", Method: http.MethodPatch, Path: "/api/v1/dashboards/{id}", Tags: tags,
		Summary: "Rename or describe a dashboard", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *updateDashboardInput) (*dashboardOutput, error) {
		out := &dashboardOutput{}
		return out, withDashboardID(in.ID, func(id uuid.UUID) (err error) {
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
		return nil, withDashboardID(in.ID, func(id uuid.UUID) error { return ds.Delete(ctx, id) })
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
		return out, withDashboardID(in.ID, func(id uuid.UUID) (err error) { out.Body, err = ds.Duplicate(ctx, id, name); return })
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "exportDashboard", Method: http.MethodGet, Path: "/api/v1/dashboards/{id}/export", Tags: tags,
		Summary: "A dashboard as a portable document (no ids or owners)", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *idInput) (*exportOutput, error) {
		out := &exportOutput{}
		return out, withDashboardID(in.ID, func(id uuid.UUID) (err error) { out.Body, err = ds.Export(ctx, id); return })
	})
}
