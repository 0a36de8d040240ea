package router

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/tracing"
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
