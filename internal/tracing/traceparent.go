package tracing

import (
	"bytes"
	"encoding/hex"

	"go.opentelemetry.io/otel/trace"
)

// W3C Trace Context (https://www.w3.org/TR/trace-context/). A traceparent
// is version "-" trace-id "-" parent-id "-" trace-flags: 2, 32, 16 and 2
// lower-case hex digits.
const (
	traceparentLen = 55
	// maxTracestate is the longest tracestate passed on: the spec asks
	// every participant to carry at least 512 characters.
	maxTracestate = 512
	// maxTracestateMembers is the spec's limit on list members.
	maxTracestateMembers = 32
)

// parent is a parsed incoming traceparent.
type parent struct {
	traceID trace.TraceID
	spanID  trace.SpanID
	flags   trace.TraceFlags
}

// parseTraceparent parses a traceparent value. It reports false for
// anything the spec calls invalid: version ff, a version 00 value of any
// other length, a later version whose 55th character is not '-', hex
// digits that are not lower case, an all-zero trace or parent id. The
// caller then ignores the header and a new trace starts. Of the flags only
// "sampled" is kept: it is the only one passed on.
func parseTraceparent(b []byte) (p parent, ok bool) {
	if len(b) < traceparentLen || b[2] != '-' || b[35] != '-' || b[52] != '-' {
		return p, false
	}
	version, ok := hexByte(b[0], b[1])
	switch {
	case !ok || version == 0xff:
		return p, false
	case version == 0 && len(b) != traceparentLen:
		return p, false
	case len(b) > traceparentLen && b[traceparentLen] != '-':
		// A later version may append fields, each after a '-'.
		return p, false
	}
	flags, ok := hexByte(b[53], b[54])
	if !ok || !decodeHex(p.traceID[:], b[3:35]) || !decodeHex(p.spanID[:], b[36:52]) {
		return p, false
	}
	if !p.traceID.IsValid() || !p.spanID.IsValid() {
		return p, false
	}
	p.flags = trace.TraceFlags(flags) & trace.FlagsSampled
	return p, true
}

// appendTraceparent appends the version 00 traceparent of a span.
func appendTraceparent(dst []byte, traceID trace.TraceID, spanID trace.SpanID, flags trace.TraceFlags) []byte {
	dst = append(dst, "00-"...)
	dst = hex.AppendEncode(dst, traceID[:])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, spanID[:])
	dst = append(dst, '-')
	return append(dst, '0', '0'+byte(flags&trace.FlagsSampled))
}

// validTracestate checks a tracestate value closely enough to pass it on:
// at most 512 characters and 32 members, each key=value in printable
// ASCII. An invalid one is dropped (the traceparent is still honoured), as
// the spec allows.
func validTracestate(b []byte) bool {
	if len(b) > maxTracestate {
		return false
	}
	members := 0
	for len(b) > 0 {
		var m []byte
		m, b, _ = bytes.Cut(b, comma)
		m = bytes.Trim(m, " \t")
		if len(m) == 0 {
			continue // empty list members are allowed
		}
		members++
		k, v, ok := bytes.Cut(m, equals)
		if !ok || len(k) == 0 || len(v) == 0 || members > maxTracestateMembers {
			return false
		}
		for _, c := range m {
			if c < 0x20 || c > 0x7e {
				return false
			}
		}
	}
	return true
}

var comma, equals = []byte(","), []byte("=")

// hexByte decodes two lower-case hex digits.
func hexByte(hi, lo byte) (byte, bool) {
	h, ok1 := fromHex(hi)
	l, ok2 := fromHex(lo)
	return h<<4 | l, ok1 && ok2
}

// decodeHex decodes lower-case hex src into dst (len(src) == 2*len(dst)).
func decodeHex(dst, src []byte) bool {
	for i := range dst {
		b, ok := hexByte(src[2*i], src[2*i+1])
		if !ok {
			return false
		}
		dst[i] = b
	}
	return true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
