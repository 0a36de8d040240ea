package check

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/openapi"
	"github.com/hotpath/hotpath/internal/problem"
	"github.com/hotpath/hotpath/internal/typed"
)

type noteID struct {
	ID int64 `path:"id" minimum:"1" doc:"The note's id."`
}

type newNote struct {
	Text   string            `json:"text" minLength:"1" maxLength:"20" doc:"What the note says."`
	Tags   []string          `json:"tags,omitempty" maxItems:"3" pattern:"^[a-z]+$"`
	Color  *string           `json:"color" enum:"red,blue"`
	Extra  map[string]int32  `json:"extra,omitempty" minimum:"0"`
	Author *author           `json:"author,omitempty"`
	Lines  []line            `json:"lines,omitempty"`
	Flags  map[string]string `json:"flags"`
}

type author struct {
	Name string `json:"name" minLength:"1"`
}

type line struct {
	Qty uint8 `json:"qty" minimum:"1"`
}

type listNotes struct {
	Limit int    `query:"limit" minimum:"1" maximum:"100" default:"20" doc:"Page size."`
	Tag   string `query:"tag" pattern:"^[a-z]+$"`
}

type note struct {
	ID     int64    `json:"id"`
	Text   string   `json:"text"`
	Tags   []string `json:"tags"`
	Author *author  `json:"author,omitempty"`
}

type notePage struct {
	Items []note  `json:"items"`
	Next  *string `json:"next"`
}

