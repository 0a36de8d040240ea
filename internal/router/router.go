package router

import (
	"log/slog"
	"sync"
	"sync/atomic"

	frouter "github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/accesslog"
	"github.com/hotpath/hotpath/internal/limit"
	"github.com/hotpath/hotpath/internal/metrics"
	"github.com/hotpath/hotpath/internal/problem"
)

// Route is one registered method and path template.
type Route struct {
	Method  string
	Path    string
	metrics *metrics.Route
	// unmatched marks the labels of requests no route took.
	unmatched bool
}

// template is the route's path template, or "" when no route took the
// request.
func (rt *Route) template() string {
	if rt.unmatched {
		return ""
	}
	return rt.Path
}

// Router registers routes on fasthttp/router and labels them.
type Router struct {
	mux       *frouter.Router
	metrics   *metrics.Registry
	log       *slog.Logger
	routes    []*Route
	unmatched map[string]*Route
	other     *Route
	// chain serves and records every request; set by Handler.
	chain *chain
	// live holds what a reload may change: the chain reads it once per
	// request, so a request runs under the old settings or the new ones.
	live atomic.Pointer[live]
	// adaptiveOpts tune the cap when server.max_inflight is "auto".
	adaptiveOpts limit.Options
	// limitGauge guards the registration of http_inflight_limit.
	limitGauge sync.Mutex
}

// live is the part of the chain's settings a reload may swap.
type live struct {
	sampler *accesslog.Sampler
	// limit and adaptive implement server.max_inflight: limit is a static
	// cap (0 = none); adaptive is nil unless the cap is "auto".
	limit    int64
	adaptive *limit.Adaptive
}

// New creates a router whose 404, 405 and panic answers are problems.
func New(reg *metrics.Registry, log *slog.Logger) *Router {
	r := &Router{mux: frouter.New(), metrics: reg, log: log, unmatched: map[string]*Route{}}
	// An API answers the path it was asked; redirecting case or slash
	// variants would make two spellings of one resource.
	r.mux.RedirectTrailingSlash = false
	r.mux.RedirectFixedPath = false
	r.mux.HandleMethodNotAllowed = true
	r.mux.HandleOPTIONS = true
	r.mux.NotFound = func(ctx *fasthttp.RequestCtx) {
		problem.WriteStatus(ctx, fasthttp.StatusNotFound, "no resource at this path")
	}
	r.mux.MethodNotAllowed = func(ctx *fasthttp.RequestCtx) {
		// fasthttp/router has already set Allow.
		problem.WriteStatus(ctx, fasthttp.StatusMethodNotAllowed, "this method is not allowed here; see the Allow header")
	}
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		r.unmatched[m] = &Route{Method: m, Path: "unmatched", metrics: reg.Route(m, "unmatched"), unmatched: true}
	}
	r.other = &Route{Method: "_OTHER", Path: "unmatched", metrics: reg.Route("_OTHER", "unmatched"), unmatched: true}
	return r
}

// GET registers h for GET and HEAD on path.
func (r *Router) GET(path string, h fasthttp.RequestHandler) {
	r.Handle(fasthttp.MethodGet, path, h)
	r.Handle(fasthttp.MethodHead, path, h)
}

// Handle registers h for method on path. Keep hot routes free of {params}:
// fasthttp/router allocates for parameter routes. The route's label and
// metric handles are bound here, so a request only follows pointers. The
// route's own requirements (credentials, its rate-limit class) are h's:
// see package endpoint.
func (r *Router) Handle(method, path string, h fasthttp.RequestHandler) {
	route := &Route{Method: method, Path: path, metrics: r.metrics.Route(method, path)}
	r.routes = append(r.routes, route)
	r.mux.Handle(method, path, func(ctx *fasthttp.RequestCtx) { r.chain.serveRoute(ctx, route, h) })
}

// Routes lists what is registered, in registration order.
func (r *Router) Routes() []Route {
	out := make([]Route, len(r.routes))
	for i, rt := range r.routes {
		out[i] = *rt
	}
	return out
}

// unmatchedRoute is the label of a request no route served.
func (r *Router) unmatchedRoute(ctx *fasthttp.RequestCtx) *Route {
	if rt, ok := r.unmatched[string(ctx.Method())]; ok {
		return rt
	}
	return r.other
}

// Param returns the {name} path parameter as a string, "" when absent.
func Param(ctx *fasthttp.RequestCtx, name string) string {
	// fasthttp/router stores a copy, so the string outlives the request.
	v, _ := ctx.UserValue(name).(string)
	return v
}
