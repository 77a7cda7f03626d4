package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/paging"
)

type createUserInput struct {
	Body struct {
		Email        string     `json:"email" maxLength:"255" example:"ada@example.com"`
		Password     string     `json:"password" maxLength:"1024"`
		Name         *string    `json:"name,omitempty" maxLength:"100"`
		Role         string     `json:"role,omitempty" enum:"user,admin" doc:"default user"`
		DepartmentID *uuid.UUID `json:"department_id,omitempty"`
	}
}

type listUsersInput struct {
	ListParams
	Q            string `query:"q" maxLength:"255" doc:"substring of email or name"`
	Role         string `query:"role" enum:"user,admin"`
	DepartmentID string `query:"department_id" format:"uuid"`
}

type userPageOutput struct {
	Body paging.Page[identity.User]
}

type updateUserInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		Email        *string `json:"email,omitempty" maxLength:"255"`
		Password     *string `json:"password,omitempty" maxLength:"1024" doc:"sets a new password and ends the user's sessions and API tokens"`
		Name         *string `json:"name,omitempty" maxLength:"100" doc:"empty string clears it"`
		Role         *string `json:"role,omitempty" enum:"user,admin"`
		DepartmentID *string `json:"department_id,omitempty" doc:"a department id, or empty string to remove the department"`
	}
}

type userRolesOutput struct {
	Body struct {
		Items []identity.RoleAssignment `json:"items"`
	}
}

type assignRoleInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		RoleID uuid.UUID `json:"role_id"`
	}
}

type assignmentOutput struct {
	Body identity.RoleAssignment
}

type unassignRoleInput struct {
	ID     string `path:"id" maxLength:"64"`
	RoleID string `path:"role_id" maxLength:"64"`
}

func (s *Server) userRoutes() {
	tags := []string{"users"}
	id := s.deps.Identity
	register(s, Admin, huma.Operation{
		OperationID: "createUser", Method: http.MethodPost, Path: "/api/v1/users", Tags: tags,
		Summary: "Create a user", DefaultStatus: http.StatusCreated, Errors: []int{http.StatusConflict},
	}, func(ctx context.Context, in *createUserInput) (*userOutput, error) {
		u, err := id.CreateUser(ctx, identity.CreateUserInput{
			Email: in.Body.Email, Password: in.Body.Password, Name: in.Body.Name,
			Role: in.Body.Role, DepartmentID: in.Body.DepartmentID,
		})
		if err != nil {
			return nil, err
		}
		return &userOutput{Body: u}, nil
	})
	register(s, Admin, huma.Operation{
		OperationID: "listUsers", Method: http.MethodGet, Path: "/api/v1/users", Tags: tags, Summary: "List users",
		Description: "Sort by created_at, updated_at, email, name or role.",
	}, func(ctx context.Context, in *listUsersInput) (*userPageOutput, error) {
		f := identity.UserFilter{Q: in.Q, Role: in.Role}
		if in.DepartmentID != "" {
			d, err := uuid.Parse(in.DepartmentID)
			if err != nil {
				return nil, huma.Error400BadRequest("department_id must be a UUID")
			}
			f.DepartmentID = &d
		}
		page, err := id.ListUsers(ctx, f, in.paging())
		if err != nil {
			return nil, err
		}
		return &userPageOutput{Body: page}, nil
	})
	register(s, Admin, huma.Operation{
		OperationID: "getUser", Method: http.MethodGet, Path: "/api/v1/users/{id}", Tags: tags, Summary: "Get a user",
		Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *idInput) (*userOutput, error) {
		uid, err := parseID(in.ID, "user")
		if err != nil {
			return nil, err
		}
		u, err := id.GetUser(ctx, uid)
		if err != nil {
			return nil, err
		}
		return &userOutput{Body: u}, nil
	})
	register(s, Admin, huma.Operation{
		OperationID: "updateUser", Method: http.MethodPatch, Path: "/api/v1/users/{id}", Tags: tags, Summary: "Change a user",
		Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, func(ctx context.Context, in *updateUserInput) (*userOutput, error) {
		uid, err := parseID(in.ID, "user")
		if err != nil {
			return nil, err
		}
		up := identity.UpdateUserInput{Email: in.Body.Email, Password: in.Body.Password, Name: in.Body.Name, Role: in.Body.Role}
		if d := in.Body.DepartmentID; d != nil {
			if *d == "" {
				up.ClearDepartment = true
			} else {
				did, err := uuid.Parse(*d)
				if err != nil {
					return nil, huma.Error400BadRequest("department_id must be a UUID or empty")
				}
				up.DepartmentID = &did
			}
		}
		u, err := id.UpdateUser(ctx, uid, up)
		if err != nil {
			return nil, err
		}
		return &userOutput{Body: u}, nil
	})
	register(s, Admin, huma.Operation{
		OperationID: "deleteUser", Method: http.MethodDelete, Path: "/api/v1/users/{id}", Tags: tags,
		Summary: "Delete a user and everything they own", DefaultStatus: http.StatusNoContent,
		Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, func(ctx context.Context, in *idInput) (*struct{}, error) {
		uid, err := parseID(in.ID, "user")
		if err != nil {
			return nil, err
		}
		return nil, id.DeleteUser(ctx, uid)
	})
	register(s, Admin, huma.Operation{
		OperationID: "listUserRoles", Method: http.MethodGet, Path: "/api/v1/users/{id}/roles", Tags: tags,
		Summary: "A user's roles", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *idInput) (*userRolesOutput, error) {
		uid, err := parseID(in.ID, "user")
		if err != nil {
			return nil, err
		}
		rs, err := id.UserRoles(ctx, uid)
		if err != nil {
			return nil, err
		}
		out := &userRolesOutput{}
		out.Body.Items = rs
		return out, nil
	})
	register(s, Admin, huma.Operation{
		OperationID: "assignUserRole", Method: http.MethodPost, Path: "/api/v1/users/{id}/roles", Tags: tags,
		Summary: "Give a user a role", DefaultStatus: http.StatusCreated, Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, func(ctx context.Context, in *assignRoleInput) (*assignmentOutput, error) {
		uid, err := parseID(in.ID, "user")
		if err != nil {
			return nil, err
		}
		a, err := id.AssignRole(ctx, uid, in.Body.RoleID)
		if err != nil {
			return nil, err
		}
		return &assignmentOutput{Body: a}, nil
	})
	register(s, Admin, huma.Operation{
		OperationID: "unassignUserRole", Method: http.MethodDelete, Path: "/api/v1/users/{id}/roles/{role_id}", Tags: tags,
		Summary: "Take a role away from a user", DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *unassignRoleInput) (*struct{}, error) {
		uid, err := parseID(in.ID, "user")
		if err != nil {
			return nil, err
		}
		rid, err := parseID(in.RoleID, "role assignment")
		if err != nil {
			return nil, err
		}
		return nil, id.UnassignRole(ctx, uid, rid)
	})
}
