package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotpath/hotpath/internal/testenv"
)

const (
	traceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentID    = "00f067aa0ba902b7"
	sampledTP   = "00-" + traceID + "-" + parentID + "-01"
	unsampledTP = "00-" + traceID + "-" + parentID + "-00"
)

// serverSpans are the spans of kind server in spans.
func serverSpans(spans []testenv.Span) []testenv.Span {
	var out []testenv.Span
	for _, s := range spans {
		if s.Kind.String() == "SPAN_KIND_SERVER" {
			out = append(out, s)
		}
	}
	return out
}

// accessLineOf is the access-log line of the request with the given id.
func accessLineOf(t *testing.T, p *proc, requestID string) map[string]any {
	t.Helper()
	for _, l := range accessLines(t, p.stdout.String()) {
		if l["request_id"] == requestID {
			return l
		}
	}
	t.Fatalf("no access-log line for request %s in:\n%s", requestID, p.stdout.String())
	return nil
}

func TestSampledTraceparentYieldsServerAndDatabaseSpans(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			otlp := testenv.NewOTLPReceiver(t)
			args := []string{"--tracing.endpoint=" + otlp.URL, "--tracing.sample=0", "--log.access_sample=1"}
			system := "sqlite"
			if driver == "postgres" {
				args = append(args, "--db.driver=postgres", "--db.dsn="+testenv.PostgresDSN(t))
				system = "postgresql"
			}
			t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=hotpath-7d9f,k8s.namespace.name=apps") // the process inherits it
			p := startProc(t, args...)
			resp, body := get(t, "GET", p.app+"/queries?queries=3", "traceparent", sampledTP, "tracestate", "vendor=abc",
				"User-Agent", "trace-test/1.0", "X-Request-ID", "traced-1")
			if resp.StatusCode != 200 {
				t.Fatalf("GET /queries: %d %s", resp.StatusCode, body)
			}
			p.stop(t) // flushes the spans

			spans := otlp.Spans()
			servers := serverSpans(spans)
			if len(servers) != 1 {
				t.Fatalf("got %d server spans, want 1: %+v", len(servers), spans)
			}
			s := servers[0]
			if s.TraceID != traceID || s.ParentSpanID != parentID || s.Name != "GET /queries" {
				t.Errorf("server span trace %s parent %s name %q; want trace %s, parent %s, GET /queries", s.TraceID, s.ParentSpanID, s.Name, traceID, parentID)
			}
			want := map[string]any{
				"http.request.method": "GET", "http.route": "/queries", "url.path": "/queries",
				"http.response.status_code": int64(200), "server.address": "127.0.0.1",
				"user_agent.original": "trace-test/1.0", "client.address": "127.0.0.1",
			}
			for k, v := range want {
				if s.Attrs[k] != v {
					t.Errorf("server span %s = %v, want %v", k, s.Attrs[k], v)
				}
			}
			if _, ok := s.Attrs["error.type"]; ok {
				t.Errorf("a 200 carries error.type %v", s.Attrs["error.type"])
			}
			for k, v := range map[string]any{"service.name": "hotpath", "k8s.pod.name": "hotpath-7d9f", "k8s.namespace.name": "apps"} {
				if s.Resource[k] != v {
					t.Errorf("resource %s = %v, want %v", k, s.Resource[k], v)
				}
			}
			var db []testenv.Span
			for _, c := range spans {
				if c.ParentSpanID == s.SpanID {
					db = append(db, c)
				}
			}
			if len(db) != 1 {
				t.Fatalf("got %d children of the server span, want the one database call: %+v", len(db), db)
			}
			for k, v := range map[string]any{"db.system.name": system, "db.operation.name": "SELECT", "db.collection.name": "World",
				"db.query.text": "SELECT id, randomNumber FROM World WHERE id = $1"} {
				if db[0].Attrs[k] != v {
					t.Errorf("database span %s = %v, want %v", k, db[0].Attrs[k], v)
				}
			}
			if db[0].TraceID != traceID || db[0].Name != "SELECT World" || db[0].Start.Before(s.Start) || db[0].End.After(s.End) {
				t.Errorf("database span %q in trace %s from %s to %s, want SELECT World within the server span (%s to %s)",
					db[0].Name, db[0].TraceID, db[0].Start, db[0].End, s.Start, s.End)
			}
			line := accessLineOf(t, p, "traced-1")
			if line["trace_id"] != traceID || line["span_id"] != s.SpanID {
				t.Errorf("access log trace_id %v span_id %v, want %s %s", line["trace_id"], line["span_id"], traceID, s.SpanID)
			}
		})
	}
}

