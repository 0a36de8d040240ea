package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath"
	"github.com/hotpath/hotpath/internal/testenv"
)

// memServer is the reference service started in this process, served
// over an in-memory connection: the production chain and routes, the
// access log discarded.
type memServer struct {
	app         *hotpath.App
	driver, dsn string
}

// ServeConn serves the requests waiting in conn.
func (m memServer) ServeConn(conn net.Conn) error { return m.app.ServeConn(conn) }

// direct opens the server's database beside it.
func (m memServer) direct(tb testing.TB) database { return openDirect(tb, m.driver, m.dsn) }

// readsLimitFlag turns limits.reads on at a rate no benchmark reaches.
const readsLimitFlag = "--limits.reads=1000000/s"

// newMemServer starts the service with the given access-log share on
// SQLite.
func newMemServer(tb testing.TB, sample float64) (memServer, *testenv.MemConn) {
	return newMemServerWith(tb, sample)
}

// newMemServerOn is newMemServer on the given database driver; PostgreSQL
// gets a throwaway database from internal/testenv.
func newMemServerOn(tb testing.TB, sample float64, driver string) (memServer, *testenv.MemConn) {
	if driver == "postgres" {
		return newMemServerWith(tb, sample, "--db.driver=postgres", "--db.dsn="+testenv.PostgresDSN(tb))
	}
	return newMemServerWith(tb, sample)
}

// newMemServerWith is newMemServer with more flags.
func newMemServerWith(tb testing.TB, sample float64, args ...string) (memServer, *testenv.MemConn) {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "none.toml"), nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	base := []string{"-config", filepath.Join(dir, "none.toml"),
		"--server.addr=127.0.0.1:0", "--admin.addr=127.0.0.1:0",
		"--db.dsn=" + filepath.Join(dir, "bench.db"),
		"--log.access_sample=" + strconv.FormatFloat(sample, 'f', -1, 64),
		// A small queue warms up (every record made and grown) in a few requests.
		"--log.access_buffer=16",
		// No refresh: its reload of every World would be counted against the
		// requests the allocation tests measure.
		"--db.cache_refresh=0s",
	}
	app := newApp(hotpath.Output(io.Discard, io.Discard))
	if err := app.Start(append(base, args...)...); err != nil {
		tb.Fatalf("start: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = app.Stop(ctx)
	})
	// Wait for the World cache: its load would be counted against requests.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("http://" + app.AdminAddr() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == fasthttp.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			tb.Fatal("the in-process service was not ready after 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	conn := &testenv.MemConn{}
	conn.In.Grow(4096)
	conn.Out.Grow(4096)
	m := memServer{app: app, driver: "sqlite", dsn: filepath.Join(dir, "bench.db")}
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--db.driver="); ok {
			m.driver = v
		}
		if v, ok := strings.CutPrefix(a, "--db.dsn="); ok {
			m.dsn = v
		}
	}
	return m, conn
}

// connServer serves an in-memory connection: the service, or a bare twin.
type connServer interface{ ServeConn(net.Conn) error }

func benchServe(b *testing.B, srv connServer, conn *testenv.MemConn, req string) {
	b.ReportAllocs()
	for b.Loop() {
		conn.In.WriteString(req)
		if err := srv.ServeConn(conn); err != nil {
			b.Fatal(err)
		}
		conn.Out.Reset()
	}
}

func BenchmarkPlaintext(b *testing.B) {
	srv, conn := newMemServer(b, 0.01)
	benchServe(b, srv, conn, "GET /plaintext HTTP/1.1\r\nHost: bench\r\n\r\n")
}

// BenchmarkPlaintextReadsLimited is /plaintext with limits.reads on: the
// bucket decision and the two RateLimit headers, against BenchmarkPlaintext.
// Behind a trusted proxy it also reads X-Forwarded-For.
func BenchmarkPlaintextReadsLimited(b *testing.B) {
	for _, proxied := range []bool{false, true} {
		name, req := "peer", "GET /plaintext HTTP/1.1\r\nHost: bench\r\n\r\n"
		args := []string{readsLimitFlag}
		if proxied {
			name, req = "trusted-proxy", "GET /plaintext HTTP/1.1\r\nHost: bench\r\nX-Forwarded-For: 203.0.113.5\r\n\r\n"
			args = append(args, "--server.trusted_proxies=0.0.0.0/0")
		}
		b.Run(name, func(b *testing.B) {
			srv, conn := newMemServerWith(b, 0.01, args...)
			benchServe(b, srv, conn, req)
		})
	}
}

func BenchmarkJSON(b *testing.B) {
	srv, conn := newMemServer(b, 0.01)
	benchServe(b, srv, conn, "GET /json HTTP/1.1\r\nHost: bench\r\n\r\n")
}

