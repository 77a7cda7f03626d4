// Package api is DataPulse's REST API: the only package that knows HTTP.
// Handlers parse, call a domain service and shape the answer; services
// authorize and validate; errors become the one envelope in errors.go.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humafiber"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/datapulse/datapulse/core/alerting"
	"github.com/datapulse/datapulse/core/dashboards"
	"github.com/datapulse/datapulse/core/datamodels"
	"github.com/datapulse/datapulse/core/datasources"
	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/jobs"
	"github.com/datapulse/datapulse/core/lograte"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/queries"
	"github.com/datapulse/datapulse/core/rendering"
	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/plugins/host"
)

// Deps are what the API serves.
type Deps struct {
	Identity    *identity.Service
	Dashboards  *dashboards.Service
	DataSources *datasources.Service
	Queries     *queries.Service
	Models      *datamodels.Service
	Rendering   *rendering.Service
	Alerts      *alerting.Service
	Connectors  *host.Host
	Jobs        *jobs.Service // its collector goes on /metrics
	// StreamTimeout bounds a streamed (NDJSON/CSV) result end to end.
	StreamTimeout  time.Duration
	Store          *store.Store
	Logger         *slog.Logger
	Version        string
	BodyLimit      int
	RequestTimeout time.Duration
}

// Access is who may call a route.
type Access int

// Access levels, from open to closed.
const (
	Public        Access = iota // anyone; credentials are ignored
	Optional                    // anyone; credentials, when sent, must be valid
	Authenticated               // any signed-in user or API token
	Admin                       // users.role = admin
)

func (a Access) String() string {
	return [...]string{"public", "optional", "authenticated", "admin"}[a]
}

// Route is one entry of the route table (used by the authorization tests).
type Route struct {
	Method      string
	Path        string // OpenAPI template, e.g. /api/v1/users/{id}
	Access      Access
	OperationID string
}

// Server is the HTTP API.
type Server struct {
	app     *fiber.App
	api     huma.API
	deps    Deps
	log     *slog.Logger
	routes  []Route
	doc     *huma.OpenAPI // the served document (see openapi.go)
	metrics *metrics
	reg     *prometheus.Registry
	// failures logs server-side failures, repeated ones counted per interval.
	failures *lograte.Limiter
	idem     idempotencyState

	mu sync.Mutex
	ln *trackingListener
}

// New builds the API and its routes.
func New(d Deps) *Server {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.BodyLimit <= 0 {
		d.BodyLimit = 1 << 20
	}
	if d.RequestTimeout <= 0 {
		d.RequestTimeout = time.Minute
	}
	if d.StreamTimeout <= 0 {
		d.StreamTimeout = 10 * time.Minute
	}
	s := &Server{deps: d, log: d.Logger, failures: lograte.New(d.Logger, lograte.DefaultInterval), reg: prometheus.NewRegistry()}
	installErrorModel(s.failures)
	s.idem.started = time.Now().UTC()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = newMetrics(s.reg)
	if d.Queries != nil {
		s.reg.MustRegister(newCacheCollector(d.Queries.CacheStats))
	}
	if d.Connectors != nil {
		s.reg.MustRegister(newConnectorCollector(d.Connectors.Stats))
	}
	methods := &methodIndex{}
	if d.Jobs != nil {
		s.reg.MustRegister(d.Jobs.Collector())
	}
	s.app = fiber.New(fiber.Config{
		AppName:               "datapulse",
		ErrorHandler:          fiberErrorHandler(s.failures, methods),
		BodyLimit:             d.BodyLimit,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          d.RequestTimeout + 10*time.Second,
		IdleTimeout:           2 * time.Minute,
		DisableStartupMessage: true,
		// Values from c.Params/c.Body are otherwise buffers fasthttp reuses.
		Immutable: true,
	})
	methods.app = s.app
	s.app.Server().Handler = methods.unknownMethods(s.app.Server().Handler)
	s.app.Use(requestContext(d.RequestTimeout))
	s.app.Use(accessLog(d.Logger, s.metrics))
	s.app.Use(recover.New())
	s.app.Use(securityHeaders)
	s.app.Use(methods.shadowGuard)
	s.app.Use(scalarQuery)

	cfg := huma.DefaultConfig("DataPulse API", d.Version)
	cfg.Info.Description = "Self-hosted business intelligence: data sources, queries, dashboards, alerts, reports."
	cfg.DocsPath = ""    // no docs page: it would load scripts from a CDN
	cfg.SchemasPath = "" // schemas are inside the OpenAPI document
	cfg.CreateHooks = nil
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "An access token from /api/v1/auth/login, or a personal API token (dp_…)."},
	}
	configureOpenAPI(&cfg)
	cfg.OnAddOperation = append(cfg.OnAddOperation, documentOperation)
	s.api = humafiber.New(s.app, cfg)
	s.api.UseMiddleware(s.authorize)
	s.api.UseMiddleware(s.idempotency) // after authorize: keys are per user

	s.systemRoutes()
	s.authRoutes()
	s.meRoutes()
	s.tokenRoutes()
	s.userRoutes()
	s.departmentRoutes()
	s.roleRoutes()
	s.dashboardRoutes()
	s.widgetRoutes()
	s.shareRoutes()
	s.connectorRoutes()
	s.dataSourceRoutes()
	s.queryRoutes()
	s.modelRoutes()
	s.renderRoutes()
	s.alertRoutes()
	s.app.Get("/metrics", s.metricsHandler)
	s.finishOpenAPI()
	return s
}

