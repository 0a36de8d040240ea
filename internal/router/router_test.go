package router

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/accesslog"
	"github.com/hotpath/hotpath/internal/metrics"
	"github.com/hotpath/hotpath/internal/requestid"
	"github.com/hotpath/hotpath/internal/testenv"
	"github.com/hotpath/hotpath/internal/tracing"
)

// testServer serves a router with the test's routes on a loopback socket.
type testServer struct {
	url      string
	access   *accesslog.Logger
	accessTo *testenv.Buffer
	appLog   *testenv.Buffer
	reg      *metrics.Registry
	draining atomic.Bool
}

func newTestServer(t *testing.T, sample float64, slow time.Duration, maxInflight int, routes func(*Router)) *testServer {
	t.Helper()
	return newTracedServer(t, sample, slow, maxInflight, nil, routes)
}

// newTracedServer is newTestServer with a tracer, and the application log
// joined to traces as in production.
func newTracedServer(t *testing.T, sample float64, slow time.Duration, maxInflight int, tracer *tracing.Tracer, routes func(*Router)) *testServer {
	t.Helper()
	ts := &testServer{accessTo: &testenv.Buffer{}, appLog: &testenv.Buffer{}, reg: metrics.New("test")}
	ts.access = accesslog.New(ts.accessTo, 64, ts.reg.AccessLogDropped)
	ts.access.Start()
	ids, err := requestid.NewGenerator()
	if err != nil {
		t.Fatal(err)
	}
	r := New(ts.reg, slog.New(tracing.LogHandler(slog.NewJSONHandler(ts.appLog, nil))))
	routes(r)
	srv := &fasthttp.Server{Handler: r.Handler(Options{
		IDs: ids, Access: ts.access, Sampler: accesslog.NewSampler(sample, slow),
		MaxInflight: maxInflight, Draining: &ts.draining, Tracer: tracer,
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown below
	t.Cleanup(func() {
		_ = srv.Shutdown()
		ts.access.Stop()
	})
	ts.url = "http://" + ln.Addr().String()
	return ts
}

// logLines stops the access log (flushing it) and parses its lines.
func (ts *testServer) logLines(t *testing.T) []map[string]any {
	t.Helper()
	ts.access.Stop()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(ts.accessTo.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("access line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func fetch(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestPanicBecomesLogged500(t *testing.T) {
	ts := newTestServer(t, 0, time.Hour, 0, func(r *Router) {
		r.GET("/boom", func(ctx *fasthttp.RequestCtx) {
			ctx.SetBodyString("partial output")
			ctx.Response.Header.Set("Set-Cookie", "session=half-made")
			ctx.Response.Header.Set("Cache-Control", "public, max-age=3600")
			panic("kaboom")
		})
		r.GET("/ok", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") })
	})
	resp, body := fetch(t, ts.url+"/boom")
	if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/problem+json" || strings.Contains(body, "partial") || strings.Contains(body, "kaboom") {
		t.Errorf("panic: %d %q %q, want a bare 500 problem", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	// A problem's own Cache-Control is no-store; the handler's public one
	// must not survive.
	if resp.Header.Get("Set-Cookie") != "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("the 500 carries headers the handler set before panicking: %v", resp.Header)
	}
	if resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("the 500 lost the chain's headers: %v", resp.Header)
	}
	if log := ts.appLog.String(); !strings.Contains(log, "kaboom") || !strings.Contains(log, "goroutine") {
		t.Errorf("application log lacks the panic and its stack:\n%s", log)
	}
	if resp, _ := fetch(t, ts.url+"/ok"); resp.StatusCode != 200 {
		t.Errorf("after a panic the server answers %d, want 200", resp.StatusCode)
	}
	if ts.reg.Inflight() != 0 {
		t.Errorf("in-flight gauge %d after a panic, want 0", ts.reg.Inflight())
	}
	lines := ts.logLines(t)
	if len(lines) != 1 || lines[0]["status"] != float64(500) || lines[0]["route"] != "/boom" {
		t.Errorf("with access_sample 0 the log holds %v, want exactly the 500", lines)
	}
}

func TestSlowRequestsAreAlwaysLogged(t *testing.T) {
	ts := newTestServer(t, 0, 30*time.Millisecond, 0, func(r *Router) {
		r.GET("/slow", func(ctx *fasthttp.RequestCtx) { time.Sleep(50 * time.Millisecond) })
		r.GET("/fast", func(ctx *fasthttp.RequestCtx) {})
	})
	fetch(t, ts.url+"/fast")
	fetch(t, ts.url+"/slow")
	fetch(t, ts.url+"/fast")
	lines := ts.logLines(t)
	if len(lines) != 1 || lines[0]["route"] != "/slow" {
		t.Errorf("log holds %v, want only the slow request", lines)
	}
}

func TestSampleShareIsRoughlyHonoured(t *testing.T) {
	s := accesslog.NewSampler(0.25, time.Hour)
	kept := 0
	for range 20000 {
		if s.Keep(200, time.Millisecond) {
			kept++
		}
	}
	if kept < 4500 || kept > 5500 {
		t.Errorf("share 0.25 kept %d of 20000, want about 5000", kept)
	}
}

func TestOverloadAnswers503AtOnceAndKeepsConnections(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	ts := newTestServer(t, 0, time.Hour, 1, func(r *Router) {
		r.GET("/block", func(ctx *fasthttp.RequestCtx) {
			entered <- struct{}{}
			<-release
		})
		r.GET("/ok", func(ctx *fasthttp.RequestCtx) {})
	})
	done := make(chan int)
	go func() {
		resp, err := http.Get(ts.url + "/block")
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-entered

	// A keep-alive client: the 503 must not cost it its connection.
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 3 {
		start := time.Now()
		if _, err := conn.Write([]byte("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatalf("request %d on the same connection: %v", i, err)
		}
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("read answer %d: %v", i, err)
		}
		head := string(buf[:n])
		if !strings.HasPrefix(head, "HTTP/1.1 503") || !strings.Contains(head, "Retry-After: 1") || strings.Contains(head, "Connection: close") {
			t.Errorf("request %d over the limit got %q, want 503 with Retry-After on a kept connection", i, head)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("503 took %s, want immediate", d)
		}
	}
	close(release)
	if code := <-done; code != 200 {
		t.Errorf("the admitted request got %d, want 200", code)
	}
	if resp, _ := fetch(t, ts.url+"/ok"); resp.StatusCode != 200 {
		t.Errorf("after the load passed: %d, want 200", resp.StatusCode)
	}
	var out bytes.Buffer
	ts.reg.WritePrometheus(&out)
	if !strings.Contains(out.String(), "http_overload_rejections_total 3") {
		t.Errorf("metrics do not count 3 rejections:\n%s", out.String())
	}
}

func TestDrainingClosesConnections(t *testing.T) {
	ts := newTestServer(t, 0, time.Hour, 0, func(r *Router) {
		r.GET("/ok", func(ctx *fasthttp.RequestCtx) {})
	})
	if resp, _ := fetch(t, ts.url+"/ok"); resp.Close {
		t.Errorf("Connection: close before draining")
	}
	ts.draining.Store(true)
	if resp, _ := fetch(t, ts.url+"/ok"); !resp.Close {
		t.Errorf("no Connection: close while draining")
	}
}

func TestParamRoutesGetTheirTemplateAsLabel(t *testing.T) {
	ts := newTestServer(t, 1, time.Hour, 0, func(r *Router) {
		r.GET("/items/{id}", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(Param(ctx, "id")) })
	})
	if _, body := fetch(t, ts.url+"/items/42"); body != "42" {
		t.Errorf("Param(id) = %q, want 42", body)
	}
	lines := ts.logLines(t)
	if len(lines) != 1 || lines[0]["route"] != "/items/{id}" || lines[0]["path"] != "/items/42" {
		t.Errorf("log %v, want route /items/{id} and path /items/42", lines)
	}
	var out bytes.Buffer
	ts.reg.WritePrometheus(&out)
	if !strings.Contains(out.String(), `http_requests_total{route="/items/{id}",method="GET",code="200"} 1`) {
		t.Errorf("metrics lack the templated route label")
	}
}
