package api

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

const requestIDHeader = "X-Request-Id"

type requestIDKey struct{}

// connKey holds the request's network connection, for disconnect detection
// while a handler works (never used after the handler returns).
type connKey struct{}

// untilDisconnect returns a context cancelled when the client closes its
// connection, checked every 100 ms, and a stop function the handler must
// call before it returns.
func untilDisconnect(ctx context.Context) (context.Context, func()) {
	conn, ok := ctx.Value(connKey{}).(net.Conn)
	ctx, cancel := context.WithCancel(ctx)
	if !ok || conn == nil {
		return ctx, cancel
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if peerClosed(conn) {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, func() {
		close(done)
		<-stopped // the watcher never touches conn after the handler returns
		cancel()
	}
}

// routeKey holds the matched route template, set by the router's handlers.
type routeKey struct{}

// requestIDOf returns the id requestContext assigned.
func requestIDOf(c *fiber.Ctx) string {
	if c == nil {
		return ""
	}
	id, _ := c.Locals(requestIDKey{}).(string)
	return id
}

// RequestIDFrom returns the request id carried by a request's context.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// validRequestID accepts a caller's id only when it is plain ([A-Za-z0-9._-])
// and at most 128 bytes long, so it
// cannot inject anything into logs.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// requestContext gives every request an id and a context with a deadline:
// fiber's own context is never cancelled, and handlers must not outlive it.
func requestContext(timeout time.Duration) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id := c.Get(requestIDHeader)
		if !validRequestID(id) {
			id = uuid.Must(uuid.NewV7()).String()
		}
		c.Locals(requestIDKey{}, id)
		c.Set(requestIDHeader, id)
		base := context.WithValue(context.WithValue(context.Background(), requestIDKey{}, id), clientIPKey{}, c.IP())
		base = context.WithValue(base, connKey{}, c.Context().Conn())
		ctx, cancel := context.WithTimeout(base, timeout)
		defer cancel()
		c.SetUserContext(ctx)
		return c.Next()
	}
}

// securityHeaders sets conservative headers: the API serves JSON only.
func securityHeaders(c *fiber.Ctx) error {
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("X-Frame-Options", "DENY")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	c.Set("Cross-Origin-Resource-Policy", "same-origin")
	c.Set("Cache-Control", "no-store")
	return c.Next()
}

// responseSize is the body length, or -1 for a streamed body: asking fasthttp
// for a streamed body's bytes would read the whole stream into memory.
func responseSize(c *fiber.Ctx) int {
	if c.Response().IsBodyStream() {
		return -1
	}
	return len(c.Response().Body())
}

// metrics counts requests by route template (not raw path: bounded labels).
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datapulse_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "datapulse_http_request_duration_seconds", Help: "HTTP request latency by method and route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// accessLog logs one structured line per request and records metrics. The
// query string is left out: it may carry secrets.
func accessLog(log *slog.Logger, m *metrics) fiber.Handler {
	return func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		if err != nil {
			// Render the error now so the status below is the real one.
			if herr := c.App().ErrorHandler(c, err); herr != nil {
				c.Status(fiber.StatusInternalServerError)
			}
		}
		status := c.Response().StatusCode()
		elapsed := time.Since(start)
		route, _ := c.Locals(routeKey{}).(string)
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(c.Method(), route, strconv.Itoa(status)).Inc()
		m.duration.WithLabelValues(c.Method(), route).Observe(elapsed.Seconds())
		level := accessLevel(status)
		log.LogAttrs(c.UserContext(), level, "http request",
			slog.String("request_id", requestIDOf(c)),
			slog.String("method", c.Method()),
			slog.String("path", c.Path()),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Int("bytes", responseSize(c)),
			slog.Duration("duration", elapsed),
			slog.String("remote", c.IP()),
		)
		return nil
	}
}

// accessLevel is the access log's level for a status: error for the
// server's own failures (500 and the like), warn for a dependency's (502,
// 503, 504: a database or data source that is down or slow, which the
// failure log reports once per interval), info otherwise.
func accessLevel(status int) slog.Level {
	switch {
	case status == fiber.StatusBadGateway, status == fiber.StatusServiceUnavailable, status == fiber.StatusGatewayTimeout:
		return slog.LevelWarn
	case status >= 500:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// scalarQuery refuses query parameters in object or array form (page[x]=1,
// q[]=a) and repeated keys: every query parameter of this API is one scalar,
// and the router would otherwise ignore the form or take one of the values.
func scalarQuery(c *fiber.Ctx) error {
	args := c.Context().QueryArgs()
	if args.Len() == 0 {
		return c.Next()
	}
	var bad *ErrorBody
	seen := map[string]bool{}
	args.VisitAll(func(k, _ []byte) {
		if bad != nil {
			return
		}
		key := string(k)
		name, _, nested := strings.Cut(key, "[")
		switch {
		case nested || strings.Contains(key, "]"):
			bad = fieldError(name, "query parameter "+name+" must be a single value, not an object or array ("+truncateKey(key)+")")
		case seen[key]:
			bad = fieldError(key, "query parameter "+truncateKey(key)+" is given more than once")
		}
		seen[key] = true
	})
	if bad != nil {
		return bad
	}
	return c.Next()
}

func fieldError(field, msg string) *ErrorBody {
	e := newError(400, "validation_failed", msg)
	e.Err.Details = map[string]any{"fields": []FieldError{{Field: field, Message: msg}}}
	return e
}

func truncateKey(k string) string {
	if len(k) > 64 {
		return k[:64] + "…"
	}
	return k
}
