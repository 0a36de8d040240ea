package ratelimit

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/problem"
)

// Header names as fasthttp normalises them (draft-ietf-httpapi-ratelimit-headers).
var (
	policyHeader     = []byte("Ratelimit-Policy")
	rateLimitHeader  = []byte("Ratelimit")
	retryAfterHeader = []byte("Retry-After")
)

// Class is one configured limit, such as limits.anonymous_writes: its
// buckets, its answers and its metrics. A nil *Class limits nothing.
type Class struct {
	name    string // the limits.* key's last part: policy name and metric label
	clients string // who is limited, for the refusal's detail
	state   atomic.Pointer[classState]
	limited *vm.Counter
	evicted *vm.Counter

	mu    sync.Mutex // serialises SetRate
	table *Table     // made when the class is first on, kept after
}

// classState is what a request reads, swapped whole by SetRate.
type classState struct {
	rate    Rate
	table   *Table // nil when off
	policy  []byte // the RateLimit-Policy value
	refusal []byte // the 429 problem
}

// NewClass returns the limit limits.<name> at rate r (off when r is off),
// registering its metrics in set. clients says in words whom it counts,
// for the refusal: "writes without a bearer token from this address".
func NewClass(name, clients string, r Rate, set *vm.Set) *Class {
	c := &Class{
		name:    name,
		clients: clients,
		limited: set.NewCounter(`http_rate_limited_total{class="` + name + `"}`),
		evicted: set.NewCounter(`http_rate_limit_evictions_total{class="` + name + `"}`),
	}
	set.NewGauge(`http_rate_limit_buckets{class="`+name+`"}`, func() float64 {
		if t := c.state.Load().table; t != nil {
			return float64(t.Live())
		}
		return 0
	})
	c.SetRate(r)
	return c
}

// SetRate changes the limit at once; turning a class on the first time
// allocates its table.
func (c *Class) SetRate(r Rate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := &classState{rate: r}
	if !r.Off() {
		if c.table == nil {
			c.table = NewTable(r)
		} else {
			c.table.SetRate(r)
		}
		st.table = c.table
		st.policy = []byte(`"` + c.name + `";q=` + strconv.FormatInt(r.N, 10) + `;w=` + strconv.FormatInt(int64(r.Per/time.Second), 10))
		st.refusal = problem.Static(fasthttp.StatusTooManyRequests, "too many "+c.clients+
			": limits."+c.name+" allows "+r.String()+"; retry after the seconds in Retry-After")
	}
	c.state.Store(st)
}

// Rate is the limit in force.
func (c *Class) Rate() Rate {
	if c == nil {
		return Rate{}
	}
	return c.state.Load().rate
}

// On reports whether the class limits anything.
func (c *Class) On() bool { return c != nil && c.state.Load().table != nil }

// Admit takes a request from k's bucket and reports whether it may go on.
// When the class is on it puts RateLimit-Policy and RateLimit on the
// response; a refused request is answered here: 429 with Retry-After,
// counted in http_rate_limited_total. It allocates nothing.
func (c *Class) Admit(ctx *fasthttp.RequestCtx, k Key) bool {
	if c == nil {
		return true
	}
	st := c.state.Load()
	if st.table == nil {
		return true
	}
	d := st.table.Allow(k)
	if d.Evicted {
		c.evicted.Inc()
	}
	h := &ctx.Response.Header
	h.SetCanonical(policyHeader, st.policy)
	// The draft's reset ("t") is when the quota is back: the whole bucket
	// while requests remain, the next request once it is empty, which is
	// the moment Retry-After names too.
	reset := d.Full
	if !d.Allowed {
		reset = d.RetryAfter
	}
	var buf [96]byte
	v := append(buf[:0], '"')
	v = append(v, c.name...)
	v = append(v, `";r=`...)
	v = strconv.AppendInt(v, d.Remaining, 10)
	v = append(v, ";t="...)
	v = strconv.AppendInt(v, seconds(reset), 10)
	h.SetCanonical(rateLimitHeader, v)
	if d.Allowed {
		return true
	}
	c.limited.Inc()
	h.SetCanonical(retryAfterHeader, strconv.AppendInt(buf[:0], max(seconds(d.RetryAfter), 1), 10))
	problem.WriteStatic(ctx, fasthttp.StatusTooManyRequests, st.refusal)
	return false
}

// seconds rounds d up to whole seconds, so a client that waits that long
// is never early.
func seconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
