package limit

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune an Adaptive limiter; zero fields take the defaults.
type Options struct {
	// Initial is the cap before the first measurement (default 64).
	Initial int
	// Min and Max bound the cap (defaults 4 and 4096). Min is also the cap
	// held while the baseline is measured.
	Min, Max int
	// Window is how long latency samples are gathered for one update
	// (default 100ms).
	Window time.Duration
	// MinSamples: a window with fewer samples is extended (default 20).
	MinSamples int
	// Tolerance is the share of latency above the baseline that still
	// counts as unloaded (default 0.5).
	Tolerance float64
	// ProbeEvery is how often the baseline is measured again, since the
	// unloaded latency itself changes with data and deployments (default 10s).
	ProbeEvery time.Duration
}

func (o *Options) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Initial, 64)
	def(&o.Min, 4)
	def(&o.Max, 4096)
	def(&o.MinSamples, 20)
	if o.Window <= 0 {
		o.Window = 100 * time.Millisecond
	}
	if o.Tolerance <= 0 {
		o.Tolerance = 0.5
	}
	if o.ProbeEvery <= 0 {
		o.ProbeEvery = 10 * time.Second
	}
	o.Initial = min(max(o.Initial, o.Min), o.Max)
}

// Adaptive is a concurrency cap that follows handler latency. Admit and
// Observe are safe for concurrent use and allocate nothing.
type Adaptive struct {
	opts Options

	limit atomic.Int64
	// The current window's samples.
	sum   atomic.Int64 // nanoseconds
	count atomic.Int64
	peak  atomic.Int64 // highest in-flight count admitted

	// update is held by the one request that closes a window.
	update      sync.Mutex
	windowStart atomic.Int64 // unix nanoseconds
	probing     atomic.Bool  // this window measures the baseline
	nextProbe   int64        // unix nanoseconds
	minRTT      float64      // nanoseconds; 0 until the first probe ends
	grown       float64      // the cap before rounding, so small steps add up
}

// NewAdaptive returns a limiter that starts by measuring the baseline, at
// the Min cap: a baseline taken under load would keep the cap loose until
// the next probe.
func NewAdaptive(o Options, now time.Time) *Adaptive {
	o.setDefaults()
	a := &Adaptive{opts: o, grown: float64(o.Initial)}
	a.limit.Store(int64(o.Min))
	a.probing.Store(true)
	a.windowStart.Store(now.UnixNano())
	return a
}

// Limit is the current cap.
func (a *Adaptive) Limit() int64 { return a.limit.Load() }

// Admit reports whether a request that makes inflight requests in flight
// (itself included) may run.
func (a *Adaptive) Admit(inflight int64) bool {
	if inflight > a.limit.Load() {
		return false
	}
	for {
		p := a.peak.Load()
		if inflight <= p || a.peak.CompareAndSwap(p, inflight) {
			return true
		}
	}
}

// Observe records how long an admitted request took, finishing at now, and
// closes the window when it is due.
func (a *Adaptive) Observe(took time.Duration, now time.Time) {
	t := now.UnixNano()
	if a.probing.Load() && t-int64(took) < a.windowStart.Load() {
		// Admitted before the cap was pinned low: it ran among the load
		// the probe is meant to see without.
		return
	}
	a.sum.Add(int64(took))
	n := a.count.Add(1)
	if n < int64(a.opts.MinSamples) || t-a.windowStart.Load() < int64(a.opts.Window) {
		return
	}
	// One request closes the window; the others carry on without waiting.
	if !a.update.TryLock() {
		return
	}
	defer a.update.Unlock()
	if t-a.windowStart.Load() < int64(a.opts.Window) {
		return // another request closed it just now
	}
	sum, count, peak := a.sum.Swap(0), a.count.Swap(0), a.peak.Swap(0)
	a.windowStart.Store(t)
	if count == 0 {
		return
	}
	a.closeWindow(float64(sum)/float64(count), peak, t)
}

// closeWindow moves the cap after a window whose mean latency was rtt.
func (a *Adaptive) closeWindow(rtt float64, peak, now int64) {
	o := &a.opts
	if a.probing.Load() {
		a.probing.Store(false)
		a.minRTT = rtt
		a.nextProbe = now + int64(o.ProbeEvery)
		a.limit.Store(int64(math.Round(a.grown)))
		return
	}
	if now >= a.nextProbe {
		// Pin the cap low for the next window to see the unloaded latency.
		a.probing.Store(true)
		a.limit.Store(int64(o.Min))
		return
	}
	gradient := min(max((a.minRTT*(1+o.Tolerance))/rtt, 0.5), 2)
	if gradient >= 1 && float64(peak) < a.grown/2 {
		// Fast answers at low use say nothing about a higher cap.
		return
	}
	next := a.grown * gradient
	next += math.Sqrt(next)
	a.grown = min(max(next, float64(o.Min)), float64(o.Max))
	a.limit.Store(int64(math.Round(a.grown)))
}
