package tracing

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/testenv"
)

const sampledParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// newTracer is a recording tracer of endpoint with its metric set.
func newTracer(t *testing.T, endpoint string, queue int, timeout time.Duration) (*Tracer, *vm.Set, *bytes.Buffer) {
	t.Helper()
	cfg := config.Default().Tracing
	cfg.Endpoint, cfg.Queue, cfg.Timeout, cfg.Sample = endpoint, queue, timeout, 0
	set := vm.NewSet()
	var log bytes.Buffer
	tr, err := New(cfg, "svc", "v1", set, slog.New(slog.NewJSONHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return tr, set, &log
}

// serveTraced runs one request with a sampled traceparent through Begin and
// End, as the router does, and returns how long that took.
func serveTraced(tr *Tracer) time.Duration {
	var req fasthttp.Request
	req.Header.SetMethod("GET")
	req.SetRequestURI("/json")
	req.Header.SetHost("svc.local:8080")
	var rc fasthttp.RequestCtx
	rc.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5}, nil)
	start := time.Now()
	tr.Begin(&rc, []byte(sampledParent), nil, false)
	tr.End(&rc, "/json", 200)
	return time.Since(start)
}

func metric(set *vm.Set, name string) string {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, l := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	return ""
}

func TestSpansReachTheCollectorWithServerAttributes(t *testing.T) {
	// The environment adds resource attributes but does not rename the
	// service: tracing.service_name (or server.name) does.
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=env,deployment.environment.name=test")
	t.Setenv("OTEL_SERVICE_NAME", "env")
	otlp := testenv.NewOTLPReceiver(t)
	tr, set, _ := newTracer(t, otlp.URL, 16, time.Second)
	serveTraced(tr)
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := otlp.Spans()
	if len(spans) != 1 {
		t.Fatalf("got %d spans, want 1: %+v", len(spans), spans)
	}
	s := spans[0]
	if s.TraceID != sampledParent[3:35] || s.ParentSpanID != sampledParent[36:52] || s.Name != "GET /json" {
		t.Errorf("span %s %s %q, want the incoming trace and parent, named GET /json", s.TraceID, s.ParentSpanID, s.Name)
	}
	for k, v := range map[string]any{"http.request.method": "GET", "http.route": "/json", "url.path": "/json",
		"http.response.status_code": int64(200), "server.address": "svc.local", "server.port": int64(8080)} {
		if s.Attrs[k] != v {
			t.Errorf("attribute %s = %v, want %v", k, s.Attrs[k], v)
		}
	}
	if s.Resource["service.name"] != "svc" || s.Resource["service.version"] != "v1" || s.Resource["deployment.environment.name"] != "test" {
		t.Errorf("resource %v, want service.name svc, service.version v1 and the environment's attribute", s.Resource)
	}
	if got := metric(set, "tracing_spans_exported_total"); got != "1" {
		t.Errorf("tracing_spans_exported_total %s, want 1", got)
	}
}

func TestDeadCollectorDropsAndCountsSpans(t *testing.T) {
	down := testenv.NewProxy(t, "127.0.0.1:1")
	down.SetMode(testenv.Refuse)
	tr, set, log := newTracer(t, "http://"+down.Addr(), 4, 500*time.Millisecond)
	for range 20 {
		serveTraced(tr)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Logf("shutdown: %v", err)
	}
	// Every span is accounted for: dropped at once when the queue (4) was
	// full, or lost with its failed export; none is exported.
	full := metric(set, `tracing_spans_dropped_total{reason="queue_full"}`)
	failed := metric(set, `tracing_spans_dropped_total{reason="export_failed"}`)
	if atoi(full)+atoi(failed) != 20 || atoi(failed) < 4 || metric(set, "tracing_spans_exported_total") != "0" {
		t.Errorf("queue_full %s + export_failed %s, exported %s; want 20 spans dropped, at least 4 by failed exports, none exported",
			full, failed, metric(set, "tracing_spans_exported_total"))
	}
	if n := strings.Count(log.String(), "export to tracing.endpoint failed"); n != 1 {
		t.Errorf("the outage was logged %d times, want once:\n%s", n, log)
	}
}

func TestHangingCollectorNeitherBlocksRequestsNorShutdown(t *testing.T) {
	otlp := testenv.NewOTLPReceiver(t)
	hang := testenv.NewProxy(t, strings.TrimPrefix(otlp.URL, "http://"))
	hang.SetMode(testenv.Blackhole)
	tr, set, _ := newTracer(t, "http://"+hang.Addr(), 8, 5*time.Second)
	var slowest time.Duration
	for range 2000 {
		slowest = max(slowest, serveTraced(tr))
	}
	// Requests never wait for the exporter: none comes near its timeout.
	if slowest > time.Second {
		t.Errorf("slowest traced request took %s while the collector hung", slowest)
	}
	if got := metric(set, `tracing_spans_dropped_total{reason="queue_full"}`); got == "0" || got == "" {
		t.Errorf("queue_full drops %q, want the spans beyond the queue counted", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := tr.Shutdown(ctx)
	if took := time.Since(start); took > time.Second || err == nil {
		t.Errorf("shutdown with a hanging collector: %v after %s, want a timeout error within the 300ms bound", err, took)
	}
}

func TestLogLinesOfATracedContextCarryItsIDs(t *testing.T) {
	otlp := testenv.NewOTLPReceiver(t)
	tr, _, _ := newTracer(t, otlp.URL, 16, time.Second)
	var out bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&out, nil))).With("component", "test")
	ctx := tr.Continue(context.Background(), sampledParent, "")
	log.ErrorContext(ctx, "traced")
	log.ErrorContext(context.Background(), "untraced")
	log.Error("no context")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], `"trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331"`) {
		t.Errorf("traced line lacks the ids:\n%s", out.String())
	}
	if strings.Contains(lines[1], "trace_id") || strings.Contains(lines[2], "trace_id") {
		t.Errorf("untraced lines carry a trace_id:\n%s", out.String())
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
