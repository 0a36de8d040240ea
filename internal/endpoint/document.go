package endpoint

import (
	"reflect"
	"slices"
	"strings"
	"unicode"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/openapi"
	"github.com/hotpath/hotpath/internal/typed"
)

// Operation describes a typed route in the OpenAPI document: what it
// takes (in), answers (status, with a body of type out, nil for none), and
// every status and header its options imply, from the same Spec that runs
// its requests, so the two cannot differ.
func (s *Spec) Operation(in *typed.Input, status int, out reflect.Type) openapi.Operation {
	op := openapi.Operation{
		Method:      s.Method,
		Path:        s.Path,
		ID:          operationID(s.Method, s.Path),
		Summary:     s.Summary,
		Description: s.Description,
		Tags:        s.Tags,
		Input:       in,
		Status:      status,
		Output:      out,
		Bearer:      s.Access == Bearer,
	}
	// Every route may meet a rate limit (each class can be turned on by
	// configuration) and the in-flight cap or a database outage.
	errs := []int{fasthttp.StatusTooManyRequests, fasthttp.StatusServiceUnavailable}
	for _, p := range in.Params() {
		switch p.In {
		case "path":
			errs = append(errs, fasthttp.StatusBadRequest, fasthttp.StatusNotFound)
		default:
			errs = append(errs, fasthttp.StatusUnprocessableEntity)
		}
	}
	if in.HasBody() {
		errs = append(errs, fasthttp.StatusBadRequest, fasthttp.StatusRequestEntityTooLarge,
			fasthttp.StatusUnsupportedMediaType, fasthttp.StatusUnprocessableEntity)
	}
	if s.Access == Bearer {
		errs = append(errs, fasthttp.StatusUnauthorized)
	}
	if s.CSRF {
		errs = append(errs, fasthttp.StatusForbidden, fasthttp.StatusUnsupportedMediaType)
	}
	if s.MaxBody > 0 {
		errs = append(errs, fasthttp.StatusRequestEntityTooLarge)
	}
	if s.Idempotent {
		errs = append(errs, fasthttp.StatusBadRequest, fasthttp.StatusConflict, fasthttp.StatusUnprocessableEntity)
		op.ExtraParams = append(op.ExtraParams, openapi.IdempotencyKeyParam())
		op.SuccessHeaders = append(op.SuccessHeaders, "Idempotency-Replayed")
	}
	if s.IfMatch {
		errs = append(errs, fasthttp.StatusPreconditionFailed)
		op.ExtraParams = append(op.ExtraParams, openapi.IfMatchParam())
	}
	if s.ETag {
		op.SuccessHeaders = append(op.SuccessHeaders, "ETag")
		if s.Safe() {
			op.NotModified = true
			op.ExtraParams = append(op.ExtraParams, openapi.IfNoneMatchParam())
		}
	}
	if !s.Safe() || s.ETag {
		op.SuccessHeaders = append(op.SuccessHeaders, "Cache-Control")
	}
	if status == fasthttp.StatusCreated {
		op.SuccessHeaders = append(op.SuccessHeaders, "Location")
	}
	op.SuccessHeaders = append(op.SuccessHeaders, "RateLimit", "RateLimit-Policy")
	if s.Compressed() {
		op.SuccessHeaders = append(op.SuccessHeaders, "Vary", "Content-Encoding")
	}
	errs = append(errs, s.Problems...)
	slices.Sort(errs)
	op.Errors = slices.Compact(errs)
	return op
}

// operationID names an operation after its method and path:
// GET /v1/notes/{id} is getV1NotesById.
func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, seg := range strings.Split(path, "/") {
		if seg == "" {
			continue
		}
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			b.WriteString("By")
			seg = strings.TrimSuffix(name, "}")
		}
		upper := true
		for _, r := range seg {
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				upper = true
				continue
			}
			if upper {
				r = unicode.ToUpper(r)
				upper = false
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}
