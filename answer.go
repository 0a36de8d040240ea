package hotpath

import (
	"bytes"
	"fmt"
	"reflect"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/endpoint"
	"github.com/hotpath/hotpath/internal/store"
)

// Created is the answer of a route that made a resource: 201 Created with
// Location and the resource as JSON.
type Created[T any] struct {
	// Location is the path of the new resource, such as /v1/notes/42.
	Location string
	// Body is the resource as stored.
	Body T
}

// NoContent is the answer of a route that has nothing to say beyond its
// status: 204 No Content.
type NoContent struct{}

// shaped is an answer type of this package: how it is sent.
type shaped interface {
	shape() (status int, location string, body any)
	bodyType() reflect.Type
}

func (c *Created[T]) shape() (int, string, any) { return fasthttp.StatusCreated, c.Location, &c.Body }
func (*Created[T]) bodyType() reflect.Type      { return reflect.TypeFor[T]() }
func (*NoContent) shape() (int, string, any)    { return fasthttp.StatusNoContent, "", nil }
func (*NoContent) bodyType() reflect.Type       { return nil }

// answerPlan is how a route sends its answer type, resolved at
// registration.
type answerPlan struct {
	outType  reflect.Type // the route's answer type
	status   int          // of a plain type: 200
	bodyType reflect.Type // nil: no body
	shaped   bool
	etag     func(dst []byte, body any) []byte
}

// planAnswer resolves how answers of type Out are sent, and checks the
// route's ETag option takes Out's body type.
func planAnswer[Out any](s *routeSpec) (*answerPlan, error) {
	p := &answerPlan{outType: reflect.TypeFor[Out](), status: fasthttp.StatusOK, bodyType: reflect.TypeFor[Out](), etag: s.etag}
	if sh, ok := any(new(Out)).(shaped); ok {
		p.shaped = true
		p.status, _, _ = sh.shape()
		p.bodyType = sh.bodyType()
	}
	if s.ETag && p.bodyType != s.etagType {
		return nil, fmt.Errorf("hotpath.ETag takes *%v, but the answer's body is %v", s.etagType, p.bodyType)
	}
	return p, nil
}

// typeName names the answer type in messages.
func (p *answerPlan) typeName() string {
	if p == nil {
		return "nothing typed (a Handle route)"
	}
	return p.outType.String()
}

// parts are what an answer sends.
func (p *answerPlan) parts(out any) (status int, location string, body any) {
	if p.shaped {
		return out.(shaped).shape()
	}
	return p.status, "", out
}

// answer sends out, a pointer to the route's answer type (pooled, so it
// boxes for free): the answer a Write stored, if any, byte for byte; else
// 304 for a read whose If-None-Match names its tag; else the JSON body
// with its status, Location and ETag.
func (c *Ctx) answer(out any) {
	if c.stored {
		endpoint.WriteStored(c.rc, c.storedAnswer)
		return
	}
	p := c.route.out
	status, location, body := p.parts(out)
	rc := c.rc
	var tag []byte
	if p.etag != nil && body != nil {
		// Into the pooled Ctx: a stack buffer handed to the route's
		// function would escape and allocate.
		tag = quoteTag(p.etag, c.tag[:0], body)
	}
	if c.route.spec.Safe() {
		if tag != nil && endpoint.NotModified(rc, tag) {
			return
		}
	} else {
		rc.Response.Header.Set(fasthttp.HeaderCacheControl, endpoint.CacheNever)
		if tag != nil {
			rc.Response.Header.SetBytesV(fasthttp.HeaderETag, tag)
		}
	}
	if location != "" {
		rc.Response.Header.Set(fasthttp.HeaderLocation, location)
	}
	if body == nil {
		rc.SetStatusCode(status)
		return
	}
	c.writeJSON(status, body)
}

// quoteTag is the entity tag of body: the route's tag in quotes.
func quoteTag(tag func([]byte, any) []byte, dst []byte, body any) []byte {
	dst = append(dst, '"')
	dst = tag(dst, body)
	return append(dst, '"')
}

// render makes the stored form of out, the answer of a Write with an
// Idempotency-Key: what a retry gets back byte for byte.
func (p *answerPlan) render(out any) (store.Answer, error) {
	status, location, body := p.parts(out)
	ans := store.Answer{Status: status, Location: location}
	if body == nil {
		return ans, nil
	}
	if p.etag != nil {
		ans.ETag = string(quoteTag(p.etag, nil, body))
	}
	b, err := json.Marshal(body)
	if err != nil {
		return store.Answer{}, fmt.Errorf("encode the answer: %w", err)
	}
	ans.ContentType, ans.Body = contentTypeJSON, b
	return ans, nil
}

const contentTypeJSON = "application/json"

// encoder is a JSON encoder bound to its own buffer: go-json's Encoder
// keeps its writer for life. Each pooled Ctx keeps one, so an answer is
// encoded without another trip to a pool.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// writeJSON encodes v, a pointer to a pooled or long-lived value (a
// pointer to a local would escape and allocate), as the answer with
// status. v is not retained.
func (c *Ctx) writeJSON(status int, v any) {
	e := c.enc
	if e == nil {
		e = &encoder{}
		e.enc = json.NewEncoder(&e.buf)
		c.enc = e // made once per pooled Ctx
	}
	if err := e.enc.Encode(v); err != nil {
		// Answer types are checked when routes are registered; an error
		// here is a programming mistake, answered 500 by the chain.
		panic("hotpath: encode JSON answer: " + err.Error())
	}
	c.rc.SetStatusCode(status)
	c.rc.SetContentType(contentTypeJSON)
	// Encode ends with a newline; the answer does not need it.
	c.rc.SetBody(bytes.TrimSuffix(e.buf.Bytes(), newline))
	e.buf.Reset()
}

var newline = []byte("\n")
