// Package problem writes every error answer of the application listener as
// RFC 9457 application/problem+json. It is the one place where an error turns
// into an HTTP response.
package problem

import (
	"errors"
	"strconv"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

// ContentType is the media type of every error body.
const ContentType = "application/problem+json"

// FieldError names one invalid input field and what is wrong with it.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// Details is the body of a problem answer.
type Details struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
}

// Error is an error that knows the HTTP status it should be answered with.
// Handlers return or pass it to Write; anything else becomes a 500.
type Error struct {
	Status int
	Detail string
	Errors []FieldError
	// RetryAfter, in seconds, is sent as Retry-After when positive.
	RetryAfter int
	// Allow lists the methods for a 405.
	Allow string
	// Err is the cause, kept for logs and errors.Is; never shown to clients.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return strconv.Itoa(e.Status) + " " + e.Detail + ": " + e.Err.Error()
	}
	return strconv.Itoa(e.Status) + " " + e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error with a status and a detail for the client.
func New(status int, detail string) *Error {
	return &Error{Status: status, Detail: detail}
}

// Validation returns a 422 naming every bad field.
func Validation(errs []FieldError) *Error {
	return &Error{Status: fasthttp.StatusUnprocessableEntity, Detail: "the request has invalid fields", Errors: errs}
}

// Unavailable returns a 503 asking the client to retry after a second.
func Unavailable(detail string, cause error) *Error {
	return &Error{Status: fasthttp.StatusServiceUnavailable, Detail: detail, RetryAfter: 1, Err: cause}
}

// Write answers the request with err as a problem. An *Error keeps its
// status; any other error is a 500 whose cause stays out of the body.
func Write(ctx *fasthttp.RequestCtx, err error) {
	var pe *Error
	if !errors.As(err, &pe) {
		pe = &Error{Status: fasthttp.StatusInternalServerError, Detail: "the server could not complete the request", Err: err}
	}
	if pe.RetryAfter > 0 {
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(pe.RetryAfter))
	}
	if pe.Allow != "" {
		ctx.Response.Header.Set("Allow", pe.Allow)
	}
	if pe.Status == fasthttp.StatusUnauthorized {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="hotpath"`)
	}
	writeBody(ctx, pe.Status, pe.Detail, pe.Errors)
}

// WriteStatus answers with a bare problem for status.
func WriteStatus(ctx *fasthttp.RequestCtx, status int, detail string) {
	writeBody(ctx, status, detail, nil)
}

func writeBody(ctx *fasthttp.RequestCtx, status int, detail string, errs []FieldError) {
	body, err := encode(status, detail, errs)
	if err != nil {
		// Details holds only strings and ints, which always encode.
		body = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500}`)
		status = fasthttp.StatusInternalServerError
	}
	WriteStatic(ctx, status, body)
}

// encode renders one problem body.
func encode(status int, detail string, errs []FieldError) ([]byte, error) {
	return json.Marshal(Details{
		Type:   "about:blank",
		Title:  fasthttp.StatusMessage(status),
		Status: status,
		Detail: detail,
		Errors: errs,
	})
}

// Static encodes a problem once, for answers sent so often that they must
// not allocate (the overload 503); send it with WriteStatic.
func Static(status int, detail string) []byte {
	body, err := encode(status, detail, nil)
	if err != nil {
		panic("problem: encode static problem: " + err.Error()) // strings and ints always encode
	}
	return body
}

// WriteStatic answers with a body made by Static. It copies body into the
// response's pooled buffer, so it allocates nothing once warm. A problem
// describes one request's failure, so caches must not store it.
func WriteStatic(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.SetStatusCode(status)
	ctx.SetContentType(ContentType)
	ctx.SetBody(body)
}
