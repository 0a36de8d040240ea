// Package admin serves the admin listener: liveness, readiness, Prometheus
// metrics and, when enabled, pprof. None of it is reachable on the
// application port.
package admin

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
	"github.com/valyala/fasthttp/reuseport"

	"github.com/hotpath/hotpath/internal/metrics"
	"github.com/hotpath/hotpath/internal/server"
)

// Check reports whether one dependency can serve; nil means it can.
type Check func(ctx context.Context) error

// Readiness combines the drain state with registered dependency checks.
type Readiness struct {
	draining *atomic.Bool
	mu       sync.Mutex
	checks   []namedCheck
}

type namedCheck struct {
	name  string
	check Check
}

// NewReadiness reads the drain state from draining.
func NewReadiness(draining *atomic.Bool) *Readiness {
	return &Readiness{draining: draining}
}

// Add registers a dependency check run by every /readyz.
func (r *Readiness) Add(name string, c Check) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks = append(r.checks, namedCheck{name, c})
}

// Ready returns nil when the process can serve, else why not.
func (r *Readiness) Ready(ctx context.Context) error {
	if r.draining.Load() {
		return fmt.Errorf("draining")
	}
	r.mu.Lock()
	checks := append([]namedCheck(nil), r.checks...)
	r.mu.Unlock()
	for _, c := range checks {
		if err := c.check(ctx); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return nil
}

// Server is the admin listener.
type Server struct {
	srv   *fasthttp.Server
	ln    net.Listener
	ready *Readiness
	reg   *metrics.Registry
	pprof bool
	log   *slog.Logger
	done  chan error
}

// New creates the admin server; Start listens.
func New(ready *Readiness, reg *metrics.Registry, pprof bool, log *slog.Logger) *Server {
	s := &Server{ready: ready, reg: reg, pprof: pprof, log: log, done: make(chan error, 1)}
	s.srv = &fasthttp.Server{
		Name:                  "hotpath-admin",
		Handler:               s.handle,
		ReadTimeout:           5 * time.Second,
		WriteTimeout:          30 * time.Second, // pprof profiles stream for their duration
		IdleTimeout:           60 * time.Second,
		NoDefaultServerHeader: true,
		SecureErrorLogMessage: true,
		Logger:                server.NewLogger(log, "admin"),
	}
	return s
}

// Start listens on addr (with SO_REUSEPORT when reusePort is set, for
// prefork children sharing the port) and serves in the background.
func (s *Server) Start(addr string, reusePort bool) error {
	listen, network := net.Listen, "tcp"
	if reusePort {
		listen, network = reuseport.Listen, "tcp4"
	}
	ln, err := listen(network, addr)
	if err != nil {
		return fmt.Errorf("listen on admin.addr %s: %w", addr, err)
	}
	s.ln = ln
	go func() { s.done <- s.srv.Serve(ln) }()
	return nil
}

// Addr is the bound address (useful when admin.addr has port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Stop closes the listener and waits for open requests up to ctx.
func (s *Server) Stop(ctx context.Context) error {
	if err := s.srv.ShutdownWithContext(ctx); err != nil {
		return fmt.Errorf("stop admin listener: %w", err)
	}
	return <-s.done
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	// pprof's symbol lookup takes POST; everything else only reads.
	if !ctx.IsGet() && !ctx.IsHead() && !(s.pprof && ctx.IsPost() && strings.HasPrefix(path, "/debug/pprof/")) {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("method not allowed: the admin endpoints answer GET and HEAD\n")
		return
	}
	switch {
	case path == "/healthz":
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
	case path == "/readyz":
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ctx.SetContentType("text/plain; charset=utf-8")
		if err := s.ready.Ready(c); err != nil {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString("not ready: " + err.Error() + "\n")
			return
		}
		ctx.SetBodyString("ready\n")
	case path == "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		_ = s.reg.WritePrometheus(ctx) // into the response body buffer, which never fails a write
	case s.pprof && strings.HasPrefix(path, "/debug/pprof/"):
		pprofhandler.PprofHandler(ctx)
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetBodyString("not found\n")
	}
}
