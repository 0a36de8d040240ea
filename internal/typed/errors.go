package typed

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/problem"
)

// Refusals are built only when a request is refused: the path of the
// field at fault is rendered then, from d.path, never on the way there.

// where renders the current path, then last (a member of the current
// object) when it is not "": address.city, tags[2].name.
func (d *decoder) where(last string, lastInput bool) string {
	var b strings.Builder
	for _, s := range d.path {
		if s.name == "" && s.index >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
			continue
		}
		writeName(&b, s.name, s.input)
	}
	if last != "" {
		writeName(&b, last, lastInput)
	}
	return b.String()
}

func writeName(b *strings.Builder, name string, input bool) {
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	if input {
		name = cut(name, maxEchoed)
	}
	b.WriteString(name)
}

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

// violation records a broken constraint of the current field (or of its
// member last): a 422 once everything is read.
func (d *decoder) violation(last, detail string) {
	d.errs = append(d.errs, problem.FieldError{Field: d.where(last, false), Detail: detail})
}

// refuse is a 400 whose detail names the field at fault; errors[] is for
// the constraints of a 422, so a malformed body carries none.
func (d *decoder) refuse(detail string) error {
	return problem.New(fasthttp.StatusBadRequest, detail)
}

// syntax refuses a body that is not JSON, or holds more after the object.
func (d *decoder) syntax(err error) error {
	pe := d.refuse(detailInvalid).(*problem.Error)
	pe.Err = err
	return pe
}

// readError refuses the token where a value, a name or a delimiter was
// expected; the tokenizer keeps the reason until the next read.
func (d *decoder) readError() error {
	_, err := d.dec.ReadToken()
	return d.syntax(err)
}

// stringError says why the string starting at or after offset start was
// refused: invalid UTF-8 and an escaped lone surrogate are named as such,
// anything else is bad JSON.
func (d *decoder) stringError(start int64, err error) error {
	var se *jsontext.SyntacticError
	if !errors.As(err, &se) || start < 0 || start >= int64(len(d.body)) {
		return d.syntax(err)
	}
	b := d.body[start:]
	for len(b) > 0 && b[0] != '"' {
		b = b[1:] // whitespace, ':' or ','
	}
	var pe *problem.Error
	switch stringFault(b) {
	case faultUTF8:
		pe = d.refuse(d.fieldDetail(detailUTF8, " is not valid UTF-8")).(*problem.Error)
	case faultSurrogate:
		pe = d.refuse(d.fieldDetail(detailSurrogate, " escapes half of a UTF-16 surrogate pair, which is no character")).(*problem.Error)
	default:
		return d.syntax(err)
	}
	pe.Err = err
	return pe
}

// fieldDetail says what is wrong with the current field, or with the body
// when the fault is in a top-level member name.
func (d *decoder) fieldDetail(bodyDetail, fieldDetail string) string {
	if len(d.path) == 0 {
		return bodyDetail
	}
	return "the field " + strconv.Quote(d.where("", false)) + fieldDetail
}

type fault int

const (
	faultSyntax fault = iota
	faultUTF8
	faultSurrogate
)

// stringFault finds the first fault of the JSON string b starts with.
func stringFault(b []byte) fault {
	for i := 1; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			return faultSyntax // the string is fine; the fault is elsewhere
		case c == '\\':
			if i+1 >= len(b) {
				return faultSyntax
			}
			if b[i+1] != 'u' {
				i += 2
				continue
			}
			r, ok := hex4(b, i+2)
			if !ok {
				return faultSyntax
			}
			i += 6
			switch {
			case utf16.IsSurrogate(r) && r >= 0xDC00:
				return faultSurrogate // a low half with no high half before it
			case utf16.IsSurrogate(r):
				if i+1 >= len(b) || b[i] != '\\' || b[i+1] != 'u' {
					return faultSurrogate
				}
				lo, ok := hex4(b, i+2)
				if !ok {
					return faultSyntax
				}
				if lo < 0xDC00 || lo > 0xDFFF {
					return faultSurrogate
				}
				i += 6
			}
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				return faultUTF8
			}
			i += size
		}
	}
	return faultSyntax
}

// hex4 reads four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// what names the JSON a node wants.
func what(n *node) string {
	switch n.kind {
	case kindString:
		return "a string"
	case kindBool:
		return "true or false"
	case kindInt, kindUint:
		return "an integer"
	case kindFloat:
		return "a number"
	case kindTime:
		return "an RFC 3339 date-time string"
	case kindPointer:
		return what(n.elem)
	case kindSlice:
		return "an array"
	}
	return "an object"
}

// wrongType refuses a value of the wrong JSON type.
func (d *decoder) wrongType(n *node) error {
	short := "must be " + what(n)
	return d.refuse("the field " + strconv.Quote(d.where("", false)) + " " + short)
}

// outOfRange refuses a number the Go type cannot hold; one outside the
// declared bounds is a violation instead.
func (d *decoder) outOfRange(n *node) error {
	var short string
	if n.kind == kindFloat {
		short = "must be a number a float" + strconv.Itoa(n.bits) + " holds"
	} else {
		lo, hi := typeBounds(n)
		short = "must be an integer from " + lo.text + " to " + hi.text
	}
	return d.refuse("the field " + strconv.Quote(d.where("", false)) + " " + short)
}

// unknown refuses a member name the object does not declare.
func (d *decoder) unknown(name []byte) error {
	field := d.where(string(name), true)
	return d.refuse("the body has an unknown field " + strconv.Quote(field))
}

// repeated refuses a member named twice in one object: a proxy or a
// signature check may have read the first where a decoder keeps the last.
func (d *decoder) repeated(name string) error {
	field := d.where(name, false)
	return d.refuse("the body repeats the field " + strconv.Quote(field))
}

func (d *decoder) repeatedKey(key string) error {
	field := d.where(key, true)
	return d.refuse("the body repeats the field " + strconv.Quote(field))
}
