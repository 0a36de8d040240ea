package tracing

import (
	"context"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Span is a child span: one database call or one outbound attempt. Its
// zero value, which is what work outside a recorded trace gets, records
// nothing.
type Span struct {
	span trace.Span
}

// StartDB starts the span of one database call made under ctx. system is
// db.system.name ("sqlite", "postgresql"); statement is the constant SQL
// text, never with a bound value in it, whose first word is the operation
// and whose table is the collection. Unless ctx's trace is recorded it
// costs one context lookup and returns the zero Span.
func StartDB(ctx context.Context, system, statement string) Span {
	tr := FromContext(ctx)
	if tr == nil || !tr.recorded {
		return Span{}
	}
	op, table := describe(statement)
	name := op
	if table != "" {
		name += " " + table
	}
	_, span := tr.tracer.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		semconv.DBSystemNameKey.String(system),
		semconv.DBOperationName(op),
		semconv.DBCollectionName(table),
		semconv.DBQueryText(statement),
	))
	return Span{span: span}
}

// EndDB ends a database call's span. errType is empty for success, else a
// short class of the failure (its error.type), never the error's text,
// which may quote a value.
func (s Span) EndDB(errType string) {
	if s.span == nil {
		return
	}
	if errType != "" {
		s.span.SetAttributes(semconv.ErrorTypeKey.String(errType))
		s.span.SetStatus(codes.Error, errType)
	}
	s.span.End()
}

// describe takes the operation (the first word) and the table (the word
// after FROM, INTO or UPDATE) from a statement.
func describe(statement string) (op, table string) {
	words := strings.Fields(statement)
	if len(words) == 0 {
		return "", ""
	}
	op = strings.ToUpper(words[0])
	for i, w := range words[:len(words)-1] {
		switch strings.ToUpper(w) {
		case "FROM", "INTO", "UPDATE":
			return op, words[i+1]
		}
	}
	return op, ""
}

var (
	traceparentHeader = []byte("Traceparent")
	tracestateHeader  = []byte("Tracestate")
)

// StartClient readies req for one outbound attempt under ctx's trace: it
// sets traceparent (and tracestate) so the receiver continues the trace,
// from the attempt's own client span when the trace is recorded, else
// from the span the work runs under. peer names the upstream; resend
// counts the attempts before this one. Without a trace in ctx it leaves
// req alone and returns the zero Span.
func StartClient(ctx context.Context, req *fasthttp.Request, peer string, resend int) Span {
	tr := FromContext(ctx)
	if tr == nil {
		return Span{}
	}
	spanID, flags := tr.spanID, tr.flags
	var s Span
	if tr.recorded {
		method := string(req.Header.Method())
		uri := req.URI()
		attrs := append(methodAttrs(method),
			semconv.URLFull(string(uri.Scheme())+"://"+string(uri.Host())+string(uri.Path())), // no query: it may hold secrets
			attribute.String("hotpath.upstream", peer),
		)
		if host, port, ok := hostPort(uri.Host()); ok {
			attrs = append(attrs, semconv.ServerAddress(host))
			if port > 0 {
				attrs = append(attrs, semconv.ServerPort(port))
			}
		}
		if resend > 0 {
			attrs = append(attrs, semconv.HTTPRequestResendCount(resend))
		}
		_, s.span = tr.tracer.tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
		sc := s.span.SpanContext()
		spanID, flags = sc.SpanID(), sc.TraceFlags()
	}
	var b [traceparentLen]byte
	req.Header.SetCanonical(traceparentHeader, appendTraceparent(b[:0], tr.traceID, spanID, flags))
	if len(tr.state) > 0 {
		req.Header.SetCanonical(tracestateHeader, tr.state)
	} else {
		req.Header.DelBytes(tracestateHeader)
	}
	return s
}

// EndClient ends an outbound attempt's span with the answer's status (0
// when none came) and, for a failure, errType: a short class such as
// "timeout" or "breaker_open". A 5xx is an error of its own.
func (s Span) EndClient(status int, errType string) {
	if s.span == nil {
		return
	}
	if status > 0 {
		s.span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	}
	if errType == "" && status >= 500 {
		errType = strconv.Itoa(status)
	}
	if errType != "" {
		s.span.SetAttributes(semconv.ErrorTypeKey.String(errType))
		s.span.SetStatus(codes.Error, errType)
	}
	s.span.End()
}
