package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// otlpSink is the trace collector hotpath-traced exports to: an OTLP/HTTP
// endpoint that reads each export whole and accepts it, as a collector
// would, so the exporter does all its work, but keeps nothing.
type otlpSink struct {
	url            string
	srv            *http.Server
	exports, bytes atomic.Int64
}

func startOTLPSink() (*otlpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("OTLP sink: %w", err)
	}
	s := &otlpSink{url: "http://" + ln.Addr().String()}
	s.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body) // a broken export is the exporter's to count
		s.exports.Add(1)
		s.bytes.Add(n)
		// An empty body is an ExportTraceServiceResponse with nothing rejected.
		w.Header().Set("Content-Type", "application/x-protobuf")
	})}
	go s.srv.Serve(ln) //nolint:errcheck // ends with stop
	return s, nil
}

func (s *otlpSink) stop() {
	s.srv.Close()
	fmt.Printf("OTLP sink: %d exports, %d bytes of spans from %s\n", s.exports.Load(), s.bytes.Load(), hotpathTraced)
}