// The bare twins: the same handlers on a plain fasthttp.Server with a path
// switch, the floor hotpath's chain is measured against.

func bareServer() (*fasthttp.Server, *testenv.MemConn) {
	conn := &testenv.MemConn{}
	conn.In.Grow(4096)
	conn.Out.Grow(4096)
	return &fasthttp.Server{Name: "bare", Handler: func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/plaintext":
			ctx.SetContentType(contentTypeText)
			ctx.SetBody(helloBody)
		case "/json":
			bareJSON(ctx)
		default:
			ctx.Error("not found", fasthttp.StatusNotFound)
		}
	}}, conn
}

// bareJSON is /json written by hand on fasthttp: a pooled go-json encoder
// and its message, the floor of the chain and public package's cost.
func bareJSON(ctx *fasthttp.RequestCtx) {
	e := bareEncoders.Get().(*bareEncoder)
	e.msg.Message = "Hello, World!"
	if err := e.enc.Encode(&e.msg); err != nil {
		panic(err)
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(bytes.TrimSuffix(e.buf.Bytes(), []byte("\n")))
	e.buf.Reset()
	bareEncoders.Put(e)
}

type bareEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
	msg message
}

var bareEncoders = sync.Pool{New: func() any {
	e := &bareEncoder{}
	e.enc = json.NewEncoder(&e.buf)
	return e
}}

func BenchmarkBarePlaintext(b *testing.B) {
	srv, conn := bareServer()
	benchServe(b, srv, conn, "GET /plaintext HTTP/1.1\r\nHost: bench\r\n\r\n")
}

func BenchmarkBareJSON(b *testing.B) {
	srv, conn := bareServer()
	benchServe(b, srv, conn, "GET /json HTTP/1.1\r\nHost: bench\r\n\r\n")
}

// BenchmarkJSONLogged logs every request: the cost of a sampled request.
func BenchmarkJSONLogged(b *testing.B) {
	srv, conn := newMemServer(b, 1)
	benchServe(b, srv, conn, "GET /json HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\n\r\n")
}

// The database endpoints on both drivers; compare their allocations with
// the budget table in bench/README.md.

func benchDB(b *testing.B, req string) {
	for _, driver := range []string{"sqlite", "postgres"} {
		b.Run(driver, func(b *testing.B) {
			srv, conn := newMemServerOn(b, 0.01, driver)
			benchServe(b, srv, conn, req)
		})
	}
}

func BenchmarkDB(b *testing.B) { benchDB(b, "GET /db HTTP/1.1\r\nHost: bench\r\n\r\n") }

func BenchmarkQueries20(b *testing.B) {
	benchDB(b, "GET /queries?queries=20 HTTP/1.1\r\nHost: bench\r\n\r\n")
}

func BenchmarkUpdates20(b *testing.B) {
	benchDB(b, "GET /updates?queries=20 HTTP/1.1\r\nHost: bench\r\n\r\n")
}

func BenchmarkFortunes(b *testing.B) { benchDB(b, "GET /fortunes HTTP/1.1\r\nHost: bench\r\n\r\n") }

func BenchmarkCachedQueries20(b *testing.B) {
	srv, conn := newMemServer(b, 0.01)
	benchServe(b, srv, conn, "GET /cached-queries?count=20 HTTP/1.1\r\nHost: bench\r\n\r\n")
}

// The price of tracing on /json, recording to a real OTLP receiver with
// tracing.sample = 0; compare with BenchmarkJSON (tracing off). A sampled
// request pays for its server span; at this rate most of those spans are
// dropped at the full queue, which costs the request nothing more.
func benchTraced(b *testing.B, headers string) {
	benchTracedAt(b, 0, headers)
}

func benchTracedAt(b *testing.B, sample float64, headers string) {
	srv, conn := newMemServerWith(b, 0.01, "--tracing.endpoint="+testenv.NewOTLPReceiver(b).URL,
		"--tracing.sample="+strconv.FormatFloat(sample, 'f', -1, 64))
	benchServe(b, srv, conn, "GET /json HTTP/1.1\r\nHost: bench\r\n"+headers+"\r\n")
}

func BenchmarkJSONTracingNotSampled(b *testing.B) { benchTraced(b, "") }

// BenchmarkJSONTracingSampleOnePercent is tracing as a fleet runs it
// (tracing.sample = 0.01): the sampled requests' spans and their export
// spread over all requests. The receiver decodes in this process, on the
// same CPU, so the figure is an upper bound.
func BenchmarkJSONTracingSampleOnePercent(b *testing.B) { benchTracedAt(b, 0.01, "") }

func BenchmarkJSONTraceparentNotSampled(b *testing.B) {
	benchTraced(b, "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00\r\n")
}

func BenchmarkJSONTraceSampled(b *testing.B) {
	benchTraced(b, "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n")
}
