package compress

import "bytes"

// Negotiate picks the coding for an answer from the request's
// Accept-Encoding value (RFC 9110 §12.5.3):
//
//   - no header, or an empty one: identity;
//   - each coding weighs its own q, else the q of "*", else 0
//     (x-gzip counts as gzip); a q of 0 refuses it;
//   - the heaviest acceptable coding wins, ties going to zstd, then br,
//     then gzip; identity wins only when listed heavier than all of them;
//   - identity is acceptable unless refused by "identity;q=0", or by
//     "*;q=0" without an entry for identity.
//
// required reports that identity was refused, so the answer should be
// compressed whatever its size. When nothing is acceptable the answer goes
// out uncompressed, as RFC 9110 allows. Negotiate does not allocate.
func Negotiate(accept []byte) (coding Coding, required bool) {
	if len(accept) == 0 {
		return Identity, false
	}
	var q [len(names)]int // in thousandths; -1: not listed
	for i := range q {
		q[i] = -1
	}
	star := -1
	for len(accept) > 0 {
		var item []byte
		item, accept, _ = bytes.Cut(accept, []byte(","))
		name, params, _ := bytes.Cut(item, []byte(";"))
		name = bytes.TrimSpace(name)
		if len(name) == 0 {
			continue
		}
		w := weight(params)
		switch {
		case bytes.Equal(name, []byte("*")):
			star = w
		case bytes.EqualFold(name, []byte("identity")):
			q[Identity] = w
		case bytes.EqualFold(name, []byte("zstd")):
			q[Zstd] = w
		case bytes.EqualFold(name, []byte("br")):
			q[Br] = w
		case bytes.EqualFold(name, []byte("gzip")), bytes.EqualFold(name, []byte("x-gzip")):
			q[Gzip] = max(q[Gzip], w)
		}
	}
	// identity unlisted is acceptable unless "*;q=0", but never preferred.
	identityOK := q[Identity] > 0 || (q[Identity] < 0 && star != 0)
	for i := range q {
		if q[i] < 0 {
			q[i] = max(star, 0)
		}
	}
	best := Identity
	for _, c := range []Coding{Zstd, Br, Gzip} {
		if q[c] > 0 && (best == Identity || q[c] > q[best]) {
			best = c
		}
	}
	if best == Identity || q[Identity] > q[best] {
		return Identity, false
	}
	return best, !identityOK
}

// weight reads the q parameter of one Accept-Encoding member, in
// thousandths: absent is 1000, malformed is 0 (refused).
func weight(params []byte) int {
	for len(params) > 0 {
		var p []byte
		p, params, _ = bytes.Cut(params, []byte(";"))
		k, v, ok := bytes.Cut(bytes.TrimSpace(p), []byte("="))
		if !ok || !bytes.EqualFold(bytes.TrimSpace(k), []byte("q")) {
			continue
		}
		return qvalue(bytes.TrimSpace(v))
	}
	return 1000
}

// qvalue parses "0", "0.5", "1.000" (RFC 9110 §12.4.2) into thousandths;
// anything else is 0.
func qvalue(v []byte) int {
	if len(v) == 0 || len(v) > 5 || (v[0] != '0' && v[0] != '1') {
		return 0
	}
	n := int(v[0]-'0') * 1000
	if len(v) == 1 {
		return n
	}
	if v[1] != '.' {
		return 0
	}
	scale := 100
	for _, d := range v[2:] {
		if d < '0' || d > '9' {
			return 0
		}
		n += int(d-'0') * scale
		scale /= 10
	}
	if n > 1000 {
		return 0
	}
	return n
}
