package openapi

import (
	"fmt"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/problem"
	"github.com/hotpath/hotpath/internal/typed"
)

// problemSchemaName is the component of every error body.
const problemSchemaName = "Problem"

// headerDoc is one response header hotpath may send: its component key
// and what it means.
type headerDoc struct {
	key         string
	description string
	schema      *typed.Schema
}

func str() *typed.Schema { return &typed.Schema{Type: typed.Types{"string"}} }

// headers are the response headers a document may name.
var headers = map[string]headerDoc{
	"Location": {"Location", "Path of the resource the request created.", str()},
	"ETag": {"ETag", "Strong entity tag of the representation, from stored state. A compressed answer appends its coding (`\"x-gzip\"`); both spellings stand for the same state in If-None-Match and If-Match.",
		str()},
	"Cache-Control": {"CacheControl", "`no-cache` on reads (a cache may keep the answer but must revalidate it with If-None-Match), `no-store` on writes and problems (never stored).",
		str()},
	"Idempotency-Replayed": {"IdempotencyReplayed", "`true` on an answer sent again for a repeated Idempotency-Key: nothing was changed this time. Absent on the first answer.",
		&typed.Schema{Type: typed.Types{"string"}, Const: "true"}},
	"RateLimit": {"RateLimit", "What is left of the limit (draft-ietf-httpapi-ratelimit-headers): `\"<class>\";r=<requests left>;t=<seconds until the bucket is full again>`.",
		str()},
	"RateLimit-Policy": {"RateLimitPolicy", "The limit that applies (draft-ietf-httpapi-ratelimit-headers): `\"<class>\";q=<requests>;w=<seconds>`.",
		str()},
	"Vary": {"Vary", "`Accept-Encoding`: the answer may be compressed, depending on the request's Accept-Encoding.", str()},
	"Content-Encoding": {"ContentEncoding", "`zstd`, `br` or `gzip` when the body was compressed, for a client whose Accept-Encoding allows it. Content-Length counts the compressed bytes.",
		&typed.Schema{Type: typed.Types{"string"}, Enum: []any{"zstd", "br", "gzip"}}},
	"Retry-After":      {"RetryAfter", "Seconds to wait before retrying.", &typed.Schema{Type: typed.Types{"integer"}, Minimum: "0"}},
	"WWW-Authenticate": {"WWWAuthenticate", "`Bearer realm=\"...\"`: the request needs a bearer token.", str()},
	"Allow":            {"Allow", "The methods the path answers.", str()},
}

// header returns a reference to the component of a named header, adding
// the component the first time.
func (b *builder) header(name string) (*header, error) {
	d, ok := headers[name]
	if !ok {
		return nil, fmt.Errorf("no description of the response header %q", name)
	}
	if _, have := b.doc.Components.Headers[d.key]; !have {
		b.doc.Components.Headers[d.key] = &header{Description: d.description, Schema: d.schema}
	}
	return &header{Ref: "#/components/headers/" + d.key}, nil
}

// mustHeader is header for the names this file spells itself.
func (b *builder) mustHeader(name string) *header {
	h, err := b.header(name)
	if err != nil {
		panic("openapi: " + err.Error()) // every name below is in headers
	}
	return h
}

// problemDoc is the shared response of one error status.
type problemDoc struct {
	key         string
	description string
	headers     []string // besides Cache-Control
}

