// Package openapi builds the OpenAPI 3.1 document of a set of operations
// from the same compiled inputs (internal/typed) that decode their
// requests, so what a route reads and what the document says cannot
// differ. The bytes are deterministic: the same operations in the same
// order give the same document.
package openapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/typed"
)

// Info is the document's info object.
type Info struct{ Title, Version, Description string }

// Param is one parameter of an operation: the typed parameters of its
// input, and the header parameters route options imply (ExtraParams).
type Param = typed.Param

// Operation is one method on one path template.
type Operation struct {
	Method, Path             string // Path: the template with {name} segments, as registered
	ID, Summary, Description string
	Tags                     []string
	Input                    *typed.Input // nil: no parameters and no body
	Status                   int          // the success status: 200, 201, 204...
	Output                   reflect.Type // body type of the success answer; nil: no body
	OutputContentType        string       // default application/json
	// SuccessHeaders are the headers of the success answer, among
	// Location, ETag, Cache-Control, Idempotency-Replayed, RateLimit,
	// RateLimit-Policy, Vary and Content-Encoding.
	SuccessHeaders []string
	ExtraParams    []Param // header parameters implied by route options
	Errors         []int   // the problem statuses the operation can answer, in any order
	NotModified    bool    // 304 (with ETag) for If-None-Match
	Bearer         bool    // needs Authorization: Bearer
}

// The document's objects, marshalled in field order; maps marshal in key
// order, so the bytes are deterministic.
type (
	document struct {
		OpenAPI    string                `json:"openapi"`
		Info       info                  `json:"info"`
		Security   []map[string][]string `json:"security"`
		Paths      map[string]*pathItem  `json:"paths"`
		Components components            `json:"components"`
	}
	info struct {
		Title       string `json:"title"`
		Version     string `json:"version"`
		Description string `json:"description,omitempty"`
	}
	pathItem struct {
		Get     *operation `json:"get,omitempty"`
		Put     *operation `json:"put,omitempty"`
		Post    *operation `json:"post,omitempty"`
		Delete  *operation `json:"delete,omitempty"`
		Options *operation `json:"options,omitempty"`
		Head    *operation `json:"head,omitempty"`
		Patch   *operation `json:"patch,omitempty"`
		Trace   *operation `json:"trace,omitempty"`
	}
	operation struct {
		OperationID string                `json:"operationId,omitempty"`
		Summary     string                `json:"summary,omitempty"`
		Description string                `json:"description,omitempty"`
		Tags        []string              `json:"tags,omitempty"`
		Security    []map[string][]string `json:"security,omitempty"`
		Parameters  []*parameter          `json:"parameters,omitempty"`
		RequestBody *requestBody          `json:"requestBody,omitempty"`
		Responses   map[string]*response  `json:"responses"`
	}
	parameter struct {
		Ref         string        `json:"$ref,omitempty"`
		Name        string        `json:"name,omitempty"`
		In          string        `json:"in,omitempty"`
		Description string        `json:"description,omitempty"`
		Required    bool          `json:"required,omitempty"`
		Schema      *typed.Schema `json:"schema,omitempty"`
	}
	requestBody struct {
		Required bool                  `json:"required"`
		Content  map[string]*mediaType `json:"content"`
	}
	mediaType struct {
		Schema *typed.Schema `json:"schema"`
	}
	response struct {
		Ref         string                `json:"$ref,omitempty"`
		Description string                `json:"description,omitempty"`
		Headers     map[string]*header    `json:"headers,omitempty"`
		Content     map[string]*mediaType `json:"content,omitempty"`
	}
	header struct {
		Ref         string        `json:"$ref,omitempty"`
		Description string        `json:"description,omitempty"`
		Schema      *typed.Schema `json:"schema,omitempty"`
	}
	components struct {
		Schemas         map[string]*typed.Schema   `json:"schemas,omitempty"`
		Responses       map[string]*response       `json:"responses,omitempty"`
		Parameters      map[string]*parameter      `json:"parameters,omitempty"`
		Headers         map[string]*header         `json:"headers,omitempty"`
		SecuritySchemes map[string]*securityScheme `json:"securitySchemes,omitempty"`
	}
	securityScheme struct {
		Type        string `json:"type"`
		Scheme      string `json:"scheme"`
		Description string `json:"description,omitempty"`
	}
)

