package api

import (
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/auth"

	"github.com/hotpath/hotpath/internal/idempotency"
	"github.com/hotpath/hotpath/internal/problem"
	"github.com/hotpath/hotpath/internal/store"
)

// idempotencyKey reads a write's Idempotency-Key, scoped to caller: nil
// when the request has none. A key hotpath does not accept (malformed, too
// long, or sent twice) is answered 400, and the handler must stop (false).
func (a *API) idempotencyKey(ctx *fasthttp.RequestCtx, caller auth.Caller) (*store.Key, bool) {
	h := &ctx.Request.Header
	values := h.PeekAll(idempotency.Header)
	switch len(values) {
	case 0:
		return nil, true
	case 1:
	default:
		problem.Write(ctx, problem.New(fasthttp.StatusBadRequest, "send one Idempotency-Key header, not several"))
		return nil, false
	}
	key, err := idempotency.ParseKey(values[0])
	if err != nil {
		problem.Write(ctx, &problem.Error{Status: fasthttp.StatusBadRequest, Detail: err.Error(), Err: err})
		return nil, false
	}
	return &store.Key{
		Scope:       caller.String(),
		Key:         key,
		Fingerprint: idempotency.Fingerprint(ctx.Method(), ctx.RequestURI(), h.Peek(fasthttp.HeaderIfMatch), ctx.PostBody()),
		TTL:         a.keyTTL,
	}, true
}

var (
	errKeyInFlight = &problem.Error{Status: fasthttp.StatusConflict, RetryAfter: 1,
		Detail: "a request with this Idempotency-Key is still being handled; retry after the time in Retry-After to get its answer"}
	errKeyReused = &problem.Error{Status: fasthttp.StatusUnprocessableEntity,
		Detail: "this Idempotency-Key was used for a different request (method, path, If-Match or body); use a new key for a new request"}
)
