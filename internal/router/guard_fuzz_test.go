package router

import (
	"bytes"
	"testing"
)

// referenceFields is the guard's rule written plainly, one line at a time:
// the fast walk in checkFields must agree with it on every input.
func referenceFields(raw []byte) (f picked, status int) {
	for j, b := range raw {
		if b == '\n' && (j == 0 || raw[j-1] != '\r') {
			return picked{}, 400
		}
	}
	fields := 0
	var length, chunked bool
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if len(line) == 0 || line[0] == '\r' {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			return picked{}, 400
		}
		fields++
		name, value, _ := bytes.Cut(line, []byte(":"))
		if bytes.ContainsAny(name, " \t") {
			return picked{}, 400
		}
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length = true
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(bytes.Trim(value, " \t\r"), []byte("chunked")) {
				return picked{}, 400
			}
			chunked = true
		case f.id == nil && bytes.EqualFold(name, []byte("X-Request-ID")):
			f.id = bytes.Trim(value, " \t\r")
		case bytes.EqualFold(name, []byte("traceparent")):
			if f.traceparents++; f.traceparents == 1 {
				f.traceparent = bytes.Trim(value, " \t\r")
			}
		case bytes.EqualFold(name, []byte("tracestate")):
			if f.tracestates++; f.tracestates == 1 {
				f.tracestate = bytes.Trim(value, " \t\r")
			}
		}
	}
	switch {
	case length && chunked:
		return picked{}, 400
	case fields > MaxHeaders:
		return picked{}, 431
	}
	return f, 0
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
		"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nTraceState: a=1\r\ntracestate: b=2\r\n\r\n",
		"TRACEPARENT:x\r\ntraceparent: y\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	g := newGuard()
	f.Fuzz(func(t *testing.T, raw []byte) {
		f, status, _ := g.checkFields(raw)
		want, wantStatus := referenceFields(raw)
		same := func(a, b []byte) bool { return bytes.Equal(a, b) && (a == nil) == (b == nil) }
		if status != wantStatus || !same(f.id, want.id) || !same(f.traceparent, want.traceparent) || !same(f.tracestate, want.tracestate) ||
			f.traceparents != want.traceparents || f.tracestates != want.tracestates {
			t.Errorf("checkFields(%q) = %+v %d, reference %+v %d", raw, f, status, want, wantStatus)
		}
	})
}
