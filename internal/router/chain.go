package router

import (
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/accesslog"
	"github.com/hotpath/hotpath/internal/clientip"
	"github.com/hotpath/hotpath/internal/limit"
	"github.com/hotpath/hotpath/internal/problem"
	"github.com/hotpath/hotpath/internal/ratelimit"
	"github.com/hotpath/hotpath/internal/requestid"
	"github.com/hotpath/hotpath/internal/tracing"
)

// Canonical header names, so SetCanonical skips normalising them per request.
var (
	requestIDKey = []byte("X-Request-Id")
	nosniffKey   = []byte("X-Content-Type-Options")
	nosniffValue = []byte("nosniff")
)

// Options are the collaborators of the request chain.
type Options struct {
	// IDs makes request ids for requests without a usable X-Request-ID.
	IDs *requestid.Generator
	// Access receives the sampled access-log records.
	Access *accesslog.Logger
	// Sampler picks which requests are access-logged, until Reconfigure
	// replaces it.
	Sampler *accesslog.Sampler
	// MaxInflight caps requests being handled at once: 0 = no cap, a
	// negative value (server.max_inflight = "auto") a cap that follows
	// handler latency. Reconfigure changes it.
	MaxInflight int
	// Adaptive tunes the cap when MaxInflight is negative; zero values take
	// the defaults of package limit.
	Adaptive limit.Options
	// Draining, once true, adds Connection: close to every response so that
	// keep-alive clients move to other replicas during a rolling update.
	Draining *atomic.Bool
	// Clients finds a request's client address (server.trusted_proxies)
	// for the access log and limits.reads; nil takes the socket peer.
	Clients *clientip.Resolver
	// Reads limits, per client address (limits.reads), the requests no
	// route takes (404, 405, OPTIONS); each route applies its own class.
	// nil or off limits nothing and costs one check.
	Reads *ratelimit.Class
	// Tracer continues or starts each request's trace; nil ignores trace
	// context altogether.
	Tracer *tracing.Tracer
}

// Handler returns the application listener's request handler: the chain
// around the registered routes. Call it after every route is registered.
func (r *Router) Handler(o Options) fasthttp.RequestHandler {
	c := &chain{router: r, Options: o, guard: newGuard(), overloaded: problem.Static(fasthttp.StatusServiceUnavailable,
		"the server is at server.max_inflight; retry after the time in Retry-After")}
	r.adaptiveOpts = o.Adaptive
	r.Reconfigure(o.Sampler, o.MaxInflight)
	r.chain = c
	// What no route serves is recorded under the unmatched label. No
	// PanicHandler: serveRoute and unmatched recover on their own, which
	// spares fasthttp/router a deferred call per request.
	r.mux.NotFound = c.unmatched(r.mux.NotFound)
	r.mux.MethodNotAllowed = c.unmatched(r.mux.MethodNotAllowed)
	r.mux.GlobalOPTIONS = c.unmatched(func(*fasthttp.RequestCtx) {}) // fasthttp/router has set Allow
	return c.serve
}

// Reconfigure swaps in an access-log sampler and an in-flight cap
// (server.max_inflight) for the requests that start from now on; those
// already running finish under the old ones. A cap that stays "auto"
// keeps its limiter and what it has learned; one that becomes "auto"
// starts a new limiter, which first measures its baseline at the low cap.
func (r *Router) Reconfigure(sampler *accesslog.Sampler, maxInflight int) {
	next := &live{sampler: sampler}
	prev := r.live.Load()
	switch {
	case maxInflight >= 0:
		next.limit = int64(maxInflight)
	case prev != nil && prev.adaptive != nil:
		next.adaptive = prev.adaptive
	default:
		next.adaptive = limit.NewAdaptive(r.adaptiveOpts, time.Now())
	}
	r.live.Store(next)
	r.publishLimit(next.adaptive != nil)
}

// publishLimit shows http_inflight_limit while the cap is "auto".
func (r *Router) publishLimit(auto bool) {
	r.limitGauge.Lock()
	defer r.limitGauge.Unlock()
	const name = "http_inflight_limit"
	if !auto {
		r.metrics.Set().UnregisterMetric(name)
		return
	}
	r.metrics.Set().GetOrCreateGauge(name, func() float64 {
		if a := r.live.Load().adaptive; a != nil {
			return float64(a.Limit())
		}
		return 0 // only between a switch away from "auto" and the unregistration
	})
}

type chain struct {
	Options
	router     *Router
	guard      *guard
	overloaded []byte
}

// epoch anchors the request clock: time.Since(epoch) reads the monotonic
// clock alone, one clock call where time.Now makes two.
var epoch = time.Now()

func (c *chain) serve(ctx *fasthttp.RequestCtx) {
	f, status, refusal := c.guard.check(ctx)
	c.setRequestID(ctx, f.id)
	c.stamp(ctx)
	if status != 0 {
		start := time.Since(epoch)
		refuse(ctx, status, refusal)
		c.finish(ctx, c.router.unmatchedRoute(ctx), start, c.router.live.Load())
		return
	}
	if c.Tracer != nil {
		tp := f.traceparent
		if f.traceparents > 1 {
			tp = nil // the spec calls a repeated traceparent invalid
		}
		c.Tracer.Begin(ctx, tp, f.tracestate, f.tracestates > 1)
	}
	c.router.mux.Handler(ctx)
}

