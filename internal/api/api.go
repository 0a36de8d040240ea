// Package api serves the REST resources under /api/v1: Worlds and
// Fortunes as JSON, with bearer-token auth on every write and strict
// request validation, and the OpenAPI document that describes them.
//
// Every write handler runs the same steps in the same order, so that a
// refused request changes nothing and anonymous clients learn nothing
// about the body they sent: authorize, read the Idempotency-Key, parse the
// path, check the media type, decode, validate, and only then touch the
// store, whose Apply checks the If-Match precondition, makes the change,
// records its webhook event and stores the answer for the key in one
// transaction (or replays the answer stored for it).
//
// Reads carry strong ETags made from stored state and answer a matching
// If-None-Match with 304 (conditional.go).
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/auth"
	"github.com/hotpath/hotpath/internal/clientip"
	"github.com/hotpath/hotpath/internal/handler"
	"github.com/hotpath/hotpath/internal/idempotency"
	"github.com/hotpath/hotpath/internal/problem"
	"github.com/hotpath/hotpath/internal/ratelimit"
	"github.com/hotpath/hotpath/internal/store"
	"github.com/hotpath/hotpath/internal/tracing"
	"github.com/hotpath/hotpath/internal/worldcache"
)

// Prefix is the path under which every resource of this package lives.
const Prefix = "/api/v1"

// Store is what the resources need from the data layer; store.SQLite and
// store.Postgres provide it.
type Store interface {
	World(ctx context.Context, id int32) (store.World, error)
	FortunesAfter(ctx context.Context, after int32, limit int, dst []store.Fortune) ([]store.Fortune, error)
	Fortune(ctx context.Context, id int32) (store.Fortune, error)
	// Apply makes one write and returns the answer render made of it, in
	// one transaction with the write's precondition and webhook events.
	Apply(ctx context.Context, c store.Change, render store.Render) (store.Answer, error)
}

// API holds the /api/v1 handlers.
type API struct {
	store   Store
	cache   *worldcache.Cache
	auth    *auth.Tokens
	limits  Limits
	timeout time.Duration
	log     *slog.Logger
	docTag  []byte        // the ETag of OpenAPIDocument
	keyTTL  time.Duration // how long answers to Idempotency-Keys are kept
}

// New returns the /api/v1 handlers. Writes need one of tokens
// (auth.tokens) and are held to limits; every store call is bounded by
// timeout (db.timeout); the answer of a write with an Idempotency-Key is
// kept for keyTTL (api.idempotency_ttl); a World written through the API is
// also written to cache, so that /cached-queries shows it. cache may be nil.
func New(s Store, cache *worldcache.Cache, tokens []string, limits Limits, timeout, keyTTL time.Duration, log *slog.Logger) *API {
	return &API{store: s, cache: cache, auth: auth.NewTokens(tokens), limits: limits, timeout: timeout, log: log,
		docTag: documentTag(OpenAPIDocument), keyTTL: keyTTL}
}

// Limits are the bounds on writes, shared by the API and the HTML form:
// the rate limits (package ratelimit) and the count of creates refused at
// api.max_fortunes (which the store enforces). The zero value limits and
// counts nothing.
type Limits struct {
	// Clients finds a request's client address (server.trusted_proxies).
	Clients *clientip.Resolver
	// Anonymous limits writes without a valid bearer token, per client
	// address (limits.anonymous_writes).
	Anonymous *ratelimit.Class
	// Token limits writes with a valid bearer token, per token
	// (limits.token_writes).
	Token *ratelimit.Class
	// FortuneCapRefusals counts creates refused because api.max_fortunes
	// fortunes are stored; nil counts nothing.
	FortuneCapRefusals *vm.Counter
}

// CountRefusal counts err when it refused a create at api.max_fortunes.
func (l Limits) CountRefusal(err error) {
	if l.FortuneCapRefusals != nil && errors.Is(err, store.ErrFull) {
		l.FortuneCapRefusals.Inc()
	}
}

// AdmitAnonymous applies limits.anonymous_writes to the request's client
// address, answering 429 when it is over.
func (l Limits) AdmitAnonymous(ctx *fasthttp.RequestCtx) bool {
	if !l.Anonymous.On() {
		return true
	}
	return l.Anonymous.Admit(ctx, ratelimit.AddrKey(l.Clients.Addr(ctx)))
}

// SetTokens replaces the bearer tokens that may write, for requests that
// start from now on (a configuration reload).
func (a *API) SetTokens(tokens []string) { a.auth.SetTokens(tokens) }

// context returns the context of one request's store calls: bounded by
// db.timeout, in the request's trace.
func (a *API) context(ctx *fasthttp.RequestCtx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(tracing.Context(ctx), a.timeout)
}

