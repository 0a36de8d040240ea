// Package metrics holds hotpath's Prometheus metrics: one set per process,
// with per-route handles resolved when a route is registered so that the
// request path only increments counters it already holds.
package metrics

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// DurationBuckets are the upper bounds of http_request_duration_seconds: the
// OpenTelemetry HTTP buckets plus sub-millisecond ones, since most hotpath
// answers take well under a millisecond.
var DurationBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
}

// Registry owns the process's metric set and the handles shared by the
// request path.
type Registry struct {
	set      *vm.Set
	inflight atomic.Int64

	// Overloaded counts requests refused by server.max_inflight.
	Overloaded *vm.Counter
	// AccessLogDropped counts access-log records dropped because the writer
	// fell behind.
	AccessLogDropped *vm.Counter
	// Panics counts handler panics recovered as 500.
	Panics *vm.Counter

	refused map[int]*vm.Counter // by status, made up front

	// described holds the HELP texts of the families a service registered.
	describedMu sync.Mutex
	described   map[string]string
}

// refusalCodes are the statuses answered before a request reaches the
// router: the connection caps and requests fasthttp could not read.
var refusalCodes = []int{400, 408, 413, 429, 431, 503}

// New creates a registry with the server-wide metrics registered.
func New(version string) *Registry {
	// TYPE lines: scrapers then know counters and histograms from gauges.
	vm.ExposeMetadata(true)
	r := &Registry{set: vm.NewSet()}
	r.Overloaded = r.set.NewCounter("http_overload_rejections_total")
	r.AccessLogDropped = r.set.NewCounter("access_log_dropped_total")
	r.Panics = r.set.NewCounter("http_panics_recovered_total")
	r.refused = make(map[int]*vm.Counter, len(refusalCodes))
	for _, code := range refusalCodes {
		r.refused[code] = r.set.NewCounter(fmt.Sprintf("http_refused_total{code=\"%d\"}", code))
	}
	r.set.NewGauge("http_requests_in_flight", func() float64 { return float64(r.inflight.Load()) })
	r.set.NewGauge(fmt.Sprintf("hotpath_build_info{version=%q,goversion=%q}", version, runtime.Version()), func() float64 { return 1 })
	// go_gomaxprocs comes with vm.WriteProcessMetrics; the memory limit
	// does not.
	r.set.NewGauge("go_gomemlimit_bytes", func() float64 {
		if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
			return float64(l)
		}
		return 0
	})
	return r
}

// Refused counts an answer given before a request reached the router.
func (r *Registry) Refused(status int) {
	if c, ok := r.refused[status]; ok {
		c.Inc()
		return
	}
	r.set.GetOrCreateCounter(fmt.Sprintf("http_refused_total{code=\"%d\"}", status)).Inc()
}

// Describe gives the family of name (the part before any '{') its HELP
// text. A family the framework describes keeps its own text, and a text
// must be one line without backslashes; Describe reports either mistake.
func (r *Registry) Describe(name, text string) error {
	family, _, _ := strings.Cut(name, "{")
	if _, ok := help[family]; ok {
		return fmt.Errorf("metric %s is one of hotpath's own families", family)
	}
	if text == "" || strings.ContainsAny(text, "\\\n\r") {
		return fmt.Errorf("metric %s: help text must be one line without backslashes", family)
	}
	r.describedMu.Lock()
	defer r.describedMu.Unlock()
	if r.described == nil {
		r.described = map[string]string{}
	}
	if prev, ok := r.described[family]; ok && prev != text {
		return fmt.Errorf("metric %s is already described as %q", family, prev)
	}
	r.described[family] = text
	return nil
}

// Set is the underlying metric set, for components that register their own
// metrics (the data layer, the webhook dispatcher).
func (r *Registry) Set() *vm.Set { return r.set }

// Inflight returns the number of requests being handled now.
func (r *Registry) Inflight() int64 { return r.inflight.Load() }

// AddInflight moves the in-flight gauge by delta and returns the new value.
func (r *Registry) AddInflight(delta int64) int64 { return r.inflight.Add(delta) }

// WritePrometheus writes every metric, plus Go runtime and process metrics,
// in the Prometheus text format, each family with its HELP text (help.go).
func (r *Registry) WritePrometheus(w io.Writer) error {
	var buf bytes.Buffer
	r.set.WritePrometheus(&buf)
	vm.WriteProcessMetrics(&buf)
	r.describedMu.Lock()
	defer r.describedMu.Unlock()
	return writeWithHelp(w, buf.Bytes(), r.described)
}

// Route holds the metric handles of one method and route template.
type Route struct {
	set      *vm.Set
	method   string
	route    string
	duration *vm.PrometheusHistogram
	// codes caches one counter per status code; a code's counter is created
	// the first time it is seen, so steady traffic allocates nothing.
	codes [600]atomic.Pointer[vm.Counter]
}

// Route returns the handles for method and route (a template such as
// /v1/notes/{id}, never a raw path). Call it at registration.
func (r *Registry) Route(method, route string) *Route {
	rt := &Route{set: r.set, method: method, route: route}
	rt.duration = r.set.GetOrCreatePrometheusHistogramExt(
		fmt.Sprintf("http_request_duration_seconds{route=%q,method=%q}", route, method), DurationBuckets)
	for _, code := range []int{200, 400, 404, 500, 503} {
		rt.counter(code)
	}
	return rt
}

// Observe records one finished request.
func (rt *Route) Observe(status int, d time.Duration) {
	rt.counter(status).Inc()
	rt.duration.Update(d.Seconds())
}

func (rt *Route) counter(status int) *vm.Counter {
	if status < 100 || status >= len(rt.codes) {
		status = 500
	}
	if c := rt.codes[status].Load(); c != nil {
		return c
	}
	c := rt.set.GetOrCreateCounter(fmt.Sprintf("http_requests_total{route=%q,method=%q,code=\"%d\"}", rt.route, rt.method, status))
	rt.codes[status].Store(c)
	return c
}
