package typed

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/problem"
)

// param is the plan of one path, query or header parameter.
type param struct {
	name     string
	key      []byte // name, compared with query keys and header names
	in       string
	field    string
	offset   uintptr
	node     *node // a scalar, or (query and header) a pointer to one
	required bool
	def      *scalar // the default tag, parsed; nil: none
	defText  string
	doc      string
	// want says what a value that does not parse should be (422).
	want string
	// badPath (400) and notFound (404) answer a path parameter that does
	// not parse, or parses and names nothing.
	badPath, notFound *problem.Error
}

// scalar is one parsed parameter or default, in its kind's representation.
type scalar struct {
	s string
	b bool
	i int64
	u uint64
	f float64
}

// param compiles a parameter field.
func (c *compiler) param(f structField, in, name string) (*param, error) {
	if name == "" || name == "-" {
		return nil, fmt.Errorf("%s: %s:%q: a parameter needs a name", f.where, in, name)
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
	s := n
	if s.kind == kindPointer {
		if in == "path" {
			return nil, fmt.Errorf("%s: a path parameter is always present: use %s, not a pointer", f.where, f.typ.Elem())
		}
		s = s.elem
	}
	switch s.kind {
	case kindString, kindBool, kindInt, kindUint, kindFloat:
	default:
		return nil, fmt.Errorf("%s: %s: a parameter is a string, a bool, an integer or a float", f.where, f.typ)
	}
	p := &param{name: name, key: []byte(name), in: in, field: f.where, offset: f.offset, node: n, doc: f.tag.Get("doc"), want: wantDetail(s)}
	switch v := f.tag.Get("required"); {
	case in == "path":
		if v == "false" {
			return nil, fmt.Errorf("%s: required:\"false\": a path parameter is always required", f.where)
		}
		p.required = true
	case v == "true":
		p.required = true
	case v != "" && v != "false":
		return nil, fmt.Errorf("%s: required:%q: want true or false", f.where, v)
	}
	if d, ok := f.tag.Lookup("default"); ok {
		switch {
		case in == "path":
			return nil, fmt.Errorf("%s: default:%q: a path parameter is always present", f.where, d)
		case p.required:
			return nil, fmt.Errorf("%s: default:%q: a required parameter has no default", f.where, d)
		case n.kind == kindPointer:
			return nil, fmt.Errorf("%s: default:%q: a pointer parameter is nil when absent; use %s for a default", f.where, d, f.typ.Elem())
		}
		v, ok := parseScalar(s, []byte(d))
		if !ok {
			return nil, fmt.Errorf("%s: default:%q: %s", f.where, d, p.want)
		}
		if bad := s.check(v); bad != "" {
			return nil, fmt.Errorf("%s: default:%q breaks the field's own constraint: %s", f.where, d, bad)
		}
		p.def, p.defText = &v, d
	}
	if in == "path" {
		p.badPath = problem.New(fasthttp.StatusBadRequest, "the "+name+" in the path "+pathWant(s))
		p.notFound = problem.New(fasthttp.StatusNotFound, "no resource with this "+name)
	}
	return p, nil
}

// wantDetail says what a parameter value that does not parse should be.
func wantDetail(n *node) string {
	switch n.kind {
	case kindBool:
		return "must be true or false"
	case kindInt, kindUint:
		lo, hi := typeBounds(n)
		if r := n.rules; r != nil {
			if r.min.set {
				lo = r.min
			}
			if r.max.set {
				hi = r.max
			}
		}
		return "must be an integer from " + lo.text + " to " + hi.text
	case kindFloat:
		if r := n.rules; r != nil && r.rangeDetail != "" {
			return "must be a number: " + r.rangeDetail[len("must be "):]
		}
		return "must be a number"
	}
	return "must be valid UTF-8"
}

// pathWant is the 400 text of a path parameter that does not parse.
func pathWant(n *node) string {
	switch n.kind {
	case kindBool:
		return "must be true or false"
	case kindInt, kindUint:
		return "must be a decimal number"
	case kindFloat:
		return "must be a number"
	}
	return "must be valid UTF-8"
}

// typeBounds returns the range of an integer node's Go type.
func typeBounds(n *node) (lo, hi bound) {
	if n.kind == kindUint {
		max := uint64(math.MaxUint64) >> (64 - n.bits)
		return bound{set: true, text: "0"}, bound{set: true, u: max, text: strconv.FormatUint(max, 10)}
	}
	max := int64(math.MaxInt64) >> (64 - n.bits)
	return bound{set: true, i: -max - 1, text: strconv.FormatInt(-max-1, 10)}, bound{set: true, i: max, text: strconv.FormatInt(max, 10)}
}

// parseScalar reads a parameter value as the node's kind: integers are
// decimal digits (with a '-' for signed types) and fit the Go type,
// numbers follow JSON's grammar, booleans are true or false, strings are
// valid UTF-8.
func parseScalar(n *node, b []byte) (scalar, bool) {
	var v scalar
	switch n.kind {
	case kindString:
		if !utf8.Valid(b) {
			return v, false
		}
		v.s = string(b)
	case kindBool:
		switch string(b) {
		case "true":
			v.b = true
		case "false":
		default:
			return v, false
		}
	case kindInt:
		i, ok := parseInt(b, n.bits)
		if !ok {
			return v, false
		}
		v.i = i
	case kindUint:
		u, ok := parseUint(b, n.bits)
		if !ok {
			return v, false
		}
		v.u = u
	case kindFloat:
		if !isNumber(b) {
			return v, false
		}
		f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(b), len(b)), n.bits)
		if err != nil {
			return v, false // out of the type's range
		}
		v.f = f
	}
	return v, true
}

