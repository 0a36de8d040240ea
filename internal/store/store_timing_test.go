package store

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// benchDrivers runs fn once per driver on a fresh database.
func benchDrivers(b *testing.B, fn func(b *testing.B, s db)) {
	for _, d := range drivers {
		b.Run(d.name, func(b *testing.B) {
			e := d.env(b)
			e.opts.Logger = nil // migration lines would clutter the results
			s := e.open(b)
			b.ReportAllocs()
			fn(b, s)
		})
	}
}

// benchContext has a deadline, like the context a handler passes, so the
// store's fallback timeout is not part of the measurement.
func benchContext(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	b.Cleanup(cancel)
	return ctx
}

func randomID(r *rand.Rand) int32 { return r.Int32N(10000) + 1 }

func BenchmarkWorld(b *testing.B) {
	benchDrivers(b, func(b *testing.B, s db) {
		ctx, r := benchContext(b), rand.New(rand.NewPCG(1, 2))
		for b.Loop() {
			if _, err := s.World(ctx, randomID(r)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkQueryRow is BenchmarkWorld through the generic API a service
// writes against, DB.QueryRow(...).Scan, to compare with the reference
// method and with what World cost before it was built on DB.
func BenchmarkQueryRow(b *testing.B) {
	benchDrivers(b, func(b *testing.B, s db) {
		ctx, r := benchContext(b), rand.New(rand.NewPCG(1, 2))
		d := s.(interface{ underlying() *DB }).underlying()
		var w World
		for b.Loop() {
			if err := d.QueryRow(ctx, sqlWorld, randomID(r)).Scan(&w.ID, &w.RandomNumber); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWrite is one keyed DB.Write that inserts a row and stores its
// answer: the cost of an idempotent create.
func BenchmarkWrite(b *testing.B) {
	benchDrivers(b, func(b *testing.B, s db) {
		ctx, d := benchContext(b), s.(interface{ underlying() *DB }).underlying()
		key := &Key{Scope: "bench", TTL: time.Hour}
		i := 0
		for b.Loop() {
			i++
			key.Key = strconv.Itoa(i)
			if _, err := d.Write(ctx, key, func(tx *Tx) error {
				_, err := tx.Exec(`INSERT INTO Fortune (message) VALUES ($1)`, "bench")
				return err
			}, func() (Answer, error) { return Answer{Status: 201}, nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkWorlds20(b *testing.B) {
	benchDrivers(b, func(b *testing.B, s db) {
		ctx, r := benchContext(b), rand.New(rand.NewPCG(1, 2))
		ids := make([]int32, 20)
		dst := make([]World, 0, 20)
		var err error
		for b.Loop() {
			for i := range ids {
				ids[i] = randomID(r)
			}
			if dst, err = s.Worlds(ctx, ids, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkFortunes(b *testing.B) {
	benchDrivers(b, func(b *testing.B, s db) {
		ctx := benchContext(b)
		dst := make([]Fortune, 0, 16)
		var err error
		for b.Loop() {
			if dst, err = s.Fortunes(ctx, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkUpdateWorlds20(b *testing.B) {
	benchDrivers(b, func(b *testing.B, s db) {
		ctx, r := benchContext(b), rand.New(rand.NewPCG(1, 2))
		ws := make([]World, 20)
		for b.Loop() {
			for i := range ws {
				ws[i] = World{ID: randomID(r), RandomNumber: randomID(r)}
			}
			if err := s.UpdateWorlds(ctx, ws); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAddDeleteFortune is one create and one delete: with migration
// 0006, the capped insert and the triggers that keep fortune_count.
func BenchmarkAddDeleteFortune(b *testing.B) {
	benchDrivers(b, func(b *testing.B, s db) {
		ctx := benchContext(b)
		for b.Loop() {
			f, err := s.AddFortune(ctx, "bench")
			if err != nil {
				b.Fatal(err)
			}
			if err := s.DeleteFortune(ctx, f.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