var problems = map[int]problemDoc{
	fasthttp.StatusBadRequest:                  {"BadRequest", "Malformed: a parameter that does not parse, a body that is not one JSON object of the right shape (bad JSON or UTF-8, wrong types, unknown or repeated fields), or a header that is not accepted. `errors[]` names the field where there is one.", nil},
	fasthttp.StatusUnauthorized:                {"Unauthorized", "No bearer token, or one that is not accepted.", []string{"WWW-Authenticate"}},
	fasthttp.StatusForbidden:                   {"Forbidden", "The token is valid but may not do this.", nil},
	fasthttp.StatusNotFound:                    {"NotFound", "No such resource: nothing at this path, or a path parameter that names nothing.", nil},
	fasthttp.StatusMethodNotAllowed:            {"MethodNotAllowed", "The path does not answer this method; Allow lists those it does.", []string{"Allow"}},
	fasthttp.StatusConflict:                    {"Conflict", "The request conflicts with the current state, or one with the same Idempotency-Key is still being handled: retry after Retry-After seconds to get its answer.", []string{"Retry-After"}},
	fasthttp.StatusPreconditionFailed:          {"PreconditionFailed", "If-Match names no current version of the resource (changed or gone since it was read). Nothing was changed: read it again for its ETag.", nil},
	fasthttp.StatusRequestEntityTooLarge:       {"TooLarge", "The body is larger than the server accepts.", nil},
	fasthttp.StatusUnsupportedMediaType:        {"UnsupportedMediaType", "Content-Type is not application/json (charset, if given, utf-8).", nil},
	fasthttp.StatusUnprocessableEntity:         {"Invalid", "Fields that break a constraint, every one named in `errors[]`; or an Idempotency-Key already used for a different request (then without `errors[]`).", nil},
	fasthttp.StatusPreconditionRequired:        {"PreconditionRequired", "The write needs an If-Match precondition.", nil},
	fasthttp.StatusTooManyRequests:             {"TooManyRequests", "The client is over its rate limit. Nothing was changed; retry after Retry-After seconds.", []string{"Retry-After", "RateLimit", "RateLimit-Policy"}},
	fasthttp.StatusInternalServerError:         {"InternalError", "The server could not complete the request.", nil},
	fasthttp.StatusServiceUnavailable:          {"Unavailable", "The server is overloaded, or a dependency is unreachable or too slow; retry after Retry-After seconds.", []string{"Retry-After"}},
	fasthttp.StatusGatewayTimeout:              {"GatewayTimeout", "An upstream did not answer in time.", nil},
	fasthttp.StatusBadGateway:                  {"BadGateway", "An upstream answered with something unusable.", nil},
	fasthttp.StatusRequestTimeout:              {"RequestTimeout", "The request was not received in time.", nil},
	fasthttp.StatusRequestHeaderFieldsTooLarge: {"HeadersTooLarge", "The request's headers are larger than the server accepts.", nil},
}

// problem returns a reference to the shared response of an error status,
// adding it the first time.
func (b *builder) problem(status int) *response {
	d, ok := problems[status]
	if !ok {
		d = problemDoc{key: "Status" + strconv.Itoa(status), description: fasthttp.StatusMessage(status) + "."}
	}
	if _, have := b.doc.Components.Responses[d.key]; !have {
		hs := map[string]*header{"Cache-Control": b.mustHeader("Cache-Control")}
		for _, name := range d.headers {
			hs[name] = b.mustHeader(name)
		}
		b.doc.Components.Responses[d.key] = &response{
			Description: d.description,
			Headers:     hs,
			Content:     map[string]*mediaType{problem.ContentType: {Schema: &typed.Schema{Ref: typed.ComponentsPrefix + problemSchemaName}}},
		}
	}
	return &response{Ref: "#/components/responses/" + d.key}
}

// notModified returns a reference to the shared 304.
func (b *builder) notModified() *response {
	const key = "NotModified"
	if _, have := b.doc.Components.Responses[key]; !have {
		b.doc.Components.Responses[key] = &response{
			Description: "The client's copy is current (If-None-Match). No body.",
			Headers:     map[string]*header{"ETag": b.mustHeader("ETag"), "Cache-Control": b.mustHeader("Cache-Control")},
		}
	}
	return &response{Ref: "#/components/responses/" + key}
}

// problemSchema describes problem.Details, what problem.Write sends.
func problemSchema() *typed.Schema {
	s := func(t string) *typed.Schema { return &typed.Schema{Type: typed.Types{t}} }
	fieldError := &typed.Schema{
		Type:                 typed.Types{"object"},
		Properties:           typed.Properties{{Name: "field", Schema: s("string")}, {Name: "detail", Schema: s("string")}},
		Required:             []string{"field", "detail"},
		AdditionalProperties: &typed.Schema{False: true},
	}
	return &typed.Schema{
		Type:        typed.Types{"object"},
		Description: "An RFC 9457 problem: `type` is about:blank, `title` the status's reason phrase, `detail` what went wrong and how to fix it, `errors` the fields at fault.",
		Properties: typed.Properties{
			{Name: "type", Schema: s("string")},
			{Name: "title", Schema: s("string")},
			{Name: "status", Schema: s("integer")},
			{Name: "detail", Schema: s("string")},
			{Name: "errors", Schema: &typed.Schema{Type: typed.Types{"array"}, Items: fieldError}},
		},
		Required:             []string{"type", "title", "status"},
		AdditionalProperties: &typed.Schema{False: true},
	}
}
