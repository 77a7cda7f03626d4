package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/paging"
)

type createRoleInput struct {
	Body struct {
		Name        string    `json:"name" minLength:"1" maxLength:"50" example:"analyst"`
		Description *string   `json:"description,omitempty" maxLength:"10000"`
		Permissions *[]string `json:"permissions,omitempty" maxItems:"100" doc:"actions such as dashboards:create"`
	}
}

type updateRoleInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		Name        *string   `json:"name,omitempty" maxLength:"50"`
		Description *string   `json:"description,omitempty" maxLength:"10000"`
		Permissions *[]string `json:"permissions,omitempty" maxItems:"100"`
	}
}

type roleOutput struct {
	Body identity.Role
}

type rolePageOutput struct {
	Body paging.Page[identity.Role]
}

func (s *Server) roleRoutes() {
	tags := []string{"roles"}
	id := s.deps.Identity
	register(s, Admin, huma.Operation{
		OperationID: "createRole", Method: http.MethodPost, Path: "/api/v1/roles", Tags: tags,
		Summary: "Create a role", DefaultStatus: http.StatusCreated, Errors: []int{http.StatusConflict},
	}, func(ctx context.Context, in *createRoleInput) (*roleOutput, error) {
		r, err := id.CreateRole(ctx, identity.RoleInput{Name: &in.Body.Name, Description: in.Body.Description, Permissions: in.Body.Permissions})
		if err != nil {
			return nil, err
		}
		return &roleOutput{Body: r}, nil
	})
	register(s, Admin, huma.Operation{
		OperationID: "listRoles", Method: http.MethodGet, Path: "/api/v1/roles", Tags: tags,
		Summary: "List roles", Description: "Sort by name or created_at.",
	}, func(ctx context.Context, in *ListParams) (*rolePageOutput, error) {
		page, err := id.ListRoles(ctx, in.paging())
		if err != nil {
			return nil, err
		}
		return &rolePageOutput{Body: page}, nil
	})
	register(s, Admin, huma.Operation{
		OperationID: "getRole", Method: http.MethodGet, Path: "/api/v1/roles/{id}", Tags: tags,
		Summary: "Get a role", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *idInput) (*roleOutput, error) {
		rid, err := parseID(in.ID, "role")
		if err != nil {
			return nil, err
		}
		r, err := id.GetRole(ctx, rid)
		if err != nil {
			return nil, err
		}
		return &roleOutput{Body: r}, nil
	})
	register(s, Admin, huma.Operation{
		OperationID: "updateRole", Method: http.MethodPatch, Path: "/api/v1/roles/{id}", Tags: tags,
		Summary: "Change a role", Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, func(ctx context.Context, in *updateRoleInput) (*roleOutput, error) {
		rid, err := parseID(in.ID, "role")
		if err != nil {
			return nil, err
		}
		r, err := id.UpdateRole(ctx, rid, identity.RoleInput{Name: in.Body.Name, Description: in.Body.Description, Permissions: in.Body.Permissions})
		if err != nil {
			return nil, err
		}
		return &roleOutput{Body: r}, nil
	})
	register(s, Admin, huma.Operation{
		OperationID: "deleteRole", Method: http.MethodDelete, Path: "/api/v1/roles/{id}", Tags: tags,
		Summary: "Delete a role and its assignments", DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, func(ctx context.Context, in *idInput) (*struct{}, error) {
		rid, err := parseID(in.ID, "role")
		if err != nil {
			return nil, err
		}
		return nil, id.DeleteRole(ctx, rid)
	})
}
