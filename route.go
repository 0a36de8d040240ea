package hotpath

import (
	"fmt"
	"reflect"
	"sync"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/endpoint"
	"github.com/hotpath/hotpath/internal/problem"
	"github.com/hotpath/hotpath/internal/typed"
)

// RouteOption is one requirement of a route, given at its registration.
type RouteOption struct{ apply func(*routeSpec) }

// routeSpec is what a route's options say: the machinery's Spec, plus the
// typed parts only this package knows.
type routeSpec struct {
	endpoint.Spec
	// etag makes the entity tag of an answer body; etagType is the body
	// type it takes, checked against the route's at registration.
	etag     func(dst []byte, body any) []byte
	etagType reflect.Type
}

// Auth makes a route need Authorization: Bearer <token> with a token from
// auth.tokens or auth.tokens_file: without one the answer is 401 with
// WWW-Authenticate: Bearer, and the attempt counts against
// limits.anonymous_writes of the client's address. An authenticated write
// counts against limits.token_writes of its token.
func Auth() RouteOption {
	return RouteOption{func(s *routeSpec) {
		if s.Access == endpoint.Public {
			s.Fail("hotpath.Auth() and hotpath.Public() contradict each other")
		}
		s.Access = endpoint.Bearer
	}}
}

// Public declares that anyone may call a route that changes something
// (a route with POST, PUT, PATCH or DELETE needs Auth or Public, or it
// does not start). Public writes count against limits.anonymous_writes of
// the client's address.
func Public() RouteOption {
	return RouteOption{func(s *routeSpec) {
		if s.Access == endpoint.Bearer {
			s.Fail("hotpath.Auth() and hotpath.Public() contradict each other")
		}
		s.Access = endpoint.Public
	}}
}

// Idempotent makes a write route honour Idempotency-Key: the first request
// with a key runs, and its answer is stored in the transaction of its
// change (made with Write), so both commit or neither does; a retry with
// the same key and request, on any replica and after any restart, gets that
// answer again with Idempotency-Replayed: true and changes nothing. The
// same key with another request is 422; while the first is in flight, 409
// with Retry-After (PostgreSQL). Keys belong to the caller's token, so the
// route needs Auth. Answers are kept api.idempotency_ttl.
func Idempotent() RouteOption {
	return RouteOption{func(s *routeSpec) { s.Idempotent = true }}
}

// ETag gives a route's answers an entity tag made by tag from the answer's
// body (append the version's bytes to dst; hotpath adds the quotes): a GET
// whose If-None-Match names it is answered 304 with no body, and the
// answer says Cache-Control: no-cache. The tag must change whenever the
// body does; begin it with a letter of the resource (n1, n2) so tags of
// two resources never look alike.
func ETag[T any](tag func(dst []byte, body *T) []byte) RouteOption {
	return RouteOption{func(s *routeSpec) {
		s.ETag = true
		s.etagType = reflect.TypeFor[T]()
		s.etag = func(dst []byte, body any) []byte { return tag(dst, body.(*T)) }
	}}
}

// IfMatch declares that a write route honours If-Match: the handler checks
// the current version with Ctx.IfMatch before it changes anything, and a
// tag that names no current version is 412.
func IfMatch() RouteOption {
	return RouteOption{func(s *routeSpec) { s.IfMatch = true }}
}

// Compress turns compression of the route's answers on or off (zstd, br
// or gzip, as the client's Accept-Encoding prefers; bodies under
// server.compress_min_size are sent as they are). Typed routes compress
// unless told not to; routes registered with Handle only when told to.
func Compress(on bool) RouteOption {
	return RouteOption{func(s *routeSpec) {
		s.Compress = endpoint.Off
		if on {
			s.Compress = endpoint.On
		}
	}}
}

// MaxBody bounds the route's request body to n bytes (413 beyond), below
// server.max_body_size, which bounds every route.
func MaxBody(n int) RouteOption { return RouteOption{func(s *routeSpec) { s.MaxBody = n }} }

// Timeout bounds the context the handler gets (Ctx.Context) to d; database
// calls are bounded by db.timeout in any case.
func Timeout(d time.Duration) RouteOption { return RouteOption{func(s *routeSpec) { s.Timeout = d }} }

// CSRF protects a route that takes HTML forms: a POST must be
// application/x-www-form-urlencoded (415), come from this server's origin
// or security.trusted_origins, and carry the token of Ctx.CSRFToken in the
// field csrf_token with its cookie (403 otherwise).
func CSRF() RouteOption { return RouteOption{func(s *routeSpec) { s.CSRF = true }} }

