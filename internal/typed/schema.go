package typed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Schema is the JSON Schema (2020-12) subset the documents use. It
// marshals with encoding/json, members in a fixed order.
type Schema struct {
	Ref                  string          `json:"$ref,omitempty"`
	Type                 Types           `json:"type,omitempty"`
	Format               string          `json:"format,omitempty"`
	ContentEncoding      string          `json:"contentEncoding,omitempty"`
	Description          string          `json:"description,omitempty"`
	Enum                 []any           `json:"enum,omitempty"`
	Const                any             `json:"const,omitempty"`
	Default              json.RawMessage `json:"default,omitempty"`
	Minimum              json.Number     `json:"minimum,omitempty"`
	Maximum              json.Number     `json:"maximum,omitempty"`
	MinLength            *int            `json:"minLength,omitempty"`
	MaxLength            *int            `json:"maxLength,omitempty"`
	Pattern              string          `json:"pattern,omitempty"`
	MinItems             *int            `json:"minItems,omitempty"`
	MaxItems             *int            `json:"maxItems,omitempty"`
	Items                *Schema         `json:"items,omitempty"`
	Properties           Properties      `json:"properties,omitempty"`
	Required             []string        `json:"required,omitempty"`
	AdditionalProperties *Schema         `json:"additionalProperties,omitempty"`
	PropertyNames        *Schema         `json:"propertyNames,omitempty"`
	AnyOf                []*Schema       `json:"anyOf,omitempty"`
	Examples             []any           `json:"examples,omitempty"`
	// False makes this the boolean schema false, which nothing matches
	// (additionalProperties: false).
	False bool `json:"-"`
}

// MarshalJSON writes the schema, or false for the boolean schema.
func (s *Schema) MarshalJSON() ([]byte, error) {
	if s.False {
		return []byte("false"), nil
	}
	type plain Schema // without this method
	return json.Marshal((*plain)(s))
}

// Types is a schema's type: one name, or several (["string", "null"]).
type Types []string

// MarshalJSON writes one type as a string, several as an array.
func (t Types) MarshalJSON() ([]byte, error) {
	if len(t) == 1 {
		return json.Marshal(t[0])
	}
	return json.Marshal([]string(t))
}

// Properties are an object's members, in declaration order.
type Properties []Property

// Property is one member of Properties.
type Property struct {
	Name   string
	Schema *Schema
}

