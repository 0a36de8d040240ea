package limit

import (
	"testing"
	"time"
)

// resource models what the handlers share: capacity requests run at once at
// base latency; more queue, so latency grows with the excess.
type resource struct {
	capacity int
	base     time.Duration
}

func (r resource) latency(inflight int) time.Duration {
	if inflight <= r.capacity {
		return r.base
	}
	return r.base * time.Duration(inflight) / time.Duration(r.capacity)
}

// sim drives a limiter with offered closed-loop clients for d of simulated
// time: each round admits up to the cap, and all admitted finish together.
type sim struct {
	a   *Adaptive
	now time.Time
}

func (s *sim) run(offered int, r resource, d time.Duration) {
	end := s.now.Add(d)
	for s.now.Before(end) {
		admitted := 0
		for i := 1; i <= offered; i++ {
			if s.a.Admit(int64(i)) {
				admitted = i
			}
		}
		if admitted == 0 {
			s.now = s.now.Add(time.Millisecond)
			continue
		}
		took := r.latency(admitted)
		s.now = s.now.Add(took)
		for range admitted {
			s.a.Observe(took, s.now)
		}
	}
}

func TestAdaptiveFollowsLatencyDownAndUp(t *testing.T) {
	start := time.Unix(1000, 0)
	s := &sim{a: NewAdaptive(Options{ProbeEvery: 3 * time.Second}, start), now: start}
	if got := s.a.Limit(); got != 4 {
		t.Fatalf("limit before the first probe %d, want the minimum 4", got)
	}

	// 200 clients on a resource that runs 8 at a time: queueing shows as
	// latency, so the cap must come down from its initial 64, and stay down
	// across the probe at 3s.
	slow := resource{capacity: 8, base: time.Millisecond}
	s.run(200, slow, 5*time.Second)
	down := s.a.Limit()
	if down < 8 || down > 32 {
		t.Errorf("capacity 8: limit %d, want between 8 and 32 (down from 64)", down)
	}

	// The resource gets faster (capacity 64): latency falls, the cap grows.
	fast := resource{capacity: 64, base: time.Millisecond}
	s.run(200, fast, 2*time.Second)
	up := s.a.Limit()
	t.Logf("limit after slow phase %d, after fast phase %d", down, up)
	if up <= 64 {
		t.Errorf("capacity 64: limit %d, want above 64 (up from %d)", up, down)
	}

	// Every request gets slower and queues again: the cap comes down even
	// across a new baseline probe.
	slower := resource{capacity: 8, base: 5 * time.Millisecond}
	s.run(200, slower, 6*time.Second)
	if got := s.a.Limit(); got > 32 {
		t.Errorf("capacity 8 at 5ms: limit %d, want at most 32 (down from %d)", got, up)
	}
}

func TestAdaptiveDoesNotGrowWhenUnused(t *testing.T) {
	start := time.Unix(1000, 0)
	s := &sim{a: NewAdaptive(Options{}, start), now: start}
	s.run(3, resource{capacity: 100, base: time.Millisecond}, 2*time.Second)
	if got := s.a.Limit(); got > 64 {
		t.Errorf("3 clients at base latency: limit %d, want it to stay at or below the initial 64", got)
	}
}

func TestAdaptiveStaysWithinBounds(t *testing.T) {
	start := time.Unix(1000, 0)
	s := &sim{a: NewAdaptive(Options{Min: 2, Max: 50}, start), now: start}
	s.run(500, resource{capacity: 1000, base: time.Millisecond}, 2*time.Second)
	if got := s.a.Limit(); got != 50 {
		t.Errorf("unbounded demand on a fast resource: limit %d, want the maximum 50", got)
	}
	s.run(500, resource{capacity: 1, base: 10 * time.Millisecond}, 5*time.Second)
	if got := s.a.Limit(); got < 2 || got > 10 {
		t.Errorf("a resource running one at a time: limit %d, want near the minimum 2", got)
	}
	if s.a.Admit(s.a.Limit() + 1) {
		t.Errorf("Admit above the limit returned true")
	}
}

func TestAdaptiveAllocatesNothing(t *testing.T) {
	a := NewAdaptive(Options{Window: time.Nanosecond, MinSamples: 1}, time.Now())
	n := testing.AllocsPerRun(1000, func() {
		if a.Admit(1) {
			a.Observe(time.Millisecond, time.Now())
		}
	})
	if n != 0 {
		t.Errorf("Admit+Observe: %v allocs, want 0", n)
	}
}

func TestAdaptiveProbeIgnoresRequestsAdmittedBeforeIt(t *testing.T) {
	start := time.Unix(1000, 0)
	o := Options{ProbeEvery: time.Second, Window: 100 * time.Millisecond, MinSamples: 1}
	a := NewAdaptive(o, start)
	now := start.Add(200 * time.Millisecond)
	a.Observe(time.Millisecond, now) // closes the first probe: baseline 1ms
	now = now.Add(time.Second)
	a.Observe(time.Millisecond, now) // the probe is due: cap pinned
	if got := a.Limit(); got != 4 {
		t.Fatalf("limit during the probe %d, want the minimum 4", got)
	}
	// A request admitted before the pin finishes late in the probe window,
	// then one admitted under the pin finishes and closes it.
	a.Observe(500*time.Millisecond, now.Add(150*time.Millisecond))
	a.Observe(2*time.Millisecond, now.Add(200*time.Millisecond))
	if a.minRTT != float64(2*time.Millisecond) {
		t.Errorf("baseline after the probe %v, want 2ms, from the request admitted under the pin only", time.Duration(a.minRTT))
	}
}
