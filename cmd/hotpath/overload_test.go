package main

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMaxInflightCapsTheRealServer fills a cap of 2 with slow /updates
// requests; the surplus must get an immediate 503 with Retry-After while
// every admitted request still succeeds.
func TestMaxInflightCapsTheRealServer(t *testing.T) {
	p := startProc(t, "--server.max_inflight=2")
	defer p.stop(t)
	waitReady(t, p)
	var mu sync.Mutex
	codes := map[int]int{}
	var slowest503 time.Duration
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 10 {
				start := time.Now()
				resp, _ := get(t, "GET", p.app+"/updates?queries=500")
				took := time.Since(start)
				mu.Lock()
				codes[resp.StatusCode]++
				if resp.StatusCode == 503 {
					slowest503 = max(slowest503, took)
					if resp.Header.Get("Retry-After") == "" {
						t.Errorf("503 without Retry-After")
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("16 clients x 10 /updates?queries=500 with max_inflight 2: %v; slowest 503 %s", codes, slowest503)
	if codes[200] == 0 || codes[503] == 0 || codes[200]+codes[503] != 160 {
		t.Errorf("answers %v, want only 200s and 503s, some of each", codes)
	}
	if slowest503 > 500*time.Millisecond {
		t.Errorf("slowest 503 took %s, want it at once", slowest503)
	}
}

// TestAutoInflightPublishesItsLimit starts the adaptive cap and reads its
// current value from /metrics.
func TestAutoInflightPublishesItsLimit(t *testing.T) {
	p := startProc(t, "--server.max_inflight=auto")
	defer p.stop(t)
	for range 50 {
		if resp, body := get(t, "GET", p.app+"/plaintext"); resp.StatusCode != 200 || body != "Hello, World!" {
			t.Fatalf("/plaintext under the adaptive cap: %d %q", resp.StatusCode, body)
		}
	}
	limit := metricValue(t, p, "http_inflight_limit")
	if limit < 4 || limit > 4096 {
		t.Errorf("http_inflight_limit %v, want within the adaptive bounds 4..4096", limit)
	}
	_, body := get(t, "GET", p.admin+"/metrics")
	if !strings.Contains(body, "http_overload_rejections_total") {
		t.Errorf("/metrics lacks http_overload_rejections_total")
	}
}
