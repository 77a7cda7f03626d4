package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/dashboards"
)

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

// shareRoutes are who a dashboard is shared with, at which level.
func (s *Server) shareRoutes() {
	tags := []string{"shares"}
	ds := s.deps.Dashboards
	register(s, Authenticated, huma.Operation{
		OperationID: "listShares", Method: http.MethodGet, Path: "/api/v1/dashboards/{id}/shares", Tags: tags,
		Summary: "Who a dashboard is shared with (owner and admins)", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *idInput) (*shareListOutput, error) {
		out := &shareListOutput{}
		return out, withDashboardID(in.ID, func(id uuid.UUID) (err error) { out.Body.Items, err = ds.ListShares(ctx, id); return })
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "putShare", Method: http.MethodPut, Path: "/api/v1/dashboards/{id}/shares/{user_id}", Tags: tags,
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
		OperationID: "deleteShare", Method: http.MethodDelete, Path: "/api/v1/dashboards/{id}/shares/{user_id}", Tags: tags,
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