func TestSamplingHonoursParentsAndTheShare(t *testing.T) {
	t.Run("sample=0", func(t *testing.T) {
		otlp := testenv.NewOTLPReceiver(t)
		p := startProc(t, "--tracing.endpoint="+otlp.URL, "--tracing.sample=0", "--log.access_sample=1")
		for range 20 {
			get(t, "GET", p.app+"/json")
		}
		get(t, "GET", p.app+"/json", "traceparent", unsampledTP, "X-Request-ID", "unsampled")
		get(t, "GET", p.app+"/json", "traceparent", sampledTP, "X-Request-ID", "sampled")
		p.stop(t)
		spans := otlp.Spans()
		if len(spans) != 1 || spans[0].TraceID != traceID || spans[0].ParentSpanID != parentID {
			t.Errorf("got %+v, want the one span of the sampled parent", spans)
		}
		// An unsampled parent is not recorded, but its ids still reach the
		// log (and calls made on its behalf).
		line := accessLineOf(t, p, "unsampled")
		if line["trace_id"] != traceID || line["span_id"] != parentID {
			t.Errorf("unsampled parent logged as %v/%v, want %s/%s", line["trace_id"], line["span_id"], traceID, parentID)
		}
		traced := 0
		for _, l := range accessLines(t, p.stdout.String()) {
			if l["trace_id"] != nil {
				traced++
			}
		}
		if traced != 2 {
			t.Errorf("%d access lines carry a trace_id, want the 2 requests that sent a traceparent", traced)
		}
	})
	t.Run("sample=1", func(t *testing.T) {
		otlp := testenv.NewOTLPReceiver(t)
		p := startProc(t, "--tracing.endpoint="+otlp.URL, "--tracing.sample=1", "--log.access_sample=1")
		for range 20 {
			get(t, "GET", p.app+"/plaintext")
		}
		get(t, "GET", p.app+"/plaintext", "traceparent", unsampledTP)
		p.stop(t)
		spans := otlp.Spans()
		ids := map[string]bool{}
		for _, s := range spans {
			if s.ParentSpanID != "" || s.Name != "GET /plaintext" {
				t.Errorf("root span %q has parent %q", s.Name, s.ParentSpanID)
			}
			ids[s.TraceID] = true
		}
		if len(spans) != 20 || len(ids) != 20 || ids[traceID] {
			t.Errorf("got %d spans in %d traces, want the 20 root requests, each its own trace, and not the unsampled parent's", len(spans), len(ids))
		}
		for _, l := range accessLines(t, p.stdout.String()) {
			if id, _ := l["trace_id"].(string); !ids[id] && id != traceID {
				t.Errorf("access line with trace_id %q, which no exported span has", id)
			}
		}
	})
}

