package accesslog

import (
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Sampler decides which requests are logged: every 5xx, every request
// slower than Slow, and a random share of the rest.
//
// Rather than a random draw per request, it draws how many ordinary
// requests to pass over before the next one it keeps (a geometric draw,
// which gives every request the same chance as a coin flip per request),
// so an ordinary request costs one atomic decrement.
type Sampler struct {
	slow time.Duration
	// ln1mShare is ln(1 - share), the scale of the geometric draw.
	ln1mShare float64
	all, none bool
	// skip is how many ordinary requests remain to pass over.
	skip atomic.Int64
}

// NewSampler logs share (0..1) of ordinary requests.
func NewSampler(share float64, slow time.Duration) *Sampler {
	s := &Sampler{slow: slow}
	switch {
	case share >= 1:
		s.all = true
	case share <= 0:
		s.none = true
	default:
		s.ln1mShare = math.Log1p(-share)
		s.skip.Store(s.gap())
	}
	return s
}

// Keep reports whether a request with this status and duration is logged.
// Two requests that reach the end of a gap together are both kept, which
// raises the share by a hair only under contention.
func (s *Sampler) Keep(status int, d time.Duration) bool {
	if status >= 500 || d >= s.slow || s.all {
		return true
	}
	if s.none || s.skip.Add(-1) >= 0 {
		return false
	}
	s.skip.Store(s.gap())
	return true
}

// gap draws the number of ordinary requests before the next one kept:
// floor(ln U / ln(1-share)) for U uniform in (0, 1].
func (s *Sampler) gap() int64 {
	return int64(math.Log(1-rand.Float64()) / s.ln1mShare)
}
