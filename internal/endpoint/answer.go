package endpoint

import (
	"context"
	"errors"
	"log/slog"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/csrf"
	"github.com/hotpath/hotpath/internal/etag"
	"github.com/hotpath/hotpath/internal/idempotency"
	"github.com/hotpath/hotpath/internal/problem"
	"github.com/hotpath/hotpath/internal/store"
)

// Cache-Control values: reads may be kept but must be revalidated with
// their ETag; write answers and problems are never stored.
const (
	CacheRevalidate = "no-cache"
	CacheNever      = "no-store"
)

// WriteStored sends the answer of a write, never stored by caches; one
// sent again for a repeated Idempotency-Key says so.
func WriteStored(rc *fasthttp.RequestCtx, ans store.Answer) {
	h := &rc.Response.Header
	h.Set(fasthttp.HeaderCacheControl, CacheNever)
	if ans.Replayed {
		h.Set(idempotency.ReplayedHeader, "true")
	}
	if ans.Location != "" {
		h.Set(fasthttp.HeaderLocation, ans.Location)
	}
	if ans.ETag != "" {
		h.Set(fasthttp.HeaderETag, ans.ETag)
	}
	rc.SetStatusCode(ans.Status)
	if ans.ContentType != "" {
		rc.SetContentType(ans.ContentType)
	}
	rc.SetBody(ans.Body)
}

// NotModified answers a GET or HEAD whose If-None-Match names tag with 304
// and reports true; otherwise it sets the read headers (ETag,
// Cache-Control) for the full answer and reports false.
func NotModified(rc *fasthttp.RequestCtx, tag []byte) bool {
	h := &rc.Response.Header
	h.Set(fasthttp.HeaderCacheControl, CacheRevalidate)
	if held, ok := etag.NoneMatch(rc.Request.Header.Peek(fasthttp.HeaderIfNoneMatch), tag); ok {
		h.SetBytesV(fasthttp.HeaderETag, held)
		rc.SetStatusCode(fasthttp.StatusNotModified)
		return true
	}
	h.SetBytesV(fasthttp.HeaderETag, tag)
	return false
}

// ErrPrecondition is the problem of a write whose If-Match names no
// current version of its resource.
var ErrPrecondition = &problem.Error{Status: fasthttp.StatusPreconditionFailed,
	Detail: "If-Match names no current version of this resource (changed or gone since it was read): read it again for its ETag and retry"}

var (
	errKeyInFlight = &problem.Error{Status: fasthttp.StatusConflict, RetryAfter: 1,
		Detail: "a request with this Idempotency-Key is still being handled; retry after the time in Retry-After to get its answer"}
	errKeyReused = &problem.Error{Status: fasthttp.StatusUnprocessableEntity,
		Detail: "this Idempotency-Key was used for a different request (method, path, If-Match or body); use a new key for a new request"}
)

// Problem is the one mapping from an error to the problem answered: a
// *problem.Error keeps its status; the store's errors get theirs (404 for
// a missing row, 503 for a database that is down or slow, 409 for a
// conflicting or in-flight write, 422 for a value the database refused or
// a reused key); anything else is a 500.
func Problem(err error) *problem.Error {
	var pe *problem.Error
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return problem.Unavailable("the database is unavailable or too slow (db.timeout); retry later", err)
	case errors.Is(err, store.ErrKeyInFlight):
		return errKeyInFlight
	case errors.Is(err, store.ErrKeyReused):
		return errKeyReused
	case errors.Is(err, store.ErrNotFound):
		return &problem.Error{Status: fasthttp.StatusNotFound, Detail: "no such resource", Err: err}
	case errors.Is(err, store.ErrConflict):
		return &problem.Error{Status: fasthttp.StatusConflict, Detail: "the change conflicts with what is stored (a unique or referenced value)", Err: err}
	case errors.Is(err, store.ErrInvalid):
		return &problem.Error{Status: fasthttp.StatusUnprocessableEntity, Detail: "the database refused the value", Err: err}
	}
	return &problem.Error{Status: fasthttp.StatusInternalServerError, Detail: "the server could not complete the request", Err: err}
}

// WriteError answers rc with the problem err deserves (see Problem),
// logging the errors that are the server's own.
func WriteError(rc *fasthttp.RequestCtx, log *slog.Logger, err error) {
	pe := Problem(err)
	if pe.Status >= fasthttp.StatusInternalServerError && pe.Status != fasthttp.StatusServiceUnavailable {
		log.ErrorContext(rc, "request failed", "method", string(rc.Method()), "path", string(rc.Path()), "err", err.Error())
	}
	problem.Write(rc, pe)
}

// forbiddenDetail tells the user of a refused form what to do, without
// echoing the headers.
func forbiddenDetail(err error) string {
	switch {
	case errors.Is(err, csrf.ErrCrossOrigin):
		return "cross-origin form posts are refused; add the origin to security.trusted_origins if it is yours"
	case errors.Is(err, csrf.ErrNoCookie):
		return "the CSRF cookie is missing or expired: reload the form (cookies must be enabled) and submit again"
	}
	return "the CSRF token is missing or wrong: reload the form and submit again"
}

// ContentSecurityPolicy is sent with every HTML answer. The pages need no
// script, no inline style and no third party: anything else is refused.
const ContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// setHTMLHeaders puts on an HTML answer the CSP, nosniff and a same-origin
// Referrer-Policy (which also keeps the Referer on our own form posts, the
// CSRF check's fallback for Origin).
func setHTMLHeaders(rc *fasthttp.RequestCtx) {
	h := &rc.Response.Header
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
}
