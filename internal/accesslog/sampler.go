package accesslog

import (
	"math"
	"math/rand/v2"
	"time"
)

// Sampler decides which requests are logged: every 5xx, every request
// slower than Slow, and a random share of the rest.
type Sampler struct {
	slow time.Duration
	// threshold is share * 2^64, compared with a random uint64; all and
	// none make the edges exact.
	threshold uint64
	all, none bool
}

// NewSampler logs share (0..1) of ordinary requests.
func NewSampler(share float64, slow time.Duration) Sampler {
	s := Sampler{slow: slow}
	switch {
	case share >= 1:
		s.all = true
	case share <= 0:
		s.none = true
	default:
		s.threshold = uint64(share * math.MaxUint64)
	}
	return s
}

// Keep reports whether a request with this status and duration is logged.
// It allocates nothing: rand/v2's top-level functions use the runtime's
// per-thread generator.
func (s Sampler) Keep(status int, d time.Duration) bool {
	if status >= 500 || d >= s.slow || s.all {
		return true
	}
	if s.none {
		return false
	}
	return rand.Uint64() < s.threshold
}
