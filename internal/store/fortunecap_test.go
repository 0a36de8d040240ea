package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestFortuneCapHoldsUnderConcurrentCreates: 40 creates racing for the
// last 5 places under MaxFortunes store exactly 5; the others fail with a
// FullError, store nothing and record no event; a delete frees a place;
// the cap changes at run time.
func TestFortuneCapHoldsUnderConcurrentCreates(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			e := d.env(t)
			e.opts.OutboxURLs = []string{hookA}
			s := e.open(t)
			s.(interface{ SetMaxFortunes(int) }).SetMaxFortunes(17) // the 12 seeded fortunes and 5 more
			ctx := context.Background()

			var wg sync.WaitGroup
			var mu sync.Mutex
			var stored []Fortune
			full := 0
			for i := range 40 {
				wg.Go(func() {
					f, err := s.AddFortune(ctx, fmt.Sprintf("racer %d", i))
					mu.Lock()
					defer mu.Unlock()
					var fe *FullError
					switch {
					case err == nil:
						stored = append(stored, f)
					case errors.As(err, &fe) && errors.Is(err, ErrFull) && fe.Max == 17:
						full++
					default:
						t.Errorf("create %d: %v, want success or a FullError naming 17", i, err)
					}
				})
			}
			wg.Wait()
			if len(stored) != 5 || full != 35 {
				t.Fatalf("40 racing creates under a cap of 17 with 12 stored: %d stored, %d full; want 5 and 35", len(stored), full)
			}
			check := func(what string, wantRows int64) {
				t.Helper()
				rows := e.scalar(t, "SELECT count(*) FROM Fortune")
				counted := e.scalar(t, "SELECT n FROM fortune_count")
				events := e.scalar(t, "SELECT count(*) FROM webhook_outbox WHERE type = 'fortune.created'")
				if rows != wantRows || counted != rows || events != int64(len(stored)) {
					t.Errorf("%s: %d rows, fortune_count %d, %d created events; want %d rows, counted alike, %d events",
						what, rows, counted, events, wantRows, len(stored))
				}
			}
			check("after the race", 17)

			if err := s.DeleteFortune(ctx, stored[0].ID); err != nil {
				t.Fatal(err)
			}
			check("after a delete", 16)
			f, err := s.AddFortune(ctx, "into the freed place")
			if err != nil {
				t.Fatalf("create after a delete: %v, want it stored", err)
			}
			stored = append(stored, f)
			if _, err := s.AddFortune(ctx, "one too many"); !errors.Is(err, ErrFull) {
				t.Errorf("create at the cap again: %v, want ErrFull", err)
			}
			check("after refilling", 17)

			s.(interface{ SetMaxFortunes(int) }).SetMaxFortunes(0)
			f, err = s.AddFortune(ctx, "no cap")
			if err != nil {
				t.Fatalf("with no cap: %v", err)
			}
			stored = append(stored, f)
			s.(interface{ SetMaxFortunes(int) }).SetMaxFortunes(10)
			if _, err := s.AddFortune(ctx, "below the rows"); !errors.Is(err, ErrFull) {
				t.Errorf("cap lowered under the rows stored: %v, want ErrFull", err)
			}
			check("after the cap moved", 18)
		})
	}
}
