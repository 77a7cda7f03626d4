package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/paging"
)

type departmentBody struct {
	Name        *string `json:"name,omitempty" maxLength:"100"`
	Description *string `json:"description,omitempty" maxLength:"10000"`
}

type createDepartmentInput struct {
	Body struct {
		Name        string  `json:"name" minLength:"1" maxLength:"100"`
		Description *string `json:"description,omitempty" maxLength:"10000"`
	}
}

type updateDepartmentInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body departmentBody
}

type listDepartmentsInput struct {
	ListParams
	Q string `query:"q" maxLength:"100" doc:"substring of the name"`
}

type departmentOutput struct {
	Body identity.Department
}

type departmentPageOutput struct {
	Body paging.Page[identity.Department]
}

func (s *Server) departmentRoutes() {
	tags := []string{"departments"}
	id := s.deps.Identity
	register(s, Admin, huma.Operation{
		OperationID: "createDepartment", Metadata: idempotent(), Method: http.MethodPost, Path: "/api/v1/departments", Tags: tags,
		Summary: "Create a department", DefaultStatus: http.StatusCreated, Errors: []int{http.StatusConflict},
	}, func(ctx context.Context, in *createDepartmentInput) (*departmentOutput, error) {
		d, err := id.CreateDepartment(ctx, identity.DepartmentInput{Name: &in.Body.Name, Description: in.Body.Description})
		if err != nil {
			return nil, err
		}
		return &departmentOutput{Body: d}, nil
	})
	register(s, Admin, huma.Operation{
		OperationID: "listDepartments", Method: http.MethodGet, Path: "/api/v1/departments", Tags: tags,
		Summary: "List departments", Description: "Sort by name, created_at or updated_at.",
	}, func(ctx context.Context, in *listDepartmentsInput) (*departmentPageOutput, error) {
		page, err := id.ListDepartments(ctx, in.Q, in.paging())
		if err != nil {
			return nil, err
		}
		return &departmentPageOutput{Body: page}, nil
	})
	register(s, Admin, huma.Operation{
		OperationID: "getDepartment", Method: http.MethodGet, Path: "/api/v1/departments/{id}", Tags: tags,
		Summary: "Get a department", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *idInput) (*departmentOutput, error) {
		did, err := parseID(in.ID, "department")
		if err != nil {
			return nil, err
		}
		d, err := id.GetDepartment(ctx, did)
		if err != nil {
			return nil, err
		}
		return &departmentOutput{Body: d}, nil
	})
	register(s, Admin, huma.Operation{
		OperationID: "updateDepartment", Method: http.MethodPatch, Path: "/api/v1/departments/{id}", Tags: tags,
		Summary: "Change a department", Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, func(ctx context.Context, in *updateDepartmentInput) (*departmentOutput, error) {
		did, err := parseID(in.ID, "department")
		if err != nil {
			return nil, err
		}
		d, err := id.UpdateDepartment(ctx, did, identity.DepartmentInput{Name: in.Body.Name, Description: in.Body.Description})
		if err != nil {
			return nil, err
		}
		return &departmentOutput{Body: d}, nil
	})
	register(s, Admin, huma.Operation{
		OperationID: "deleteDepartment", Method: http.MethodDelete, Path: "/api/v1/departments/{id}", Tags: tags,
		Summary: "Delete a department (its users stay, without department)", DefaultStatus: http.StatusNoContent,
		Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *idInput) (*struct{}, error) {
		did, err := parseID(in.ID, "department")
		if err != nil {
			return nil, err
		}
		return nil, id.DeleteDepartment(ctx, did)
	})
}
