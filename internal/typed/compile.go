package typed

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"
)

// kind is what a node decodes or describes.
type kind uint8

const (
	kindString kind = iota + 1
	kindBool
	kindInt
	kindUint
	kindFloat
	kindTime    // time.Time: an RFC 3339 string
	kindPointer // elem; null is nil
	kindSlice   // elem; null is nil
	kindMap     // string keys, elem values; null is nil
	kindStruct  // obj

	// Only in answers, which the JSON encoder writes from any type.
	kindAny   // an interface or a json.Marshaler: anything
	kindBytes // []byte: a base64 string
	kindArray // a Go array: elem, length items
	kindText  // an encoding.TextMarshaler: a string
)

// node is the compiled plan of one value: how to decode it and what its
// schema says. Scalar nodes carry the rules of the field they belong to,
// so nodes are made per field; only struct objects are shared by type.
type node struct {
	kind   kind
	typ    reflect.Type
	bits   int // of ints, uints and floats
	elem   *node
	obj    *object
	rules  *rules // nil: no constraint
	length int    // of kindArray
	quoted bool   // answers: the ",string" option writes the number as a string
	// keyKind, of answer maps, is the kind of their keys (ints are
	// written as decimal strings).
	keyKind kind
	// pool holds per-request scratch of input slices and maps.
	pool *sync.Pool
}

// object is the plan of one struct type: its JSON members in order.
type object struct {
	typ      reflect.Type
	members  []member
	index    map[string]int // member by name, for wide structs
	required []int          // members that must be present
	output   bool
}

// member is one JSON member of an object.
type member struct {
	name      string
	offset    uintptr // from the start of the struct, through embedded structs
	node      *node
	required  bool
	omitempty bool
	doc       string
	// field names the Go field, for compile errors.
	field string
}

// linearLookup is the widest object whose members are found by comparing
// names one by one, which beats a map lookup for short lists.
const linearLookup = 8

// lookup returns the index of the member called name, -1 when none is.
func (o *object) lookup(name []byte) int {
	if o.index != nil {
		if i, ok := o.index[string(name)]; ok {
			return i
		}
		return -1
	}
	for i := range o.members {
		if o.members[i].name == string(name) {
			return i
		}
	}
	return -1
}

