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
)

// guard refuses what fasthttp parses but RFC 9112 lets a server reject,
// before any route runs. Each answer is encoded once, so refusing allocates
// nothing, and checking an ordinary request costs a few byte scans.
type guard struct {
	version, smuggled, folded, badName, tooMany []byte
}

func newGuard() *guard {
	return &guard{
		version:  problem.Static(fasthttp.StatusHTTPVersionNotSupported, "only HTTP/1.0 and HTTP/1.1 are served on this port"),
		smuggled: problem.Static(fasthttp.StatusBadRequest, "Content-Length and Transfer-Encoding must not both be sent"),
		folded:   problem.Static(fasthttp.StatusBadRequest, "header lines must not be folded (obs-fold)"),
		badName:  problem.Static(fasthttp.StatusBadRequest, "header names must not contain white space"),
		tooMany:  problem.Static(fasthttp.StatusRequestHeaderFieldsTooLarge, "a request may carry at most 100 header fields"),
	}
}

// refuse answers ctx and returns true when the request must not reach a
// route. The connection is closed after such an answer: framing that was
// in doubt once cannot be trusted for the next request.
func (g *guard) refuse(ctx *fasthttp.RequestCtx) bool {
	h := &ctx.Request.Header
	var status int
	var body []byte
	if p := h.Protocol(); !bytes.Equal(p, http11) && !bytes.Equal(p, http10) {
		// fasthttp serves HTTP/2.0 or HTTP/9.9 request lines as HTTP/1.0.
		status, body = fasthttp.StatusHTTPVersionNotSupported, g.version
	} else {
		status, body = g.checkFields(h.RawHeaders())
	}
	if status == 0 {
		return false
	}
	ctx.SetConnectionClose()
	problem.WriteStatic(ctx, status, body)
	return true
}

// checkFields walks the raw header block once (a few byte scans per field,
// no allocation) and returns the refusal it calls for, or 0.
func (g *guard) checkFields(raw []byte) (int, []byte) {
	fields := 0
	var length, chunked bool
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if len(line) == 0 || line[0] == '\r' {
			continue // the blank line that ends the block
		}
		if line[0] == ' ' || line[0] == '\t' {
			// fasthttp joins continuation lines into the value; RFC 9112
			// §5.2 lets a server reject them, and proxies disagree on joining.
			return fasthttp.StatusBadRequest, g.folded
		}
		fields++
		name := line
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			name = line[:i]
		}
		if bytes.IndexByte(name, ' ') >= 0 || bytes.IndexByte(name, '\t') >= 0 {
			// fasthttp keeps "X A" as a name; a proxy may read it otherwise.
			return fasthttp.StatusBadRequest, g.badName
		}
		switch name[0] | 0x20 {
		case 'c':
			length = length || bytes.EqualFold(name, contentLength)
		case 't':
			chunked = chunked || bytes.EqualFold(name, transferEncoding)
		}
	}
	switch {
	case length && chunked:
		// fasthttp lets Transfer-Encoding win (RFC 9112 §6.3 allows that);
		// refusing is safer when a proxy in front may have framed by length.
		return fasthttp.StatusBadRequest, g.smuggled
	case fields > MaxHeaders:
		return fasthttp.StatusRequestHeaderFieldsTooLarge, g.tooMany
	}
	return 0, nil
}
