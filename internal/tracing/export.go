package tracing

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	vm "github.com/VictoriaMetrics/metrics"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/hotpath/hotpath/internal/config"
)

// exportCounter counts what becomes of finished spans and logs an export
// outage once, when it starts, and once when it ends.
type exportCounter struct {
	exported, queueFull, failed *vm.Counter
	log                         *slog.Logger
	mu                          sync.Mutex
	failing                     bool
}

func newExportCounter(set *vm.Set, log *slog.Logger) *exportCounter {
	return &exportCounter{
		exported:  set.GetOrCreateCounter("tracing_spans_exported_total"),
		queueFull: set.GetOrCreateCounter(`tracing_spans_dropped_total{reason="queue_full"}`),
		failed:    set.GetOrCreateCounter(`tracing_spans_dropped_total{reason="export_failed"}`),
		log:       log,
	}
}

func (c *exportCounter) result(n int, err error) {
	if err == nil {
		c.exported.Add(n)
	} else {
		c.failed.Add(n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err != nil && !c.failing:
		c.log.Warn("tracing: export to tracing.endpoint failed; spans are dropped and counted (tracing_spans_dropped_total) until it answers", "err", err.Error())
	case err == nil && c.failing:
		c.log.Info("tracing: export to tracing.endpoint works again")
	}
	c.failing = err != nil
}

// boundedProcessor is the SDK's batch processor behind a gate that holds
// at most tracing.queue spans between a span's end and its export's
// result. Over it a span is dropped and counted at once: a slow or dead
// collector never blocks a request, and memory stays bounded. The batch
// processor's own queue is as large, so it never drops a span uncounted.
type boundedProcessor struct {
	sdktrace.SpanProcessor
	pending atomic.Int64
	limit   int64
	counts  *exportCounter
}

func newBoundedProcessor(exp sdktrace.SpanExporter, cfg config.Tracing, counts *exportCounter) *boundedProcessor {
	p := &boundedProcessor{limit: int64(cfg.Queue), counts: counts}
	p.SpanProcessor = sdktrace.NewBatchSpanProcessor(&countingExporter{SpanExporter: exp, p: p},
		sdktrace.WithMaxQueueSize(cfg.Queue),
		sdktrace.WithMaxExportBatchSize(min(cfg.Queue, sdktrace.DefaultMaxExportBatchSize)),
		sdktrace.WithBatchTimeout(batchDelay),
		sdktrace.WithExportTimeout(cfg.Timeout),
	)
	return p
}

// OnEnd passes s on for export when there is room, else drops it.
func (p *boundedProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if p.pending.Add(1) > p.limit {
		p.pending.Add(-1)
		p.counts.queueFull.Inc()
		return
	}
	p.SpanProcessor.OnEnd(s)
}

// countingExporter frees the gate's room as batches leave, counting each
// span exported or lost.
type countingExporter struct {
	sdktrace.SpanExporter
	p *boundedProcessor
}

func (e *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	e.p.pending.Add(-int64(len(spans)))
	e.p.counts.result(len(spans), err)
	return err
}
