package store

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// benchDrivers runs fn once per driver on a fresh database.
func benchDrivers(b *testing.B, fn func(b *testing.B, db *DB)) {
	for _, d := range drivers {
		b.Run(d.name, func(b *testing.B) {
			e := d.env(b)
			e.opts.Logger = nil // migration lines would clutter the results
			db := e.open(b)
			b.ReportAllocs()
			fn(b, db)
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

func randomID(r *rand.Rand) int32 { return r.Int32N(counterRows) + 1 }

// BenchmarkQueryRow is a one-row read by primary key through
// DB.QueryRow(...).Scan: the most common call of a service, pinned on
// SQLite by TestQueryRowAllocatesAsAPreparedStatement.
func BenchmarkQueryRow(b *testing.B) {
	benchDrivers(b, func(b *testing.B, db *DB) {
		ctx, r := benchContext(b), rand.New(rand.NewPCG(1, 2))
		var n int32
		for b.Loop() {
			if err := db.QueryRow(ctx, sqlCounter, randomID(r)).Scan(&n); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBatch20 is 20 one-row reads sent as one Batch from the pool
// (AcquireBatch): one round trip on PostgreSQL.
func BenchmarkBatch20(b *testing.B) {
	benchDrivers(b, func(b *testing.B, db *DB) {
		ctx, r := benchContext(b), rand.New(rand.NewPCG(1, 2))
		var ns [20]int32
		for b.Loop() {
			batch := AcquireBatch()
			for range ns {
				batch.Queue(sqlCounter, randomID(r))
			}
			br := db.SendBatch(ctx, batch)
			for i := range ns {
				if err := br.QueryRow().Scan(&ns[i]); err != nil {
					b.Fatal(err)
				}
			}
			if err := br.Close(); err != nil {
				b.Fatal(err)
			}
			ReleaseBatch(batch)
		}
	})
}

// BenchmarkQuery reads 12 rows through DB.Query and Rows.
func BenchmarkQuery(b *testing.B) {
	benchDrivers(b, func(b *testing.B, db *DB) {
		ctx := benchContext(b)
		var id, n int32
		for b.Loop() {
			rows, err := db.Query(ctx, `SELECT id, n FROM counters WHERE id <= $1`, 12)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
				if err := rows.Scan(&id, &n); err != nil {
					b.Fatal(err)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWrite is one keyed DB.Write that inserts a row and stores its
// answer: the cost of an idempotent create.
func BenchmarkWrite(b *testing.B) {
	benchDrivers(b, func(b *testing.B, db *DB) {
		ctx := benchContext(b)
		key := &Key{Scope: "bench", TTL: time.Hour}
		i := 0
		for b.Loop() {
			i++
			key.Key = strconv.Itoa(i)
			if _, err := db.Write(ctx, key, func(tx *Tx) error {
				_, err := tx.Exec(`INSERT INTO authors (id, name) VALUES ($1, $2)`, i, key.Key)
				return err
			}, func() (Answer, error) { return Answer{Status: 201}, nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWrite20 is one DB.Write of 20 updates of one statement, which
// a transaction binds once on SQLite (Tx.stmt).
func BenchmarkWrite20(b *testing.B) {
	benchDrivers(b, func(b *testing.B, db *DB) {
		ctx, r := benchContext(b), rand.New(rand.NewPCG(1, 2))
		ids := make([]int32, 20)
		for b.Loop() {
			for i := range ids {
				ids[i] = randomID(r)
			}
			if err := setCounters(ctx, db, ids, randomID(r)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
