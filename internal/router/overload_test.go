//go:build !race

// The race detector slows every request several times over, which turns a
// load test into a measure of the detector.

package router

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// openLoopResult is what an open-loop run saw. Latencies are measured from
// each request's intended send time, so a server that falls behind cannot
// hide its queue by slowing the generator (coordinated omission).
type openLoopResult struct {
	sent, ok, rejected, failed int
	admitted                   []time.Duration // latencies of the 200s
	rejectMax                  time.Duration
	noRetryAfter               int
	took                       time.Duration
}

func (r openLoopResult) percentile(p float64) time.Duration {
	if len(r.admitted) == 0 {
		return 0
	}
	s := slices.Clone(r.admitted)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

// goodput is 200s within slo per second.
func (r openLoopResult) goodput(slo time.Duration) float64 {
	n := 0
	for _, d := range r.admitted {
		if d <= slo {
			n++
		}
	}
	return float64(n) / r.took.Seconds()
}

// openLoop sends rate requests per second to url for d, each on schedule
// whether or not earlier ones have been answered.
func openLoop(t *testing.T, url string, rate int, d time.Duration) openLoopResult {
	t.Helper()
	c := &fasthttp.Client{MaxConnsPerHost: 512, MaxIdleConnDuration: time.Minute}
	var mu sync.Mutex
	var res openLoopResult
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := 0; ; i++ {
		intended := start.Add(time.Duration(i) * interval)
		if intended.Sub(start) >= d {
			break
		}
		time.Sleep(time.Until(intended))
		res.sent++
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(url)
			err := c.DoTimeout(req, resp, 5*time.Second)
			lat := time.Since(intended)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				res.failed++
			case resp.StatusCode() == 200:
				res.ok++
				res.admitted = append(res.admitted, lat)
			case resp.StatusCode() == 503:
				res.rejected++
				res.rejectMax = max(res.rejectMax, lat)
				if len(resp.Header.Peek("Retry-After")) == 0 {
					res.noRetryAfter++
				}
			default:
				res.failed++
			}
		})
	}
	wg.Wait()
	res.took = time.Since(start)
	c.CloseIdleConnections()
	return res
}

// TestOverloadKeepsGoodputNearCapacity offers twice what a handler can do
// and compares no cap, a static cap and the adaptive cap. The handler
// stands for a shared resource: 2 workers, 10ms each, so about 200/s.
// Figures are logged; the assertions are loose because the machine is shared.
func TestOverloadKeepsGoodputNearCapacity(t *testing.T) {
	if testing.Short() {
		t.Skip("load test; runs without -short")
	}
	const (
		workers = 2
		work    = 10 * time.Millisecond
		rate    = 400 // about twice the capacity
		run     = 2 * time.Second
		slo     = 50 * time.Millisecond
	)
	capacity := float64(workers) * float64(time.Second/work)
	var table strings.Builder
	fmt.Fprintf(&table, "offered %d/s for %s, capacity ~%.0f/s, SLO %s\n", rate, run, capacity, slo)
	fmt.Fprintf(&table, "%-8s %6s %6s %6s %6s %9s %9s %9s %10s\n", "cap", "sent", "200", "503", "failed", "goodput/s", "p50", "p99", "503 max")
	results := map[string]openLoopResult{}
	for _, limit := range []struct {
		name string
		max  int
	}{{"static4", 4}, {"auto", -1}, {"none", 0}} {
		sem := make(chan struct{}, workers)
		ts := newTestServer(t, 0, time.Hour, limit.max, func(r *Router) {
			r.GET("/work", func(ctx *fasthttp.RequestCtx) {
				sem <- struct{}{}
				time.Sleep(work)
				<-sem
			})
		})
		// Warm up connections and let the adaptive cap converge: it opens
		// at 64 after its first baseline window and needs a few 100ms
		// windows under load to come down.
		openLoop(t, ts.url+"/work", rate, time.Second)
		r := openLoop(t, ts.url+"/work", rate, run)
		results[limit.name] = r
		fmt.Fprintf(&table, "%-8s %6d %6d %6d %6d %9.0f %9s %9s %10s\n", limit.name, r.sent, r.ok, r.rejected, r.failed,
			r.goodput(slo), r.percentile(0.5).Round(10*time.Microsecond), r.percentile(0.99).Round(10*time.Microsecond), r.rejectMax.Round(10*time.Microsecond))
		if limit.max < 0 {
			var out bytes.Buffer
			ts.reg.WritePrometheus(&out)
			var gauge float64
			for _, line := range strings.Split(out.String(), "\n") {
				if v, ok := strings.CutPrefix(line, "http_inflight_limit "); ok {
					gauge, _ = strconv.ParseFloat(v, 64)
				}
			}
			fmt.Fprintf(&table, "auto: http_inflight_limit %.0f after the run\n", gauge)
			if gauge < 4 || gauge >= 64 {
				t.Errorf("http_inflight_limit %v after overload, want it down from 64 and at least the minimum 4", gauge)
			}
		}
		if r.noRetryAfter > 0 {
			t.Errorf("cap %s: %d 503s without Retry-After", limit.name, r.noRetryAfter)
		}
	}
	t.Log("\n" + table.String())
	// Relative checks only: the machine is shared, so absolute figures vary,
	// but a cap must beat no cap by a wide margin on the same machine.
	none := results["none"]
	for _, name := range []string{"static4", "auto"} {
		r := results[name]
		if g, ng := r.goodput(slo), none.goodput(slo); g < 2*ng || g < 0.1*capacity {
			t.Errorf("cap %s: goodput %.0f/s, want at least twice the %.0f/s without a cap (capacity %.0f/s)", name, g, ng, capacity)
		}
		if p, np := r.percentile(0.99), none.percentile(0.99); p > np/2 {
			t.Errorf("cap %s: admitted p99 %s, want under half the %s seen without a cap", name, p, np)
		}
		if r.failed > r.sent/20 {
			t.Errorf("cap %s: %d of %d requests failed outright, want them shed as 503", name, r.failed, r.sent)
		}
	}
}
