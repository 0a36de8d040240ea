package hotpath

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/endpoint"
	"github.com/hotpath/hotpath/internal/etag"
	"github.com/hotpath/hotpath/internal/store"
	"github.com/hotpath/hotpath/internal/tracing"
	"github.com/hotpath/hotpath/internal/upstream"
)

// Ctx is the request being handled. It is valid until the handler
// returns, and so is everything it hands out ([]byte values and the
// context): copy what you keep.
type Ctx struct {
	rc    *fasthttp.RequestCtx
	route *route
	er    *endpoint.Route
	state endpoint.State

	// The answer a Write stored with the request's Idempotency-Key (or
	// found stored): sent instead of encoding the handler's.
	storedAnswer store.Answer
	stored       bool

	ctx    context.Context
	cancel context.CancelFunc
	tag    [64]byte // the answer's entity tag is made here
	enc    *encoder // kept across requests, with its buffer
}

func (c *Ctx) begin(rc *fasthttp.RequestCtx, r *route, er *endpoint.Route) {
	c.rc, c.route, c.er = rc, r, er
}

// end releases what the request held, for the next one. The tag buffer
// is scratch, rewritten before each use, so it is left as it is.
func (c *Ctx) end() {
	if c.cancel != nil {
		c.cancel()
	}
	c.rc, c.route, c.er, c.ctx, c.cancel = nil, nil, nil, nil, nil
	if c.state.Authenticated || c.state.HasKey {
		c.state.Reset()
	}
	if c.stored {
		c.storedAnswer, c.stored = store.Answer{}, false
	}
}

// Context is the request's context, for the calls the handler makes: it
// carries the request's trace, and ends at the route's Timeout if it has
// one.
func (c *Ctx) Context() context.Context {
	if c.ctx != nil {
		return c.ctx
	}
	c.ctx = tracing.Context(c.rc)
	if d := c.route.spec.Timeout; d > 0 {
		c.ctx, c.cancel = context.WithTimeout(c.ctx, d)
	}
	return c.ctx
}

// Method is the request's method.
func (c *Ctx) Method() string { return string(c.rc.Method()) }

// Path is the request's path, as sent.
func (c *Ctx) Path() []byte { return c.rc.Path() }

// Param is the path parameter {name} of the route's template ("" when it
// has none).
func (c *Ctx) Param(name string) string {
	v, _ := c.rc.UserValue(name).(string)
	return v
}

// Query is the query parameter name, nil when absent.
func (c *Ctx) Query(name string) []byte { return c.rc.QueryArgs().Peek(name) }

// Header is the request header name, nil when absent.
func (c *Ctx) Header(name string) []byte { return c.rc.Request.Header.Peek(name) }

// FormValue is the field name of a url-encoded form body, nil when absent.
func (c *Ctx) FormValue(name string) []byte { return c.rc.PostArgs().Peek(name) }

// Body is the request body.
func (c *Ctx) Body() []byte { return c.rc.PostBody() }

// RequestID is the request's X-Request-Id, as echoed or made.
func (c *Ctx) RequestID() string { return string(c.rc.Response.Header.Peek("X-Request-Id")) }

// Caller identifies the bearer token of an authenticated request: 16 hex
// digits of its digest, the same on every replica, safe to log and store
// (never the token). "" on a route without Auth.
func (c *Ctx) Caller() string {
	if !c.state.Authenticated {
		return ""
	}
	return c.state.Caller.String()
}

// CSRFToken is the token a form of a CSRF route must post back in the
// field csrf_token; it sets the form's cookie when the client has none.
func (c *Ctx) CSRFToken() string { return c.er.CSRFToken(c.rc) }

// Log is the application log, for lines about this request (they carry
// its trace when it has one: pass c.Context() to the ...Context methods).
func (c *Ctx) Log() *slog.Logger { return c.er.Log() }

// IfMatch is the request's If-Match precondition, for a route with the
// IfMatch option.
func (c *Ctx) IfMatch() Precondition {
	return Precondition{header: c.rc.Request.Header.Peek(fasthttp.HeaderIfMatch)}
}

// Precondition is an If-Match header: the versions a write may replace.
type Precondition struct{ header []byte }

// Present reports whether the request has an If-Match.
func (p Precondition) Present() bool { return len(p.header) > 0 }

// Any reports If-Match: *, which any existing version satisfies.
func (p Precondition) Any() bool { return etag.Any(p.header) }

// Check returns nil when the request may replace the version whose entity
// tag (without quotes, as the route's ETag function makes it) is current,
// and the 412 problem otherwise; a request without If-Match may. Weak tags
// never match (strong comparison).
func (p Precondition) Check(current []byte) error {
	if !p.Present() || p.Any() {
		return nil
	}
	var buf [64]byte
	tag := append(append(append(buf[:0], '"'), current...), '"')
	if etag.Match(p.header, tag) {
		return nil
	}
	return endpoint.ErrPrecondition
}

// Each calls fn with the opaque part of every strong tag the header lists,
// until fn returns false: for a write that puts the condition into its own
// statement (UPDATE ... WHERE version IN ...).
func (p Precondition) Each(fn func(tag []byte) bool) {
	etag.Each(p.header, func(opaque []byte, weak bool) bool {
		if weak {
			return true
		}
		return fn(opaque)
	})
}

// Text answers with body as the given content type.
func (c *Ctx) Text(status int, contentType string, body []byte) {
	c.rc.SetStatusCode(status)
	c.rc.SetContentType(contentType)
	c.rc.SetBody(body)
}

// JSON answers with v encoded as JSON. v should point to a pooled or
// long-lived value: a pointer to a local escapes and allocates.
func (c *Ctx) JSON(status int, v any) { c.writeJSON(status, v) }

// SetHeader sets a response header.
func (c *Ctx) SetHeader(name, value string) { c.rc.Response.Header.Set(name, value) }

// Redirect answers with status (a 3xx) and Location.
func (c *Ctx) Redirect(status int, location string) {
	c.rc.Response.Header.Set(fasthttp.HeaderLocation, location)
	c.rc.SetStatusCode(status)
}

// Fasthttp is the underlying fasthttp request, for what Ctx does not
// offer. Valid until the handler returns; what it answers goes out as the
// handler set it.
func (c *Ctx) Fasthttp() *fasthttp.RequestCtx { return c.rc }

// fail answers err as a problem (see Error for the mapping).
func (c *Ctx) fail(err error) {
	if c.stored {
		// A replay, or a change stored with its key whose handler failed
		// afterwards: the stored answer is the one the key promises.
		endpoint.WriteStored(c.rc, c.storedAnswer)
		return
	}
	endpoint.WriteError(c.rc, c.er.Log(), toProblem(err))
}

// Upstream calls another service through the client of its
// [upstreams.NAME] table: pooled connections, a bound on each attempt,
// retries of idempotent requests, a circuit breaker, metrics and a client
// span, with the request's X-Request-Id and trace passed on. ctx bounds
// the whole call (pass c.Context(), or one with a deadline of its own). A
// name with no table is an error naming the key to add.
func (c *Ctx) Upstream(ctx context.Context, name string, req *fasthttp.Request, resp *fasthttp.Response) error {
	client, ok := c.route.app.upstreams[name]
	if !ok {
		return fmt.Errorf("hotpath: no upstream %q: add an [upstreams.%s] table with its url", name, name)
	}
	return client.Do(upstream.WithRequestID(ctx, c.RequestID()), req, resp)
}