// builder carries one document while it is built.
type builder struct {
	s      *typed.Schemas
	doc    document
	params map[string]Param // component parameters, to merge identical extras
}

// Build returns the OpenAPI 3.1.0 document, as indented JSON, of ops; s
// collects the component schemas (pass a new one per document). It
// refuses what would make an invalid or misleading document: a path
// parameter missing from the template or the reverse, two operations on
// one method and path or with one ID, an unknown success header, a type
// the schemas cannot describe.
func Build(inf Info, ops []Operation, s *typed.Schemas) ([]byte, error) {
	b := &builder{
		s: s,
		doc: document{
			OpenAPI:  "3.1.0",
			Info:     info(inf),
			Security: []map[string][]string{}, // none unless an operation says so
			Paths:    make(map[string]*pathItem),
			Components: components{
				Responses:  make(map[string]*response),
				Parameters: make(map[string]*parameter),
				Headers:    make(map[string]*header),
			},
		},
		params: make(map[string]Param),
	}
	ids := make(map[string]string)
	for i := range ops {
		op := &ops[i]
		where := op.Method + " " + op.Path
		if op.ID != "" {
			if other, dup := ids[op.ID]; dup {
				return nil, fmt.Errorf("openapi: %s and %s have the same operationId %q", other, where, op.ID)
			}
			ids[op.ID] = where
		}
		o, err := b.operation(op)
		if err != nil {
			return nil, fmt.Errorf("openapi: %s: %w", where, err)
		}
		item := b.doc.Paths[op.Path]
		if item == nil {
			item = &pathItem{}
			b.doc.Paths[op.Path] = item
		}
		slot, err := item.slot(op.Method)
		if err != nil {
			return nil, fmt.Errorf("openapi: %s: %w", where, err)
		}
		if *slot != nil {
			return nil, fmt.Errorf("openapi: %s is described twice", where)
		}
		*slot = o
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	schemas := s.Components()
	if len(b.doc.Components.Responses) > 0 {
		if _, clash := schemas[problemSchemaName]; clash {
			return nil, fmt.Errorf("openapi: a type named %s clashes with the problem schema", problemSchemaName)
		}
		schemas[problemSchemaName] = problemSchema()
	}
	b.doc.Components.Schemas = schemas
	out, err := json.MarshalIndent(&b.doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("openapi: marshal the document: %w", err)
	}
	return append(out, '\n'), nil
}

// slot returns where the operation of method goes in the path item.
func (p *pathItem) slot(method string) (**operation, error) {
	switch strings.ToUpper(method) {
	case fasthttp.MethodGet:
		return &p.Get, nil
	case fasthttp.MethodPut:
		return &p.Put, nil
	case fasthttp.MethodPost:
		return &p.Post, nil
	case fasthttp.MethodDelete:
		return &p.Delete, nil
	case fasthttp.MethodOptions:
		return &p.Options, nil
	case fasthttp.MethodHead:
		return &p.Head, nil
	case fasthttp.MethodPatch:
		return &p.Patch, nil
	case fasthttp.MethodTrace:
		return &p.Trace, nil
	}
	return nil, fmt.Errorf("method %q has no place in an OpenAPI path item", method)
}

func (b *builder) operation(op *Operation) (*operation, error) {
	o := &operation{OperationID: op.ID, Summary: op.Summary, Description: op.Description, Tags: op.Tags, Responses: make(map[string]*response)}
	if op.Bearer {
		o.Security = []map[string][]string{{"bearer": {}}}
		b.doc.Components.SecuritySchemes = map[string]*securityScheme{"bearer": {Type: "http", Scheme: "bearer"}}
	}
	var inPath []string
	if op.Input != nil {
		for _, p := range op.Input.Params() {
			if p.In == "path" {
				inPath = append(inPath, p.Name)
			}
			o.Parameters = append(o.Parameters, inline(p))
		}
		if op.Input.HasBody() {
			o.RequestBody = &requestBody{Required: true, Content: map[string]*mediaType{"application/json": {Schema: b.s.Body(op.Input)}}}
		}
	}
	if err := samePathParams(op.Path, inPath); err != nil {
		return nil, err
	}
	for _, p := range op.ExtraParams {
		param, err := b.extra(p)
		if err != nil {
			return nil, err
		}
		o.Parameters = append(o.Parameters, param)
	}
	success, err := b.success(op)
	if err != nil {
		return nil, err
	}
	o.Responses[strconv.Itoa(op.Status)] = success
	if op.NotModified {
		o.Responses["304"] = b.notModified()
	}
	errs := slices.Clone(op.Errors)
	slices.Sort(errs)
	for _, status := range slices.Compact(errs) {
		if status < 400 || status > 599 {
			return nil, fmt.Errorf("error status %d is not a 4xx or 5xx", status)
		}
		o.Responses[strconv.Itoa(status)] = b.problem(status)
	}
	return o, nil
}

// samePathParams checks the template's {name} segments against the
// input's path parameters.
func samePathParams(path string, params []string) error {
	var names []string
	for rest := path; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return fmt.Errorf("the template %q has an unclosed {", path)
		}
		names = append(names, rest[i+1:i+j])
		rest = rest[i+j+1:]
	}
	for _, n := range names {
		if !slices.Contains(params, n) {
			return fmt.Errorf("the template names {%s}, which the input has no path parameter for", n)
		}
	}
	for _, p := range params {
		if !slices.Contains(names, p) {
			return fmt.Errorf("the input's path parameter %q is not in the template", p)
		}
	}
	return nil
}

