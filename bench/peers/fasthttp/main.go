// Command fasthttp is the bare-fasthttp peer: a switch on the path, pgx for
// the database, one JSON encoding per request. It is the ceiling hotpath's
// own fasthttp stack is measured against.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"log"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/bench/internal/tfb"
)

// handler routes with a switch on the path, as fasthttp's own examples do.
type handler struct{ db *tfb.DB }

// timeouts gives the server hotpath's default connection limits, for a
// comparison that separates their cost (a deadline update per request) from
// the cost of hotpath's request chain. Bare fasthttp sets none.
var timeouts = flag.Bool("timeouts", false, "set read 5s, write 5s and idle 60s timeouts, as hotpath's defaults")

// headers makes the peer send the two headers hotpath puts on every answer,
// through the same public fasthttp calls, for a comparison that separates
// their cost from the cost of the rest of hotpath's chain.
var headers = flag.Bool("headers", false, "send X-Content-Type-Options: nosniff and an X-Request-Id on every answer, as hotpath does")

func main() {
	tfb.RunPeer(func(db *tfb.DB, addr string) (func() error, func()) {
		srv := &fasthttp.Server{Name: "fasthttp", Handler: (&handler{db: db}).serve}
		if *headers {
			srv.Handler = withHeaders(srv.Handler)
		}
		if *timeouts {
			srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout = 5*time.Second, 5*time.Second, 60*time.Second
		}
		serve := func() error { return srv.ListenAndServe(addr) }
		return serve, func() {
			srv.Shutdown() // the error only says the server was not running
		}
	})
}

func (h *handler) serve(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/plaintext":
		ctx.SetContentType("text/plain")
		ctx.SetBodyString("Hello, World!")
	case "/json":
		h.json(ctx, struct {
			Message string `json:"message"`
		}{"Hello, World!"})
	case "/db":
		w, err := h.db.World(ctx, tfb.RandomID())
		h.result(ctx, w, err)
	case "/queries":
		ws, err := h.db.Worlds(ctx, tfb.Count(string(ctx.QueryArgs().Peek("queries"))))
		h.result(ctx, ws, err)
	case "/updates":
		ws, err := h.db.Update(ctx, tfb.Count(string(ctx.QueryArgs().Peek("queries"))))
		h.result(ctx, ws, err)
	case "/fortunes":
		fs, err := h.db.Fortunes(ctx)
		if err != nil {
			h.fail(ctx, err)
			return
		}
		ctx.SetContentType("text/html; charset=utf-8")
		ctx.Response.SetBodyRaw(tfb.AppendFortunesHTML(nil, tfb.AddAndSort(fs)))
	default:
		ctx.Error("not found", fasthttp.StatusNotFound)
	}
}

func (h *handler) result(ctx *fasthttp.RequestCtx, v any, err error) {
	if err != nil {
		h.fail(ctx, err)
		return
	}
	h.json(ctx, v)
}

func (h *handler) json(ctx *fasthttp.RequestCtx, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		h.fail(ctx, err)
		return
	}
	ctx.SetContentType("application/json")
	ctx.Response.SetBodyRaw(body)
}

func (h *handler) fail(ctx *fasthttp.RequestCtx, err error) {
	log.Printf("%s: %v", ctx.Path(), err)
	ctx.Error("internal error", fasthttp.StatusInternalServerError)
}

var (
	requestIDKey = []byte("X-Request-Id")
	nosniffKey   = []byte("X-Content-Type-Options")
	nosniffValue = []byte("nosniff")
)

// withHeaders adds hotpath's two per-answer headers: nosniff, and the
// caller's X-Request-Id when it is 1..128 visible ASCII characters, else a
// new one made of a random process prefix and a counter.
func withHeaders(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		log.Fatalf("seed request ids: %v", err)
	}
	prefix := hex.EncodeToString(seed[:]) + "-"
	var counter atomic.Uint64
	return func(ctx *fasthttp.RequestCtx) {
		h := &ctx.Response.Header
		if id := ctx.Request.Header.PeekBytes(requestIDKey); validID(id) {
			h.SetCanonical(requestIDKey, id)
		} else {
			var buf [64]byte
			h.SetCanonical(requestIDKey, strconv.AppendUint(append(buf[:0], prefix...), counter.Add(1), 16))
		}
		h.SetCanonical(nosniffKey, nosniffValue)
		next(ctx)
	}
}

func validID(id []byte) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
