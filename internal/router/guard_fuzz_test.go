package router

import (
	"bytes"
	"testing"
)

// referenceFields is the guard's rule written plainly, one line at a time:
// the fast walk in checkFields must agree with it on every input.
func referenceFields(raw []byte) (id []byte, status int) {
	for j, b := range raw {
		if b == '\n' && (j == 0 || raw[j-1] != '\r') {
			return nil, 400
		}
	}
	fields := 0
	var length, chunked bool
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if len(line) == 0 || line[0] == '\r' {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, 400
		}
		fields++
		name, value, _ := bytes.Cut(line, []byte(":"))
		if bytes.ContainsAny(name, " \t") {
			return nil, 400
		}
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length = true
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(bytes.Trim(value, " \t\r"), []byte("chunked")) {
				return nil, 400
			}
			chunked = true
		case id == nil && bytes.EqualFold(name, []byte("X-Request-ID")):
			id = bytes.Trim(value, " \t\r")
		}
	}
	switch {
	case length && chunked:
		return nil, 400
	case fields > MaxHeaders:
		return nil, 431
	}
	return id, 0
}

func FuzzCheckFields(f *testing.F) {
	for _, seed := range []string{
		"Host: x\r\n\r\n",
		"Host: x\r\nX-Request-ID:  a-1 \r\nx-request-id: b\r\n\r\n",
		"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"X-A: 1\r\n\t2\r\n\r\n",
		"X A: 1\r\n\r\n",
		":odd\r\nX-Request-ID\r\n\r\n",
		"\r\n\r\nHost: x",
		"Transfer-Encoding: identity\r\n\r\n",
		"Transfer-Encoding:  Chunked \r\n\r\n",
		"Host: x\nContent-Length: 5\r\n\r\n",
		"Host: x\r\n\n",
	} {
		f.Add([]byte(seed))
	}
	g := newGuard()
	f.Fuzz(func(t *testing.T, raw []byte) {
		id, status, _ := g.checkFields(raw)
		wantID, wantStatus := referenceFields(raw)
		if status != wantStatus || !bytes.Equal(id, wantID) || (status == 0 && (id == nil) != (wantID == nil)) {
			t.Errorf("checkFields(%q) = %q %d, reference %q %d", raw, id, status, wantID, wantStatus)
		}
	})
}
