// Package compress compresses large answers for clients that accept it:
// zstd, br or gzip, negotiated from Accept-Encoding with its q-values
// (RFC 9110 §12.5.3).
//
// Only the routes whose options ask for it are wrapped (typed routes by
// default, hotpath.Compress): a route that is not never passes through
// here, so it pays nothing. A wrapped route always says
// Vary: Accept-Encoding, and compresses an answer only when it has a body
// of at least server.compress_min_size bytes, a textual type and no
// Content-Encoding yet; never a HEAD, 204 or 304 answer. The encoders are
// fasthttp's, pooled per level; the output buffers are pooled here.
package compress

import (
	"bytes"
	"sync"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/etag"
)

// Coding is a content coding this package can apply.
type Coding uint8

// The codings, in the order the server prefers them when a client weighs
// several equally: zstd is the fastest for its ratio, br compresses text
// best, gzip is understood everywhere.
const (
	Identity Coding = iota
	Zstd
	Br
	Gzip
)

// names are the Content-Encoding tokens, by Coding.
var names = [...]string{Identity: "identity", Zstd: "zstd", Br: "br", Gzip: "gzip"}

func (c Coding) String() string { return names[c] }

// Compressor wraps handlers so their answers are compressed.
type Compressor struct {
	minSize int
	counted [len(names)]*vm.Counter // answers compressed, by Coding
}

// New returns a Compressor for answers of at least minSize bytes
// (server.compress_min_size), counting what it compresses in set as
// http_compressed_responses_total{encoding}. With enabled false
// (server.compress) it returns nil, whose Wrap changes nothing.
func New(enabled bool, minSize int, set *vm.Set) *Compressor {
	if !enabled {
		return nil
	}
	c := &Compressor{minSize: minSize}
	for _, k := range []Coding{Zstd, Br, Gzip} {
		c.counted[k] = set.NewCounter(`http_compressed_responses_total{encoding="` + k.String() + `"}`)
	}
	return c
}

// Wrap returns h with its answers compressed as the client accepts. A nil
// Compressor returns h itself.
func (c *Compressor) Wrap(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	if c == nil {
		return h
	}
	return func(ctx *fasthttp.RequestCtx) {
		h(ctx)
		c.compress(ctx)
	}
}

var (
	varyKey   = []byte(fasthttp.HeaderVary)
	varyValue = []byte(fasthttp.HeaderAcceptEncoding)
)

// compress rewrites the answer ctx holds, if it should be compressed.
func (c *Compressor) compress(ctx *fasthttp.RequestCtx) {
	resp := &ctx.Response
	addVary(&resp.Header)
	if ctx.IsHead() {
		return
	}
	switch status := resp.StatusCode(); {
	case status < 200, status == fasthttp.StatusNoContent, status == fasthttp.StatusNotModified:
		return
	}
	if len(resp.Header.ContentEncoding()) > 0 {
		return // compressed already: never twice
	}
	coding, required := Negotiate(ctx.Request.Header.Peek(fasthttp.HeaderAcceptEncoding))
	if coding == Identity {
		return
	}
	body := resp.Body()
	if len(body) == 0 || (len(body) < c.minSize && !required) || !textual(resp.Header.ContentType()) {
		return
	}
	buf := buffers.Get().(*[]byte)
	out := encode((*buf)[:0], coding, body)
	if len(out) >= len(body) && !required {
		*buf = out[:0]
		buffers.Put(buf)
		return // no smaller: the identity answer is the better one
	}
	*buf = resp.SwapBody(out)[:0] // Content-Length follows the new body
	buffers.Put(buf)
	resp.Header.SetContentEncoding(coding.String())
	if tag := resp.Header.Peek(fasthttp.HeaderETag); len(tag) > 0 {
		// The compressed bytes are another representation: a strong tag
		// must differ (package etag reads both spellings as one state).
		var b [64]byte
		resp.Header.SetBytesV(fasthttp.HeaderETag, etag.WithCoding(b[:0], tag, coding.String()))
	}
	c.counted[coding].Inc()
}

// buffers hold compressed bodies; SwapBody hands back the buffer the
// response had, which goes into the pool in their place.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Levels: fasthttp's defaults, a balance that keeps a 100-item page well
// under a millisecond (see the README's compression figures).
func encode(dst []byte, coding Coding, body []byte) []byte {
	switch coding {
	case Zstd:
		return fasthttp.AppendZstdBytesLevel(dst, body, fasthttp.CompressZstdDefault)
	case Br:
		return fasthttp.AppendBrotliBytesLevel(dst, body, fasthttp.CompressBrotliDefaultCompression)
	default:
		return fasthttp.AppendGzipBytesLevel(dst, body, fasthttp.CompressDefaultCompression)
	}
}

// addVary adds Accept-Encoding to the Vary header: the answer of a wrapped
// route depends on it, compressed or not, so caches must key on it.
func addVary(h *fasthttp.ResponseHeader) {
	v := h.PeekBytes(varyKey)
	if len(v) == 0 {
		h.SetCanonical(varyKey, varyValue)
		return
	}
	if hasToken(v, varyValue) || bytes.Equal(bytes.TrimSpace(v), []byte("*")) {
		return
	}
	joined := make([]byte, 0, len(v)+2+len(varyValue))
	h.SetCanonical(varyKey, append(append(append(joined, v...), ", "...), varyValue...))
}

// textual reports whether a content type is worth compressing: text and
// JSON; images and archives are compressed already.
func textual(ct []byte) bool {
	return bytes.HasPrefix(ct, []byte("text/")) || bytes.Contains(ct, []byte("json"))
}

// hasToken reports whether the comma-separated list v holds token,
// case-insensitively.
func hasToken(v, token []byte) bool {
	for len(v) > 0 {
		var item []byte
		item, v, _ = bytes.Cut(v, []byte(","))
		if bytes.EqualFold(bytes.TrimSpace(item), token) {
			return true
		}
	}
	return false
}
