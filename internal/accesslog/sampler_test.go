package accesslog

import (
	"testing"
	"time"
)

func TestSamplerKeepsTheShareAtRandomGaps(t *testing.T) {
	const share, n = 0.01, 400_000
	s := NewSampler(share, time.Hour)
	var gaps []int
	last := -1
	for i := range n {
		if s.Keep(200, time.Millisecond) {
			gaps = append(gaps, i-last-1)
			last = i
		}
	}
	// Binomial: mean 4000, standard deviation about 63.
	if k := len(gaps); k < 3600 || k > 4400 {
		t.Fatalf("share %.2f kept %d of %d, want about %d", share, k, n, int(share*n))
	}
	// Geometric gaps: about 1-1/e (63%) are shorter than the mean of 99;
	// a fixed stride would put all or none of them there.
	short := 0
	for _, g := range gaps {
		if g < 99 {
			short++
		}
	}
	if f := float64(short) / float64(len(gaps)); f < 0.58 || f > 0.68 {
		t.Errorf("%.2f of the gaps are shorter than the mean, want about 0.63 (random, not a stride)", f)
	}
}

func TestSamplerEdges(t *testing.T) {
	all, none := NewSampler(1, time.Hour), NewSampler(0, 250*time.Millisecond)
	for range 1000 {
		if !all.Keep(200, 0) {
			t.Fatal("share 1 passed over a request")
		}
		if none.Keep(404, time.Millisecond) {
			t.Fatal("share 0 kept an ordinary request")
		}
	}
	if !none.Keep(503, 0) || !none.Keep(200, 250*time.Millisecond) {
		t.Error("share 0 passed over a 5xx or a slow request")
	}
}
