package upstream

import (
	"sync"
	"time"
)

// Breaker states, as exported by the upstream_breaker_state gauge.
const (
	StateClosed   = 0 // calls pass
	StateOpen     = 1 // calls fail at once until the cool-down ends
	StateHalfOpen = 2 // one probe call passes; its result decides
)

// breaker is a consecutive-failure circuit breaker. It stops hotpath from
// spending its time and connections on an upstream that is down: after
// threshold failures in a row it opens, refuses calls for cooldown, then
// lets a single probe through and closes again if the probe succeeds.
type breaker struct {
	threshold int
	cooldown  time.Duration
	now       func() time.Time

	mu       sync.Mutex
	state    int
	failures int
	openedAt time.Time
	probing  bool
}

func newBreaker(threshold int, cooldown time.Duration) *breaker {
	return &breaker{threshold: threshold, cooldown: cooldown, now: time.Now}
}

// allow reports whether a call may go out now. A true answer must be
// followed by exactly one done.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case StateOpen:
		if b.now().Sub(b.openedAt) < b.cooldown {
			return false
		}
		b.state, b.probing = StateHalfOpen, true
		return true
	case StateHalfOpen:
		if b.probing {
			return false // one probe at a time
		}
		b.probing = true
		return true
	}
	return true
}

// done records the outcome of a call that allow let through.
func (b *breaker) done(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		b.state, b.failures, b.probing = StateClosed, 0, false
		return
	}
	b.failures++
	if b.state == StateHalfOpen || b.failures >= b.threshold {
		b.state, b.openedAt, b.probing = StateOpen, b.now(), false
	}
}

// current returns the state for the gauge.
func (b *breaker) current() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}
