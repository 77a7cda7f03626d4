package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/datapulse/datapulse/core/identity"
)

type userOutput struct {
	Body identity.User
}

type updateMeInput struct {
	Body struct {
		Name *string `json:"name,omitempty" maxLength:"100" doc:"display name; empty string clears it"`
	}
}

type changePasswordInput struct {
	Body struct {
		CurrentPassword string `json:"current_password" maxLength:"1024"`
		NewPassword     string `json:"new_password" maxLength:"1024"`
	}
}

type profileOutput struct {
	Body identity.Profile
}

type profileInput struct {
	Body struct {
		Avatar *string `json:"avatar,omitempty" maxLength:"255" doc:"http(s) URL of an avatar image"`
		Bio    *string `json:"bio,omitempty" maxLength:"10000"`
		Phone  *string `json:"phone,omitempty" maxLength:"50"`
	}
}

func (s *Server) meRoutes() {
	tags := []string{"me"}
	register(s, Authenticated, huma.Operation{
		OperationID: "getMe", Method: http.MethodGet, Path: "/api/v1/me", Tags: tags, Summary: "The caller's account",
	}, func(ctx context.Context, _ *struct{}) (*userOutput, error) {
		u, err := s.deps.Identity.Me(ctx)
		if err != nil {
			return nil, err
		}
		return &userOutput{Body: u}, nil
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "updateMe", Method: http.MethodPatch, Path: "/api/v1/me", Tags: tags,
		Summary: "Change the caller's name", Description: "Role, email and verification state are changed by administrators only; sending them is rejected.",
	}, func(ctx context.Context, in *updateMeInput) (*userOutput, error) {
		u, err := s.deps.Identity.UpdateMe(ctx, in.Body.Name)
		if err != nil {
			return nil, err
		}
		return &userOutput{Body: u}, nil
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "changeMyPassword", Method: http.MethodPost, Path: "/api/v1/me/password", Tags: tags,
		Summary: "Change the caller's password",
		Description: "Needs an access token from a password login (a personal API token gets 403) and the current password. " +
			"Rate-limited like logins, per account and per client address. Ends every other session of the caller.",
		DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusForbidden, http.StatusTooManyRequests},
	}, func(ctx context.Context, in *changePasswordInput) (*struct{}, error) {
		return nil, s.deps.Identity.ChangePassword(ctx, identity.ChangePasswordInput{
			Current: in.Body.CurrentPassword, New: in.Body.NewPassword, ClientIP: clientIP(ctx),
		})
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "getMyProfile", Method: http.MethodGet, Path: "/api/v1/me/profile", Tags: tags, Summary: "The caller's profile",
	}, func(ctx context.Context, _ *struct{}) (*profileOutput, error) {
		p, err := s.deps.Identity.MyProfile(ctx)
		if err != nil {
			return nil, err
		}
		return &profileOutput{Body: p}, nil
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "putMyProfile", Method: http.MethodPut, Path: "/api/v1/me/profile", Tags: tags,
		Summary: "Create or replace the caller's profile",
	}, func(ctx context.Context, in *profileInput) (*profileOutput, error) {
		p, err := s.deps.Identity.PutMyProfile(ctx, identity.ProfileInput{Avatar: in.Body.Avatar, Bio: in.Body.Bio, Phone: in.Body.Phone})
		if err != nil {
			return nil, err
		}
		return &profileOutput{Body: p}, nil
	})
}
