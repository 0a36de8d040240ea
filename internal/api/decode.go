package api

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"mime"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/problem"
)

// Request is a JSON request body: decoded strictly by Decode, then
// checked by its own Validate, which names every bad field.
type Request interface {
	Validate() []problem.FieldError
}

// Decode reads the request body into req and validates it. The error, an
// *problem.Error, is 415 for a media type other than application/json,
// 400 for a body that is not one JSON object of req's shape (malformed,
// wrong types, unknown fields, trailing data, empty), and 422 naming every
// field that breaks a constraint. The body is read in place from the
// request's pooled buffer.
func Decode(ctx *fasthttp.RequestCtx, req Request) error {
	if err := checkJSONType(ctx.Request.Header.ContentType()); err != nil {
		return err
	}
	if err := decodeJSON(ctx.PostBody(), req); err != nil {
		return err
	}
	if errs := req.Validate(); len(errs) > 0 {
		return problem.Validation(errs)
	}
	return nil
}

var errMediaType = problem.New(fasthttp.StatusUnsupportedMediaType,
	"the body must be sent as Content-Type: application/json (charset, if given, utf-8)")

// checkJSONType accepts application/json with at most a utf-8 charset.
func checkJSONType(ct []byte) error {
	if len(ct) == 0 {
		return errMediaType
	}
	mt, params, err := mime.ParseMediaType(string(ct))
	if err != nil || mt != "application/json" {
		return errMediaType
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return errMediaType
		}
	}
	return nil
}

// decodeJSON decodes body, which must hold exactly one JSON object, into v.
func decodeJSON(body []byte, v any) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return problem.New(fasthttp.StatusBadRequest, "the body is empty: send a JSON object")
	}
	if trimmed[0] != '{' {
		// A null would decode into nothing and an array into an error that
		// names Go types; say plainly what is expected.
		return problem.New(fasthttp.StatusBadRequest, "the body must be a JSON object")
	}
	if !utf8.Valid(body) {
		// The decoder would turn bad bytes into U+FFFD and store something
		// other than what was sent; JSON text is UTF-8 (RFC 8259).
		return problem.New(fasthttp.StatusBadRequest, "the body is not valid UTF-8")
	}
	if !stdjson.Valid(body) {
		// One complete value and nothing after it. go-json's stream decoder
		// does not report where it stopped reliably, so the standard
		// library's validator judges the framing.
		return problem.New(fasthttp.StatusBadRequest, "the body is not valid JSON, or holds data after the JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &problem.Error{Status: fasthttp.StatusBadRequest, Detail: decodeDetail(err), Err: err}
	}
	return nil
}

// decodeDetail says what is wrong with a body in the client's terms, not
// in terms of Go types.
func decodeDetail(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		// te.Field names the Go field and te.Value quotes the input (a
		// number of any length), so say only what the field wants.
		return "a field holds a value of the wrong JSON type, or a number too large: the field wants " + jsonKind(te.Type.Kind())
	case errors.As(err, &se):
		return "the body is not valid JSON"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// The name helps the client find its mistake; JSON encoding escapes
		// it, and the cut keeps a megabyte-long name from coming back whole.
		return "the body has an unknown field " + cut(strings.TrimPrefix(err.Error(), "json: unknown field "), maxEchoedName)
	}
	return "the body is not a valid JSON object for this resource"
}

// maxEchoedName bounds the unknown field name a problem detail repeats.
const maxEchoedName = 64

// cut shortens s to at most n bytes, on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}