func TestMalformedTraceparentStartsANewTrace(t *testing.T) {
	otlp := testenv.NewOTLPReceiver(t)
	p := startProc(t, "--tracing.endpoint="+otlp.URL, "--tracing.sample=1")
	bad := map[string]string{
		"version ff":     "ff-" + traceID + "-" + parentID + "-01",
		"zero trace id":  "00-" + strings.Repeat("0", 32) + "-" + parentID + "-01",
		"zero parent id": "00-" + traceID + "-" + strings.Repeat("0", 16) + "-01",
		"bad hex":        "00-" + traceID[:31] + "x-" + parentID + "-01",
		"short trace id": "00-" + traceID[:30] + "-" + parentID + "-01",
		"long parent id": "00-" + traceID + "-" + parentID + "00-01",
		"upper-case hex": "00-" + strings.ToUpper(traceID) + "-" + parentID + "-01",
		"00 with extra":  sampledTP + "-00",
		"garbage":        "hello",
	}
	for name, tp := range bad {
		resp, body := get(t, "GET", p.app+"/json", "traceparent", tp, "X-Request-ID", strings.ReplaceAll(name, " ", "-"))
		if resp.StatusCode != 200 || body != `{"message":"Hello, World!"}` {
			t.Errorf("%s: %d %q, want the ordinary 200", name, resp.StatusCode, body)
		}
	}
	// Two traceparent fields are invalid together, even if each is valid.
	req, err := http.NewRequest("GET", p.app+"/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header["Traceparent"] = []string{sampledTP, sampledTP}
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("doubled traceparent: %v %v", resp, err)
	}
	resp.Body.Close()
	p.stop(t)
	spans := otlp.Spans()
	if len(spans) != len(bad)+1 {
		t.Errorf("got %d spans, want one new trace for each of the %d requests", len(spans), len(bad)+1)
	}
	for _, s := range spans {
		if s.TraceID == traceID || s.ParentSpanID != "" {
			t.Errorf("span %s with parent %q continues a malformed traceparent", s.TraceID, s.ParentSpanID)
		}
	}
}

func TestCollectorDownOrHangingCostsSpansNotRequests(t *testing.T) {
	otlp := testenv.NewOTLPReceiver(t)
	for _, tc := range []struct {
		mode   testenv.Mode
		reason string
	}{
		{testenv.Refuse, "export_failed"},
		{testenv.Blackhole, "queue_full"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			proxy := testenv.NewProxy(t, strings.TrimPrefix(otlp.URL, "http://"))
			proxy.SetMode(tc.mode)
			p := startProc(t, "--tracing.endpoint=http://"+proxy.Addr(), "--tracing.sample=1", "--tracing.queue=16",
				"--tracing.timeout=10s", "--shutdown.timeout=2s")
			var slowest time.Duration
			for range 300 {
				start := time.Now()
				resp, _ := get(t, "GET", p.app+"/json")
				slowest = max(slowest, time.Since(start))
				if resp.StatusCode != 200 {
					t.Fatalf("status %d while the collector is unreachable", resp.StatusCode)
				}
			}
			// No request waits for an export (which may take tracing.timeout).
			if slowest > 2*time.Second {
				t.Errorf("slowest request took %s with the collector %s", slowest, tc.reason)
			}
			name := `tracing_spans_dropped_total{reason="` + tc.reason + `"}`
			deadline := time.Now().Add(5 * time.Second)
			for metricValue(t, p, name) == 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if v := metricValue(t, p, name); v == 0 {
				t.Errorf("%s = 0, want the lost spans counted", name)
			}
			if v := metricValue(t, p, "tracing_spans_exported_total"); v != 0 {
				t.Errorf("tracing_spans_exported_total = %v with no collector", v)
			}
			// The flush at exit is bounded by shutdown.timeout (2s) though
			// an export may wait tracing.timeout (10s).
			start := time.Now()
			p.signal(t, syscall.SIGTERM)
			code := p.wait(t, 20*time.Second)
			if took := time.Since(start); took > 4*time.Second || code != 0 {
				t.Errorf("exit %d after %s, want 0 within drain (100ms) + shutdown.timeout (2s)", code, took)
			}
		})
	}
	if got := otlp.Spans(); len(got) != 0 {
		t.Errorf("spans reached the collector through a dead proxy: %d", len(got))
	}
}

