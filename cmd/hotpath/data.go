package main

import (
	"cmp"
	"context"
	"embed"
	"io/fs"
	"slices"

	"github.com/hotpath/hotpath"
)

// World is one row of the World table: ids and random numbers 1..10000.
type World struct {
	ID           int32 `json:"id"`
	RandomNumber int32 `json:"randomNumber"`
}

// Fortune is one row of the Fortune table.
type Fortune struct {
	ID      int32  `json:"id"`
	Message string `json:"message"`
}

// worldCount is the number of Worlds; ids and random numbers are 1..worldCount.
const worldCount = 10000

// migrationFiles are the reference service's tables: World and Fortune,
// seeded as the TechEmpower benchmarks define them, and the count that
// holds api.max_fortunes (sqlite/ and postgres/, one file per version).
//
//go:embed migrations
var migrationFiles embed.FS

// migrations is the migrations folder as the App takes it.
func migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the folder is embedded above
	}
	return sub
}

// The statements, written once for both drivers with $N placeholders.
// Identifiers are unquoted, so PostgreSQL folds them to world,
// randomnumber and fortune, the names the TechEmpower tooling queries.
const (
	sqlWorld         = `SELECT id, randomNumber FROM World WHERE id = $1`
	sqlAllWorlds     = `SELECT id, randomNumber FROM World ORDER BY id`
	sqlUpdateWorld   = `UPDATE World SET randomNumber = $1 WHERE id = $2`
	sqlSetWorld      = `UPDATE World SET randomNumber = $1 WHERE id = $2 RETURNING id, randomNumber`
	sqlFortunes      = `SELECT id, message FROM Fortune`
	sqlFortunesAfter = `SELECT id, message FROM Fortune WHERE id > $1 ORDER BY id LIMIT $2`
	sqlFortune       = `SELECT id, message FROM Fortune WHERE id = $1`
	sqlDeleteFortune = `DELETE FROM Fortune WHERE id = $1 RETURNING id, message`
	// A create inserts only while fortune_count (kept by triggers) is below
	// api.max_fortunes ($2), checked in the statement that inserts. On
	// PostgreSQL FOR UPDATE locks the count row first, so a concurrent
	// create waits and reads the count this one left: two creates never
	// both take the last place. SQLite has one writer at a time.
	sqliteAddFortune   = `INSERT INTO Fortune (message) SELECT $1 FROM fortune_count WHERE id = 1 AND n < $2 RETURNING id`
	postgresAddFortune = `INSERT INTO Fortune (message) SELECT $1 FROM fortune_count WHERE id = 1 AND n < $2 FOR UPDATE RETURNING id`
	// The conditional write checks the current value in its own WHERE: on
	// PostgreSQL a writer that waited for the row lock re-checks it against
	// the row the other writer left, so two writers holding the same ETag
	// cannot both succeed.
	sqliteSetWorldIf   = `UPDATE World SET randomNumber = $1 WHERE id = $2 AND randomNumber IN (SELECT value FROM json_each($3)) RETURNING id, randomNumber`
	postgresSetWorldIf = `UPDATE World SET randomNumber = $1 WHERE id = $2 AND randomNumber = ANY($3::int[]) RETURNING id, randomNumber`
	// /updates writes every World of a request in one statement on
	// PostgreSQL, as the benchmark's rules count them.
	postgresUpdateWorlds = `UPDATE World SET randomNumber = v.r
FROM unnest($1::int[], $2::int[]) AS v(id, r)
WHERE World.id = v.id`
)

// data is the reference service's SQL over the App's database.
type data struct{ db *hotpath.DB }

// world reads one World.
func (d data) world(ctx context.Context, id int32, w *World) error {
	return d.db.QueryRow(ctx, sqlWorld, id).Scan(&w.ID, &w.RandomNumber)
}

// worlds appends to dst[:0] the World of each id, in order: one round
// trip for all of them on PostgreSQL, one query each on SQLite.
func (d data) worlds(ctx context.Context, ids []int32, dst []World) ([]World, error) {
	dst = dst[:0]
	var b hotpath.Batch
	for _, id := range ids {
		b.Queue(sqlWorld, id)
	}
	res := d.db.SendBatch(ctx, &b)
	for range ids {
		var w World
		if err := res.QueryRow().Scan(&w.ID, &w.RandomNumber); err != nil {
			_ = res.Close() // the scan's error is the one to report
			return dst, err
		}
		dst = append(dst, w)
	}
	return dst, res.Close()
}

