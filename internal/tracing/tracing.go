package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/hotpath/hotpath/internal/config"
)

// instrumentation names the spans' origin (the OpenTelemetry scope).
const instrumentation = "github.com/hotpath/hotpath"

// batchDelay is how long a finished span waits for others to share its
// export: spans reach the collector within about this.
const batchDelay = time.Second

// Tracer turns requests into traces. It is safe for concurrent use. With
// tracing.endpoint empty it records nothing, but still carries an incoming
// trace context to logs and outbound calls.
type Tracer struct {
	provider *sdktrace.TracerProvider // nil: nothing is recorded
	tracer   trace.Tracer
	// sample is tracing.sample as a threshold on a uniform uint64: a root
	// request is recorded when its draw is below it; MaxUint64 records all.
	sample atomic.Uint64
	pool   sync.Pool // of *Trace
	export *exportCounter
}

// New builds the tracer of cfg. Spans name the service service
// (tracing.service_name, else server.name) at version; resource attributes
// also come from OTEL_RESOURCE_ATTRIBUTES. Its metrics go to set. Nothing
// is sent until a span ends; Shutdown flushes and stops.
func New(cfg config.Tracing, service, version string, set *vm.Set, log *slog.Logger) (*Tracer, error) {
	t := &Tracer{export: newExportCounter(set, log)}
	t.pool.New = func() any {
		tr := &Trace{tracer: t}
		// The Trace rides in its own context, made once per pooled value.
		tr.base = context.WithValue(context.Background(), traceKey{}, tr)
		return tr
	}
	if cfg.Endpoint == "" {
		return t, nil
	}
	t.SetSample(cfg.Sample)
	exp, err := otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(strings.TrimSuffix(cfg.Endpoint, "/")+"/v1/traces"),
		otlptracehttp.WithTimeout(cfg.Timeout),
		// A lost batch is counted, not retried: the queue behind it is
		// bounded, and a retry would hold the newer spans back.
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter for tracing.endpoint %s: %w", cfg.Endpoint, err)
	}
	res, err := sdkresource.New(context.Background(),
		sdkresource.WithTelemetrySDK(),
		sdkresource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES, the k8s downward API's pod name and namespace
		sdkresource.WithAttributes(semconv.ServiceName(service), semconv.ServiceVersion(version)),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: resource attributes (OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	// The SDK reports export failures to a global handler; the exporter
	// wrapper counts and logs them already, once per outage.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Debug("opentelemetry", "err", err.Error())
	}))
	t.provider = sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		// Roots reach the SDK only once sampled (see Begin); children
		// follow their parent.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
		sdktrace.WithSpanProcessor(newBoundedProcessor(exp, cfg, t.export)),
	)
	t.tracer = t.provider.Tracer(instrumentation)
	return t, nil
}

// SetSample sets the share (0..1) of root requests recorded
// (tracing.sample), for requests that start from now on: a reload.
func (t *Tracer) SetSample(share float64) {
	switch {
	case share >= 1:
		t.sample.Store(math.MaxUint64)
	case share > 0:
		t.sample.Store(uint64(share * math.MaxUint64))
	default:
		t.sample.Store(0)
	}
}

// Recording reports whether spans are recorded and exported
// (tracing.endpoint is set).
func (t *Tracer) Recording() bool { return t != nil && t.provider != nil }

// Shutdown exports the spans still queued and stops the exporter, giving
// up when ctx ends: a collector that hangs costs the spans, not the exit.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if !t.Recording() {
		return nil
	}
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: flush spans to tracing.endpoint: %w", err)
	}
	return nil
}

// sampleRoot draws whether a request without a usable traceparent is
// recorded: a few nanoseconds, no allocation.
func (t *Tracer) sampleRoot() bool {
	if t.provider == nil {
		return false
	}
	switch s := t.sample.Load(); s {
	case 0:
		return false
	case math.MaxUint64:
		return true
	default:
		return rand.Uint64() < s
	}
}