// HTML marks a route whose answers are HTML pages: they get a strict
// Content-Security-Policy (no script at all), X-Content-Type-Options and
// Referrer-Policy: same-origin.
func HTML() RouteOption { return RouteOption{func(s *routeSpec) { s.HTML = true }} }

// NoHead keeps a GET route from answering HEAD (which GET routes otherwise
// do): for a GET that changes state, so a monitor's HEAD changes nothing.
func NoHead() RouteOption { return RouteOption{func(s *routeSpec) { s.NoHead = true }} }

// Limit is a rate-limit class of the [limits] section.
type Limit uint8

// The rate-limit classes. By default a route's requests count against
// TokenWrites when it needs Auth and changes something, AnonymousWrites
// when it is Public and changes something, Reads otherwise.
const (
	// Reads is limits.reads, per client address.
	Reads Limit = iota + 1
	// AnonymousWrites is limits.anonymous_writes, per client address.
	AnonymousWrites
	// TokenWrites is limits.token_writes, per bearer token (Auth routes).
	TokenWrites
)

// RateLimit makes a route's requests count against class instead of the
// default one.
func RateLimit(class Limit) RouteOption {
	return RouteOption{func(s *routeSpec) {
		switch class {
		case Reads:
			s.Class = endpoint.Reads
		case AnonymousWrites:
			s.Class = endpoint.AnonymousWrites
		case TokenWrites:
			s.Class = endpoint.TokenWrites
		default:
			s.Fail("hotpath.RateLimit(%d): not a class of [limits]", class)
		}
	}}
}

// Summary is the route's one-line summary in the OpenAPI document.
func Summary(s string) RouteOption { return RouteOption{func(r *routeSpec) { r.Summary = s }} }

// Description is the route's longer description in the OpenAPI document.
func Description(s string) RouteOption { return RouteOption{func(r *routeSpec) { r.Description = s }} }

// Tags group the route in the OpenAPI document.
func Tags(tags ...string) RouteOption {
	return RouteOption{func(r *routeSpec) { r.Tags = append(r.Tags, tags...) }}
}

// Hidden leaves the route out of the OpenAPI document.
func Hidden() RouteOption { return RouteOption{func(r *routeSpec) { r.Hidden = true }} }

// Handler is a typed handler: it gets the request's decoded and validated
// input and returns the answer, or an error that becomes a problem.
type Handler[In, Out any] func(c *Ctx, in *In) (Out, error)

// GET registers a typed handler for GET (and HEAD, unless NoHead) on path,
// a template whose {name} segments are path parameters of In.
func GET[In, Out any](a *App, path string, h Handler[In, Out], opts ...RouteOption) {
	register(a, fasthttp.MethodGet, path, h, opts)
}

// POST registers a typed handler for POST on path.
func POST[In, Out any](a *App, path string, h Handler[In, Out], opts ...RouteOption) {
	register(a, fasthttp.MethodPost, path, h, opts)
}

// PUT registers a typed handler for PUT on path.
func PUT[In, Out any](a *App, path string, h Handler[In, Out], opts ...RouteOption) {
	register(a, fasthttp.MethodPut, path, h, opts)
}

// PATCH registers a typed handler for PATCH on path.
func PATCH[In, Out any](a *App, path string, h Handler[In, Out], opts ...RouteOption) {
	register(a, fasthttp.MethodPatch, path, h, opts)
}

// DELETE registers a typed handler for DELETE on path.
func DELETE[In, Out any](a *App, path string, h Handler[In, Out], opts ...RouteOption) {
	register(a, fasthttp.MethodDelete, path, h, opts)
}

// Handle registers a handler that reads the request and writes its answer
// itself through Ctx (pages, plain text, streams of its own making). It
// gets the whole chain and the route's options, but no typed decoding and
// no entry in the OpenAPI document. An error it returns becomes a problem.
func (a *App) Handle(method, path string, h func(c *Ctx) error, opts ...RouteOption) {
	r := a.newRoute(method, path, false, opts)
	pool := sync.Pool{New: func() any { return new(Ctx) }}
	r.build = func(er *endpoint.Route) fasthttp.RequestHandler {
		return er.Wrap(func(rc *fasthttp.RequestCtx) {
			c := pool.Get().(*Ctx)
			c.begin(rc, r, er)
			if er.Admit(rc, &c.state) {
				if err := h(c); err != nil {
					c.fail(err)
				}
			}
			c.end()
			pool.Put(c)
		})
	}
}

