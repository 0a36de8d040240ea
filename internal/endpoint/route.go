package endpoint

import (
	"log/slog"
	"mime"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/auth"
	"github.com/hotpath/hotpath/internal/clientip"
	"github.com/hotpath/hotpath/internal/compress"
	"github.com/hotpath/hotpath/internal/csrf"
	"github.com/hotpath/hotpath/internal/idempotency"
	"github.com/hotpath/hotpath/internal/problem"
	"github.com/hotpath/hotpath/internal/ratelimit"
	"github.com/hotpath/hotpath/internal/store"
)

// Deps are the collaborators every route shares, built once at start.
// A nil class or resolver limits nothing.
type Deps struct {
	// Tokens checks bearer tokens (auth.tokens, auth.tokens_file).
	Tokens *auth.Tokens
	// Clients finds a request's client address (server.trusted_proxies).
	Clients *clientip.Resolver
	// Reads, Anonymous and TokenWrites are limits.reads,
	// limits.anonymous_writes and limits.token_writes.
	Reads, Anonymous, TokenWrites *ratelimit.Class
	// CSRF protects form routes (security.*).
	CSRF *csrf.Protector
	// Compress compresses answers; nil when server.compress is off.
	Compress *compress.Compressor
	// KeyTTL is how long an Idempotency-Key answer is kept
	// (api.idempotency_ttl).
	KeyTTL time.Duration
	// Log receives the errors that are the server's fault.
	Log *slog.Logger
}

// Route is a Spec bound to the running collaborators: what a request of
// the route goes through before its handler. Build it at start with Bind.
type Route struct {
	*Spec
	deps  *Deps
	class *ratelimit.Class
}

// Bind resolves s against d. Check s first.
func Bind(s *Spec, d *Deps) *Route {
	r := &Route{Spec: s, deps: d}
	switch s.class() {
	case Reads:
		r.class = d.Reads
	case AnonymousWrites:
		r.class = d.Anonymous
	case TokenWrites:
		r.class = d.TokenWrites
	}
	return r
}

// Wrap adds to h what the route's options ask of every answer:
// compression and the HTML security headers.
func (r *Route) Wrap(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	if r.Compressed() {
		h = r.deps.Compress.Wrap(h)
	}
	if r.HTML {
		inner := h
		h = func(rc *fasthttp.RequestCtx) {
			setHTMLHeaders(rc)
			inner(rc)
		}
	}
	return h
}

// State is what admission learns of one request: who calls, and with
// which Idempotency-Key. The public package keeps one per request it
// handles, reset between requests.
type State struct {
	// Caller identifies the bearer token of an authenticated request.
	Caller auth.Caller
	// Authenticated is set once the credentials step passed.
	Authenticated bool
	// Key is the request's Idempotency-Key, when HasKey.
	Key    store.Key
	HasKey bool
}

// Reset empties st for the next request.
func (st *State) Reset() { *st = State{} }

// Admit runs the route's admission steps (see the package doc) on rc and
// reports whether the handler may run; when it returns false it has
// answered.
func (r *Route) Admit(rc *fasthttp.RequestCtx, st *State) bool {
	d := r.deps
	if r.CSRF {
		// The answer depends on these request headers; caches must know,
		// whatever the answer turns out to be.
		rc.Response.Header.Set(fasthttp.HeaderVary, "Sec-Fetch-Site, Origin")
	}
	if r.Access == Bearer {
		caller, err := d.Tokens.Check(rc)
		if err != nil {
			// A request without valid credentials is anonymous: it spends
			// its address's anonymous_writes, never a token's allowance.
			if d.Anonymous.On() && !d.Anonymous.Admit(rc, ratelimit.AddrKey(d.Clients.Addr(rc))) {
				return false
			}
			problem.Write(rc, err)
			return false
		}
		st.Caller, st.Authenticated = caller, true
	}
	if !r.admitClass(rc, st) {
		return false
	}
	if r.CSRF && !r.Safe() && !r.checkForm(rc) {
		return false
	}
	if r.MaxBody > 0 && len(rc.Request.Body()) > r.MaxBody {
		problem.Write(rc, problem.New(fasthttp.StatusRequestEntityTooLarge, "the body is larger than this route accepts"))
		return false
	}
	if r.Idempotent && !r.readKey(rc, st) {
		return false
	}
	return true
}

// admitClass applies the route's rate limit, keyed by token for
// token_writes and by client address otherwise.
func (r *Route) admitClass(rc *fasthttp.RequestCtx, st *State) bool {
	if !r.class.On() {
		return true
	}
	if r.class == r.deps.TokenWrites {
		return r.class.Admit(rc, ratelimit.BytesKey(st.Caller[:]))
	}
	return r.class.Admit(rc, ratelimit.AddrKey(r.deps.Clients.Addr(rc)))
}

// checkForm applies the form protection to an unsafe request.
func (r *Route) checkForm(rc *fasthttp.RequestCtx) bool {
	if mt, _, err := mime.ParseMediaType(string(rc.Request.Header.ContentType())); err != nil || mt != "application/x-www-form-urlencoded" {
		problem.Write(rc, problem.New(fasthttp.StatusUnsupportedMediaType, "the form must be sent as application/x-www-form-urlencoded"))
		return false
	}
	if err := r.deps.CSRF.Check(rc); err != nil {
		problem.Write(rc, &problem.Error{Status: fasthttp.StatusForbidden, Detail: forbiddenDetail(err), Err: err})
		return false
	}
	return true
}

// readKey reads the request's Idempotency-Key into st, scoped to its
// caller: absent is fine; malformed, too long or sent twice is 400.
func (r *Route) readKey(rc *fasthttp.RequestCtx, st *State) bool {
	h := &rc.Request.Header
	values := h.PeekAll(idempotency.Header)
	switch len(values) {
	case 0:
		return true
	case 1:
	default:
		problem.Write(rc, problem.New(fasthttp.StatusBadRequest, "send one Idempotency-Key header, not several"))
		return false
	}
	key, err := idempotency.ParseKey(values[0])
	if err != nil {
		problem.Write(rc, &problem.Error{Status: fasthttp.StatusBadRequest, Detail: err.Error(), Err: err})
		return false
	}
	st.Key = store.Key{
		Scope:       st.Caller.String(),
		Key:         key,
		Fingerprint: idempotency.Fingerprint(rc.Method(), rc.RequestURI(), h.Peek(fasthttp.HeaderIfMatch), rc.PostBody()),
		TTL:         r.deps.KeyTTL,
	}
	st.HasKey = true
	return true
}

// CSRFToken returns the form token for rc, setting the CSRF cookie when the
// client has none.
func (r *Route) CSRFToken(rc *fasthttp.RequestCtx) string { return r.deps.CSRF.Token(rc) }

// Log is the logger for the server's own errors.
func (r *Route) Log() *slog.Logger { return r.deps.Log }