// check returns the constraint v breaks, "" when none.
func (n *node) check(v scalar) string {
	r := n.rules
	if r == nil {
		return ""
	}
	switch n.kind {
	case kindString:
		return r.checkString(v.s)
	case kindInt:
		return r.checkInt(v.i)
	case kindUint:
		return r.checkUint(v.u)
	case kindFloat:
		return r.checkFloat(v.f)
	}
	return ""
}

// digits reports whether b is one or more decimal digits.
func digits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseUint reads decimal digits that fit bits.
func parseUint(b []byte, bits int) (uint64, bool) {
	if !digits(b) {
		return 0, false
	}
	max := uint64(math.MaxUint64) >> (64 - bits)
	var u uint64
	for _, c := range b {
		d := uint64(c - '0')
		if u > (max-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	return u, true
}

// parseInt reads an optional '-' and decimal digits that fit bits.
func parseInt(b []byte, bits int) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	max := uint64(1) << (bits - 1) // the magnitude of the minimum
	u, ok := parseUint(b, 64)
	if !ok || u > max || !neg && u == max {
		return 0, false
	}
	if neg {
		return -int64(u-1) - 1, true
	}
	return int64(u), true
}

// isNumber reports whether b follows JSON's number grammar, which
// strconv.ParseFloat extends (Inf, NaN, hex, underscores).
func isNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	start := i
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	if i == start || b[start] == '0' && i-start > 1 {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		s := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == s {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		s := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == s {
			return false
		}
	}
	return i == len(b)
}

// store writes v into the field at p.
func (p *param) store(dst unsafe.Pointer, v scalar) {
	n := p.node
	if n.kind == kindPointer {
		elem := reflect.New(n.elem.typ).UnsafePointer()
		*(*unsafe.Pointer)(dst) = elem
		dst, n = elem, n.elem
	}
	storeScalar(n, dst, v)
}

func storeScalar(n *node, p unsafe.Pointer, v scalar) {
	switch n.kind {
	case kindString:
		*(*string)(p) = v.s
	case kindBool:
		*(*bool)(p) = v.b
	case kindInt:
		storeInt(p, n.bits, v.i)
	case kindUint:
		storeUint(p, n.bits, v.u)
	case kindFloat:
		if n.bits == 32 {
			*(*float32)(p) = float32(v.f)
		} else {
			*(*float64)(p) = v.f
		}
	}
}

func storeInt(p unsafe.Pointer, bits int, v int64) {
	switch bits {
	case 8:
		*(*int8)(p) = int8(v)
	case 16:
		*(*int16)(p) = int16(v)
	case 32:
		*(*int32)(p) = int32(v)
	default:
		*(*int64)(p) = v
	}
}

func storeUint(p unsafe.Pointer, bits int, v uint64) {
	switch bits {
	case 8:
		*(*uint8)(p) = uint8(v)
	case 16:
		*(*uint16)(p) = uint16(v)
	case 32:
		*(*uint32)(p) = uint32(v)
	default:
		*(*uint64)(p) = v
	}
}

// scalarNode is the node a parameter's value is parsed as.
func (p *param) scalarNode() *node {
	if p.node.kind == kindPointer {
		return p.node.elem
	}
	return p.node
}

// decodePath fills the path parameters: the first that does not parse is
// a 400, the first that parses but breaks a constraint or overflows names
// no resource, a 404.
func (in *Input) decodePath(rc *fasthttp.RequestCtx, base unsafe.Pointer) error {
	for _, p := range in.path {
		// fasthttp/router stores a string that outlives the request.
		s, _ := rc.UserValue(p.name).(string)
		n := p.node
		if n.kind == kindString {
			if !utf8.ValidString(s) {
				return p.badPath
			}
			if n.check(scalar{s: s}) != "" {
				return p.notFound
			}
			*(*string)(unsafe.Add(base, p.offset)) = s
			continue
		}
		b := unsafe.Slice(unsafe.StringData(s), len(s))
		v, ok := parseScalar(n, b)
		if !ok {
			if pathSyntax(n, b) {
				return p.notFound // a number, but not one the type holds
			}
			return p.badPath
		}
		if n.check(v) != "" {
			return p.notFound
		}
		storeScalar(n, unsafe.Add(base, p.offset), v)
	}
	return nil
}

// pathSyntax reports whether b is written as the node's kind wants, so a
// value that still does not parse overflows the type.
func pathSyntax(n *node, b []byte) bool {
	switch n.kind {
	case kindInt:
		if len(b) > 0 && b[0] == '-' {
			b = b[1:]
		}
		return digits(b)
	case kindUint:
		return digits(b)
	case kindFloat:
		return isNumber(b)
	}
	return false
}

// decodeQuery fills the query parameters, collecting a FieldError for
// each bad one.
func (d *decoder) decodeQuery(params []*param, args *fasthttp.Args, base unsafe.Pointer) {
	d.startArgs(params)
	// A range over All, called here where it inlines, allocates nothing.
	for k, v := range args.All() {
		for i, p := range params {
			if string(k) == p.name {
				d.counts[i]++
				d.values[i] = v
			}
		}
	}
	d.finishArgs(params, base)
}

// decodeHeaders fills the header parameters, named case-insensitively.
func (d *decoder) decodeHeaders(params []*param, h *fasthttp.RequestHeader, base unsafe.Pointer) {
	d.startArgs(params)
	for k, v := range h.All() {
		for i, p := range params {
			if bytes.EqualFold(k, p.key) {
				d.counts[i]++
				d.values[i] = v
			}
		}
	}
	d.finishArgs(params, base)
}

func (d *decoder) startArgs(params []*param) {
	d.counts, d.values = d.counts[:0], d.values[:0]
	for range params {
		d.counts = append(d.counts, 0)
		d.values = append(d.values, nil)
	}
}

// finishArgs parses what startArgs' caller found: absent is the default or
// zero (or is required), twice is refused, else the value must parse and
// keep the constraints.
func (d *decoder) finishArgs(params []*param, base unsafe.Pointer) {
	for i, p := range params {
		switch count := d.counts[i]; {
		case count == 0 && p.required:
			d.violation(p.name, "is required")
		case count == 0 && p.def != nil:
			storeScalar(p.node, unsafe.Add(base, p.offset), *p.def)
		case count == 0:
		case count > 1:
			d.violation(p.name, "must be given once")
		default:
			n := p.scalarNode()
			v, ok := parseScalar(n, d.values[i])
			if !ok {
				d.violation(p.name, p.want)
				continue
			}
			if bad := n.check(v); bad != "" {
				d.violation(p.name, bad)
				continue
			}
			p.store(unsafe.Add(base, p.offset), v)
		}
	}
	clear(d.values) // the pool must not keep the request's bytes
}
