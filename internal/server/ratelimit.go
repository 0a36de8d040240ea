package server

import (
	"sync"
	"time"
)

// rateLimit lets through perSecond events in each one-second window.
type rateLimit struct {
	perSecond int
	mu        sync.Mutex
	window    time.Time
	used      int
}

func (r *rateLimit) allow(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.window) >= time.Second {
		r.window = now
		r.used = 0
	}
	r.used++
	return r.used <= r.perSecond
}