// MarshalJSON writes the properties as one JSON object, in order.
func (ps Properties) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		name, err := json.Marshal(p.Name)
		if err != nil {
			return nil, fmt.Errorf("marshal property name %q: %w", p.Name, err)
		}
		b.Write(name)
		b.WriteByte(':')
		v, err := json.Marshal(p.Schema)
		if err != nil {
			return nil, fmt.Errorf("marshal property %q: %w", p.Name, err)
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ComponentsPrefix is where component schemas are referenced from.
const ComponentsPrefix = "#/components/schemas/"

// Schemas collects the component schemas of one document: every named
// struct type met becomes #/components/schemas/<Name> (the Go type name;
// a second type of the same name from another package gets a numeric
// suffix, and a type whose input and answer schemas differ gets one
// name per use, the later one suffixed Input or Output); other types are
// inline. It is not safe for concurrent use.
type Schemas struct {
	answers *compiler // answer plans, shared so each type is compiled once
	names   map[componentKey]string
	owners  map[string]componentKey
	schemas map[string]*Schema // nil while the schema is being built
	// selfReferenced marks components referenced while being built,
	// which cannot be merged with their twin of the other use.
	selfReferenced map[string]bool
	errs           []error
}

// componentKey is one struct type in one use: answers follow what the
// encoder writes, inputs what the decoder requires.
type componentKey struct {
	t      reflect.Type
	output bool
}

// NewSchemas returns an empty collection.
func NewSchemas() *Schemas {
	return &Schemas{
		answers:        newCompiler(true),
		names:          make(map[componentKey]string),
		owners:         make(map[string]componentKey),
		schemas:        make(map[string]*Schema),
		selfReferenced: make(map[string]bool),
	}
}

// Of returns the schema (often a $ref) of an answer body of type t: what
// github.com/goccy/go-json writes for it, by encoding/json's rules (json
// tags, omitempty, "-", embedded structs inlined, ",string"). Members are
// required unless omitempty; pointers, slices and maps not omitempty may be
// null. A type the encoder cannot write (a channel, a func, a complex
// number) is described as anything, and reported by Err. A type with its
// own MarshalJSON is described as anything.
func (s *Schemas) Of(t reflect.Type) *Schema {
	n, err := s.answers.value(t, &tagSet{values: map[string]string{}}, t.String())
	if err != nil {
		s.errs = append(s.errs, fmt.Errorf("describe %s: %w", t, err))
		return &Schema{}
	}
	return s.node(n, false)
}

// Body returns the schema of an input's JSON body: its body members, with
// the constraints the decoder enforces, and none of its parameters.
func (s *Schemas) Body(in *Input) *Schema {
	return s.object(in.body)
}

// Err reports every type Of could not describe.
func (s *Schemas) Err() error { return errors.Join(s.errs...) }

// Components returns the component schemas by name; it marshals in name
// order.
func (s *Schemas) Components() map[string]*Schema {
	out := make(map[string]*Schema, len(s.schemas))
	for name, sc := range s.schemas {
		if sc != nil {
			out[name] = sc
		}
	}
	return out
}

// object returns a $ref to the component of o, building it the first
// time; anonymous structs are inline.
func (s *Schemas) object(o *object) *Schema {
	if o.typ.Name() == "" {
		return s.objectSchema(o)
	}
	key := componentKey{o.typ, o.output}
	if name, ok := s.names[key]; ok {
		if s.schemas[name] == nil {
			s.selfReferenced[name] = true
		}
		return &Schema{Ref: ComponentsPrefix + name}
	}
	name := s.freeName(key)
	s.names[key] = name
	s.owners[name] = key
	s.schemas[name] = nil
	sc := s.objectSchema(o)
	twin, ok := s.names[componentKey{o.typ, !o.output}]
	if ok && !s.selfReferenced[name] && sameSchema(s.schemas[twin], sc) {
		// Both uses read the same: one component.
		delete(s.schemas, name)
		delete(s.owners, name)
		s.names[key] = twin
		return &Schema{Ref: ComponentsPrefix + twin}
	}
	s.schemas[name] = sc
	return &Schema{Ref: ComponentsPrefix + name}
}

// freeName picks the component name of a type in one use.
func (s *Schemas) freeName(key componentKey) string {
	base := componentName(key.t)
	name := base
	if owner, taken := s.owners[name]; taken && owner.t == key.t {
		if key.output {
			base += "Output"
		} else {
			base += "Input"
		}
		name = base
	}
	for i := 2; ; i++ {
		if _, taken := s.owners[name]; !taken {
			return name
		}
		name = base + strconv.Itoa(i)
	}
}

// componentName is the Go name of t, with generic arguments spelled in
// without their packages: Page[pkg.Note] is PageNote. Component names
// allow only [A-Za-z0-9._-].
func componentName(t reflect.Type) string {
	base, args, generic := strings.Cut(t.Name(), "[")
	name := keepNameChars(base)
	if !generic {
		return name
	}
	for _, arg := range strings.FieldsFunc(args, func(r rune) bool { return strings.ContainsRune("[],* ", r) }) {
		if i := strings.LastIndexByte(arg, '/'); i >= 0 {
			arg = arg[i+1:]
		}
		if i := strings.LastIndexByte(arg, '.'); i >= 0 {
			arg = arg[i+1:]
		}
		if arg = keepNameChars(arg); arg != "" {
			name += strings.ToUpper(arg[:1]) + arg[1:]
		}
	}
	return name
}

func keepNameChars(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return -1
	}, s)
}