// route is one registered route: its spec, and how to build its request
// handler once the collaborators run.
type route struct {
	app   *App
	spec  routeSpec
	in    *typed.Input
	out   *answerPlan
	build func(*endpoint.Route) fasthttp.RequestHandler
}

func (a *App) newRoute(method, path string, isTyped bool, opts []RouteOption) *route {
	r := &route{app: a}
	r.spec.Method, r.spec.Path, r.spec.Typed = method, path, isTyped
	for _, o := range opts {
		o.apply(&r.spec)
	}
	if r.spec.ETag && !isTyped {
		r.spec.Fail("hotpath.ETag is for typed routes; a Handle route sets its own headers")
	}
	a.routes = append(a.routes, r)
	return r
}

// call is the pooled state of one request of a typed route: its Ctx, the
// decoded input and the answer, in one allocation made once.
type call[In, Out any] struct {
	c   Ctx
	in  In
	out Out
}

func register[In, Out any](a *App, method, path string, h Handler[In, Out], opts []RouteOption) {
	r := a.newRoute(method, path, true, opts)
	in, err := typed.CompileInput(reflect.TypeFor[In]())
	if err != nil {
		r.spec.Fail("input %v: %v", reflect.TypeFor[In](), err)
		return
	}
	r.in = in
	r.out, err = planAnswer[Out](&r.spec)
	if err != nil {
		r.spec.Fail("answer %v: %v", reflect.TypeFor[Out](), err)
		return
	}
	_, validates := any((*In)(nil)).(Validator)
	pool := sync.Pool{New: func() any { return new(call[In, Out]) }}
	r.build = func(er *endpoint.Route) fasthttp.RequestHandler {
		return er.Wrap(func(rc *fasthttp.RequestCtx) {
			k := pool.Get().(*call[In, Out])
			c := &k.c
			c.begin(rc, r, er)
			if er.Admit(rc, &c.state) && c.decode(&k.in, unsafe.Pointer(&k.in), validates) {
				out, err := h(c, &k.in)
				if err != nil {
					c.fail(err)
				} else {
					k.out = out // pooled, so writing it boxes nothing
					c.answer(&k.out)
				}
			}
			var zeroIn In
			var zeroOut Out
			k.in, k.out = zeroIn, zeroOut // drop what the request held for the GC
			c.end()
			pool.Put(k)
		})
	}
}

// decode fills in, the zero value of the route's input type (the pooled
// call is zeroed after each request), from the request, and runs its
// Validate method; false when it has answered the problem.
func (c *Ctx) decode(in any, at unsafe.Pointer, validates bool) bool {
	if err := c.route.in.DecodeAt(c.rc, at); err != nil {
		problem.Write(c.rc, err)
		return false
	}
	if !validates {
		return true
	}
	if err := in.(Validator).Validate(); err != nil {
		c.fail(asInvalid(err))
		return false
	}
	return true
}

// Validator is an input type with rules of its own, beyond the field
// constraints of its tags (which are checked first): cross-field rules.
// An error it returns is answered 422: FieldErrors name the fields; an
// *Error keeps its status.
type Validator interface {
	Validate() error
}

// methodsOf is the methods a route is registered for.
func (r *route) methods() []string {
	if r.spec.Method == fasthttp.MethodGet && !r.spec.NoHead {
		return []string{fasthttp.MethodGet, fasthttp.MethodHead}
	}
	return []string{r.spec.Method}
}

// String names the route in messages.
func (r *route) String() string { return fmt.Sprintf("%s %s", r.spec.Method, r.spec.Path) }

// inputs caches the compiled input plans of Validate, by type.
var inputs sync.Map // reflect.Type -> *typed.Input

// Validate checks v against the constraints of its type's tags and its
// Validate method, as a typed route checks its input: for a value that
// came another way (an HTML form's fields). The error is FieldErrors
// naming every bad field, or the Validate method's.
func Validate[T any](v *T) error {
	t := reflect.TypeFor[T]()
	cached, ok := inputs.Load(t)
	if !ok {
		in, err := typed.CompileInput(t)
		if err != nil {
			return fmt.Errorf("hotpath.Validate: %v: %w", t, err)
		}
		cached, _ = inputs.LoadOrStore(t, in)
	}
	if errs := cached.(*typed.Input).Check(v); len(errs) > 0 {
		out := make(FieldErrors, len(errs))
		for i, e := range errs {
			out[i] = FieldError{Field: e.Field, Detail: e.Detail}
		}
		return out
	}
	if val, ok := any(v).(Validator); ok {
		if err := val.Validate(); err != nil {
			return asInvalid(err)
		}
	}
	return nil
}
