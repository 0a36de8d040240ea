package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/accesslog"
	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/handler"
	"github.com/hotpath/hotpath/internal/metrics"
	"github.com/hotpath/hotpath/internal/ratelimit"
	"github.com/hotpath/hotpath/internal/testenv"
	"github.com/hotpath/hotpath/internal/tracing"
	"github.com/hotpath/hotpath/internal/worldcache"
)

// newMemServer builds the production chain with the given access-log share,
// the log writer discarding its lines.
func newMemServer(tb testing.TB, sample float64) (*fasthttp.Server, *testenv.MemConn) {
	return newMemServerOn(tb, sample, "sqlite")
}

// newMemServerOn is newMemServer on the given database driver; PostgreSQL
// gets a throwaway database from internal/testenv.
func newMemServerOn(tb testing.TB, sample float64, driver string) (*fasthttp.Server, *testenv.MemConn) {
	tb.Helper()
	cfg := config.Default()
	cfg.DB.Driver = driver
	return newMemServerWith(tb, sample, cfg)
}

// newMemServerWith is newMemServer with the configuration cfg. with, when
// given, adds endpoints beyond the database ones.
func newMemServerWith(tb testing.TB, sample float64, cfg config.Config, with ...func(*endpoints, database, *worldcache.Cache)) (*fasthttp.Server, *testenv.MemConn) {
	tb.Helper()
	driver := cfg.DB.Driver
	cfg.Log.AccessSample = sample
	// A small queue warms up (every record made and grown) in a few requests.
	cfg.Log.AccessBuffer = 16
	reg := metrics.New("test")
	access := accesslog.New(io.Discard, cfg.Log.AccessBuffer, reg.AccessLogDropped)
	access.Start()
	tb.Cleanup(access.Stop)
	var draining atomic.Bool
	log := slog.New(slog.DiscardHandler)
	cfg.DB.DSN = filepath.Join(tb.TempDir(), "bench.db")
	if driver == "postgres" {
		cfg.DB.DSN = testenv.PostgresDSN(tb)
	}
	db, err := openDatabase(context.Background(), cfg.DB, nil, log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	cache := worldcache.New()
	// No refresh: its reload of every World would be counted against the
	// requests the allocation tests measure.
	cache.Start(db, cfg.DB.Timeout, time.Second, 0, log)
	tb.Cleanup(cache.Stop)
	// Wait for the load: its allocations would be counted against requests.
	for !cache.Loaded() {
		time.Sleep(10 * time.Millisecond)
	}
	limits, reads, err := newLimits(cfg, reg)
	if err != nil {
		tb.Fatal(err)
	}
	tracer, err := tracing.New(cfg.Tracing, "hotpath", "test", reg.Set(), log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = tracer.Shutdown(context.Background()) })
	e := endpoints{db: handler.NewDB(db, cache, cfg.DB.Timeout, log), limits: limits, reads: reads}
	for _, w := range with {
		w(&e, db, cache)
	}
	h, _, err := buildHandler(cfg, e, reg, access, tracer, &draining, log)
	if err != nil {
		tb.Fatal(err)
	}
	conn := &testenv.MemConn{}
	conn.In.Grow(4096)
	conn.Out.Grow(4096)
	return &fasthttp.Server{Handler: h, Name: cfg.Server.Name}, conn
}

func benchServe(b *testing.B, srv *fasthttp.Server, conn *testenv.MemConn, req string) {
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
		cfg := config.Default()
		cfg.Limits.Reads = ratelimit.Rate{N: ratelimit.MaxN, Per: time.Second}
		if proxied {
			name, req = "trusted-proxy", "GET /plaintext HTTP/1.1\r\nHost: bench\r\nX-Forwarded-For: 203.0.113.5\r\n\r\n"
			cfg.Server.TrustedProxies = []string{"0.0.0.0/0"}
		}
		b.Run(name, func(b *testing.B) {
			srv, conn := newMemServerWith(b, 0.01, cfg)
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
			handler.Plaintext(ctx)
		case "/json":
			handler.JSON(ctx)
		default:
			ctx.Error("not found", fasthttp.StatusNotFound)
		}
	}}, conn
}

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
	cfg := config.Default()
	cfg.Tracing.Endpoint, cfg.Tracing.Sample = testenv.NewOTLPReceiver(b).URL, sample
	srv, conn := newMemServerWith(b, 0.01, cfg)
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