var (
	timeType          = reflect.TypeFor[time.Time]()
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	unmarshalerType   = reflect.TypeFor[json.Unmarshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshaler   = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// compiler builds the plans of one input type, or the answer types of one
// set of schemas. In answers (output) it follows what the JSON encoder
// writes; in inputs it refuses what the decoder does not support.
type compiler struct {
	output  bool
	objects map[reflect.Type]*object
	// top is the input struct, the only one whose fields may be
	// parameters; params collects them in declaration order.
	top    reflect.Type
	params []*param
}

func newCompiler(output bool) *compiler {
	return &compiler{output: output, objects: make(map[reflect.Type]*object)}
}

// structOf compiles the object of struct type t, once per type.
func (c *compiler) structOf(t reflect.Type) (*object, error) {
	if o, ok := c.objects[t]; ok {
		return o, nil
	}
	o := &object{typ: t, output: c.output}
	c.objects[t] = o // before the members: a type may contain itself
	fields, err := c.fields(t)
	if err != nil {
		delete(c.objects, t)
		return nil, err
	}
	for _, f := range fields {
		n, err := c.field(f)
		if err != nil {
			delete(c.objects, t)
			return nil, err
		}
		if n == nil {
			continue // a parameter
		}
		m := member{name: f.name, offset: f.offset, node: n, omitempty: f.omitempty, doc: f.tag.Get("doc"), field: f.where}
		m.required, err = c.required(f)
		if err != nil {
			delete(c.objects, t)
			return nil, err
		}
		if m.required {
			o.required = append(o.required, len(o.members))
		}
		o.members = append(o.members, m)
	}
	if len(o.members) > linearLookup {
		o.index = make(map[string]int, len(o.members))
		for i, m := range o.members {
			o.index[m.name] = i
		}
	}
	return o, nil
}

// required applies the rules of presence: in an input, a body member is
// required unless it is omitempty, a pointer or says required:"false"; in
// an answer, the encoder writes every member that is not omitempty.
func (c *compiler) required(f structField) (bool, error) {
	if c.output {
		if f.viaPointer {
			return false, nil
		}
		if !f.omitempty {
			return true, nil
		}
		// The encoder never omits a struct value, empty or not, nor
		// (go-json, unlike encoding/json) an array.
		k := f.typ.Kind()
		return k == reflect.Struct || k == reflect.Array, nil
	}
	switch v := f.tag.Get("required"); v {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "":
		return !f.omitempty && f.typ.Kind() != reflect.Pointer, nil
	default:
		return false, fmt.Errorf("%s: required:%q: want true or false", f.where, v)
	}
}

// field compiles one member's value, or, for a parameter of the input
// struct, records the parameter and returns nil.
func (c *compiler) field(f structField) (*node, error) {
	if in, name := paramTag(f.tag); in != "" && !c.output {
		if !f.top {
			return nil, fmt.Errorf("%s: %s:%q: parameters are fields of the input struct itself, not of a nested one", f.where, in, name)
		}
		p, err := c.param(f, in, name)
		if err != nil {
			return nil, err
		}
		c.params = append(c.params, p)
		return nil, nil
	}
	if !c.output {
		if d := f.tag.Get("default"); d != "" {
			return nil, fmt.Errorf("%s: default:%q: defaults apply to query and header parameters, not to body members", f.where, d)
		}
		if f.quoted {
			return nil, fmt.Errorf("%s: the json \",string\" option is not supported in inputs", f.where)
		}
	}
	tags, err := readTags(f.tag, f.where)
	if err != nil {
		return nil, err
	}
	n, err := c.value(f.typ, tags, f.where)
	if err != nil {
		return nil, err
	}
	if err := tags.allUsed(f.typ); err != nil {
		return nil, err
	}
	if c.output && f.quoted {
		markQuoted(n)
	}
	return n, nil
}

// markQuoted applies ",string", which encoding/json honours only on
// strings, numbers and booleans (and pointers to them).
func markQuoted(n *node) {
	if n.kind == kindPointer {
		n = n.elem
	}
	switch n.kind {
	case kindString, kindBool, kindInt, kindUint, kindFloat:
		n.quoted = true
	}
}

// value compiles the plan of a value of type t; the constraint tags go to
// the first node down t (through pointers, slices and map values) that
// they fit.
func (c *compiler) value(t reflect.Type, tags *tagSet, where string) (*node, error) {
	n := &node{typ: t}
	switch {
	case t == timeType:
		n.kind = kindTime
		if f, ok := tags.take("format"); ok && f != "date-time" {
			return nil, fmt.Errorf("%s: format:%q: a time.Time is always date-time", where, f)
		}
		return n, nil
	case c.output && t.Kind() != reflect.Pointer && (t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType) && t.Kind() != reflect.Interface):
		// Its own MarshalJSON decides what is written.
		n.kind = kindAny
		return n, nil
	case c.output && t.Kind() != reflect.Pointer && t.Implements(textMarshalerType):
		n.kind = kindText
		return n, tags.scalar(n, where)
	case !c.output && (reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshaler)):
		return nil, fmt.Errorf("%s: %s has its own UnmarshalJSON or UnmarshalText, which inputs do not call: use a plain type", where, t)
	}
	switch t.Kind() {
	case reflect.String:
		n.kind = kindString
	case reflect.Bool:
		n.kind = kindBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n.kind, n.bits = kindInt, t.Bits()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n.kind, n.bits = kindUint, t.Bits()
	case reflect.Float32, reflect.Float64:
		n.kind, n.bits = kindFloat, t.Bits()
	case reflect.Pointer:
		if !c.output && t.Elem().Kind() == reflect.Pointer {
			return nil, fmt.Errorf("%s: %s: a pointer to a pointer is not supported", where, t)
		}
		elem, err := c.value(t.Elem(), tags, where)
		if err != nil {
			return nil, err
		}
		n.kind, n.elem = kindPointer, elem
		return n, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 && !t.Elem().Implements(marshalerType) && !reflect.PointerTo(t.Elem()).Implements(marshalerType) {
			if !c.output {
				return nil, fmt.Errorf("%s: %s: encoding/json reads bytes as base64, which inputs do not: use a string", where, t)
			}
			n.kind = kindBytes
			return n, tags.scalar(n, where)
		}
		n.kind = kindSlice
		if err := tags.items(n, where); err != nil {
			return nil, err
		}
		elem, err := c.value(t.Elem(), tags, where)
		if err != nil {
			return nil, err
		}
		n.elem = elem
		if !c.output {
			n.pool = &sync.Pool{New: func() any { return newSliceScratch(t) }}
		}
		return n, nil
	case reflect.Array:
		if !c.output {
			return nil, fmt.Errorf("%s: %s: arrays are not supported in inputs: use a slice with maxItems", where, t)
		}
		elem, err := c.value(t.Elem(), tags, where)
		if err != nil {
			return nil, err
		}
		n.kind, n.elem, n.length = kindArray, elem, t.Len()
		return n, nil
	case reflect.Map:
		k, err := c.mapKey(t, where)
		if err != nil {
			return nil, err
		}
		elem, err := c.value(t.Elem(), tags, where)
		if err != nil {
			return nil, err
		}
		n.kind, n.elem, n.keyKind = kindMap, elem, k
		if !c.output {
			n.pool = &sync.Pool{New: func() any { return newMapScratch(t) }}
		}
		return n, nil
	case reflect.Struct:
		o, err := c.structOf(t)
		if err != nil {
			return nil, err
		}
		n.kind, n.obj = kindStruct, o
		return n, nil
	case reflect.Interface:
		if c.output {
			n.kind = kindAny
			return n, nil
		}
		return nil, fmt.Errorf("%s: %s: interfaces are not supported in inputs", where, t)
	default:
		return nil, fmt.Errorf("%s: %s is not supported", where, t)
	}
	return n, tags.scalar(n, where)
}

