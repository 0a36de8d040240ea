package handler

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/store"
	"github.com/hotpath/hotpath/internal/tracing"
)

// ExtraFortune is added to every /fortunes answer at request time.
const ExtraFortune = "Additional fortune added at request time."

// fortunes is a pooled scratch set for one /fortunes request.
type fortunes struct {
	list []store.Fortune
	page bytes.Buffer
}

var fortunesPool = sync.Pool{New: func() any {
	return &fortunes{list: make([]store.Fortune, 0, 32)}
}}

// Fortunes answers GET /fortunes: every fortune plus one added now, sorted
// by message, as an HTML table.
func (h *DB) Fortunes(ctx *fasthttp.RequestCtx) {
	c, cancel := context.WithTimeout(tracing.Context(ctx), h.timeout)
	defer cancel()
	f := fortunesPool.Get().(*fortunes)
	defer func() {
		clear(f.list) // drop the message strings for the GC
		f.list = f.list[:0]
		f.page.Reset()
		fortunesPool.Put(f)
	}()
	var err error
	if f.list, err = h.store.Fortunes(c, f.list); err != nil {
		h.fail(ctx, err)
		return
	}
	f.list = append(f.list, store.Fortune{ID: 0, Message: ExtraFortune})
	slices.SortFunc(f.list, func(a, b store.Fortune) int { return cmp.Compare(a.Message, b.Message) })
	// Rendered by fortunes.qtpl: the messages land only in element text,
	// where its escaping is complete, at a tenth of html/template's cost.
	WriteFortunesPage(&f.page, f.list)
	ctx.SetContentType(ContentTypeHTML)
	ctx.SetBody(f.page.Bytes())
}
