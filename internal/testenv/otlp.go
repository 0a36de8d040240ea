package testenv

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Span is one span an OTLPReceiver decoded, flattened for assertions.
type Span struct {
	TraceID, SpanID, ParentSpanID string // lower-case hex; ParentSpanID "" for a root
	Name                          string
	Kind                          tracepb.Span_SpanKind
	Attrs                         map[string]any // string, int64, float64 or bool
	Resource                      map[string]any
	Scope                         string
	StatusCode                    tracepb.Status_StatusCode
	Start, End                    time.Time
}

// OTLPReceiver is an OpenTelemetry collector's OTLP/HTTP trace endpoint
// on a loopback port: it decodes the real protobuf payload of every POST
// to /v1/traces and keeps the spans.
type OTLPReceiver struct {
	// URL is the base URL to configure as tracing.endpoint.
	URL string

	srv *http.Server
	mu  sync.Mutex
	all []Span
	got chan struct{} // signalled after each export
}

// NewOTLPReceiver starts a receiver; it stops when the test ends.
func NewOTLPReceiver(t testing.TB) *OTLPReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &OTLPReceiver{URL: "http://" + ln.Addr().String(), got: make(chan struct{}, 1)}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	t.Cleanup(func() { _ = r.srv.Close() })
	return r
}

func (r *OTLPReceiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.Error(w, "want POST /v1/traces", http.StatusNotFound)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg collectorpb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &msg); err != nil || req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want an OTLP protobuf ExportTraceServiceRequest", http.StatusBadRequest)
		return
	}
	var spans []Span
	for _, rs := range msg.GetResourceSpans() {
		res := attrMap(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				spans = append(spans, Span{
					TraceID:      hex.EncodeToString(s.GetTraceId()),
					SpanID:       hex.EncodeToString(s.GetSpanId()),
					ParentSpanID: hex.EncodeToString(s.GetParentSpanId()),
					Name:         s.GetName(),
					Kind:         s.GetKind(),
					Attrs:        attrMap(s.GetAttributes()),
					Resource:     res,
					Scope:        ss.GetScope().GetName(),
					StatusCode:   s.GetStatus().GetCode(),
					Start:        time.Unix(0, int64(s.GetStartTimeUnixNano())),
					End:          time.Unix(0, int64(s.GetEndTimeUnixNano())),
				})
			}
		}
	}
	r.mu.Lock()
	r.all = append(r.all, spans...)
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default:
	}
	out, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{}) // an empty message always encodes
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// Spans returns every span received so far.
func (r *OTLPReceiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.all...)
}

// WaitFor returns the received spans once match holds for them, or
// whatever arrived when timeout passes.
func (r *OTLPReceiver) WaitFor(timeout time.Duration, match func([]Span) bool) []Span {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if spans := r.Spans(); match(spans) {
			return spans
		}
		select {
		case <-r.got:
		case <-deadline.C:
			return r.Spans()
		}
	}
}

func attrMap(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = v.IntValue
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = v.DoubleValue
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = v.BoolValue
		default:
			m[kv.GetKey()] = kv.GetValue().String()
		}
	}
	return m
}
