package typed

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/problem"
)

// MaxDepth is how deeply a body may nest objects and arrays; the body
// itself is depth 1.
const MaxDepth = 32

// maxEchoed bounds each piece of the input a problem repeats (an unknown
// member name, a map key), in bytes.
const maxEchoed = 64

// decoder is the per-request scratch of Decode, pooled.
type decoder struct {
	dec   jsontext.Decoder
	buf   bytes.Buffer // aliases the request body while decoding
	body  []byte
	text  []byte    // unquoted names and strings
	path  []segment // where the value being decoded sits
	errs  []problem.FieldError
	depth int
	// counts and values are the parameters' scratch: how often each was
	// given, and its last value.
	counts []int
	values [][]byte
}

// segment is one step of a path: a member name, or an index when name is
// "" and index >= 0.
type segment struct {
	name  string
	index int
	input bool // name was read from the body: cut it when echoed
}

var decoders = sync.Pool{New: func() any { return new(decoder) }}

// Duplicate names are found by the plan, which knows its members, at a
// fraction of the tokenizer's cost.
var tokenizerOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true)}

func acquireDecoder() *decoder {
	return decoders.Get().(*decoder)
}

// releaseDecoder pools d holding nothing of the request.
func releaseDecoder(d *decoder) {
	if d.body != nil {
		d.buf = bytes.Buffer{}
		d.dec.Reset(&d.buf) // drops the tokenizer's view of the body
		d.body = nil
	}
	clear(d.path[:cap(d.path)])
	d.path = d.path[:0]
	clear(d.errs)
	d.errs = d.errs[:0]
	d.depth = 0
	if cap(d.text) > 64<<10 {
		d.text = nil // a rare huge string should not stay pooled
	}
	decoders.Put(d)
}

// Decode fills dst, a *T for the compiled T, from the request: path
// parameters (rc.UserValue), query parameters, header parameters, then,
// when T has body members, the JSON body. dst is zeroed first, so a pooled
// value keeps nothing of its last use.
//
// The error is a *problem.Error: 400 for a path parameter that does not
// parse and for a body that is not one JSON object of T's shape (its
// detail names the field), 404 for a path
// parameter that parses but names nothing, 415 for a Content-Type other
// than JSON, and 422 naming every parameter and body field that breaks a
// constraint (after every value is read, and only when nothing else is
// wrong). Strings are copied out of the request; dst keeps no reference
// to it.
func (in *Input) Decode(rc *fasthttp.RequestCtx, dst any) error {
	v := reflect.ValueOf(dst)
	if !v.IsValid() || v.Type() != in.ptr || v.IsNil() {
		return fmt.Errorf("decode %s: dst is %T, want a non-nil %s", in.typ, dst, in.ptr)
	}
	v.Elem().SetZero()
	return in.DecodeAt(rc, v.UnsafePointer())
}

// DecodeAt is Decode into the zero value of T at base, for a caller that
// holds a *T of the compiled type already (the public package's typed
// routes, generic over T): no check of the type, no zeroing, no boxing.
func (in *Input) DecodeAt(rc *fasthttp.RequestCtx, base unsafe.Pointer) error {
	if len(in.path) > 0 {
		if err := in.decodePath(rc, base); err != nil {
			return err
		}
	}
	if len(in.query) == 0 && len(in.header) == 0 && !in.HasBody() {
		return nil // nothing more to read: no decoder to fetch from its pool
	}
	d := acquireDecoder()
	defer releaseDecoder(d)
	if len(in.query) > 0 {
		d.decodeQuery(in.query, rc.QueryArgs(), base)
	}
	if len(in.header) > 0 {
		d.decodeHeaders(in.header, &rc.Request.Header, base)
	}
	if in.HasBody() {
		if !jsonMediaType(rc.Request.Header.ContentType()) {
			return errMediaType
		}
		if err := d.decodeBody(in.body, rc.PostBody(), base); err != nil {
			return err
		}
	}
	if len(d.errs) > 0 {
		return problem.Validation(slices.Clone(d.errs))
	}
	return nil
}

