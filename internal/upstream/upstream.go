// Package upstream owns every call hotpath makes to another service: one
// pooled, bounded fasthttp.HostClient per upstream, with per-attempt
// deadlines, retries of idempotent requests with jittered backoff, a
// circuit breaker, X-Request-ID passed on, and metrics per upstream.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/requestid"
	"github.com/hotpath/hotpath/internal/tracing"
)

// ErrBreakerOpen is returned, wrapped, when the upstream's circuit breaker
// refuses a call: recent calls failed and the cool-down has not ended.
var ErrBreakerOpen = errors.New("circuit breaker open")

// Backoff before retry n (1-based) is drawn from [d/2, d] with
// d = min(backoffBase * 2^(n-1), backoffMax): the jitter keeps callers that
// failed together from retrying together.
const (
	backoffBase = 50 * time.Millisecond
	backoffMax  = 2 * time.Second
)

// Client calls one upstream. It is safe for concurrent use.
type Client struct {
	name    string
	scheme  string
	host    string
	path    string // base path without a trailing slash
	timeout time.Duration
	retries int
	hc      *fasthttp.HostClient
	breaker *breaker

	requests, errs, retried, rejected *vm.Counter
	duration                          *vm.PrometheusHistogram
}

// New returns a client for the upstream called name, registering its
// metrics in set (labelled upstream="name").
func New(name string, cfg config.Upstream, set *vm.Set) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream %s: invalid url %q: want http:// or https://", name, cfg.URL)
	}
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	c := &Client{
		name:    name,
		scheme:  u.Scheme,
		host:    u.Host,
		path:    strings.TrimSuffix(u.EscapedPath(), "/"),
		timeout: cfg.Timeout,
		retries: cfg.Retries,
		breaker: newBreaker(max(cfg.BreakerFailures, 1), cfg.BreakerCooldown),
		hc: &fasthttp.HostClient{
			Addr:                      addr,
			IsTLS:                     u.Scheme == "https",
			Name:                      "hotpath",
			MaxConns:                  cfg.MaxConns,
			MaxIdleConnDuration:       30 * time.Second,
			MaxConnWaitTimeout:        cfg.Timeout,
			MaxIdemponentCallAttempts: 1, // Do retries, with backoff and the breaker in the loop
			RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
			MaxResponseBodySize:       16 << 20,
		},
	}
	label := fmt.Sprintf("{upstream=%q}", name)
	// GetOrCreate: two clients of one name (a webhook URL listed in two
	// places) share their series instead of panicking.
	c.requests = set.GetOrCreateCounter("upstream_requests_total" + label)
	c.errs = set.GetOrCreateCounter("upstream_errors_total" + label)
	c.retried = set.GetOrCreateCounter("upstream_retries_total" + label)
	c.rejected = set.GetOrCreateCounter("upstream_breaker_rejections_total" + label)
	c.duration = set.GetOrCreatePrometheusHistogram("upstream_request_duration_seconds" + label)
	set.GetOrCreateGauge("upstream_breaker_state"+label, func() float64 { return float64(c.breaker.current()) })
	return c, nil
}

// NewAll returns one client per configured upstream, by name, so a handler
// reaches the service its [upstreams.NAME] table describes.
func NewAll(cfgs map[string]config.Upstream, set *vm.Set) (map[string]*Client, error) {
	clients := make(map[string]*Client, len(cfgs))
	for name, cfg := range cfgs {
		c, err := New(name, cfg, set)
		if err != nil {
			return nil, err
		}
		clients[name] = c
	}
	return clients, nil
}

// Name is the upstream's configured name.
func (c *Client) Name() string { return c.name }

