package hotpath

import (
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/endpoint"
	"github.com/hotpath/hotpath/internal/problem"
	"github.com/hotpath/hotpath/internal/store"
)

// Error is an error that chooses its answer: an RFC 9457 problem with
// Status and Detail (and Errors for a 422). Return one from a handler, or
// let the mapping choose:
//
//   - an *Error: its status and detail;
//   - FieldErrors: 422 naming every field;
//   - ErrNotFound (a query found no row): 404;
//   - ErrConflict (a unique or foreign-key constraint): 409;
//   - ErrInvalid (a value the database refused): 422;
//   - ErrUnavailable (the database down, busy or slower than db.timeout): 503
//     with Retry-After;
//   - anything else: 500, logged with its text, which the client never sees.
type Error struct {
	// Status is the HTTP status, 400..599.
	Status int
	// Detail says what went wrong and how to fix it; it is sent to the
	// client, so it must not echo input unescaped or reveal secrets.
	Detail string
	// Errors name the invalid fields of a 422.
	Errors FieldErrors
	// RetryAfter, in seconds, is sent as Retry-After when positive.
	RetryAfter int
	// Err is the cause, for logs and errors.Is; never sent.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Detail, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Detail)
}

// Unwrap is the cause.
func (e *Error) Unwrap() error { return e.Err }

// FieldError is one invalid field: its name as the client sent it (a
// body member such as "title" or "items[2].name", or a parameter) and what
// is wrong with it.
type FieldError struct {
	Field  string
	Detail string
}

// FieldErrors are the invalid fields of a request, answered 422.
type FieldErrors []FieldError

func (fe FieldErrors) Error() string {
	if len(fe) == 0 {
		return "invalid fields"
	}
	return fmt.Sprintf("invalid field %s: %s (and %d more)", fe[0].Field, fe[0].Detail, len(fe)-1)
}

// Invalid is a 422 naming field and what is wrong with it.
func Invalid(field, detail string) error { return FieldErrors{{Field: field, Detail: detail}} }

// NotFound is a 404 with detail.
func NotFound(detail string) error { return &Error{Status: fasthttp.StatusNotFound, Detail: detail} }

// Conflict is a 409 with detail: the request conflicts with the state of
// the resource, and repeating it will not help until that state changes.
func Conflict(detail string) error { return &Error{Status: fasthttp.StatusConflict, Detail: detail} }

// BadRequest is a 400 with detail.
func BadRequest(detail string) error {
	return &Error{Status: fasthttp.StatusBadRequest, Detail: detail}
}

// Errors of the database calls, for errors.Is. Each is answered with its
// status when a handler returns it (see Error).
var (
	// ErrNotFound: a query found no row (Row.Scan).
	ErrNotFound = store.ErrNotFound
	// ErrConflict: the change broke a unique or foreign-key constraint.
	ErrConflict = store.ErrConflict
	// ErrInvalid: the database refused a value.
	ErrInvalid = store.ErrInvalid
	// ErrUnavailable: the database is down, busy or slower than db.timeout;
	// the same call may succeed later.
	ErrUnavailable = store.ErrUnavailable
)

// toProblem turns the errors of this package into the machinery's; the
// store's errors and *problem.Error pass as they are.
func toProblem(err error) error {
	var he *Error
	if errors.As(err, &he) {
		return &problem.Error{Status: he.Status, Detail: he.Detail, Errors: problemFields(he.Errors), RetryAfter: he.RetryAfter, Err: err}
	}
	var fe FieldErrors
	if errors.As(err, &fe) {
		return problem.Validation(problemFields(fe))
	}
	return err
}

// asInvalid is the answer to a Validate method's error: 422 unless it
// chose another status.
func asInvalid(err error) error {
	var he *Error
	var fe FieldErrors
	if errors.As(err, &he) || errors.As(err, &fe) {
		return err
	}
	return &Error{Status: fasthttp.StatusUnprocessableEntity, Detail: err.Error(), Err: err}
}

func problemFields(fe FieldErrors) []problem.FieldError {
	if len(fe) == 0 {
		return nil
	}
	out := make([]problem.FieldError, len(fe))
	for i, f := range fe {
		out[i] = problem.FieldError{Field: f.Field, Detail: f.Detail}
	}
	return out
}

// ErrPreconditionFailed is the 412 of a write whose If-Match names no
// current version of its resource (Precondition.Check returns it).
var ErrPreconditionFailed error = endpoint.ErrPrecondition