var (
	errMediaType = problem.New(fasthttp.StatusUnsupportedMediaType,
		"the body must be sent as Content-Type: application/json (charset, if given, utf-8)")
	errEmpty     = problem.New(fasthttp.StatusBadRequest, "the body is empty: send a JSON object")
	errNotObject = problem.New(fasthttp.StatusBadRequest, "the body must be a JSON object")
)

const (
	detailInvalid   = "the body is not valid JSON, or holds data after the JSON object"
	detailUTF8      = "the body is not valid UTF-8"
	detailSurrogate = "the body escapes half of a UTF-16 surrogate pair, which is no character"
)

// decodeBody decodes body, which must hold exactly one JSON object, into
// the struct at base.
func (d *decoder) decodeBody(o *object, body []byte, base unsafe.Pointer) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return errEmpty
	}
	if trimmed[0] != '{' {
		// A null would decode into nothing and an array into an error that
		// names Go types; say plainly what is expected.
		return errNotObject
	}
	d.body = body
	// The tokenizer reads a *bytes.Buffer in place, without a copy.
	d.buf = *bytes.NewBuffer(body)
	d.dec.Reset(&d.buf, tokenizerOptions...)
	if err := d.object(o, base); err != nil {
		return err
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		return d.syntax(nil)
	}
	return nil
}

// value decodes the next JSON value into the Go value at p, which is zero.
func (d *decoder) value(n *node, p unsafe.Pointer) error {
	k := d.dec.PeekKind()
	if k == 0 {
		return d.readError()
	}
	if k == 'n' {
		switch n.kind {
		case kindPointer, kindSlice, kindMap:
			if _, err := d.dec.ReadToken(); err != nil {
				return d.syntax(err)
			}
			return nil // null leaves the value nil
		}
		return d.wrongType(n)
	}
	switch n.kind {
	case kindString:
		if k != '"' {
			return d.wrongType(n)
		}
		s, err := d.str()
		if err != nil {
			return err
		}
		*(*string)(p) = s
		if n.rules != nil {
			if bad := n.rules.checkString(s); bad != "" {
				d.violation("", bad)
			}
		}
	case kindBool:
		if k != 't' && k != 'f' {
			return d.wrongType(n)
		}
		if _, err := d.dec.ReadToken(); err != nil {
			return d.syntax(err)
		}
		*(*bool)(p) = k == 't'
	case kindInt, kindUint, kindFloat:
		if k != '0' {
			return d.wrongType(n)
		}
		raw, err := d.dec.ReadValue()
		if err != nil {
			return d.syntax(err)
		}
		return d.number(n, p, raw)
	case kindTime:
		if k != '"' {
			return d.wrongType(n)
		}
		raw, err := d.readString()
		if err != nil {
			return err
		}
		if err := (*time.Time)(p).UnmarshalText(raw); err != nil {
			return d.wrongType(n)
		}
	case kindPointer:
		elem := reflect.New(n.elem.typ).UnsafePointer()
		*(*unsafe.Pointer)(p) = elem
		return d.value(n.elem, elem)
	case kindSlice:
		if k != '[' {
			return d.wrongType(n)
		}
		return d.slice(n, p)
	case kindMap:
		if k != '{' {
			return d.wrongType(n)
		}
		return d.mapValue(n, p)
	case kindStruct:
		if k != '{' {
			return d.wrongType(n)
		}
		return d.object(n.obj, p)
	}
	return nil
}

// nullable reports whether a JSON null fits n: a pointer, slice or map,
// which null leaves nil.
func nullable(n *node) bool {
	switch n.kind {
	case kindPointer, kindSlice, kindMap:
		return true
	}
	return false
}

