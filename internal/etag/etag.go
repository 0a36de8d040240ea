// Package etag reads and compares entity tags (RFC 9110 §8.8.3) for the
// conditional requests of the REST API: If-None-Match on reads, If-Match
// on writes.
//
// hotpath's own tags are strong, quoted, and their opaque part never holds
// a '-'. When a response is compressed its tag gets the coding appended
// ("w42" becomes "w42-gzip"), because a compressed representation is a
// different one and a strong tag must tell them apart (WithCoding). Every
// comparison here strips that suffix first, so a client holding either
// variant is answered as holding the resource's current state.
package etag

import "bytes"

// codings are the content codings WithCoding appends, without the dash.
var codings = [][]byte{[]byte("gzip"), []byte("br"), []byte("zstd")}

// Any reports whether a precondition header is the wildcard "*".
func Any(header []byte) bool {
	return bytes.Equal(bytes.TrimSpace(header), []byte("*"))
}

// Each calls fn with the opaque part (between the quotes, coding suffix
// removed) of every entity-tag in a list header, and whether it was weak
// (W/), until fn returns false. Malformed members end the walk: a header
// that cannot be read matches nothing.
func Each(header []byte, fn func(opaque []byte, weak bool) bool) {
	each(header, func(_, opaque []byte, weak bool) bool { return fn(opaque, weak) })
}

// each is Each that also passes the tag as listed, quotes included and
// W/ left out.
func each(header []byte, fn func(tag, opaque []byte, weak bool) bool) {
	s := header
	for {
		s = bytes.TrimLeft(s, " \t,")
		if len(s) == 0 {
			return
		}
		weak := false
		if bytes.HasPrefix(s, []byte("W/")) {
			weak, s = true, s[2:]
		}
		if len(s) < 2 || s[0] != '"' {
			return
		}
		end := bytes.IndexByte(s[1:], '"')
		if end < 0 {
			return
		}
		tag := s[:2+end]
		s = s[2+end:]
		if !fn(tag, Base(tag[1:len(tag)-1]), weak) {
			return
		}
		s = bytes.TrimLeft(s, " \t")
		if len(s) > 0 && s[0] != ',' {
			return
		}
	}
}

// Base removes a content-coding suffix added by WithCoding from opaque.
func Base(opaque []byte) []byte {
	for _, c := range codings {
		if n := len(opaque) - len(c) - 1; n > 0 && opaque[n] == '-' && bytes.HasSuffix(opaque, c) {
			return opaque[:n]
		}
	}
	return opaque
}

// NoneMatch evaluates If-None-Match for a GET or HEAD of a resource whose
// current strong tag is current (quoted). It reports whether the client
// already holds the current state, and the tag to send with the 304: the
// one the client listed (so a client holding the compressed variant keeps
// its own tag), or current for "*". Comparison is weak (RFC 9110 §13.1.2):
// W/ tags match too.
func NoneMatch(header, current []byte) (tag []byte, ok bool) {
	if len(header) == 0 {
		return nil, false
	}
	if Any(header) {
		return current, true
	}
	want := unquote(current)
	each(header, func(listed, opaque []byte, _ bool) bool {
		if bytes.Equal(opaque, want) {
			tag, ok = listed, true
		}
		return !ok
	})
	return tag, ok
}

// Match evaluates a non-wildcard If-Match against a strong tag with strong
// comparison (RFC 9110 §13.1.1): a weak tag never matches.
func Match(header, current []byte) bool {
	want := unquote(current)
	ok := false
	Each(header, func(opaque []byte, weak bool) bool {
		ok = !weak && bytes.Equal(opaque, want)
		return !ok
	})
	return ok
}

// WithCoding returns the strong tag tag for the representation compressed
// with coding: `"x"` becomes `"x-gzip"`. A weak or malformed tag is
// returned unchanged (a weak tag already allows different bytes).
func WithCoding(dst, tag []byte, coding string) []byte {
	if len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		return append(dst, tag...)
	}
	dst = append(dst, tag[:len(tag)-1]...)
	dst = append(dst, '-')
	dst = append(dst, coding...)
	return append(dst, '"')
}

// unquote strips the quotes of one of our own strong tags.
func unquote(tag []byte) []byte {
	if len(tag) >= 2 && tag[0] == '"' && tag[len(tag)-1] == '"' {
		return tag[1 : len(tag)-1]
	}
	return tag
}