// serveRoute runs a matched route's handler under the in-flight cap and
// records the request; a panic becomes a recorded 500.
func (c *chain) serveRoute(ctx *fasthttp.RequestCtx, rt *Route, h fasthttp.RequestHandler) {
	start := time.Since(epoch)
	r := c.router
	lv := r.live.Load()
	n := r.metrics.AddInflight(1)
	defer r.metrics.AddInflight(-1)
	defer c.settle(ctx, rt, start, lv)
	if lv.limit > 0 && n > lv.limit {
		c.reject(ctx)
		return
	}
	if lv.adaptive == nil {
		h(ctx)
		return
	}
	if !lv.adaptive.Admit(n) {
		c.reject(ctx)
		return
	}
	h(ctx)
	now := time.Now()
	lv.adaptive.Observe(now.Sub(epoch)-start, now)
}

// unmatched wraps an answer for requests no route serves (404, 405,
// OPTIONS) so that they are recorded, and recovered should they panic.
func (c *chain) unmatched(answer fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		start := time.Since(epoch)
		defer c.settle(ctx, c.router.unmatchedRoute(ctx), start, c.router.live.Load())
		if !c.admitRead(ctx) {
			return
		}
		answer(ctx)
	}
}

// settle is deferred by every handler the chain wraps: it turns a panic
// into a 500 (recover works only in the deferred call itself) and records
// the request.
func (c *chain) settle(ctx *fasthttp.RequestCtx, rt *Route, start time.Duration, lv *live) {
	if p := recover(); p != nil {
		c.recovered(ctx, p)
	}
	c.finish(ctx, rt, start, lv)
}

// stamp puts the chain's own headers on every answer: nosniff, and
// Connection: close while draining.
func (c *chain) stamp(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetCanonical(nosniffKey, nosniffValue)
	if c.Draining != nil && c.Draining.Load() {
		ctx.SetConnectionClose()
	}
}

// setRequestID echoes a safe incoming X-Request-ID or makes a new one.
func (c *chain) setRequestID(ctx *fasthttp.RequestCtx, in []byte) {
	if requestid.Valid(in) {
		ctx.Response.Header.SetCanonical(requestIDKey, in)
		return
	}
	var buf [64]byte
	ctx.Response.Header.SetCanonical(requestIDKey, c.IDs.Append(buf[:0]))
}

// finish records metrics and, when sampled, the access-log line.
func (c *chain) finish(ctx *fasthttp.RequestCtx, rt *Route, start time.Duration, lv *live) {
	d := time.Since(epoch) - start
	status := ctx.Response.StatusCode()
	rt.metrics.Observe(status, d)
	if c.Tracer != nil {
		defer c.Tracer.End(ctx, rt.template(), status)
	}
	if !lv.sampler.Keep(status, d) {
		return
	}
	rec, ok := c.Access.Acquire()
	if !ok {
		c.Access.Drop()
		return
	}
	rec.Time = time.Now().Add(-d) // the wall clock, for logged requests only
	rec.RequestID = accesslog.Append(rec.RequestID, ctx.Response.Header.PeekBytes(requestIDKey))
	if tr := tracing.FromContext(ctx); tr != nil {
		rec.TraceID, rec.SpanID = tr.TraceID(), tr.SpanID()
	}
	rec.Method = accesslog.Append(rec.Method, ctx.Method())
	rec.Route = rt.Path
	rec.Path = accesslog.Append(rec.Path, ctx.RequestURI())
	rec.Status = status
	rec.Duration = d
	rec.BytesIn = len(ctx.Request.Body())
	rec.BytesOut = len(ctx.Response.Body())
	rec.RemoteAddr = c.Clients.Addr(ctx).AppendTo(rec.RemoteAddr[:0])
	rec.UserAgent = accesslog.Append(rec.UserAgent, ctx.UserAgent())
	c.Access.Submit(rec)
}

// Clients is the resolver of client addresses the chain was built with
// (nil without one), for a reload of server.trusted_proxies.
func (r *Router) Clients() *clientip.Resolver { return r.chain.Clients }

// admitRead applies limits.reads, answering 429 when the client is over it.
func (c *chain) admitRead(ctx *fasthttp.RequestCtx) bool {
	if !c.Reads.On() {
		return true
	}
	return c.Reads.Admit(ctx, ratelimit.AddrKey(c.Clients.Addr(ctx)))
}

// reject answers a request over server.max_inflight at once.
func (c *chain) reject(ctx *fasthttp.RequestCtx) {
	c.router.metrics.Overloaded.Inc()
	ctx.Response.Header.Set("Retry-After", "1")
	problem.WriteStatic(ctx, fasthttp.StatusServiceUnavailable, c.overloaded)
}

// recovered is the one place panics end: fasthttp recovers none, so without
// it one bad request would kill the process. It logs the stack and answers 500.
func (c *chain) recovered(ctx *fasthttp.RequestCtx, p any) {
	c.router.metrics.Panics.Inc()
	c.router.log.ErrorContext(ctx, "handler panic",
		"panic", fmt.Sprint(p),
		"method", string(ctx.Method()),
		"path", string(ctx.Path()),
		"request_id", string(ctx.Response.Header.PeekBytes(requestIDKey)),
		"stack", string(debug.Stack()))
	// Nothing the handler set may go out with the 500 (a Set-Cookie, a
	// Location, a cache header): start from a clean response, keeping the
	// request id, a close already decided, and the chain's own headers.
	id := append([]byte(nil), ctx.Response.Header.PeekBytes(requestIDKey)...)
	closing := ctx.Response.ConnectionClose()
	ctx.Response.Reset()
	ctx.Response.Header.SetCanonical(requestIDKey, id)
	c.stamp(ctx)
	if closing {
		ctx.SetConnectionClose()
	}
	problem.WriteStatus(ctx, fasthttp.StatusInternalServerError, "the server could not complete the request")
}