// number decodes an integer or a float; the tokenizer has checked the
// JSON grammar.
func (d *decoder) number(n *node, p unsafe.Pointer, raw []byte) error {
	switch n.kind {
	case kindInt:
		if bytes.ContainsAny(raw, ".eE") {
			return d.wrongType(n)
		}
		v, ok := parseInt(raw, n.bits)
		if !ok {
			return d.outOfRange(n)
		}
		storeInt(p, n.bits, v)
		if n.rules != nil {
			if bad := n.rules.checkInt(v); bad != "" {
				d.violation("", bad)
			}
		}
	case kindUint:
		if bytes.ContainsAny(raw, ".eE") {
			return d.wrongType(n)
		}
		v, ok := parseUint(raw, n.bits)
		if !ok {
			return d.outOfRange(n)
		}
		storeUint(p, n.bits, v)
		if n.rules != nil {
			if bad := n.rules.checkUint(v); bad != "" {
				d.violation("", bad)
			}
		}
	default:
		f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(raw), len(raw)), n.bits)
		if err != nil {
			return d.outOfRange(n)
		}
		storeScalar(n, p, scalar{f: f})
		if n.rules != nil {
			if bad := n.rules.checkFloat(f); bad != "" {
				d.violation("", bad)
			}
		}
	}
	return nil
}

// object decodes a JSON object into the struct at p: every member name
// must be declared, exactly and once; a required member left out is a
// violation found when the object closes.
func (d *decoder) object(o *object, p unsafe.Pointer) error {
	if err := d.enter(); err != nil {
		return err
	}
	var seen, null uint64 // the members met, and those met as null, when there are at most 64
	var wide []bool
	var wideNull []int
	if len(o.members) > 64 {
		wide = make([]bool, len(o.members)) // a struct this wide is rare
	}
	for {
		k := d.dec.PeekKind()
		if k == '}' {
			break
		}
		if k != '"' {
			return d.readError()
		}
		name, err := d.name()
		if err != nil {
			return err
		}
		i := o.lookup(name)
		if i < 0 {
			return d.unknown(name)
		}
		if wide != nil {
			if wide[i] {
				return d.repeated(o.members[i].name)
			}
			wide[i] = true
		} else {
			if seen&(1<<i) != 0 {
				return d.repeated(o.members[i].name)
			}
			seen |= 1 << i
		}
		m := &o.members[i]
		if d.dec.PeekKind() == 'n' && !nullable(m.node) {
			// null where no null fits is the member left out: a required
			// one is then a 422 naming it, as if it were missing.
			if _, err := d.dec.ReadToken(); err != nil {
				return d.syntax(err)
			}
			if wide != nil {
				wideNull = append(wideNull, i)
			} else {
				null |= 1 << i
			}
			continue
		}
		d.path = append(d.path, segment{name: m.name, index: -1})
		if err := d.value(m.node, unsafe.Add(p, m.offset)); err != nil {
			return err
		}
		d.path = d.path[:len(d.path)-1]
	}
	if _, err := d.dec.ReadToken(); err != nil { // the '}'
		return d.syntax(err)
	}
	for _, i := range o.required {
		met := wide != nil && wide[i] && !slices.Contains(wideNull, i) || wide == nil && seen&^null&(1<<i) != 0
		if !met {
			d.violation(o.members[i].name, "is required")
		}
	}
	d.depth--
	return nil
}

// enter reads the '{' or '[' that opens a level.
func (d *decoder) enter() error {
	if _, err := d.dec.ReadToken(); err != nil {
		return d.syntax(err)
	}
	d.depth++
	if d.depth > MaxDepth {
		return d.refuse("the body nests objects and arrays deeper than " + strconv.Itoa(MaxDepth) + " levels")
	}
	return nil
}

// sliceHeader is the layout of every Go slice.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

// maxPooledItems bounds the scratch a slice plan keeps for the next array.
const maxPooledItems = 1024

// zeroArray is where an empty, non-nil slice points, as make([]T, 0) does.
var zeroArray [0]uint64

// sliceScratch collects the items of one array before the slice is made,
// so the result is allocated once at its exact length.
type sliceScratch struct {
	v        reflect.Value // an addressable slice whose len is its cap
	elemSize uintptr
}

func newSliceScratch(t reflect.Type) any {
	return &sliceScratch{v: reflect.New(t).Elem(), elemSize: t.Elem().Size()}
}

