// Package tracing joins hotpath to distributed traces: W3C Trace Context
// in and out, OpenTelemetry spans for sampled requests, export over
// OTLP/HTTP, and trace ids in the logs.
//
// # What a request pays
//
// The router's guard picks traceparent and tracestate out of the header
// block in the walk it makes anyway, and Begin parses traceparent by hand.
// Then, per request:
//
//   - no valid traceparent, not drawn at tracing.sample: nothing at all
//     (one random draw when tracing records), no allocation;
//   - a valid traceparent that is not sampled, or any valid traceparent
//     while tracing.endpoint is empty: a pooled Trace holding the caller's
//     ids in the request's user values, no allocation. The request is not
//     recorded; its log lines and outbound calls carry the caller's trace
//     id and span id unchanged, so spans further down attach to the
//     nearest recorded span;
//   - sampled (an incoming sampled flag, or a root drawn at tracing.sample):
//     a server span made by the OpenTelemetry SDK, about two dozen
//     allocations (pinned by TestSampledTraceStaysWithinAllocationBudget).
//
// A malformed traceparent is ignored as the spec says (a new trace
// starts), never refused; a malformed tracestate is dropped, keeping the
// traceparent.
//
// # Spans
//
// The server span is named "METHOD /route/{template}" and carries the
// stable HTTP semantic conventions: http.request.method, http.route,
// url.path, url.scheme, http.response.status_code, server.address,
// server.port, client.address, user_agent.original, network.protocol.version,
// and error.type on a 5xx. Handlers pass Context(ctx) to the calls they
// make; through it the store opens one client span per call
// (db.system.name, db.operation.name, db.collection.name and the
// statement's constant text as db.query.text, never a bound value) and
// internal/upstream one client span per attempt, retries and circuit
// breaker refusals included, sending the attempt's traceparent.
//
// A change that records a webhook event stores the traceparent of the
// request's span in the outbox row; the delivery, however much later and
// after however many restarts, continues that trace (Continue).
//
// # Export
//
// Finished spans go to the SDK's batch processor and leave in batches
// within a second. At most tracing.queue spans wait between their end and
// their export's result; beyond that a span is dropped at once and
// counted (tracing_spans_dropped_total{reason="queue_full"}), so a slow or
// dead collector never blocks a request. A failed export loses its batch
// (reason="export_failed") and is logged once per outage. Shutdown
// flushes within tracing.timeout and what is left of shutdown.timeout.
// The resource is service.name (tracing.service_name, default
// server.name), service.version, and whatever OTEL_RESOURCE_ATTRIBUTES
// adds (the Kubernetes manifests pass the pod's name and namespace); the
// exporter also honours the OTEL_EXPORTER_OTLP_* variables, such as
// OTEL_EXPORTER_OTLP_HEADERS for a collector that wants a token.
//
// # Logs
//
// The access log writes trace_id and span_id for every request that has a
// trace context. Application lines logged with the request's context
// (log.ErrorContext(ctx, ...), ctx being the *fasthttp.RequestCtx) get the
// same two fields from LogHandler.
package tracing