func compile[T any](t *testing.T) *typed.Input {
	t.Helper()
	in, err := typed.CompileInput(reflect.TypeFor[T]())
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// operations covers every option of openapi.Operation.
func operations(t *testing.T) []openapi.Operation {
	return []openapi.Operation{
		{Method: "GET", Path: "/v1/notes", ID: "listNotes", Summary: "List notes", Tags: []string{"notes"},
			Input: compile[listNotes](t), Status: 200, Output: reflect.TypeFor[notePage](),
			SuccessHeaders: []string{"ETag", "Cache-Control", "Vary", "Content-Encoding", "RateLimit", "RateLimit-Policy"},
			ExtraParams:    []openapi.Param{openapi.IfNoneMatchParam()}, Errors: []int{503, 422, 429}, NotModified: true},
		{Method: "POST", Path: "/v1/notes", ID: "createNote", Summary: "Add a note", Description: "Stored as sent.", Tags: []string{"notes"},
			Input: compile[newNote](t), Status: 201, Output: reflect.TypeFor[note](),
			SuccessHeaders: []string{"Location", "ETag", "Cache-Control", "Idempotency-Replayed"},
			ExtraParams:    []openapi.Param{openapi.IdempotencyKeyParam()}, Errors: []int{400, 401, 409, 413, 415, 422, 429, 503}, Bearer: true},
		{Method: "GET", Path: "/v1/notes/{id}", ID: "getNote", Summary: "Read one note",
			Input: compile[noteID](t), Status: 200, Output: reflect.TypeFor[note](),
			SuccessHeaders: []string{"ETag", "Cache-Control"}, ExtraParams: []openapi.Param{openapi.IfNoneMatchParam()},
			Errors: []int{400, 404, 405}, NotModified: true},
		{Method: "DELETE", Path: "/v1/notes/{id}", ID: "deleteNote", Summary: "Delete a note",
			Input: compile[noteID](t), Status: 204, SuccessHeaders: []string{"Cache-Control"},
			ExtraParams: []openapi.Param{openapi.IfMatchParam(), openapi.IdempotencyKeyParam()}, Errors: []int{401, 404, 412, 500}, Bearer: true},
		{Method: "GET", Path: "/v1/notes.html", ID: "notesPage", Summary: "The notes as a page",
			Status: 200, Output: reflect.TypeFor[string](), OutputContentType: "text/html; charset=utf-8"},
	}
}

func build(t *testing.T) ([]byte, validator.Validator) {
	t.Helper()
	raw, err := openapi.Build(openapi.Info{Title: "notes", Version: "1.0.0", Description: "Notes as JSON."}, operations(t), typed.NewSchemas())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		t.Fatalf("libopenapi cannot read the document: %v", err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("libopenapi-validator cannot take the document: %v", errors.Join(errs...))
	}
	return raw, v
}

func TestBuiltDocumentIsValidOpenAPI31(t *testing.T) {
	raw, v := build(t)
	ok, errs := v.ValidateDocument()
	if !ok {
		for _, e := range errs {
			t.Errorf("document: %s: %s (%v)", e.Message, e.Reason, e.SchemaValidationErrors)
		}
		t.Logf("%s", raw)
	}
}

// TestRequestsAgreeWithTheDecoder sends hand-made requests through the
// validator and through typed's decoder, which must judge them alike.
func TestRequestsAgreeWithTheDecoder(t *testing.T) {
	_, v := build(t)
	create := compile[newNote](t)
	const key = `"8e03978e-40d5-43e8-bc93-6894a57f9324"`
	cases := []struct {
		name, body, key string
		valid           bool
	}{
		{"the least note", `{"text":"hi","color":null,"flags":null}`, key, true},
		{"every member", `{"text":"hi","tags":["a","b"],"color":"red","extra":{"x":1},"author":{"name":"n"},"lines":[{"qty":1}],"flags":{"k":"v"}}`, key, true},
		{"a bare key", `{"text":"hi","color":"blue","flags":{}}`, "abc-123", true},
		{"an unknown member", `{"text":"hi","color":null,"flags":null,"colour":"red"}`, key, false},
		{"an unknown nested member", `{"text":"hi","color":null,"flags":null,"author":{"name":"n","age":3}}`, key, false},
		{"a too long text", `{"text":"` + strings.Repeat("é", 21) + `","color":null,"flags":null}`, key, false},
		{"an empty text", `{"text":"","color":null,"flags":null}`, key, false},
		{"a missing text", `{"color":null,"flags":null}`, key, false},
		{"a missing color, a pointer", `{"text":"hi","flags":null}`, key, true},
		{"a missing flags, a map", `{"text":"hi","color":null}`, key, false},
		{"a color not in the enum", `{"text":"hi","color":"green","flags":null}`, key, false},
		{"a tag against the pattern", `{"text":"hi","color":null,"flags":null,"tags":["A"]}`, key, false},
		{"too many tags", `{"text":"hi","color":null,"flags":null,"tags":["a","b","c","d"]}`, key, false},
		{"a negative extra", `{"text":"hi","color":null,"flags":null,"extra":{"x":-1}}`, key, false},
		{"a qty of 0", `{"text":"hi","color":null,"flags":null,"lines":[{"qty":0}]}`, key, false},
		{"a qty past uint8", `{"text":"hi","color":null,"flags":null,"lines":[{"qty":256}]}`, key, false},
		{"a text that is a number", `{"text":5,"color":null,"flags":null}`, key, false},
	}
	for _, c := range cases {
		req := httptest.NewRequest("POST", "/v1/notes", strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer t")
		req.Header.Set("Idempotency-Key", c.key)
		ok, errs := v.ValidateHttpRequest(req)
		if ok != c.valid {
			t.Errorf("%s: the validator says valid %v, want %v: %v", c.name, ok, c.valid, messages(errs))
		}
		var rc fasthttp.RequestCtx
		rc.Request.Header.SetMethod("POST")
		rc.Request.Header.SetContentType("application/json")
		rc.Request.SetBodyString(c.body)
		var n newNote
		if err := create.Decode(&rc, &n); (err == nil) != c.valid {
			t.Errorf("%s: typed.Decode says %v, the schema says valid %v", c.name, err, c.valid)
		}
	}
}

func TestRequestsWithAWrongKeyAreRefused(t *testing.T) {
	_, v := build(t)
	for _, k := range []string{`"abc`, `abc"`, `""`, "a b", strings.Repeat("k", 256), "é"} {
		req := httptest.NewRequest("DELETE", "/v1/notes/7", nil)
		req.Header.Set("Authorization", "Bearer t")
		req.Header.Set("Idempotency-Key", k)
		if ok, _ := v.ValidateHttpRequest(req); ok {
			t.Errorf("Idempotency-Key %.20q: the document accepts it", k)
		}
	}
	req := httptest.NewRequest("DELETE", "/v1/notes/7", nil)
	req.Header.Set("Authorization", "Bearer t")
	req.Header.Set("Idempotency-Key", `"k-1"`)
	if ok, errs := v.ValidateHttpRequest(req); !ok {
		t.Errorf("a good key is refused: %v", messages(errs))
	}
}

func TestQueryParametersFollowTheirSchema(t *testing.T) {
	_, v := build(t)
	for target, valid := range map[string]bool{
		"/v1/notes":                   true,
		"/v1/notes?limit=5&tag=a":     true,
		"/v1/notes?limit=0":           false,
		"/v1/notes?limit=101":         false,
		"/v1/notes?limit=x":           false,
		"/v1/notes?tag=A":             false,
		"/v1/notes/abc":               false,
		"/v1/notes/0":                 false,
		"/v1/notes/12":                true,
		"/v1/notes.html":              true,
		"/v1/notes?limit=100&tag=abc": true,
	} {
		req := httptest.NewRequest("GET", target, nil)
		if ok, errs := v.ValidateHttpRequest(req); ok != valid {
			t.Errorf("GET %s: valid %v, want %v: %v", target, ok, valid, messages(errs))
		}
	}
}

// TestAnswersFollowTheDocument encodes answers as the server does and
// validates them, and a few it must refuse.
func TestAnswersFollowTheDocument(t *testing.T) {
	_, v := build(t)
	next := "/v1/notes?after=2"
	problemBody := func(status int, errs []problem.FieldError) []byte {
		var rc fasthttp.RequestCtx
		problem.Write(&rc, &problem.Error{Status: status, Detail: "d", Errors: errs})
		return rc.Response.Body()
	}
	cases := []struct {
		name, method, target string
		status               int
		contentType          string
		body                 []byte
		headers              map[string]string
		valid                bool
	}{
		{"a note", "GET", "/v1/notes/1", 200, "application/json", encode(t, note{ID: 1, Text: "t", Tags: []string{"a"}}), nil, true},
		{"a note with null tags", "GET", "/v1/notes/1", 200, "application/json", encode(t, note{ID: 1, Text: "t"}), nil, true},
		{"a note with an author", "GET", "/v1/notes/1", 200, "application/json", encode(t, note{ID: 1, Author: &author{Name: "n"}}), nil, true},
		{"a page", "GET", "/v1/notes", 200, "application/json", encode(t, notePage{Items: []note{{ID: 1}}, Next: &next}), nil, true},
		{"the last page", "GET", "/v1/notes", 200, "application/json", encode(t, notePage{Items: []note{}}), nil, true},
		{"a 404 problem", "GET", "/v1/notes/1", 404, problem.ContentType, problemBody(404, nil), nil, true},
		{"a 422 problem", "GET", "/v1/notes", 422, problem.ContentType, problemBody(422, []problem.FieldError{{Field: "limit", Detail: "must be an integer from 1 to 100"}}), nil, true},
		{"a created note", "POST", "/v1/notes", 201, "application/json", encode(t, note{ID: 2, Text: "t"}), map[string]string{"Location": "/v1/notes/2"}, true},
		{"a note without its text", "GET", "/v1/notes/1", 200, "application/json", []byte(`{"id":1,"tags":null}`), nil, false},
		{"a note with a member more", "GET", "/v1/notes/1", 200, "application/json", []byte(`{"id":1,"text":"t","tags":null,"x":1}`), nil, false},
		{"a problem with a member more", "GET", "/v1/notes/1", 404, problem.ContentType, []byte(`{"type":"about:blank","title":"Not Found","status":404,"x":1}`), nil, false},
		{"a status not described", "GET", "/v1/notes/1", 418, problem.ContentType, problemBody(418, nil), nil, false},
	}
	for _, c := range cases {
		req := httptest.NewRequest(c.method, c.target, nil)
		if c.method == "POST" {
			req = httptest.NewRequest(c.method, c.target, strings.NewReader(`{"text":"t","color":null,"flags":null}`))
			req.Header.Set("Content-Type", "application/json")
		}
		resp := &http.Response{StatusCode: c.status, Header: http.Header{"Content-Type": {c.contentType}}, Body: io.NopCloser(bytes.NewReader(c.body)), Request: req}
		for k, val := range c.headers {
			resp.Header.Set(k, val)
		}
		if ok, errs := v.ValidateHttpResponse(req, resp); ok != c.valid {
			t.Errorf("%s (%s): valid %v, want %v: %v", c.name, c.body, ok, c.valid, messages(errs))
		}
	}
}

// encode writes an answer as the server does, with go-json.
func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := gojson(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func messages(errs []*validatorError) string {
	var out []string
	for _, e := range errs {
		s := e.Message
		if e.Reason != "" {
			s += ": " + e.Reason
		}
		for _, se := range e.SchemaValidationErrors {
			s += " [" + se.KeywordLocation + " " + se.FieldPath + ": " + se.Reason + "]"
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// TestValidatorRefusesABrokenDocument shows the document check can fail:
// the built document with its operations' responses renamed is refused.
func TestValidatorRefusesABrokenDocument(t *testing.T) {
	raw, _ := build(t)
	broken := bytes.ReplaceAll(raw, []byte(`"responses": {`+"\n          \"200\""), []byte(`"responzes": {`+"\n          \"200\""))
	if bytes.Equal(broken, raw) {
		t.Fatal("the document has no operation responses to break")
	}
	doc, err := libopenapi.NewDocument(broken)
	if err != nil {
		return // refused already
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return
	}
	if ok, _ := v.ValidateDocument(); ok {
		t.Error("a document whose operations have no responses passes")
	}
}