// authorize answers a write that carries no valid bearer token (401) or
// is over its rate limit (429), and reports whether its handler may go on,
// and for whom.
//
// A write without a valid token is an anonymous write: it counts against
// limits.anonymous_writes of its client address, so guessing tokens or
// flooding 401s is held to that rate, and it never touches a token's
// bucket, so nobody can spend another caller's allowance.
func (a *API) authorize(ctx *fasthttp.RequestCtx) (auth.Caller, bool) {
	caller, err := a.auth.Check(ctx)
	if err != nil {
		if a.limits.AdmitAnonymous(ctx) {
			problem.Write(ctx, err)
		}
		return auth.Caller{}, false
	}
	return caller, a.limits.Token.Admit(ctx, ratelimit.BytesKey(caller[:]))
}

func (a *API) fail(ctx *fasthttp.RequestCtx, err error) {
	a.limits.CountRefusal(err)
	WriteStoreError(ctx, a.log, err)
}

// failWrite answers a failed write. With an If-Match, a resource that is
// not there fails the precondition (412) rather than being not found.
func (a *API) failWrite(ctx *fasthttp.RequestCtx, err error, cond condition) {
	if cond.present() && errors.Is(err, store.ErrNotFound) {
		problem.Write(ctx, errPrecondition)
		return
	}
	a.fail(ctx, err)
}

// writeAnswer sends the answer of a write, never stored by caches; one
// sent again for a repeated Idempotency-Key says so.
func writeAnswer(ctx *fasthttp.RequestCtx, ans store.Answer) {
	h := &ctx.Response.Header
	h.Set(fasthttp.HeaderCacheControl, cacheNever)
	if ans.Replayed {
		h.Set(idempotency.ReplayedHeader, "true")
	}
	if ans.Location != "" {
		h.Set(fasthttp.HeaderLocation, ans.Location)
	}
	if ans.ETag != "" {
		h.Set(fasthttp.HeaderETag, ans.ETag)
	}
	ctx.SetStatusCode(ans.Status)
	if ans.ContentType != "" {
		ctx.SetContentType(ans.ContentType)
	}
	ctx.SetBody(ans.Body)
}

// jsonAnswer renders v as the JSON answer of a write.
func jsonAnswer(status int, v any, location string, tag []byte) (store.Answer, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return store.Answer{}, fmt.Errorf("encode answer: %w", err)
	}
	return store.Answer{Status: status, ContentType: handler.ContentTypeJSON, Location: location, ETag: string(tag), Body: body}, nil
}

// WriteStoreError answers a failed store call with the status its cause
// deserves (see StoreProblem), logging to log the errors that are ours.
func WriteStoreError(ctx *fasthttp.RequestCtx, log *slog.Logger, err error) {
	pe := StoreProblem(err)
	if pe.Status == fasthttp.StatusInternalServerError {
		log.ErrorContext(ctx, "database call", "path", string(ctx.Path()), "err", err.Error())
	}
	problem.Write(ctx, pe)
}

// StoreProblem turns a store error into the problem to answer: 409 for a
// create beyond api.max_fortunes, 404 for a missing row, 422 for a value
// the database refused, 503 when the database is unreachable or slow, else
// 500.
//
// A full table is a conflict with the resource's state that the client
// can resolve (delete a fortune) and retrying will not: so 409, not 507,
// which would count as a server failure in metrics and alerts and invite
// retries, and not 429 or 503, whose Retry-After would promise a wait
// that may never end.
func StoreProblem(err error) *problem.Error {
	var full *store.FullError
	switch {
	case errors.As(err, &full):
		return &problem.Error{Status: fasthttp.StatusConflict, Err: err,
			Detail: "no more fortunes can be stored: this server keeps at most " + strconv.Itoa(full.Max) + " (api.max_fortunes); delete one to add another"}
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return problem.Unavailable("the database is unavailable or too slow (db.timeout); retry later", err)
	case errors.Is(err, store.ErrPrecondition):
		return errPrecondition
	case errors.Is(err, store.ErrKeyInFlight):
		return errKeyInFlight
	case errors.Is(err, store.ErrKeyReused):
		return errKeyReused
	case errors.Is(err, store.ErrNotFound):
		return &problem.Error{Status: fasthttp.StatusNotFound, Detail: "no such resource", Err: err}
	case errors.Is(err, store.ErrInvalid):
		return &problem.Error{Status: fasthttp.StatusUnprocessableEntity, Detail: "the database refused the value", Err: err}
	}
	return &problem.Error{Status: fasthttp.StatusInternalServerError, Detail: "the server could not complete the request", Err: err}
}

// pathID reads the {id} path parameter: anything but decimal digits is
// malformed (400); a number outside 1..max, however long, names no
// resource (404).
func pathID(ctx *fasthttp.RequestCtx, max int64) (int32, error) {
	s, _ := ctx.UserValue("id").(string)
	if s == "" || !digits(s) {
		return 0, problem.New(fasthttp.StatusBadRequest, "the id in the path must be a decimal number")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > max {
		return 0, problem.New(fasthttp.StatusNotFound, "no resource with this id")
	}
	return int32(n), nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
