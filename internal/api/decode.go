package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

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
// One parser, the standard library's, judges and decodes, so no body means
// one thing to the check and another to the decoder. It runs in time linear
// in the body; go-json's stream decoder is quadratic in \u escapes.
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
	if !json.Valid(body) {
		return problem.New(fasthttp.StatusBadRequest, "the body is not valid JSON, or holds data after the JSON object")
	}
	if loneSurrogate(body) {
		// The same U+FFFD substitution, reached through an escape.
		return problem.New(fasthttp.StatusBadRequest, "the body escapes half of a UTF-16 surrogate pair, which is no character")
	}
	if err := checkMembers(body, fieldsOf(reflect.TypeOf(v))); err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &problem.Error{Status: fasthttp.StatusBadRequest, Detail: decodeDetail(err), Err: err}
	}
	return nil
}

// checkMembers walks the top-level object of a valid JSON body and refuses
// a member name that is not exactly one of fields, or one that repeats:
// the decoder would match names case-insensitively and let the last of two
// win, where a proxy or a signature check may have read the first.
func checkMembers(body []byte, fields map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // the opening brace
		return problem.New(fasthttp.StatusBadRequest, "the body is not valid JSON")
	}
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return problem.New(fasthttp.StatusBadRequest, "the body is not valid JSON")
		}
		name, _ := tok.(string)
		switch {
		case !fields[name]:
			return problem.New(fasthttp.StatusBadRequest, "the body has an unknown field "+cut(strconv.Quote(name), maxEchoedName))
		case seen[name]:
			return problem.New(fasthttp.StatusBadRequest, "the body repeats the field "+strconv.Quote(name))
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return problem.New(fasthttp.StatusBadRequest, "the body is not valid JSON")
		}
	}
	return nil
}

// fieldsOf lists the JSON member names of the struct *T points to.
func fieldsOf(t reflect.Type) map[string]bool {
	if cached, ok := fieldCache.Load(t); ok {
		return cached.(map[string]bool)
	}
	st := t.Elem()
	fields := make(map[string]bool, st.NumField())
	for i := range st.NumField() {
		name, _, _ := strings.Cut(st.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			fields[name] = true
		}
	}
	fieldCache.Store(t, fields)
	return fields
}

var fieldCache sync.Map // reflect.Type -> map[string]bool

// loneSurrogate reports whether a valid JSON text escapes a UTF-16
// surrogate (\uD800-\uDFFF) that is not half of a high-low pair.
func loneSurrogate(body []byte) bool {
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' {
			continue
		}
		i++ // the escaped character; valid JSON has one
		if body[i] != 'u' {
			continue
		}
		r := hex4(body[i+1 : i+5])
		i += 4
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true // a low half with no high half before it
		case r >= 0xD800 && r <= 0xDBFF:
			if i+6 >= len(body) || body[i+1] != '\\' || body[i+2] != 'u' {
				return true
			}
			if lo := hex4(body[i+3 : i+7]); lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 6
		}
	}
	return false
}

// hex4 reads four hex digits, already checked by json.Valid.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// decodeDetail says what is wrong with a body in the client's terms, not
// in terms of Go types.
func decodeDetail(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		// te.Field names the Go field and te.Value quotes the input, so say
		// only what the field wants.
		return "a field holds a value of the wrong JSON type, or a number that is not an integer or too large: the field wants " + jsonKind(te.Type.Kind())
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
