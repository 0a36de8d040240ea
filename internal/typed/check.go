package typed

import (
	"fmt"
	"reflect"
	"slices"
	"unicode/utf8"
	"unsafe"

	"github.com/hotpath/hotpath/internal/problem"
)

// Check runs the constraints of the body members on a filled *T, with no
// decoding: for a value read from somewhere else than a JSON body, such as
// an HTML form that fills the same struct. It names every bad field as
// Decode's 422 would, in member order (map keys sorted); it also refuses
// strings that are not valid UTF-8. A member that is not required and
// holds its zero value is taken as absent, as Decode leaves it, and is not
// checked. A nil pointer, slice or map is null,
// which no constraint applies to; presence (required) cannot be told from
// a filled value and is not checked. Parameters are not checked: Decode
// reads them. dst must be a non-nil *T for the compiled T; anything else
// panics, as a programming error.
func (in *Input) Check(dst any) []problem.FieldError {
	v := reflect.ValueOf(dst)
	if !v.IsValid() || v.Type() != in.ptr || v.IsNil() {
		panic(fmt.Sprintf("typed: Check of %T, want a non-nil %s", dst, in.ptr))
	}
	d := acquireDecoder()
	defer releaseDecoder(d)
	d.checkObject(in.body, v.UnsafePointer())
	if len(d.errs) == 0 {
		return nil
	}
	return slices.Clone(d.errs)
}

func (d *decoder) checkObject(o *object, p unsafe.Pointer) {
	for i := range o.members {
		m := &o.members[i]
		if !m.required && reflect.NewAt(m.node.typ, unsafe.Add(p, m.offset)).Elem().IsZero() {
			continue // what Decode leaves for an absent member, which it does not check
		}
		d.path = append(d.path, segment{name: m.name, index: -1})
		d.checkValue(m.node, unsafe.Add(p, m.offset))
		d.path = d.path[:len(d.path)-1]
	}
}

func (d *decoder) checkValue(n *node, p unsafe.Pointer) {
	r := n.rules
	bad := ""
	switch n.kind {
	case kindString:
		s := *(*string)(p)
		if !utf8.ValidString(s) {
			bad = "must be valid UTF-8"
		} else if r != nil {
			bad = r.checkString(s)
		}
	case kindInt:
		if r != nil {
			bad = r.checkInt(loadInt(p, n.bits))
		}
	case kindUint:
		if r != nil {
			bad = r.checkUint(loadUint(p, n.bits))
		}
	case kindFloat:
		if r != nil {
			if n.bits == 32 {
				bad = r.checkFloat(float64(*(*float32)(p)))
			} else {
				bad = r.checkFloat(*(*float64)(p))
			}
		}
	case kindPointer:
		if elem := *(*unsafe.Pointer)(p); elem != nil {
			d.checkValue(n.elem, elem)
		}
	case kindSlice:
		h := (*sliceHeader)(p)
		if h.data == nil {
			return
		}
		if r != nil {
			bad = r.checkItems(h.len)
		}
		size := n.typ.Elem().Size()
		for i := range h.len {
			d.path = append(d.path, segment{index: i})
			d.checkValue(n.elem, unsafe.Add(h.data, uintptr(i)*size))
			d.path = d.path[:len(d.path)-1]
		}
	case kindMap:
		m := reflect.NewAt(n.typ, p).Elem()
		if m.IsNil() {
			return
		}
		keys := m.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int {
			switch {
			case a.String() < b.String():
				return -1
			case a.String() > b.String():
				return 1
			}
			return 0
		})
		elem := reflect.New(n.typ.Elem()).Elem()
		for _, k := range keys {
			elem.Set(m.MapIndex(k))
			d.path = append(d.path, segment{name: k.String(), index: -1, input: true})
			d.checkValue(n.elem, elem.Addr().UnsafePointer())
			d.path = d.path[:len(d.path)-1]
		}
	case kindStruct:
		d.checkObject(n.obj, p)
	}
	if bad != "" {
		d.violation("", bad)
	}
}

func loadInt(p unsafe.Pointer, bits int) int64 {
	switch bits {
	case 8:
		return int64(*(*int8)(p))
	case 16:
		return int64(*(*int16)(p))
	case 32:
		return int64(*(*int32)(p))
	}
	return *(*int64)(p)
}

func loadUint(p unsafe.Pointer, bits int) uint64 {
	switch bits {
	case 8:
		return uint64(*(*uint8)(p))
	case 16:
		return uint64(*(*uint16)(p))
	case 32:
		return uint64(*(*uint32)(p))
	}
	return *(*uint64)(p)
}
