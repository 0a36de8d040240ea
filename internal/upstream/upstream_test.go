package upstream

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/config"
)

// receiver is a real HTTP server on loopback that answers with the codes
// of script in turn (200 once the script runs out) and counts its hits.
type receiver struct {
	*httptest.Server
	hits   atomic.Int64
	mu     sync.Mutex
	script []int
	seen   []*http.Request
}

func newReceiver(t *testing.T, script ...int) *receiver {
	r := &receiver{script: script}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		r.mu.Lock()
		r.seen = append(r.seen, req)
		code := 200
		if len(r.script) > 0 {
			code, r.script = r.script[0], r.script[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
		_, _ = w.Write([]byte(req.URL.Path))
	}))
	t.Cleanup(r.Close)
	return r
}

func newClient(t *testing.T, url string, mod func(*config.Upstream)) (*Client, *vm.Set) {
	t.Helper()
	cfg := config.DefaultUpstream()
	cfg.URL = url
	cfg.Timeout = time.Second
	if mod != nil {
		mod(&cfg)
	}
	set := vm.NewSet()
	c, err := New("test", cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c, set
}

func call(t *testing.T, c *Client, ctx context.Context, method, uri string, headers ...string) (int, string, error) {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	err := c.Do(ctx, req, resp)
	return resp.StatusCode(), string(resp.Body()), err
}

func TestRelativePathJoinsBaseURLAndPassesRequestID(t *testing.T) {
	r := newReceiver(t)
	c, _ := newClient(t, r.URL+"/v1/", nil)
	code, body, err := call(t, c, WithRequestID(context.Background(), "req-42"), "GET", "/things/7?x=1")
	if err != nil || code != 200 || body != "/v1/things/7" {
		t.Fatalf("GET /things/7 = %d %q %v, want 200 \"/v1/things/7\"", code, body, err)
	}
	if got := r.seen[0].Header.Get("X-Request-ID"); got != "req-42" {
		t.Errorf("X-Request-ID at upstream = %q, want req-42", got)
	}
	if got := r.seen[0].URL.RawQuery; got != "x=1" {
		t.Errorf("query at upstream = %q, want x=1", got)
	}
}

func TestRetriesOnlyIdempotentRequests(t *testing.T) {
	cases := []struct {
		method   string
		headers  []string
		wantHits int64
		wantCode int
	}{
		{"GET", nil, 3, 200},
		{"PUT", nil, 3, 200},
		{"DELETE", nil, 3, 200},
		{"POST", nil, 1, 503},
		{"PATCH", nil, 1, 503},
		{"POST", []string{"Idempotency-Key", "evt-1"}, 3, 200},
	}
	for _, tc := range cases {
		r := newReceiver(t, 503, 502)
		c, set := newClient(t, r.URL, func(u *config.Upstream) { u.Retries = 2; u.BreakerFailures = 100 })
		code, _, err := call(t, c, context.Background(), tc.method, "/x", tc.headers...)
		if err != nil || code != tc.wantCode || r.hits.Load() != tc.wantHits {
			t.Errorf("%s %v: code %d err %v after %d hits, want %d after %d", tc.method, tc.headers, code, err, r.hits.Load(), tc.wantCode, tc.wantHits)
		}
		if got := metric(set, `upstream_retries_total{upstream="test"}`); got != tc.wantHits-1 {
			t.Errorf("%s %v: upstream_retries_total = %d, want %d", tc.method, tc.headers, got, tc.wantHits-1)
		}
	}
}

func TestRetriesConnectionErrorsThenGivesUp(t *testing.T) {
	r := newReceiver(t)
	url := r.URL
	r.Close() // nothing listens there any more
	c, set := newClient(t, url, func(u *config.Upstream) { u.Retries = 2; u.BreakerFailures = 100 })
	_, _, err := call(t, c, context.Background(), "GET", "/")
	if err == nil || !strings.Contains(err.Error(), "upstream test: GET /") {
		t.Fatalf("GET to a closed port: err = %v, want a wrapped connection error", err)
	}
	if got := metric(set, `upstream_requests_total{upstream="test"}`); got != 3 {
		t.Errorf("attempts = %d, want 3 (1 + 2 retries)", got)
	}
	if got := metric(set, `upstream_errors_total{upstream="test"}`); got != 3 {
		t.Errorf("errors = %d, want 3", got)
	}
}

func TestContextDeadlineBoundsTheCall(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	c, _ := newClient(t, srv.URL, func(u *config.Upstream) { u.Timeout = 10 * time.Second; u.Retries = 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := call(t, c, ctx, "GET", "/slow")
	if took := time.Since(start); err == nil || took > 2*time.Second {
		t.Fatalf("call to a hanging upstream with a 150ms deadline: err %v after %s, want a timeout well under 2s", err, took)
	}
	if !errors.Is(err, fasthttp.ErrTimeout) {
		t.Errorf("err = %v, want fasthttp.ErrTimeout", err)
	}
}

func TestBreakerOpensAndRecoversOverRealCalls(t *testing.T) {
	r := newReceiver(t, 500, 500, 500, 500, 500)
	c, set := newClient(t, r.URL, func(u *config.Upstream) {
		u.Retries = 0
		u.BreakerFailures = 3
		u.BreakerCooldown = 200 * time.Millisecond
	})
	state := func() int64 { return metric(set, `upstream_breaker_state{upstream="test"}`) }
	for i := 0; i < 3; i++ {
		if code, _, err := call(t, c, context.Background(), "GET", "/"); err != nil || code != 500 {
			t.Fatalf("call %d: %d %v, want the upstream's 500", i, code, err)
		}
	}
	if state() != StateOpen {
		t.Fatalf("breaker state after 3 failures = %d, want open (%d)", state(), StateOpen)
	}
	if _, _, err := call(t, c, context.Background(), "GET", "/"); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("call while open: err = %v, want ErrBreakerOpen", err)
	}
	if r.hits.Load() != 3 {
		t.Errorf("upstream hits = %d, want 3: an open breaker must not call out", r.hits.Load())
	}
	time.Sleep(250 * time.Millisecond)
	// The probe fails (the script still has 500s): open again at once.
	if code, _, _ := call(t, c, context.Background(), "GET", "/"); code != 500 || state() != StateOpen {
		t.Fatalf("failed probe: code %d state %d, want 500 and open", code, state())
	}
	r.mu.Lock()
	r.script = nil // the upstream recovers
	r.mu.Unlock()
	time.Sleep(250 * time.Millisecond)
	if code, _, err := call(t, c, context.Background(), "GET", "/"); err != nil || code != 200 || state() != StateClosed {
		t.Fatalf("probe after recovery: %d %v state %d, want 200 and closed", code, err, state())
	}
	if got := metric(set, `upstream_breaker_rejections_total{upstream="test"}`); got != 1 {
		t.Errorf("rejections = %d, want 1", got)
	}
}

func TestHalfOpenLetsOneProbeThrough(t *testing.T) {
	now := time.Unix(0, 0)
	b := newBreaker(2, time.Second)
	b.now = func() time.Time { return now }
	for i := 0; i < 2; i++ {
		if !b.allow() {
			t.Fatalf("closed breaker refused call %d", i)
		}
		b.done(false)
	}
	if b.allow() {
		t.Fatal("open breaker allowed a call before the cool-down")
	}
	now = now.Add(time.Second)
	if !b.allow() {
		t.Fatal("breaker refused the probe after the cool-down")
	}
	if b.allow() {
		t.Fatal("half-open breaker allowed a second call while the probe runs")
	}
	b.done(true)
	if b.current() != StateClosed || !b.allow() {
		t.Fatalf("after a good probe: state %d, want closed and calls allowed", b.current())
	}
	b.done(true)
	b.done(false) // one failure is under the threshold of 2
	if b.current() != StateClosed {
		t.Errorf("one failure after success opened the breaker")
	}
}

func TestMaxConnsBoundsConcurrentCalls(t *testing.T) {
	var inflight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		inflight.Add(-1)
	}))
	defer srv.Close()
	c, _ := newClient(t, srv.URL, func(u *config.Upstream) { u.MaxConns = 2; u.Timeout = 5 * time.Second })
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := call(t, c, context.Background(), "GET", "/")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("call waiting for a free connection: %v", err)
		}
	}
	if p := peak.Load(); p > 2 || p < 1 {
		t.Errorf("peak concurrent requests at the upstream = %d, want 1..2 (max_conns = 2)", p)
	}
}

