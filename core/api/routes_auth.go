package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/datapulse/datapulse/core/identity"
)

type loginInput struct {
	Body struct {
		Email    string `json:"email" maxLength:"320" example:"ada@example.com"`
		Password string `json:"password" maxLength:"1024"`
	}
}

type tokensOutput struct {
	Body *identity.Tokens
}

type refreshInput struct {
	Body struct {
		RefreshToken string `json:"refresh_token" maxLength:"512"`
	}
}

type logoutInput struct {
	Body *struct {
		RefreshToken string `json:"refresh_token,omitempty" maxLength:"512" doc:"revoke this session; default: the caller's own"`
	} `required:"false"`
}

func (s *Server) authRoutes() {
	register(s, Public, huma.Operation{
		OperationID: "login", Method: http.MethodPost, Path: "/api/v1/auth/login", Tags: []string{"auth"},
		Summary: "Log in with email and password",
		Description: "Returns a short-lived access token and a refresh token. Rate-limited per account and per client address; " +
			"when the server is busy checking passwords, 429 with Retry-After.",
		Errors: []int{http.StatusUnauthorized, http.StatusTooManyRequests},
	}, func(ctx context.Context, in *loginInput) (*tokensOutput, error) {
		t, err := s.deps.Identity.Login(ctx, identity.LoginInput{
			Email: in.Body.Email, Password: in.Body.Password,
			ClientIP: clientIP(ctx), UserAgent: userAgent(ctx),
		})
		if err != nil {
			return nil, err
		}
		return &tokensOutput{Body: t}, nil
	})
	register(s, Public, huma.Operation{
		OperationID: "refresh", Method: http.MethodPost, Path: "/api/v1/auth/refresh", Tags: []string{"auth"},
		Summary: "Exchange a refresh token for a new token pair",
		Description: "The refresh token rotates: the one sent stops working, and of concurrent refreshes of one token only one succeeds. " +
			"Sending an already used one revokes the session; a refresh token that was never valid changes nothing.",
		Errors: []int{http.StatusUnauthorized},
	}, func(ctx context.Context, in *refreshInput) (*tokensOutput, error) {
		t, err := s.deps.Identity.Refresh(ctx, in.Body.RefreshToken, userAgent(ctx))
		if err != nil {
			return nil, err
		}
		return &tokensOutput{Body: t}, nil
	})
	register(s, Optional, huma.Operation{
		OperationID: "logout", Method: http.MethodPost, Path: "/api/v1/auth/logout", Tags: []string{"auth"},
		Summary:       "Revoke a session",
		Description:   "Revokes the session of the refresh token in the body, or else the caller's own session.",
		DefaultStatus: http.StatusNoContent,
	}, func(ctx context.Context, in *logoutInput) (*struct{}, error) {
		rt := ""
		if in.Body != nil {
			rt = in.Body.RefreshToken
		}
		return nil, s.deps.Identity.Logout(ctx, rt)
	})
}

type clientIPKey struct{}

// clientIP is the peer address recorded by requestContext's caller.
func clientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}
