package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/valyala/fasthttp"
)

// methodIndex answers which methods a path allows, from the router's own
// table (built on first use, after every route is registered).
type methodIndex struct {
	once   sync.Once
	app    *fiber.App
	routes []indexedRoute
	// static maps a route path without parameters to its methods: a static
	// route shadows a parameter route of the same shape (GET
	// /dashboards/import must not reach GET /dashboards/{id}).
	static map[string][]string
}

type indexedRoute struct {
	method string
	segs   []string
	params int
}

func (m *methodIndex) build() {
	m.once.Do(func() {
		m.static = map[string][]string{}
		for _, r := range m.app.GetRoutes(true) {
			p := strings.TrimSuffix(r.Path, "/")
			segs := strings.Split(p, "/")
			n := 0
			for _, s := range segs {
				if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") || strings.HasPrefix(s, "+") {
					n++
				}
			}
			m.routes = append(m.routes, indexedRoute{method: r.Method, segs: segs, params: n})
			if n == 0 && !slices.Contains(m.static[p], r.Method) {
				m.static[p] = append(m.static[p], r.Method)
			}
		}
	})
}

func (r indexedRoute) match(segs []string) bool {
	for i, s := range r.segs {
		if strings.HasPrefix(s, "*") || strings.HasPrefix(s, "+") {
			return true
		}
		if i >= len(segs) {
			return false
		}
		if strings.HasPrefix(s, ":") {
			if segs[i] == "" {
				return false
			}
			continue
		}
		if s != segs[i] {
			return false
		}
	}
	return len(segs) == len(r.segs)
}

// allowed returns the methods of the most specific routes matching path
// (fewest parameters), sorted; nil when no route matches.
func (m *methodIndex) allowed(path string) []string {
	m.build()
	segs := strings.Split(strings.TrimSuffix(path, "/"), "/")
	best := -1
	var out []string
	for _, r := range m.routes {
		if !r.match(segs) {
			continue
		}
		switch {
		case best < 0 || r.params < best:
			best, out = r.params, []string{r.method}
		case r.params == best && !slices.Contains(out, r.method):
			out = append(out, r.method)
		}
	}
	slices.Sort(out)
	return out
}

// allows reports whether method may be used on path; HEAD goes with GET.
func allows(methods []string, method string) bool {
	return slices.Contains(methods, method) || (method == http.MethodHead && slices.Contains(methods, http.MethodGet))
}

// shadowGuard answers 405 for a wrong method on a static route whose shape a
// parameter route would otherwise take (GET /api/v1/dashboards/import).
func (m *methodIndex) shadowGuard(c *fiber.Ctx) error {
	m.build()
	methods, ok := m.static[strings.TrimSuffix(c.Path(), "/")]
	if ok && !allows(methods, c.Method()) {
		return fiber.ErrMethodNotAllowed
	}
	return c.Next()
}

// unknownMethods wraps the server's handler: fiber answers a method it does
// not know (PROPFIND, …) with plain text before any middleware runs. These
// get the error envelope: 405 with Allow on a known path, else 404.
func (m *methodIndex) unknownMethods(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	known := map[string]bool{}
	for _, v := range m.app.Config().RequestMethods {
		known[v] = true
	}
	if len(known) == 0 {
		for _, v := range fiber.DefaultMethods {
			known[v] = true
		}
	}
	return func(ctx *fasthttp.RequestCtx) {
		if known[string(ctx.Method())] {
			next(ctx)
			return
		}
		id := string(ctx.Request.Header.Peek(requestIDHeader))
		if !validRequestID(id) {
			id = uuid.Must(uuid.NewV7()).String()
		}
		path := string(ctx.Path())
		methods := m.allowed(path)
		var body *ErrorBody
		if len(methods) > 0 {
			body = newError(http.StatusMethodNotAllowed, "", "method "+quoteMethod(ctx.Method())+" is not allowed on "+path)
			ctx.Response.Header.Set("Allow", strings.Join(methods, ", "))
		} else {
			body = newError(http.StatusNotFound, "", "no such route: "+quoteMethod(ctx.Method())+" "+path)
		}
		body.Err.RequestID = id
		raw, _ := json.Marshal(body)
		ctx.Response.Header.Set(requestIDHeader, id)
		ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
		ctx.Response.Header.Set("Cache-Control", "no-store")
		ctx.SetStatusCode(body.status)
		ctx.SetContentType("application/json")
		ctx.SetBody(raw)
	}
}

// quoteMethod shows a client's method safely (it is arbitrary text).
func quoteMethod(b []byte) string {
	if len(b) > 32 {
		b = b[:32]
	}
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			out = append(out, c)
		} else {
			out = append(out, '?')
		}
	}
	return string(out)
}
