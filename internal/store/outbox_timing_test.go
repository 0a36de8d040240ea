package store

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// BenchmarkWriteOutbox measures what recording webhook events costs a
// one-row change made with DB.Write and Tx.Emit: with no receivers
// (Emit records nothing), then with an outbox row for each of 1 and 3.
func BenchmarkWriteOutbox(b *testing.B) {
	type counter struct {
		ID int32 `json:"id"`
		N  int32 `json:"n"`
	}
	for _, urls := range []int{0, 1, 3} {
		for _, d := range drivers {
			b.Run(d.name+"/urls="+strconv.Itoa(urls), func(b *testing.B) {
				e := d.env(b)
				e.opts.Logger = nil
				for i := range urls {
					e.opts.OutboxURLs = append(e.opts.OutboxURLs, "http://127.0.0.1:1/"+strconv.Itoa(i))
				}
				db := e.open(b)
				ctx, r := benchContext(b), rand.New(rand.NewPCG(1, 2))
				b.ReportAllocs()
				for b.Loop() {
					c := counter{ID: randomID(r), N: randomID(r)}
					if _, err := db.Write(ctx, nil, func(tx *Tx) error {
						if _, err := tx.Exec(sqlSetCounter, c.N, c.ID); err != nil {
							return err
						}
						return tx.Emit("counter.set", c)
					}, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