// Trace is the trace context of one piece of work: a request, or a
// webhook delivery continuing the request that caused it. A Trace that is
// not recorded keeps the caller's ids and passes them on unchanged, so any
// spans further down attach to the nearest recorded one.
type Trace struct {
	tracer  *Tracer
	traceID trace.TraceID
	spanID  trace.SpanID // the own span when recorded, else the caller's
	flags   trace.TraceFlags
	state   []byte // tracestate to pass on, validated
	// recorded is set when children are recorded: span is this request's
	// server span, or ctx carries a sampled remote parent.
	recorded bool
	span     trace.Span
	base     context.Context // carries the Trace; made once per pooled value
	ctx      context.Context // base plus the OpenTelemetry span or parent
}

// traceKey keys the Trace in a context and in a request's user values.
type traceKey struct{}

// FromContext returns the Trace ctx carries, or nil. ctx may be a
// request's *fasthttp.RequestCtx (its values are its user values) or a
// context made by Context or Continue.
func FromContext(ctx context.Context) *Trace {
	if ctx == nil {
		return nil
	}
	tr, _ := ctx.Value(traceKey{}).(*Trace)
	return tr
}

// TraceID is the trace's id; SpanID the span the work runs under.
func (tr *Trace) TraceID() [16]byte { return tr.traceID }

// SpanID is the id of the span the work runs under: its own when recorded,
// else the caller's.
func (tr *Trace) SpanID() [8]byte { return tr.spanID }

// Recorded reports whether the trace's spans are recorded and exported.
func (tr *Trace) Recorded() bool { return tr.recorded }

// Traceparent returns the traceparent and tracestate that continue this
// trace from the span it runs under, for work done later (a webhook
// delivery, see Continue); empty strings for ctx without a trace.
func Traceparent(ctx context.Context) (traceparent, tracestate string) {
	tr := FromContext(ctx)
	if tr == nil {
		return "", ""
	}
	var b [traceparentLen]byte
	return string(appendTraceparent(b[:0], tr.traceID, tr.spanID, tr.flags)), string(tr.state)
}

// Continue returns ctx carrying the trace of traceparent and tracestate
// (as Traceparent gave them), so that the calls made under it (through
// internal/upstream) continue that trace, recorded when it was sampled and
// this tracer records. An empty or invalid traceparent returns ctx as is.
func (t *Tracer) Continue(ctx context.Context, traceparent, tracestate string) context.Context {
	if t == nil {
		return ctx
	}
	p, ok := parseTraceparent([]byte(traceparent))
	if !ok {
		return ctx
	}
	tr := &Trace{tracer: t, traceID: p.traceID, spanID: p.spanID, flags: p.flags}
	if validTracestate([]byte(tracestate)) {
		tr.state = []byte(tracestate)
	}
	tr.ctx = context.WithValue(ctx, traceKey{}, tr)
	if p.flags.IsSampled() && t.Recording() {
		tr.recorded = true
		ts, _ := trace.ParseTraceState(tracestate) // invalid: passed on empty
		tr.ctx = trace.ContextWithRemoteSpanContext(tr.ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: p.traceID, SpanID: p.spanID, TraceFlags: p.flags, TraceState: ts, Remote: true,
		}))
	}
	return tr.ctx
}

// acquire takes a reset Trace from the pool.
func (t *Tracer) acquire() *Trace {
	tr := t.pool.Get().(*Trace)
	tr.ctx = tr.base
	return tr
}

// release returns a request's Trace to the pool.
func (t *Tracer) release(tr *Trace) {
	tr.traceID, tr.spanID, tr.flags = trace.TraceID{}, trace.SpanID{}, 0
	tr.state = tr.state[:0]
	tr.recorded, tr.span, tr.ctx = false, nil, nil
	if cap(tr.state) > maxTracestate {
		tr.state = nil
	}
	t.pool.Put(tr)
}
