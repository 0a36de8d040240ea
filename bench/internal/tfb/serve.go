package tfb

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ServeWithMetrics is how the full-featured net/http-based peers run: app on
// f.Addr and promhttp's /metrics (the default registry) on f.MetricsAddr,
// both with hotpath's read, write and idle timeouts. stop shuts both down.
func ServeWithMetrics(f PeerFlags, app http.Handler) (serve func() error, stop func()) {
	metrics := http.NewServeMux()
	metrics.Handle("GET /metrics", promhttp.Handler())
	servers := []*http.Server{
		{Addr: f.Addr, Handler: app, ReadTimeout: ReadTimeout, WriteTimeout: WriteTimeout, IdleTimeout: IdleTimeout},
		{Addr: f.MetricsAddr, Handler: metrics, ReadTimeout: ReadTimeout, WriteTimeout: WriteTimeout, IdleTimeout: IdleTimeout},
	}
	serve = func() error {
		errc := make(chan error, len(servers))
		for _, s := range servers {
			go func() { errc <- s.ListenAndServe() }()
		}
		var errs []error
		for range servers {
			if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
				errs = append(errs, err)
				stop()
			}
		}
		return errors.Join(errs...)
	}
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, s := range servers {
			s.Shutdown(ctx) // idle connections close at once; nothing to report
		}
	}
	return serve, stop
}