// allWorlds appends every World to dst[:0], ordered by id.
func (d data) allWorlds(ctx context.Context, dst []World) ([]World, error) {
	rows, err := d.db.Query(ctx, sqlAllWorlds)
	if err != nil {
		return dst[:0], err
	}
	defer rows.Close()
	dst = dst[:0]
	for rows.Next() {
		var w World
		if err := rows.Scan(&w.ID, &w.RandomNumber); err != nil {
			return dst, err
		}
		dst = append(dst, w)
	}
	return dst, rows.Err()
}

// updateWorlds stores every ws[i].RandomNumber in one statement
// (PostgreSQL) or one transaction (SQLite). When an id repeats, the last
// value wins and the earlier entries of ws are set to it, so ws matches
// the table afterwards; ids are written in order, so concurrent requests
// cannot deadlock.
func (d data) updateWorlds(ctx context.Context, ws []World) error {
	sorted := lastWins(ws, make([]World, 0, len(ws)))
	if d.db.Driver() == "postgres" {
		cols := make([]int32, 2*len(sorted))
		ids, rs := cols[:len(sorted)], cols[len(sorted):]
		for i, w := range sorted {
			ids[i], rs[i] = w.ID, w.RandomNumber
		}
		_, err := d.db.Exec(ctx, postgresUpdateWorlds, ids, rs)
		return err
	}
	return d.db.Write(ctx, func(tx *hotpath.Tx) error {
		for _, w := range sorted {
			if _, err := tx.Exec(sqlUpdateWorld, w.RandomNumber, w.ID); err != nil {
				return err
			}
		}
		return nil
	})
}

// lastWins returns ws sorted by id with one entry per id, holding the last
// value given for it, in scratch, and rewrites ws so that every entry of a
// repeated id carries the value that will be stored.
func lastWins(ws, scratch []World) []World {
	scratch = append(scratch[:0], ws...)
	slices.SortStableFunc(scratch, func(a, b World) int { return cmp.Compare(a.ID, b.ID) })
	out := scratch[:0]
	for i, w := range scratch {
		if i+1 < len(scratch) && scratch[i+1].ID == w.ID {
			continue // a later entry for the same id wins
		}
		out = append(out, w)
	}
	for i := range ws {
		j, _ := slices.BinarySearchFunc(out, ws[i].ID, func(w World, id int32) int { return cmp.Compare(w.ID, id) })
		ws[i].RandomNumber = out[j].RandomNumber
	}
	return out
}

// fortunes appends every fortune to dst[:0], in no particular order.
func (d data) fortunes(ctx context.Context, dst []Fortune) ([]Fortune, error) {
	return d.fortuneRows(ctx, dst, sqlFortunes)
}

// fortunesAfter appends to dst[:0] up to limit fortunes with id > after,
// ordered by id (keyset pagination: stable while rows are added).
func (d data) fortunesAfter(ctx context.Context, after int32, limit int, dst []Fortune) ([]Fortune, error) {
	return d.fortuneRows(ctx, dst, sqlFortunesAfter, after, limit)
}

func (d data) fortuneRows(ctx context.Context, dst []Fortune, sql string, args ...any) ([]Fortune, error) {
	dst = dst[:0]
	rows, err := d.db.Query(ctx, sql, args...)
	if err != nil {
		return dst, err
	}
	defer rows.Close()
	for rows.Next() {
		var f Fortune
		if err := rows.Scan(&f.ID, &f.Message); err != nil {
			return dst, err
		}
		dst = append(dst, f)
	}
	return dst, rows.Err()
}

// fortune reads one fortune.
func (d data) fortune(ctx context.Context, id int32) (Fortune, error) {
	var f Fortune
	err := d.db.QueryRow(ctx, sqlFortune, id).Scan(&f.ID, &f.Message)
	return f, err
}

// addFortune stores a fortune in tx and emits fortune.created, unless
// max fortunes are stored already: then it stores nothing and returns
// errFull.
func addFortune(tx *hotpath.Tx, driver, message string, max int) (Fortune, error) {
	q := sqliteAddFortune
	if driver == "postgres" {
		q = postgresAddFortune
	}
	f := Fortune{Message: message}
	if err := tx.QueryRow(q, message, max).Scan(&f.ID); err != nil {
		if isNotFound(err) {
			return Fortune{}, fullError(max)
		}
		return Fortune{}, err
	}
	return f, tx.Emit(eventFortuneCreated, f)
}

// Webhook events of the reference service.
const (
	eventFortuneCreated = "fortune.created"
	eventFortuneDeleted = "fortune.deleted"
	eventWorldUpdated   = "world.updated"
)