// slice decodes a JSON array into the slice at p.
func (d *decoder) slice(n *node, p unsafe.Pointer) error {
	if err := d.enter(); err != nil {
		return err
	}
	sc := n.pool.Get().(*sliceScratch)
	defer n.pool.Put(sc)
	count := 0
	defer func() {
		if sc.v.Len() > maxPooledItems {
			sc.v.SetZero() // a rare long array should not stay pooled
			return
		}
		// Zero what was used: the pool must hold no item of this request.
		for i := range count {
			sc.v.Index(i).SetZero()
		}
	}()
	for {
		k := d.dec.PeekKind()
		if k == ']' {
			break
		}
		if k == 0 {
			return d.readError()
		}
		if count == sc.v.Len() {
			sc.v.Grow(max(4, count))
			sc.v.SetLen(sc.v.Cap())
		}
		d.path = append(d.path, segment{index: count})
		elem := unsafe.Add(sc.v.UnsafePointer(), uintptr(count)*sc.elemSize)
		count++
		if err := d.value(n.elem, elem); err != nil {
			return err
		}
		d.path = d.path[:len(d.path)-1]
	}
	if _, err := d.dec.ReadToken(); err != nil { // the ']'
		return d.syntax(err)
	}
	if count == 0 {
		*(*sliceHeader)(p) = sliceHeader{data: unsafe.Pointer(&zeroArray)}
	} else {
		dst := reflect.NewAt(n.typ, p).Elem()
		dst.Grow(count)
		dst.SetLen(count)
		reflect.Copy(dst, sc.v)
	}
	if n.rules != nil {
		if bad := n.rules.checkItems(count); bad != "" {
			d.violation("", bad)
		}
	}
	d.depth--
	return nil
}

// mapScratch holds the key and the value being decoded into a map.
type mapScratch struct {
	key, elem reflect.Value // addressable
}

func newMapScratch(t reflect.Type) any {
	return &mapScratch{key: reflect.New(t.Key()).Elem(), elem: reflect.New(t.Elem()).Elem()}
}

// mapValue decodes a JSON object into the map[string]T at p: any name,
// but each once.
func (d *decoder) mapValue(n *node, p unsafe.Pointer) error {
	if err := d.enter(); err != nil {
		return err
	}
	sc := n.pool.Get().(*mapScratch)
	defer func() {
		sc.key.SetZero()
		sc.elem.SetZero()
		n.pool.Put(sc)
	}()
	m := reflect.NewAt(n.typ, p).Elem()
	m.Set(reflect.MakeMap(n.typ))
	for {
		k := d.dec.PeekKind()
		if k == '}' {
			break
		}
		if k != '"' {
			return d.readError()
		}
		name, err := d.name()
		if err != nil {
			return err
		}
		key := string(name)
		sc.key.SetString(key)
		if m.MapIndex(sc.key).IsValid() {
			return d.repeatedKey(key)
		}
		sc.elem.SetZero()
		d.path = append(d.path, segment{name: key, index: -1, input: true})
		if err := d.value(n.elem, sc.elem.Addr().UnsafePointer()); err != nil {
			return err
		}
		d.path = d.path[:len(d.path)-1]
		m.SetMapIndex(sc.key, sc.elem)
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return d.syntax(err)
	}
	d.depth--
	return nil
}

// name reads a member name; the bytes are valid until the next read.
func (d *decoder) name() ([]byte, error) {
	return d.readString()
}

// str reads a string value into a new string.
func (d *decoder) str() (string, error) {
	b, err := d.readString()
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// readString reads a JSON string and returns its text, unquoted in
// d.text only when it holds an escape; valid until the next read.
func (d *decoder) readString() ([]byte, error) {
	start := d.dec.InputOffset()
	raw, err := d.dec.ReadValue()
	if err != nil {
		return nil, d.stringError(start, err)
	}
	s := raw[1 : len(raw)-1]
	if bytes.IndexByte(s, '\\') < 0 {
		return s, nil
	}
	// The tokenizer has validated every escape, so this cannot fail.
	d.text, err = jsontext.AppendUnquote(d.text[:0], raw)
	if err != nil {
		return nil, d.syntax(err)
	}
	return d.text, nil
}