// metric reads one series from set's Prometheus text.
func metric(set *vm.Set, series string) int64 {
	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	for _, line := range strings.Split(buf.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var n int64
			for _, ch := range v {
				if ch < '0' || ch > '9' {
					break
				}
				n = n*10 + int64(ch-'0')
			}
			return n
		}
	}
	return -1
}

// TestCancelledCallerSendsNothingAndTeachesTheBreakerNothing: a call whose
// context is already done fails with that error, not with a silent nil,
// and does not count as an upstream failure.
func TestCancelledCallerSendsNothingAndTeachesTheBreakerNothing(t *testing.T) {
	r := newReceiver(t)
	c, set := newClient(t, r.URL, func(u *config.Upstream) { u.BreakerFailures = 1 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 3 {
		if _, _, err := call(t, c, ctx, "GET", "/"); !errors.Is(err, context.Canceled) {
			t.Fatalf("call with a cancelled context: err = %v, want context.Canceled", err)
		}
	}
	if r.hits.Load() != 0 {
		t.Errorf("upstream hits = %d, want 0", r.hits.Load())
	}
	if s := metric(set, `upstream_breaker_state{upstream="test"}`); s != StateClosed {
		t.Errorf("breaker state %d after cancelled calls, want closed", s)
	}
	if code, _, err := call(t, c, context.Background(), "GET", "/"); err != nil || code != 200 {
		t.Errorf("next call: %d %v, want 200", code, err)
	}
}
