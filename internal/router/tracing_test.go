package router

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/testenv"
	"github.com/hotpath/hotpath/internal/tracing"
	"github.com/hotpath/hotpath/internal/upstream"
)

// TestLogLinesOfATracedRequestCarryItsTraceID: the handler's own log line,
// the panic log and the access-log line of a request with a trace context
// all name its trace, even when tracing records nothing.
func TestLogLinesOfATracedRequestCarryItsTraceID(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tracer, err := tracing.New(config.Default().Tracing, "hotpath", "test", vm.NewSet(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := newTracedServer(t, 1, time.Hour, 0, tracer, func(r *Router) {
		r.GET("/boom", func(ctx *fasthttp.RequestCtx) {
			r.log.WarnContext(ctx, "about to fail")
			panic("kaboom")
		})
	})
	for _, withParent := range []bool{true, false} {
		req, err := http.NewRequest("GET", ts.url+"/boom", nil)
		if err != nil {
			t.Fatal(err)
		}
		if withParent {
			req.Header.Set("traceparent", tp)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	app := strings.Split(strings.TrimSpace(ts.appLog.String()), "\n")
	if len(app) != 4 {
		t.Fatalf("application log has %d lines, want 4:\n%s", len(app), ts.appLog.String())
	}
	ids := `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"`
	for i, l := range app {
		if traced := i < 2; strings.Contains(l, ids) != traced || (!traced && strings.Contains(l, "trace_id")) {
			t.Errorf("line %d (traced %v): %s", i, traced, l)
		}
	}
	lines := ts.logLines(t)
	if len(lines) != 2 || lines[0]["trace_id"] != tp[3:35] || lines[0]["span_id"] != tp[36:52] || lines[1]["trace_id"] != nil {
		t.Errorf("access log %v, want the ids on the traced request's line only", lines)
	}
}

// TestUpstreamCallJoinsTheRequestsTrace: a handler that calls an upstream
// through the request's context sends a traceparent of the same trace,
// from a client span that is a child of the request's server span.
func TestUpstreamCallJoinsTheRequestsTrace(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	otlp := testenv.NewOTLPReceiver(t)
	cfg := config.Default().Tracing
	cfg.Endpoint = otlp.URL
	tracer, err := tracing.New(cfg, "hotpath", "test", vm.NewSet(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("Traceparent")
	}))
	t.Cleanup(up.Close)
	ucfg := config.DefaultUpstream()
	ucfg.URL = up.URL
	client, err := upstream.New("inventory", ucfg, vm.NewSet())
	if err != nil {
		t.Fatal(err)
	}
	ts := newTracedServer(t, 0, time.Hour, 0, tracer, func(r *Router) {
		r.GET("/stock", func(ctx *fasthttp.RequestCtx) {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("/items/7")
			if err := client.Do(tracing.Context(ctx), req, resp); err != nil {
				ctx.Error(err.Error(), fasthttp.StatusBadGateway)
			}
		})
	})
	req, err := http.NewRequest("GET", ts.url+"/stock", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("traceparent", tp)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /stock: %v %v", resp, err)
	}
	resp.Body.Close()
	got := <-seen
	if err := tracer.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := otlp.Spans()
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want the server span and the upstream call: %+v", len(spans), spans)
	}
	call, server := spans[0], spans[1] // the call ends first
	if server.ParentSpanID != tp[36:52] || call.ParentSpanID != server.SpanID || call.Name != "GET" || call.Attrs["hotpath.upstream"] != "inventory" {
		t.Errorf("server span %+v, client span %+v: want the call under the request under the caller", server, call)
	}
	if want := "00-" + tp[3:35] + "-" + call.SpanID + "-01"; got != want {
		t.Errorf("upstream saw traceparent %q, want %q", got, want)
	}
}
