package upstream

import (
	"context"
	"log/slog"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/testenv"
	"github.com/hotpath/hotpath/internal/tracing"
)

const (
	traceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentID = "00f067aa0ba902b7"
)

func newTracer(t *testing.T, endpoint string) *tracing.Tracer {
	t.Helper()
	cfg := config.Default().Tracing
	cfg.Endpoint = endpoint
	tr, err := tracing.New(cfg, "test", "v1", vm.NewSet(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestEveryAttemptIsASpanAndSendsItsTraceparent: a retried call and a
// breaker refusal each appear in the trace, and each attempt that is sent
// carries the traceparent of its own span.
func TestEveryAttemptIsASpanAndSendsItsTraceparent(t *testing.T) {
	otlp := testenv.NewOTLPReceiver(t)
	tracer := newTracer(t, otlp.URL)
	ctx := tracer.Continue(context.Background(), "00-"+traceID+"-"+parentID+"-01", "vendor=abc")
	r := newReceiver(t, 503, 200, 500, 500)
	c, _ := newClient(t, r.URL, func(u *config.Upstream) { u.Retries = 1; u.BreakerFailures = 2; u.BreakerCooldown = time.Hour })
	if code, _, err := call(t, c, ctx, "GET", "/a?secret=1"); err != nil || code != 200 {
		t.Fatalf("GET /a: %d %v", code, err)
	}
	// Two failures in a row open the breaker; the call after them is refused.
	call(t, c, ctx, "POST", "/b")
	call(t, c, ctx, "POST", "/b")
	if _, _, err := call(t, c, ctx, "POST", "/c"); err == nil {
		t.Fatal("the open breaker let a call through")
	}
	if err := tracer.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	spans := otlp.Spans()
	want := []struct {
		path    string
		status  any
		errType any
		resend  any
	}{
		{"/a", int64(503), "503", nil}, {"/a", int64(200), nil, int64(1)},
		{"/b", int64(500), "500", nil}, {"/b", int64(500), "500", nil}, {"/c", nil, "breaker_open", nil},
	}
	if len(spans) != len(want) {
		t.Fatalf("got %d spans, want %d (retried, failed and refused calls): %+v", len(spans), len(want), spans)
	}
	for i, w := range want {
		s := spans[i]
		if s.TraceID != traceID || s.ParentSpanID != parentID || s.Kind.String() != "SPAN_KIND_CLIENT" {
			t.Errorf("span %d: trace %s parent %s kind %s, want a client span under %s", i, s.TraceID, s.ParentSpanID, s.Kind, parentID)
		}
		if s.Attrs["http.response.status_code"] != w.status || s.Attrs["error.type"] != w.errType || s.Attrs["http.request.resend_count"] != w.resend {
			t.Errorf("span %d: %v, want status %v error.type %v resend %v", i, s.Attrs, w.status, w.errType, w.resend)
		}
		if s.Attrs["hotpath.upstream"] != "test" || s.Attrs["url.full"] != r.URL+w.path {
			t.Errorf("span %d: upstream %v url %v, want test and %s (no query)", i, s.Attrs["hotpath.upstream"], s.Attrs["url.full"], r.URL+w.path)
		}
	}
	if len(r.seen) != 4 {
		t.Fatalf("upstream saw %d requests, want 4", len(r.seen))
	}
	for i, req := range r.seen {
		want := "00-" + traceID + "-" + spans[i].SpanID + "-01"
		if got := req.Header.Get("Traceparent"); got != want || req.Header.Get("Tracestate") != "vendor=abc" {
			t.Errorf("request %d: traceparent %q tracestate %q, want %q and vendor=abc", i, got, req.Header.Get("Tracestate"), want)
		}
	}
}

// TestUnrecordedTraceIsPassedOnUnchanged: without recording (tracing off,
// or an unsampled parent) the upstream gets the caller's traceparent, and
// a call outside any trace sends none.
func TestUnrecordedTraceIsPassedOnUnchanged(t *testing.T) {
	r := newReceiver(t)
	c, _ := newClient(t, r.URL, nil)
	off := newTracer(t, "")
	recording := newTracer(t, testenv.NewOTLPReceiver(t).URL)
	sampled, unsampled := "00-"+traceID+"-"+parentID+"-01", "00-"+traceID+"-"+parentID+"-00"
	cases := []struct {
		ctx  context.Context
		want string
	}{
		{off.Continue(context.Background(), sampled, ""), sampled},
		{recording.Continue(context.Background(), unsampled, ""), unsampled},
		{context.Background(), ""},
	}
	for i, tc := range cases {
		if _, _, err := call(t, c, tc.ctx, "GET", "/"); err != nil {
			t.Fatal(err)
		}
		if got := r.seen[i].Header.Get("Traceparent"); got != tc.want {
			t.Errorf("case %d: traceparent %q, want %q", i, got, tc.want)
		}
	}
}
