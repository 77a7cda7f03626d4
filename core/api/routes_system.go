package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type healthOutput struct {
	Body struct {
		Status string            `json:"status" example:"ok"`
		Checks map[string]string `json:"checks,omitempty"`
	}
}

func (s *Server) systemRoutes() {
	register(s, Public, huma.Operation{
		OperationID: "healthz", Method: http.MethodGet, Path: "/healthz", Tags: []string{"system"},
		Summary: "Liveness: the process answers",
	}, func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		out := &healthOutput{}
		out.Body.Status = "ok"
		return out, nil
	})
	register(s, Public, huma.Operation{
		OperationID: "readyz", Method: http.MethodGet, Path: "/readyz", Tags: []string{"system"},
		Summary: "Readiness: the database answers and its migrations are current",
		Errors:  []int{http.StatusServiceUnavailable},
	}, func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := s.deps.Store.Ping(ctx); err != nil {
			s.failures.Log(ctx, slog.LevelWarn, "readiness", "readiness: database unreachable", slog.Any("error", err))
			return nil, huma.NewError(http.StatusServiceUnavailable, "database unreachable")
		}
		current, err := s.deps.Store.Current(ctx)
		if err != nil || !current {
			return nil, huma.NewError(http.StatusServiceUnavailable, "database migrations are not current")
		}
		out := &healthOutput{}
		out.Body.Status = "ok"
		out.Body.Checks = map[string]string{"database": "ok", "migrations": "current"}
		return out, nil
	})
}

// metricsHandler serves Prometheus metrics to administrators (an admin's API
// token in the scrape config): they reveal traffic patterns.
func (s *Server) metricsHandler(c *fiber.Ctx) error {
	c.Locals(routeKey{}, "/metrics")
	bearer, ok := bearerToken(c.Get("Authorization"))
	if !ok {
		c.Set("WWW-Authenticate", `Bearer realm="datapulse"`)
		return fiber.NewError(http.StatusUnauthorized, "authentication required: send Authorization: Bearer <token>")
	}
	p, err := s.deps.Identity.Authenticate(c.UserContext(), bearer)
	if err != nil {
		return err
	}
	if !p.IsAdmin() {
		return fiber.NewError(http.StatusForbidden, "this needs an administrator")
	}
	return adaptor.HTTPHandler(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))(c)
}
