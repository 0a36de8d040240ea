package tracing

import (
	"context"
	"strconv"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Begin starts the trace of the request rc from its traceparent and
// tracestate header values (nil when absent; traceparent nil too when the
// request sent more than one, which the spec calls invalid). moreState
// says the request sent further tracestate headers, which the spec joins
// into one list.
//
// A request whose traceparent is valid and sampled gets a server span
// (when the tracer records), one whose traceparent is valid but not
// sampled keeps the caller's ids, and a request without a valid
// traceparent is a root: recorded at tracing.sample, else it has no trace
// at all. Only recorded requests touch the OpenTelemetry SDK; the rest
// allocate nothing. End must follow.
func (t *Tracer) Begin(rc *fasthttp.RequestCtx, traceparent, tracestate []byte, moreState bool) {
	p, ok := parseTraceparent(traceparent)
	if !ok {
		if t.sampleRoot() {
			tr := t.acquire()
			t.startServer(rc, tr, tr.base)
			rc.SetUserValue(traceKey{}, tr)
		}
		return
	}
	tr := t.acquire()
	tr.traceID, tr.spanID, tr.flags = p.traceID, p.spanID, p.flags
	if moreState {
		tracestate = joinValues(rc, tracestate)
	}
	if validTracestate(tracestate) {
		tr.state = append(tr.state[:0], tracestate...)
	}
	if p.flags.IsSampled() && t.provider != nil {
		ts, _ := trace.ParseTraceState(string(tr.state)) // validated above; the SDK is stricter, and then it is passed on empty
		parent := trace.ContextWithRemoteSpanContext(tr.base, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: p.traceID, SpanID: p.spanID, TraceFlags: p.flags, TraceState: ts, Remote: true,
		}))
		t.startServer(rc, tr, parent)
	}
	rc.SetUserValue(traceKey{}, tr)
}

// startServer records tr as rc's server span, a child of parent's span if
// any. The name and route are completed by End, once the router knows them.
func (t *Tracer) startServer(rc *fasthttp.RequestCtx, tr *Trace, parent context.Context) {
	method := string(rc.Method())
	attrs := make([]attribute.KeyValue, 0, 9)
	attrs = append(attrs, methodAttrs(method)...)
	attrs = append(attrs,
		semconv.URLPath(string(rc.Path())),
		semconv.URLScheme("http"),
		semconv.NetworkProtocolVersion(protocolVersion(rc)),
		semconv.ClientAddress(rc.RemoteIP().String()),
	)
	if host, port, ok := hostPort(rc.Host()); ok {
		attrs = append(attrs, semconv.ServerAddress(host))
		if port > 0 {
			attrs = append(attrs, semconv.ServerPort(port))
		}
	}
	if ua := rc.UserAgent(); len(ua) > 0 {
		attrs = append(attrs, semconv.UserAgentOriginal(string(ua)))
	}
	ctx, span := t.tracer.Start(parent, method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	sc := span.SpanContext()
	tr.traceID, tr.spanID, tr.flags = sc.TraceID(), sc.SpanID(), sc.TraceFlags()
	tr.recorded, tr.span, tr.ctx = true, span, ctx
}

// End finishes the trace Begin started for rc, if any: a recorded server
// span gets its route (the template; empty for a request no route took)
// and status, and is handed to the exporter. rc carries no trace after it.
func (t *Tracer) End(rc *fasthttp.RequestCtx, route string, status int) {
	tr, _ := rc.UserValue(traceKey{}).(*Trace)
	if tr == nil {
		return
	}
	rc.RemoveUserValue(traceKey{})
	if span := tr.span; span != nil {
		if route != "" {
			span.SetName(string(rc.Method()) + " " + route)
			span.SetAttributes(semconv.HTTPRoute(route))
		}
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if status >= 500 {
			code := strconv.Itoa(status)
			span.SetAttributes(semconv.ErrorTypeKey.String(code))
			span.SetStatus(codes.Error, code)
		}
		span.End()
	}
	t.release(tr)
}

// Context returns the context a handler passes to the calls it makes for
// rc (store, upstreams), so that they join its trace: context.Background()
// when rc has none, which costs nothing. Valid until the handler returns.
func Context(rc *fasthttp.RequestCtx) context.Context {
	if tr, _ := rc.UserValue(traceKey{}).(*Trace); tr != nil {
		return tr.ctx
	}
	return context.Background()
}

// methodAttrs is http.request.method, which semantic conventions limit to
// the known methods: any other is _OTHER, with the original beside it.
func methodAttrs(m string) []attribute.KeyValue {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH":
		return []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(m)}
	}
	return []attribute.KeyValue{semconv.HTTPRequestMethodOther, semconv.HTTPRequestMethodOriginal(m)}
}

func protocolVersion(rc *fasthttp.RequestCtx) string {
	if rc.Request.Header.IsHTTP11() {
		return "1.1"
	}
	return "1.0"
}

// hostPort splits a Host header; port is 0 when it names none.
func hostPort(h []byte) (host string, port int, ok bool) {
	if len(h) == 0 {
		return "", 0, false
	}
	s := string(h)
	i := len(s) - 1
	for i >= 0 && s[i] >= '0' && s[i] <= '9' {
		i--
	}
	if i >= 0 && s[i] == ':' && i < len(s)-1 && (s[0] != '[' || s[i-1] == ']') {
		p, err := strconv.Atoi(s[i+1:])
		if err == nil {
			host, port = s[:i], p
		}
	} else {
		host = s
	}
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host, port, host != ""
}

// joinValues is every tracestate header of rc as one list, the first
// being first.
func joinValues(rc *fasthttp.RequestCtx, first []byte) []byte {
	out := append([]byte(nil), first...)
	for i, v := range rc.Request.Header.PeekAll("tracestate") {
		if i == 0 {
			continue // first, already in out
		}
		out = append(append(out, ','), v...)
	}
	return out
}