// mapKey checks the key type of a map: strings in inputs; in answers also
// what encoding/json writes as a key (ints, TextMarshalers).
func (c *compiler) mapKey(t reflect.Type, where string) (kind, error) {
	k := t.Key()
	switch {
	case k.Kind() == reflect.String:
		return kindString, nil
	case !c.output:
		return 0, fmt.Errorf("%s: %s: map keys must be strings", where, t)
	case k.Implements(textMarshalerType):
		return kindText, nil
	}
	switch k.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return kindInt, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return kindUint, nil
	}
	return 0, fmt.Errorf("%s: %s: the JSON encoder cannot write these map keys", where, t)
}

// structField is one JSON member candidate of a struct, found through
// embedded structs as encoding/json finds it.
type structField struct {
	name      string
	typ       reflect.Type
	tag       reflect.StructTag
	offset    uintptr
	omitempty bool
	quoted    bool
	tagged    bool // the name comes from a json tag
	depth     int  // of embedding
	top       bool // a field of the compiled input struct (or embedded in it)
	// viaPointer marks a field of an embedded pointer, which the encoder
	// leaves out when the pointer is nil.
	viaPointer bool
	where      string
}

// fields lists the members of struct t. In answers a name met twice
// follows encoding/json (the shallowest wins, then the tagged one, else
// none); in inputs it is an error, as is an embedded pointer, which the
// decoder would have to allocate.
func (c *compiler) fields(t reflect.Type) ([]structField, error) {
	var out []structField
	var walk func(t reflect.Type, offset uintptr, depth int, seen []reflect.Type, top, viaPointer bool) error
	walk = func(t reflect.Type, offset uintptr, depth int, seen []reflect.Type, top, viaPointer bool) error {
		for i := range t.NumField() {
			sf := t.Field(i)
			where := t.String() + "." + sf.Name
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if sf.Anonymous {
				ft := sf.Type
				ptr := ft.Kind() == reflect.Pointer
				if ptr {
					ft = ft.Elem()
				}
				if name == "" && ft.Kind() == reflect.Struct && ft != timeType {
					if in, _ := paramTag(sf.Tag); in != "" && !c.output {
						return fmt.Errorf("%s: an embedded struct cannot be a parameter", where)
					}
					if ptr && !c.output {
						return fmt.Errorf("%s: an embedded pointer is not supported in inputs: embed the struct", where)
					}
					for _, s := range seen {
						if s == ft {
							return nil // encoding/json stops at a type met again
						}
					}
					if err := walk(ft, offset+sf.Offset, depth+1, append(seen, ft), top, viaPointer || ptr); err != nil {
						return err
					}
					continue
				}
				if !sf.IsExported() {
					continue
				}
			} else if !sf.IsExported() {
				continue
			}
			f := structField{
				name: name, typ: sf.Type, tag: sf.Tag, offset: offset + sf.Offset,
				tagged: name != "", depth: depth, top: top, viaPointer: viaPointer, where: where,
			}
			if !f.tagged {
				f.name = sf.Name
			}
			for opts != "" {
				var o string
				o, opts, _ = strings.Cut(opts, ",")
				switch o {
				case "omitempty":
					f.omitempty = true
				case "string":
					f.quoted = true
				}
			}
			out = append(out, f)
		}
		return nil
	}
	if err := walk(t, 0, 0, []reflect.Type{t}, t == c.top, false); err != nil {
		return nil, err
	}
	return c.dominant(out)
}

// dominant resolves members that share a name.
func (c *compiler) dominant(fields []structField) ([]structField, error) {
	byName := make(map[string][]int, len(fields))
	for i, f := range fields {
		if in, _ := paramTag(f.tag); in != "" && !c.output {
			continue // parameters are named by their own tags
		}
		byName[f.name] = append(byName[f.name], i)
	}
	drop := make(map[int]bool)
	for name, idx := range byName {
		if len(idx) < 2 {
			continue
		}
		if !c.output {
			return nil, fmt.Errorf("%s and %s: two members named %q", fields[idx[0]].where, fields[idx[1]].where, name)
		}
		best, minDepth, tagged := -1, int(^uint(0)>>1), 0
		for _, i := range idx {
			minDepth = min(minDepth, fields[i].depth)
		}
		count := 0
		for _, i := range idx {
			if fields[i].depth != minDepth {
				continue
			}
			count++
			if fields[i].tagged {
				tagged++
				best = i
			}
		}
		if tagged != 1 {
			best = -1
			if count == 1 {
				for _, i := range idx {
					if fields[i].depth == minDepth {
						best = i
					}
				}
			}
		}
		for _, i := range idx {
			if i != best {
				drop[i] = true
			}
		}
	}
	out := fields[:0]
	for i, f := range fields {
		if !drop[i] {
			out = append(out, f)
		}
	}
	return out, nil
}

// paramTag returns where a field is read from when it is a parameter.
func paramTag(tag reflect.StructTag) (in, name string) {
	for _, in := range [...]string{"path", "query", "header"} {
		if name, ok := tag.Lookup(in); ok {
			return in, name
		}
	}
	return "", ""
}
