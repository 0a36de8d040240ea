package hotpath

import (
	"fmt"
	"regexp"
	"strings"

	vm "github.com/VictoriaMetrics/metrics"
)

// Counter is a metric that only goes up, served on /metrics of the admin
// listener. Inc and Add allocate nothing.
type Counter struct{ c *vm.Counter }

// Inc adds one.
func (c *Counter) Inc() { c.c.Inc() }

// Add adds n (n >= 0).
func (c *Counter) Add(n int) { c.c.Add(n) }

// Histogram is a distribution of observed values (a Prometheus histogram
// with the given buckets).
type Histogram struct{ h *vm.PrometheusHistogram }

// Observe records v.
func (h *Histogram) Observe(v float64) { h.h.Update(v) }

// metricName is a series name: a family name and, optionally, fixed
// labels: things_total or things_total{kind="a"}.
var metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})?$`)

// describe checks name and registers help as its family's HELP text.
func (a *App) describe(name, help string) bool {
	if !metricName.MatchString(name) {
		a.errs = append(a.errs, fmt.Errorf("metric %q: want a name such as things_total or things_total{kind=\"a\"}", name))
		return false
	}
	if err := a.metrics.Describe(name, help); err != nil {
		a.errs = append(a.errs, err)
		return false
	}
	return true
}

// Counter registers a counter, served with its HELP text help: say what
// it counts, with its unit. name is the series (a family name ending in
// _total, with fixed labels if any: notes_created_total{source="api"}).
// A mistake in name or help stops start-up naming it.
func (a *App) Counter(name, help string) *Counter {
	if !strings.HasSuffix(familyOf(name), "_total") {
		a.errs = append(a.errs, fmt.Errorf("counter %s: a counter's name ends in _total", name))
		return &Counter{new(vm.Counter)} // counts nothing anyone sees: start-up stops
	}
	if !a.describe(name, help) {
		return &Counter{new(vm.Counter)}
	}
	return &Counter{a.metrics.Set().GetOrCreateCounter(name)}
}

// Gauge registers a gauge whose value f gives at each scrape.
func (a *App) Gauge(name, help string, f func() float64) {
	if a.describe(name, help) {
		a.metrics.Set().GetOrCreateGauge(name, f)
	}
}

// Histogram registers a histogram with the given bucket upper bounds.
func (a *App) Histogram(name, help string, buckets []float64) *Histogram {
	if !a.describe(name, help) {
		// Start-up stops on the mistake; until then observations go nowhere.
		return &Histogram{vm.NewSet().NewPrometheusHistogramExt("discarded", []float64{1})}
	}
	return &Histogram{a.metrics.Set().GetOrCreatePrometheusHistogramExt(name, buckets)}
}

func familyOf(name string) string {
	f, _, _ := strings.Cut(name, "{")
	return f
}
