package store

import (
	"context"
	"errors"
	"testing"
)

// TestUnknownChangeKindChangesNothing: a Change of no known kind, with
// the outbox on and a key, is refused before any write: no Fortune is
// deleted (the kind once fell through to DeleteFortune), no World
// changed, no event or answer stored, and render never runs. Every
// switch on the kind refuses it too, not only the check in front.
func TestUnknownChangeKindChangesNothing(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			e := d.env(t)
			e.opts.OutboxURLs = []string{hookA}
			s := e.open(t).(keyDB)
			ctx := context.Background()
			before, err := s.World(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, kind := range []ChangeKind{0, DeleteFortune + 1, 99} {
				c := Change{Kind: kind, ID: 1, RandomNumber: before.RandomNumber%10000 + 1, Message: "x", Key: newKey("c", "unknown", "x")}
				rendered := false
				_, err := s.Apply(ctx, c, func(any) (Answer, error) { rendered = true; return Answer{Status: 200}, nil })
				if !errors.Is(err, errUnknownChange) || rendered {
					t.Errorf("Apply(kind %d): %v, render called %v; want errUnknownChange and no render", kind, err, rendered)
				}
				// run itself, which check keeps it from, runs no statement.
				ran := false
				ref := s.(interface{ ref() *reference }).ref()
				obj, err := ref.run(func(q string, args ...any) Row { ran = true; return ref.writeRow(ctx, q, args...) }, &c)
				if !errors.Is(err, errUnknownChange) || ran || obj != nil {
					t.Errorf("run(kind %d): %v, %v, ran a statement %v; want errUnknownChange and none", kind, obj, err, ran)
				}
				if got := kind.event(); got != "" {
					t.Errorf("kind %d: event %q, want none", kind, got)
				}
			}
			for q, want := range map[string]int64{
				"SELECT count(*) FROM Fortune":              12,
				"SELECT count(*) FROM Fortune WHERE id = 1": 1,
				"SELECT count(*) FROM webhook_outbox":       0,
				"SELECT count(*) FROM idempotency_keys":     0,
			} {
				if n := e.scalar(t, q); n != want {
					t.Errorf("%s = %d, want %d", q, n, want)
				}
			}
			if w, err := s.World(ctx, 1); err != nil || w != before {
				t.Errorf("World(1) = %+v, %v; want %+v unchanged", w, err, before)
			}
		})
	}
}
