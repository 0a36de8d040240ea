package router

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/problem"
)

// MaxHeaders is the most header fields a request may carry; more get 431.
// fasthttp has no count limit of its own, and a few hundred tiny headers fit
// in the read buffer; 100 is Envoy's max_headers_count.
const MaxHeaders = 100

// Byte patterns the guard looks for in the raw header block.
var (
	http11           = []byte("HTTP/1.1")
	http10           = []byte("HTTP/1.0")
	contentLength    = []byte("content-length")
	transferEncoding = []byte("transfer-encoding")
	chunkedCoding    = []byte("chunked")
	xRequestID       = []byte("x-request-id")
	traceparent      = []byte("traceparent")
	tracestate       = []byte("tracestate")
	colon            = []byte(":")
)

// guard refuses what fasthttp parses but RFC 9112 lets a server reject,
// before any route runs. Each answer is encoded once, so refusing allocates
// nothing, and checking an ordinary request costs a few byte scans.
type guard struct {
	version, smuggled, coding, folded, bareLF, badName, tooMany []byte
}

func newGuard() *guard {
	return &guard{
		version:  problem.Static(fasthttp.StatusHTTPVersionNotSupported, "only HTTP/1.0 and HTTP/1.1 are served on this port"),
		smuggled: problem.Static(fasthttp.StatusBadRequest, "Content-Length and Transfer-Encoding must not both be sent"),
		coding:   problem.Static(fasthttp.StatusBadRequest, "Transfer-Encoding must be chunked and nothing else"),
		folded:   problem.Static(fasthttp.StatusBadRequest, "header lines must not be folded (obs-fold)"),
		bareLF:   problem.Static(fasthttp.StatusBadRequest, "header lines must end in CRLF"),
		badName:  problem.Static(fasthttp.StatusBadRequest, "header names must not contain white space"),
		tooMany:  problem.Static(fasthttp.StatusRequestHeaderFieldsTooLarge, "a request may carry at most 100 header fields"),
	}
}

// picked are the header values the chain needs, found in the guard's walk
// (fasthttp's own lookup copies and normalises the name on every call).
type picked struct {
	// id is the first X-Request-ID value.
	id []byte
	// traceparent and tracestate are the first values of the W3C trace
	// context headers; traceparents and tracestates count them.
	traceparent, tracestate   []byte
	traceparents, tracestates int
}

// check returns the refusal a request calls for (status 0 when none) and,
// from the same walk over its header block, the values the chain needs.
func (g *guard) check(ctx *fasthttp.RequestCtx) (f picked, status int, body []byte) {
	h := &ctx.Request.Header
	if p := h.Protocol(); !bytes.Equal(p, http11) && !bytes.Equal(p, http10) {
		// fasthttp serves HTTP/2.0 or HTTP/9.9 request lines as HTTP/1.0.
		return f, fasthttp.StatusHTTPVersionNotSupported, g.version
	}
	return g.checkFields(h.RawHeaders())
}

// refuse sends a guard's refusal and closes the connection after it:
// framing that was in doubt once cannot be trusted for the next request.
func refuse(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetConnectionClose()
	problem.WriteStatic(ctx, status, body)
}

// checkFields walks the raw header block once (a few byte scans per field,
// no allocation) and returns the picked values and the refusal the block
// calls for, or status 0.
func (g *guard) checkFields(raw []byte) (f picked, status int, body []byte) {
	fields := 0
	var length, chunked bool
lines:
	for len(raw) > 0 {
		switch raw[0] {
		case '\r', '\n': // the blank line that ends the block
			i := bytes.IndexByte(raw, '\n')
			if i < 0 {
				break lines
			}
			if i == 0 || raw[i-1] != '\r' {
				return picked{}, fasthttp.StatusBadRequest, g.bareLF
			}
			raw = raw[i+1:]
			continue
		case ' ', '\t':
			// fasthttp joins continuation lines into the value; RFC 9112
			// §5.2 lets a server reject them, and proxies disagree on joining.
			return picked{}, fasthttp.StatusBadRequest, g.folded
		}
		fields++
		// The name runs to ':'. Names are short, so one byte loop beats
		// searching it three times.
		n := 0
		for ; n < len(raw) && raw[n] != ':' && raw[n] != '\n'; n++ {
			if raw[n] == ' ' || raw[n] == '\t' {
				// fasthttp keeps "X A" as a name; a proxy may read it otherwise.
				return picked{}, fasthttp.StatusBadRequest, g.badName
			}
		}
		name, value := raw[:n], raw[n:]
		if i := bytes.IndexByte(value, '\n'); i >= 0 {
			// fasthttp ends a line at a bare LF too; a proxy in front that
			// does not would see other fields, perhaps another length.
			if n+i == 0 || raw[n+i-1] != '\r' {
				return picked{}, fasthttp.StatusBadRequest, g.bareLF
			}
			value, raw = value[:i], value[i+1:]
		} else {
			raw = nil
		}
		if len(name) == 0 {
			continue
		}
		switch name[0] | 0x20 {
		case 'c':
			length = length || bytes.EqualFold(name, contentLength)
		case 't':
			switch {
			case len(name) == len(traceparent) && bytes.EqualFold(name, traceparent):
				if f.traceparents++; f.traceparents == 1 {
					f.traceparent = fieldValue(value)
				}
			case len(name) == len(tracestate) && bytes.EqualFold(name, tracestate):
				if f.tracestates++; f.tracestates == 1 {
					f.tracestate = fieldValue(value)
				}
			case bytes.EqualFold(name, transferEncoding):
				// fasthttp reads any other coding (identity, say) as no
				// body at all, so the body would be parsed as the next
				// request; RFC 9112 §6.3 says refuse.
				if !bytes.EqualFold(fieldValue(value), chunkedCoding) {
					return picked{}, fasthttp.StatusBadRequest, g.coding
				}
				chunked = true
			}
		case 'x':
			if f.id == nil && bytes.EqualFold(name, xRequestID) {
				f.id = fieldValue(value)
			}
		}
	}
	switch {
	case length && chunked:
		// fasthttp lets Transfer-Encoding win (RFC 9112 §6.3 allows that);
		// refusing is safer when a proxy in front may have framed by length.
		return picked{}, fasthttp.StatusBadRequest, g.smuggled
	case fields > MaxHeaders:
		return picked{}, fasthttp.StatusRequestHeaderFieldsTooLarge, g.tooMany
	}
	return f, 0, nil
}

// fieldValue is a field's value from the colon on, without the colon and
// the white space around it.
func fieldValue(v []byte) []byte {
	return bytes.Trim(bytes.TrimPrefix(v, colon), " \t\r")
}
