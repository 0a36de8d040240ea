package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/reuseport"

	"github.com/hotpath/hotpath/internal/config"
)

// Server is the application listener.
type Server struct {
	srv     *fasthttp.Server
	ln      net.Listener
	limited *limitListener
	done    chan error
	// server.concurrency, server.max_conns_per_ip and the timeouts,
	// enforced by the listener Serve wraps.
	maxConns, perIP int
	timeouts        Timeouts
	refused         func(status int)
}

// New builds the fasthttp.Server for handler from the server section.
func New(cfg config.Server, handler fasthttp.RequestHandler, log *slog.Logger) *Server {
	s := &Server{
		done:     make(chan error, 1),
		maxConns: cfg.Concurrency,
		perIP:    cfg.MaxConnsPerIP,
		timeouts: Timeouts{Read: cfg.ReadTimeout, Write: cfg.WriteTimeout, Idle: cfg.IdleTimeout},
		refused:  func(int) {},
	}
	s.srv = &fasthttp.Server{
		Handler: startsResponse(handler),
		// Name is never empty (config validates it), so Server: hotpath
		// is sent; this only stops fasthttp advertising itself.
		Name:                  cfg.Name,
		NoDefaultServerHeader: true,
		ErrorHandler:          s.answerError,
		ExpectHandler:         s.expectUnder(cfg.MaxBodySize),
		// No Read/Write/IdleTimeout here: the listener's watchdog
		// enforces them without a clock read per request (Timeouts),
		// and the request time is read only by whoever asks for it.
		LazyRequestTime:    true,
		MaxRequestBodySize: cfg.MaxBodySize,
		ReadBufferSize:     cfg.ReadBufferSize,
		// The listener enforces the connection caps with problem answers;
		// fasthttp counts a connection a moment longer than the listener
		// does, so its own plain-text cap gets room never to trigger.
		Concurrency: 2 * cfg.Concurrency,
		// In-flight responses during Shutdown carry Connection: close.
		CloseOnShutdown: true,
		// No buffer dump in parse errors; Logger cuts what they quote.
		SecureErrorLogMessage: true,
		// Multipart parsing through FormValue has no size limit.
		DisablePreParseMultipartForm: true,
		Logger:                       NewLogger(log, "app"),
	}
	return s
}

// OnRefusal sets what is told the status of every answer given before a
// request reaches the handler: the connection caps' 503 and 429, and the
// 400, 408, 413 and 431 for requests fasthttp could not read. The metrics
// count them there, since no route sees them. Call it before Serve.
func (s *Server) OnRefusal(f func(status int)) { s.refused = f }

// Listen binds addr, with SO_REUSEPORT when reusePort is set so several
// processes can share the port.
func Listen(addr string, reusePort bool) (net.Listener, error) {
	if reusePort {
		ln, err := reuseport.Listen("tcp4", addr)
		if err != nil {
			return nil, fmt.Errorf("listen with SO_REUSEPORT on server.addr %s: %w", addr, err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on server.addr %s: %w", addr, err)
	}
	return ln, nil
}

// Serve serves ln in the background until Stop.
func (s *Server) Serve(ln net.Listener) {
	s.ln = ln
	s.limited = newLimitListener(ln, s.srv.Name, s.maxConns, s.perIP, s.timeouts)
	s.limited.log, _ = s.srv.Logger.(*Logger)
	s.limited.refused = s.refused
	go func() { s.done <- s.srv.Serve(s.limited) }()
}

// ServeConn serves one connection with the same server and handler as the
// listener, without the listener's connection caps and timeouts: for
// in-process tests and benchmarks. It returns when c has no more requests.
func (s *Server) ServeConn(c net.Conn) error { return s.srv.ServeConn(c) }

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Stop closes the listener at once, closes idle keep-alive connections and
// waits for in-flight requests until ctx ends.
func (s *Server) Stop(ctx context.Context) error {
	err := s.srv.ShutdownWithContext(ctx)
	// fasthttp's shutdown returns at once, and forgets it was asked, when
	// its Serve has not taken the listener yet (a signal during start-up
	// with no drain): closing the listener ends that Serve too.
	_ = s.limited.Close()
	s.limited.stopWatching()
	if serveErr := <-s.done; serveErr != nil && !errors.Is(serveErr, net.ErrClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	if err != nil {
		return fmt.Errorf("wait for in-flight requests (shutdown.timeout): %w", err)
	}
	return nil
}

// Logger routes fasthttp's internal log lines into slog, at most a few per
// second so that a storm of broken connections cannot flood the log.
type Logger struct {
	log       *slog.Logger
	component string
	limit     *rateLimit
}

// NewLogger returns a fasthttp.Logger writing to log, tagged with component.
func NewLogger(log *slog.Logger, component string) *Logger {
	return &Logger{log: log, component: component, limit: &rateLimit{perSecond: 10}}
}

// Printf implements fasthttp.Logger. Errors are logged with their quoted
// parts cut out: SecureErrorLogMessage drops fasthttp's buffer dump, but
// its parse errors still quote the request line or a header value, which
// may be a bearer token or a cookie.
func (l *Logger) Printf(format string, args ...any) {
	if !l.limit.allow(time.Now()) {
		return
	}
	for i, a := range args {
		if err, ok := a.(error); ok {
			args[i] = redactQuoted(err.Error())
		}
	}
	l.log.Warn(fmt.Sprintf(format, args...), "component", l.component)
}

// redactQuoted replaces the content of every double-quoted part of s (as
// %q writes it, escapes included) with an ellipsis.
func redactQuoted(s string) string {
	var b strings.Builder
	for {
		open := strings.IndexByte(s, '"')
		if open < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:open])
		b.WriteString(`"…"`)
		s = s[open+1:]
		end := 0
		for end < len(s) && s[end] != '"' {
			if s[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(s) {
			return b.String() // unterminated: drop the rest
		}
		s = s[end+1:]
	}
}
