package store

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// BenchmarkSetWorldOutbox measures what recording webhook events costs a
// PUT /api/v1/worlds/{id}: the change alone, then in one transaction with
// an outbox row for each of 1 and 3 receivers.
func BenchmarkSetWorldOutbox(b *testing.B) {
	for _, urls := range []int{0, 1, 3} {
		for _, d := range drivers {
			b.Run(d.name+"/urls="+strconv.Itoa(urls), func(b *testing.B) {
				e := d.env(b)
				e.opts.Logger = nil
				for i := range urls {
					e.opts.OutboxURLs = append(e.opts.OutboxURLs, "http://127.0.0.1:1/"+strconv.Itoa(i))
				}
				s := e.open(b)
				ctx, r := benchContext(b), rand.New(rand.NewPCG(1, 2))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.SetWorld(ctx, randomID(r), randomID(r)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
