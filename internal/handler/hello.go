// Package handler holds the handlers of the benchmark-shaped endpoints:
// /plaintext and /json here, the database endpoints beside them.
package handler

import (
	"bytes"
	"sync"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

const (
	// ContentTypeJSON is sent with every JSON answer.
	ContentTypeJSON = "application/json"
	// ContentTypeText is sent with /plaintext.
	ContentTypeText = "text/plain"
	// ContentTypeHTML is sent with every HTML page.
	ContentTypeHTML = "text/html; charset=utf-8"
)

var helloBody = []byte("Hello, World!")

// Plaintext answers GET /plaintext.
func Plaintext(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType(ContentTypeText)
	ctx.SetBody(helloBody)
}

// Message is the /json answer.
type Message struct {
	Message string `json:"message"`
}

// JSON answers GET /json, encoding the message on every request as the
// TechEmpower rules demand.
func JSON(ctx *fasthttp.RequestCtx) {
	e := acquireEncoder()
	defer releaseEncoder(e)
	// The message lives in the pooled encoder: a local passed to Encode as an
	// interface would escape and cost one allocation per request.
	e.msg.Message = "Hello, World!"
	e.write(ctx, fasthttp.StatusOK, &e.msg)
}

// encoder is a JSON encoder bound to its own buffer, pooled because
// go-json's Encoder keeps its writer for life.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
	msg Message
}

var encoders = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = json.NewEncoder(&e.buf)
	return e
}}

func acquireEncoder() *encoder { return encoders.Get().(*encoder) }

func releaseEncoder(e *encoder) {
	e.buf.Reset()
	encoders.Put(e)
}

// write encodes v as the answer with status.
func (e *encoder) write(ctx *fasthttp.RequestCtx, status int, v any) {
	if err := e.enc.Encode(v); err != nil {
		// Our answer types hold only strings and numbers; an error here is a
		// programming mistake, answered as a 500 by the panic handler.
		panic("handler: encode JSON answer: " + err.Error())
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType(ContentTypeJSON)
	// Encode ends with a newline; the answer does not need it.
	ctx.SetBody(bytes.TrimSuffix(e.buf.Bytes(), newline))
}

var newline = []byte("\n")

// WriteJSON encodes v as a JSON answer with status. v should point to a
// pooled or long-lived value: it is passed as an interface, so a pointer to
// a local escapes and allocates. It is not retained.
func WriteJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	e := acquireEncoder()
	defer releaseEncoder(e)
	e.write(ctx, status, v)
}