// App exposes the fiber application (tests drive it through a listener).
func (s *Server) App() *fiber.App { return s.app }

// Routes returns the route table.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// OpenAPI returns the OpenAPI document the server serves.
func (s *Server) OpenAPI() *huma.OpenAPI { return s.doc }

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	tl := newTrackingListener(ln)
	s.mu.Lock()
	s.ln = tl
	s.mu.Unlock()
	return s.app.Listener(tl)
}

// Shutdown stops accepting connections, drops connections that never sent a
// request, and waits for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	defer s.failures.Flush() // the counts of failures not yet reported
	s.mu.Lock()
	tl := s.ln
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- s.app.ShutdownWithContext(ctx) }()
	if tl != nil {
		// Once the listener is closed no new connection can turn up; the
		// silent ones can go now and again shortly after (a connection
		// accepted just before the close).
		for i := 0; i < 3; i++ {
			select {
			case err := <-done:
				return err
			case <-time.After(50 * time.Millisecond):
			}
			tl.closeSilent()
		}
	}
	return <-done
}

// register adds a huma operation with its access level to the route table.
// op.Errors lists the statuses particular to the operation (409, 429,
// upstreamErrors…); documentOperation adds those that follow from its access
// level, parameters and body, and sets its security.
func register[I, O any](s *Server, access Access, op huma.Operation, h func(context.Context, *I) (*O, error)) {
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata["access"] = access
	op.MaxBodyBytes = int64(s.deps.BodyLimit)
	huma.Register(s.api, op, h)
	s.routes = append(s.routes, Route{Method: op.Method, Path: op.Path, Access: access, OperationID: op.OperationID})
}

// authorize authenticates the caller of every huma operation and checks the
// route's access level before the handler runs.
func (s *Server) authorize(ctx huma.Context, next func(huma.Context)) {
	op := ctx.Operation()
	fc := humafiber.Unwrap(ctx)
	fc.Locals(routeKey{}, op.Path)
	access, _ := op.Metadata["access"].(Access)
	ctx = huma.WithValue(ctx, userAgentKey{}, ctx.Header("User-Agent"))
	if access == Public {
		next(ctx)
		return
	}
	bearer, ok := bearerToken(ctx.Header("Authorization"))
	if !ok {
		if access == Optional {
			next(ctx)
			return
		}
		ctx.SetHeader("WWW-Authenticate", `Bearer realm="datapulse"`)
		huma.WriteErr(s.api, ctx, http.StatusUnauthorized, "authentication required: send Authorization: Bearer <token>")
		return
	}
	p, err := s.deps.Identity.Authenticate(ctx.Context(), bearer)
	if err != nil {
		if errors.Is(err, errs.ErrUnauthenticated) {
			// Not on a 503: the token may be fine, the database is not.
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="datapulse", error="invalid_token"`)
		}
		huma.WriteErr(s.api, ctx, http.StatusInternalServerError, "", err)
		return
	}
	if access == Admin && !p.IsAdmin() {
		huma.WriteErr(s.api, ctx, http.StatusForbidden, "this needs an administrator")
		return
	}
	if !p.CanWrite() && op.Method != http.MethodGet && op.Method != http.MethodHead {
		huma.WriteErr(s.api, ctx, http.StatusForbidden, "this token is read-only")
		return
	}
	next(huma.WithContext(ctx, principal.With(ctx.Context(), p)))
}

type userAgentKey struct{}

// userAgent is the request's User-Agent header (read from the request, not
// declared as a parameter: clients need not send it).
func userAgent(ctx context.Context) string {
	ua, _ := ctx.Value(userAgentKey{}).(string)
	return ua
}

func bearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != "" && len(tok) <= 4096
}
