package tracing

import (
	"context"
	"encoding/hex"
	"log/slog"
)

// LogHandler wraps h so that every record logged with a context carrying a
// trace (a request's *fasthttp.RequestCtx, or a context from Context or
// Continue) gets the trace_id and span_id fields the access log has, so
// the application log lines of a traced request join its trace. Log with
// the ...Context methods: log.ErrorContext(ctx, ...).
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if tr := FromContext(ctx); tr != nil {
		r.AddAttrs(slog.String("trace_id", hex.EncodeToString(tr.traceID[:])),
			slog.String("span_id", hex.EncodeToString(tr.spanID[:])))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{h.Handler.WithGroup(name)}
}