// Do sends req and reads the answer into resp. A request URI without a
// host is taken relative to the upstream's url. Each attempt ends at the
// earlier of the ctx deadline and the upstream's timeout; cancelling ctx
// without a deadline is noticed only between attempts.
//
// Idempotent requests (GET, HEAD, PUT, DELETE, OPTIONS, or any request
// carrying an Idempotency-Key header) are repeated up to retries times
// after a connection error or a 502, 503 or 504. The error is non-nil only
// when no answer arrived; a 5xx answer after the last attempt is in resp.
func (c *Client) Do(ctx context.Context, req *fasthttp.Request, resp *fasthttp.Response) error {
	c.resolve(req)
	if id, ok := ctx.Value(requestIDKey{}).(string); ok && len(req.Header.Peek(requestid.Header)) == 0 {
		req.Header.Set(requestid.Header, id)
	}
	attempts := 1
	if idempotent(req) {
		attempts += c.retries
	}
	var err error
	for n := 0; n < attempts; n++ {
		if n > 0 {
			if werr := sleep(ctx, backoff(n)); werr != nil {
				break
			}
			c.retried.Inc()
		}
		if cerr := ctx.Err(); cerr != nil {
			// The caller gave up before this attempt: nothing is sent, and
			// the breaker learns nothing about the upstream from it.
			if n == 0 {
				return fmt.Errorf("upstream %s: %s %s: %w", c.name, req.Header.Method(), req.URI().Path(), cerr)
			}
			break
		}
		if !c.breaker.allow() {
			c.rejected.Inc()
			// Traced too: a trace shows the call that was never made.
			tracing.StartClient(ctx, req, c.name, n).EndClient(0, "breaker_open")
			return fmt.Errorf("upstream %s: %s %s: %w", c.name, req.Header.Method(), req.URI().Path(), ErrBreakerOpen)
		}
		err = c.attempt(ctx, req, resp, n)
		c.breaker.done(err == nil && resp.StatusCode() < 500)
		if err == nil && !retryStatus(resp.StatusCode()) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("upstream %s: %s %s: %w", c.name, req.Header.Method(), req.URI().Path(), err)
	}
	return nil
}

// attempt makes one call, bounded by the timeout and ctx's deadline; resend
// counts the attempts before it.
func (c *Client) attempt(ctx context.Context, req *fasthttp.Request, resp *fasthttp.Response, resend int) error {
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.requests.Inc()
	span := tracing.StartClient(ctx, req, c.name, resend)
	start := time.Now()
	err := c.hc.DoDeadline(req, resp, deadline)
	c.duration.UpdateDuration(start)
	if err != nil || resp.StatusCode() >= 500 {
		c.errs.Inc()
	}
	if err != nil {
		span.EndClient(0, errorType(err))
	} else {
		span.EndClient(resp.StatusCode(), "")
	}
	return err
}

// resolve makes a relative request URI absolute against the upstream url.
func (c *Client) resolve(req *fasthttp.Request) {
	uri := req.URI()
	if len(uri.Host()) > 0 {
		return
	}
	uri.SetScheme(c.scheme)
	uri.SetHost(c.host)
	if c.path != "" {
		uri.SetPath(c.path + "/" + strings.TrimPrefix(string(uri.Path()), "/"))
	}
}

// CloseIdleConnections closes pooled connections not in use; call it when
// the client is no longer needed.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// requestIDKey carries the request id in a context.
type requestIDKey struct{}

// WithRequestID returns ctx carrying id, which Do sends as X-Request-ID so
// that the upstream's logs join hotpath's.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// errorType classes a failed attempt for its span.
func errorType(err error) string {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) || errors.Is(err, os.ErrDeadlineExceeded) {
		return "timeout"
	}
	return "connection"
}

func idempotent(req *fasthttp.Request) bool {
	switch string(req.Header.Method()) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodPut, fasthttp.MethodDelete, fasthttp.MethodOptions:
		return true
	}
	return len(req.Header.Peek("Idempotency-Key")) > 0
}

// retryStatus reports whether an answer says "try again": the upstream or
// a proxy in front of it is overloaded or restarting.
func retryStatus(code int) bool {
	return code == fasthttp.StatusBadGateway || code == fasthttp.StatusServiceUnavailable || code == fasthttp.StatusGatewayTimeout
}

func backoff(n int) time.Duration {
	d := backoffMax
	if n < 16 {
		d = min(backoffBase<<(n-1), backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d, or less if ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
