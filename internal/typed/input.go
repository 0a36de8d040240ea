// Package typed compiles the input type of an endpoint, a Go struct, into
// a plan that fills it from a request: path, query and header parameters
// from their struct tags, JSON body members from the rest, refused as
// strictly as RFC 8259 and the declared constraints allow, with the
// problem texts of the hand-written decoders it replaces. The same plans
// describe inputs and answers as JSON Schema (Schemas), so the document
// and the decoder cannot disagree.
//
// Everything type-dependent is resolved by CompileInput, at registration;
// Decode drives a pooled jsontext tokenizer from the plan and allocates
// only what the filled value holds.
package typed

import (
	"fmt"
	"reflect"
)

// Input is the compiled plan of one input type: a struct whose fields are
// path, query and header parameters (tags path:"name", query:"name",
// header:"Name") and JSON body members (every other exported field, named
// as encoding/json names it: the json tag, else the field name; json:"-"
// skips it; embedded structs are inlined).
type Input struct {
	typ    reflect.Type
	ptr    reflect.Type // *typ
	body   *object
	params []*param
	path   []*param
	query  []*param
	header []*param
	public []Param
}

// Param describes one parameter of an input, for the OpenAPI document.
type Param struct {
	Name, In    string // In: "path", "query", "header"
	Required    bool
	Description string // the doc tag
	Schema      *Schema
}

// CompileInput compiles the plan of struct type t. Its errors name the
// type, the field and the tag at fault: an unsupported field type, a tag
// on a type it does not fit, a bad pattern, a minimum above a maximum,
// two members with one name...
func CompileInput(t reflect.Type) (*Input, error) {
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("compile input %v: an input is a struct type", t)
	}
	c := newCompiler(false)
	c.top = t
	body, err := c.structOf(t)
	if err != nil {
		return nil, fmt.Errorf("compile input %s: %w", t, err)
	}
	in := &Input{typ: t, ptr: reflect.PointerTo(t), body: body, params: c.params}
	names := make(map[string]string)
	for _, p := range c.params {
		key := p.in + " " + p.name
		if p.in == "header" {
			key = p.in + " " + canonicalHeader(p.name)
		}
		if other, dup := names[key]; dup {
			return nil, fmt.Errorf("compile input %s: %s and %s are both the %s parameter %q", t, other, p.field, p.in, p.name)
		}
		names[key] = p.field
		switch p.in {
		case "path":
			in.path = append(in.path, p)
		case "query":
			in.query = append(in.query, p)
		case "header":
			in.header = append(in.header, p)
		}
		in.public = append(in.public, Param{Name: p.name, In: p.in, Required: p.required, Description: p.doc, Schema: p.schema()})
	}
	return in, nil
}

// Type returns the struct type the plan was compiled for.
func (in *Input) Type() reflect.Type { return in.typ }

// HasBody reports whether the input has at least one body member.
func (in *Input) HasBody() bool { return len(in.body.members) > 0 }

// Params returns the parameters in declaration order. The slice is the
// plan's own: do not modify it.
func (in *Input) Params() []Param { return in.public }

// canonicalHeader spells a header name as fasthttp does (Content-Type), so
// two tags that differ only in case are seen to be one header.
func canonicalHeader(name string) string {
	b := []byte(name)
	upper := true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		case !upper && 'A' <= c && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
		upper = c == '-'
	}
	return string(b)
}
