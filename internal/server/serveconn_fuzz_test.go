package server

import (
	"bufio"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/accesslog"
	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/metrics"
	"github.com/hotpath/hotpath/internal/requestid"
	"github.com/hotpath/hotpath/internal/router"
	"github.com/hotpath/hotpath/internal/testenv"
)

// fuzzServer is the application server as main builds it: this package's
// fasthttp settings around the router chain, with two small answers and
// a handler that reads the body.
func fuzzServer(tb testing.TB) *fasthttp.Server {
	tb.Helper()
	reg := metrics.New("fuzz")
	access := accesslog.New(io.Discard, 64, reg.AccessLogDropped)
	access.Start()
	tb.Cleanup(access.Stop)
	ids, err := requestid.NewGenerator()
	if err != nil {
		tb.Fatal(err)
	}
	r := router.New(reg, slog.New(slog.DiscardHandler))
	r.GET("/plaintext", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain")
		ctx.SetBodyString("Hello, World!")
	})
	r.GET("/json", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"message":"Hello, World!"}`)
	})
	r.Handle(fasthttp.MethodPost, "/echo", func(ctx *fasthttp.RequestCtx) { ctx.SetBody(ctx.PostBody()) })
	var draining atomic.Bool
	cfg := config.Default().Server
	cfg.MaxBodySize = 4096
	cfg.ReadBufferSize = 4096
	return New(cfg, r.Handler(router.Options{
		IDs: ids, Access: access, Sampler: accesslog.NewSampler(0.5, time.Hour), Draining: &draining,
	}), slog.New(slog.DiscardHandler)).srv
}

// FuzzServeConn sends arbitrary bytes through the whole chain. The oracle:
// no panic (a recovered one would show as a 500), no hang, and every
// answer a well-formed HTTP/1.1 response with a known status.
func FuzzServeConn(f *testing.F) {
	for _, s := range []string{
		"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /json HTTP/1.1\r\nHost: x\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /json HTTP/1.1\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 99999\r\n\r\n",
		"GET /plaintext HTTP/2.0\r\nHost: x\r\n\r\n",
		"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
		"GET /plaintext HTTP/1.1\r\nHost: x\r\nX B: y\r\n\r\n",
		"GET /x/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://evil/plaintext HTTP/1.1\r\nHost: x\r\n\r\n",
		"get /plaintext HTTP/1.0\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Request-ID: abc\r\nConnection: close\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	srv := fuzzServer(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &testenv.MemConn{}
		c.In.Write(in)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.ServeConn(c) // parse errors are answered, then returned
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("ServeConn still running after 5s on %q", in)
		}
		r := bufio.NewReader(&c.Out)
		for r.Buffered() > 0 || c.Out.Len() > 0 {
			if peek, _ := r.Peek(len("HTTP/1.1 100")); string(peek) == "HTTP/1.1 100" {
				if _, err := r.ReadString('\n'); err != nil {
					t.Fatal(err)
				}
				if _, err := r.ReadString('\n'); err != nil {
					t.Fatal(err)
				}
				continue
			}
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatalf("input %q: unparsable answer %q: %v", in, c.Out.String(), err)
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("input %q: answer body: %v", in, err)
			}
			if resp.StatusCode == 500 || http.StatusText(resp.StatusCode) == "" {
				t.Fatalf("input %q: status %d", in, resp.StatusCode)
			}
			if resp.StatusCode >= 400 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
				t.Fatalf("input %q: %d without a problem body", in, resp.StatusCode)
			}
		}
	})
}