// TestTracingSampleReloads: a reload changes the share of root requests
// traced for the requests that follow.
func TestTracingSampleReloads(t *testing.T) {
	otlp := testenv.NewOTLPReceiver(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	endpoint := `tracing.endpoint = "` + otlp.URL + `"`
	replaceFile(t, path, conf(endpoint, "tracing.sample = 0"))
	p := startConfigured(t, dir, path, "--reload.watch=false")
	for range 10 {
		get(t, "GET", p.app+"/json", "User-Agent", "before")
	}
	replaceFile(t, path, conf(endpoint, "tracing.sample = 1"))
	p.signal(t, syscall.SIGHUP)
	waitMetric(t, p, reloadsOK, 1)
	for range 10 {
		get(t, "GET", p.app+"/json", "User-Agent", "after")
	}
	p.stop(t)
	spans := otlp.Spans()
	for _, s := range spans {
		if s.Attrs["user_agent.original"] != "after" {
			t.Errorf("span of a request made with tracing.sample = 0: %+v", s)
		}
	}
	if len(spans) != 10 {
		t.Errorf("got %d spans, want the 10 requests after the reload to tracing.sample = 1", len(spans))
	}
}

func TestWebhookAfterRestartContinuesTheTraceOfItsRequest(t *testing.T) {
	for _, d := range drivers() {
		t.Run(d.name, func(t *testing.T) {
			otlp := testenv.NewOTLPReceiver(t)
			r := newHookReceiver(t) // down until the restart
			args := append(append(d.args(t), hookArgs(r)...), "--tracing.endpoint="+otlp.URL, "--tracing.sample=0")
			p := startProc(t, args...)
			waitReady(t, p)
			resp, body := send(t, "PUT", p.app+"/api/v1/worlds/42", `{"randomNumber":77}`,
				"Content-Type", "application/json", authHeader[0], authHeader[1], "traceparent", sampledTP)
			if resp.StatusCode != 200 {
				t.Fatalf("PUT: %d %s", resp.StatusCode, body)
			}
			p.stop(t)
			var request testenv.Span
			for _, s := range serverSpans(otlp.Spans()) {
				if s.Name == "PUT /api/v1/worlds/{id}" {
					request = s
				}
			}
			if request.TraceID != traceID {
				t.Fatalf("no server span of the PUT in its trace: %+v", otlp.Spans())
			}

			r.listen()
			p2 := startProc(t, args...) // same database, the event still pending
			got := r.wait(t, 1, 15*time.Second)
			p2.stop(t)
			// The POST carries a traceparent of the same trace, from a
			// client span of the new process whose parent is the request's.
			tp := got[0].Traceparent
			if len(tp) != 55 || tp[3:35] != traceID || tp[36:52] == request.SpanID || tp[36:52] == parentID {
				t.Errorf("delivery traceparent %q, want trace %s from a span of its own", tp, traceID)
			}
			// Failed attempts (before the restart) are spans of the same
			// trace too; one attempt succeeded, the one the receiver saw.
			var posts, delivered []testenv.Span
			for _, s := range otlp.Spans() {
				if s.Kind.String() == "SPAN_KIND_CLIENT" && s.Attrs["http.request.method"] == "POST" {
					posts = append(posts, s)
					if s.Attrs["http.response.status_code"] == int64(204) {
						delivered = append(delivered, s)
					}
				}
			}
			for _, s := range posts {
				if s.TraceID != traceID || s.ParentSpanID != request.SpanID || s.Attrs["server.address"] != "127.0.0.1" {
					t.Errorf("delivery attempt %+v, want it in trace %s under the request's span %s", s, traceID, request.SpanID)
				}
			}
			if len(delivered) != 1 || delivered[0].SpanID != tp[36:52] {
				t.Errorf("delivered attempts %+v, want one, sent as %s", delivered, tp)
			}
		})
	}
}