func inline(p Param) *parameter {
	return &parameter{Name: p.Name, In: p.In, Description: p.Description, Required: p.Required || p.In == "path", Schema: p.Schema}
}

// extra adds a route option's parameter: once in components.parameters,
// referenced by every operation that has the same one.
func (b *builder) extra(p Param) (*parameter, error) {
	if p.Name == "" || p.In == "" {
		return nil, fmt.Errorf("an extra parameter needs a name and a place: %+v", p)
	}
	key := componentKey(p.Name)
	if have, ok := b.params[key]; ok {
		if !sameParam(have, p) {
			return inline(p), nil // another parameter of that name: keep it apart
		}
		return &parameter{Ref: "#/components/parameters/" + key}, nil
	}
	b.params[key] = p
	b.doc.Components.Parameters[key] = inline(p)
	return &parameter{Ref: "#/components/parameters/" + key}, nil
}

func sameParam(a, b Param) bool {
	ja, errA := json.Marshal(inline(a))
	jb, errB := json.Marshal(inline(b))
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// componentKey spells a header name as a component key: If-None-Match is
// IfNoneMatch.
func componentKey(name string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			return r
		}
		return -1
	}, name)
}

// success describes the success answer.
func (b *builder) success(op *Operation) (*response, error) {
	if op.Status < 100 || op.Status > 399 {
		return nil, fmt.Errorf("success status %d is not 1xx to 3xx", op.Status)
	}
	r := &response{Description: fasthttp.StatusMessage(op.Status)}
	for _, name := range op.SuccessHeaders {
		h, err := b.header(name)
		if err != nil {
			return nil, err
		}
		if r.Headers == nil {
			r.Headers = make(map[string]*header)
		}
		r.Headers[name] = h
	}
	if op.Output != nil {
		if op.Status == fasthttp.StatusNoContent || op.Status == fasthttp.StatusNotModified {
			return nil, fmt.Errorf("status %d has no body, but the operation has an output type", op.Status)
		}
		ct := op.OutputContentType
		if ct == "" {
			ct = "application/json"
		}
		schema := &typed.Schema{Type: typed.Types{"string"}}
		if isJSON(ct) {
			schema = b.s.Of(op.Output)
		}
		r.Content = map[string]*mediaType{ct: {Schema: schema}}
	}
	return r, nil
}

// isJSON reports whether a media type is JSON (application/json, or a
// +json suffix), whose bodies the schemas describe.
func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}