func sameSchema(a, b *Schema) bool {
	if a == nil || b == nil {
		return false
	}
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// objectSchema describes the members of o.
func (s *Schemas) objectSchema(o *object) *Schema {
	sc := &Schema{Type: Types{"object"}, AdditionalProperties: &Schema{False: true}}
	for _, m := range o.members {
		ps := s.node(m.node, !m.omitempty)
		if m.doc != "" {
			ps.Description = m.doc
		}
		sc.Properties = append(sc.Properties, Property{Name: m.name, Schema: ps})
	}
	for _, i := range o.required {
		sc.Required = append(sc.Required, o.members[i].name)
	}
	return sc
}

// node describes a value; nullable says whether a nil pointer, slice or
// map is written as (or accepted as) null there.
func (s *Schemas) node(n *node, nullable bool) *Schema {
	var sc *Schema
	switch n.kind {
	case kindPointer:
		sc = s.node(n.elem, false)
	case kindSlice:
		sc = &Schema{Type: Types{"array"}, Items: s.node(n.elem, true)}
		if r := n.rules; r != nil {
			sc.MinItems, sc.MaxItems = intPtr(r.minItems), intPtr(r.maxItems)
		}
	case kindArray:
		sc = &Schema{Type: Types{"array"}, Items: s.node(n.elem, true), MinItems: &n.length, MaxItems: &n.length}
	case kindMap:
		sc = &Schema{Type: Types{"object"}, AdditionalProperties: s.node(n.elem, true)}
		switch n.keyKind {
		case kindInt:
			sc.PropertyNames = &Schema{Pattern: `^-?[0-9]+$`}
		case kindUint:
			sc.PropertyNames = &Schema{Pattern: `^[0-9]+$`}
		}
	case kindStruct:
		sc = s.object(n.obj)
	default:
		return scalarSchema(n)
	}
	if nullable && (n.kind == kindPointer || n.kind == kindSlice || n.kind == kindMap) {
		sc = orNull(sc)
	}
	return sc
}

// orNull lets a schema also match null.
func orNull(sc *Schema) *Schema {
	switch {
	case sc.Ref != "":
		return &Schema{AnyOf: []*Schema{sc, {Type: Types{"null"}}}}
	case len(sc.Type) == 0:
		return sc // anything already
	}
	sc.Type = append(sc.Type, "null")
	if sc.Enum != nil {
		sc.Enum = append(sc.Enum, nil)
	}
	return sc
}

// scalarSchema describes a string, a number, a boolean or a time.
func scalarSchema(n *node) *Schema {
	sc := &Schema{}
	r := n.rules
	switch n.kind {
	case kindString, kindText:
		sc.Type = Types{"string"}
		if r != nil {
			sc.MinLength, sc.MaxLength = intPtr(r.minLength), intPtr(r.maxLength)
			sc.Pattern = r.patternText
			for _, e := range r.enumStrings {
				sc.Enum = append(sc.Enum, e)
			}
		}
	case kindBool:
		sc.Type = Types{"boolean"}
	case kindInt, kindUint:
		sc.Type = Types{"integer"}
		switch {
		case n.kind == kindInt && n.bits <= 32 || n.kind == kindUint && n.bits <= 16:
			sc.Format = "int32"
		case n.kind == kindInt || n.bits <= 32:
			sc.Format = "int64"
		}
		// The bounds of the Go type are said up to 32 bits and for
		// unsigned types: validators do not hold a value to its format, and
		// a number beyond the type is refused (400 in a body, 422 in a
		// query). A 64-bit integer's bounds are JSON's own in practice.
		if n.kind == kindUint || n.bits <= 32 {
			lo, hi := typeBounds(n)
			sc.Minimum, sc.Maximum = json.Number(lo.text), json.Number(hi.text)
		}
		if r != nil {
			for _, e := range r.enumInts {
				sc.Enum = append(sc.Enum, e)
			}
			for _, e := range r.enumUints {
				sc.Enum = append(sc.Enum, e)
			}
		}
	case kindFloat:
		sc.Type = Types{"number"}
		sc.Format = "double"
		if n.bits == 32 {
			sc.Format = "float"
		}
	case kindTime:
		return &Schema{Type: Types{"string"}, Format: "date-time"}
	case kindBytes:
		return &Schema{Type: Types{"string"}, ContentEncoding: "base64"}
	case kindAny:
		return &Schema{}
	}
	if r != nil {
		if r.min.set {
			sc.Minimum = json.Number(r.min.text)
		}
		if r.max.set {
			sc.Maximum = json.Number(r.max.text)
		}
		if r.format != "" {
			sc.Format = r.format
		}
	}
	if n.quoted {
		// ",string" writes the value inside a JSON string.
		return &Schema{Type: Types{"string"}, Description: sc.Description}
	}
	return sc
}

func intPtr(v int) *int {
	if v < 0 {
		return nil
	}
	return &v
}

// schema describes a parameter's value, with its default.
func (p *param) schema() *Schema {
	n := p.scalarNode()
	sc := scalarSchema(n)
	if p.def != nil {
		var raw []byte
		switch n.kind {
		case kindString:
			raw, _ = json.Marshal(p.def.s) // a string always marshals
		case kindBool:
			raw = strconv.AppendBool(nil, p.def.b)
		case kindInt:
			raw = strconv.AppendInt(nil, p.def.i, 10)
		case kindUint:
			raw = strconv.AppendUint(nil, p.def.u, 10)
		case kindFloat:
			raw = strconv.AppendFloat(nil, p.def.f, 'g', -1, n.bits)
		}
		sc.Default = raw
	}
	return sc
}
