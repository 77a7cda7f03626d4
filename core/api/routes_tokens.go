package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/datapulse/datapulse/core/identity"
)

type createTokenInput struct {
	Body struct {
		Name      string     `json:"name" minLength:"1" maxLength:"100"`
		Scopes    []string   `json:"scopes,omitempty" maxItems:"2" doc:"narrow the token: read (GET only) and/or write; empty means everything its user may do"`
		ExpiresAt *time.Time `json:"expires_at,omitempty" doc:"when the token stops working; default never"`
	}
}

type newTokenOutput struct {
	Body identity.NewAPIToken
}

type tokenListOutput struct {
	Body struct {
		Items []identity.APIToken `json:"items"`
	}
}

func (s *Server) tokenRoutes() {
	tags := []string{"tokens"}
	register(s, Authenticated, huma.Operation{
		OperationID: "createToken", Method: http.MethodPost, Path: "/api/v1/tokens", Tags: tags,
		Summary: "Create a personal API token", Description: "The token is in this response only; it is stored hashed.",
		DefaultStatus: http.StatusCreated, Errors: []int{http.StatusConflict},
	}, func(ctx context.Context, in *createTokenInput) (*newTokenOutput, error) {
		t, err := s.deps.Identity.CreateAPIToken(ctx, in.Body.Name, in.Body.Scopes, in.Body.ExpiresAt)
		if err != nil {
			return nil, err
		}
		return &newTokenOutput{Body: t}, nil
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "listTokens", Method: http.MethodGet, Path: "/api/v1/tokens", Tags: tags, Summary: "The caller's API tokens",
	}, func(ctx context.Context, _ *struct{}) (*tokenListOutput, error) {
		ts, err := s.deps.Identity.ListAPITokens(ctx)
		if err != nil {
			return nil, err
		}
		out := &tokenListOutput{}
		out.Body.Items = ts
		return out, nil
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "deleteToken", Method: http.MethodDelete, Path: "/api/v1/tokens/{id}", Tags: tags,
		Summary: "Revoke an API token", DefaultStatus: http.StatusNoContent,
	}, func(ctx context.Context, in *idInput) (*struct{}, error) {
		id, err := parseID(in.ID, "token")
		if err != nil {
			return nil, err
		}
		return nil, s.deps.Identity.RevokeAPIToken(ctx, id)
	})
}
