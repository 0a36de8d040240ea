package typed

import "bytes"

// jsonMediaType reports whether a Content-Type is application/json with at
// most a utf-8 charset, as mime.ParseMediaType reads it (case-insensitive,
// spaces around the parts, the charset quoted or not, a trailing ';'),
// without its allocations.
func jsonMediaType(ct []byte) bool {
	ct = trimSpace(ct)
	const mt = "application/json"
	if len(ct) < len(mt) || !bytes.EqualFold(ct[:len(mt)], []byte(mt)) {
		return false
	}
	rest := trimSpace(ct[len(mt):])
	for len(rest) > 0 {
		if rest[0] != ';' {
			return false
		}
		rest = trimSpace(rest[1:])
		if len(rest) == 0 {
			return true // a trailing ';'
		}
		const key = "charset"
		if len(rest) < len(key) || !bytes.EqualFold(rest[:len(key)], []byte(key)) {
			return false
		}
		rest = trimSpace(rest[len(key):])
		if len(rest) == 0 || rest[0] != '=' {
			return false
		}
		rest = trimSpace(rest[1:])
		quoted := len(rest) > 0 && rest[0] == '"'
		if quoted {
			rest = rest[1:]
		}
		const utf8 = "utf-8"
		if len(rest) < len(utf8) || !bytes.EqualFold(rest[:len(utf8)], []byte(utf8)) {
			return false
		}
		rest = rest[len(utf8):]
		if quoted {
			if len(rest) == 0 || rest[0] != '"' {
				return false
			}
			rest = rest[1:]
		}
		rest = trimSpace(rest)
	}
	return true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
