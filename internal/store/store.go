// Package store holds hotpath's data: the World and Fortune tables on SQLite
// (embedded, the default) or PostgreSQL. It knows nothing of HTTP; callers
// turn ErrNotFound and ErrUnavailable into status codes.
package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hotpath/hotpath/internal/tracing"
)

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

// Options configures OpenSQLite and OpenPostgres.
type Options struct {
	// Driver is "sqlite" or "postgres" (db.driver); the Open functions do not
	// read it, it is here so one Options value describes the whole database.
	Driver string
	// DSN is the SQLite file path (its directory is created) or a
	// postgres:// URL (db.dsn).
	DSN string
	// Timeout bounds every call whose context has no deadline (db.timeout).
	// It is also SQLite's busy_timeout and PostgreSQL's statement_timeout,
	// lock_timeout, idle_in_transaction_session_timeout and (at least 3s)
	// connect_timeout. Migrations at start get MigrationTimeout instead.
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxConns caps the connection pool; 0 picks GOMAXPROCS readers for
	// SQLite and 4*GOMAXPROCS connections for PostgreSQL.
	MaxConns int
	// ConnMaxLifetime and ConnMaxIdleTime recycle pooled connections;
	// zero keeps the driver's default.
	ConnMaxLifetime, ConnMaxIdleTime time.Duration
	// SQLiteSynchronous is SQLite's synchronous pragma on every connection
	// that writes (db.sqlite_synchronous): "full" (the default when empty)
	// syncs the WAL at every commit, so a commit that returned survives a
	// power loss; "normal" syncs only at checkpoints, so the last commits
	// can be lost with the node (never with the process alone).
	SQLiteSynchronous string
	// Logger receives migration and connectivity events; nil discards them.
	Logger *slog.Logger
	// MaxFortunes caps the rows of Fortune (api.max_fortunes): a create
	// beyond it fails with a *FullError and stores nothing. 0 is no cap.
	// SetMaxFortunes changes it on an open store.
	MaxFortunes int
	// OutboxURLs are the webhook receivers (webhooks.urls). When there are
	// any, SetWorld, AddFortune and DeleteFortune record one outbox row per
	// URL in the same transaction as the change (see outbox.go); when there
	// are none they record nothing and pay nothing. UpdateWorlds never
	// records events. SetOutboxURLs changes them while the store is open.
	OutboxURLs []string
	// Components are the owners of tables whose migrations are applied
	// at open, in this order, after the framework's own (see migrate.go).
	Components []Component
}

// DefaultTimeout is used when Options.Timeout is zero; it matches the
// db.timeout default.
const DefaultTimeout = 2 * time.Second

// ErrNotFound reports that the requested row does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrUnavailable is wrapped by every error caused by the database being
// unreachable, slow, busy, out of connections or not migrated yet: the
// request may succeed later, so callers answer 503 with Retry-After.
var ErrUnavailable = errors.New("store: database unavailable")

// unavailable marks err, the failure of op, as transient.
func unavailable(op string, err error) error {
	return &unavailableError{op: op, err: err}
}

// unavailableError is a transient failure that keeps its cause inspectable.
type unavailableError struct {
	op  string
	err error
}

func (e *unavailableError) Error() string { return e.op + ": " + e.err.Error() }

// Unwrap exposes both ErrUnavailable and the cause to errors.Is and As.
func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// withTimeout applies d to ctx unless the caller already set a deadline,
// so no call can wait forever on a dead database.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// contextDone reports whether err comes from a cancelled or expired context.
func contextDone(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
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

// db.system.name of the two drivers, for their spans.
const (
	sqliteSystem   = "sqlite"
	postgresSystem = "postgresql"
)

// endSpan ends the span of a call (see tracing.StartDB) with the class of
// its error, never its text, which may quote a value. A missing row or a
// refused change (see refusal) is an answer, not a failure. Deferred with
// the span started at the call's top:
//
//	defer endSpan(tracing.StartDB(ctx, sqliteSystem, sqlWorld), &err)
func endSpan(s tracing.Span, err *error) {
	switch e := *err; {
	case e == nil, errors.Is(e, ErrNotFound), refusal(e):
		s.EndDB("")
	case errors.Is(e, ErrUnavailable):
		s.EndDB("unavailable")
	case errors.Is(e, ErrInvalid):
		s.EndDB("invalid")
	default:
		s.EndDB("_OTHER")
	}
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

func orDefault(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultTimeout
	}
	return d
}

// ErrFull reports a create refused because its table holds its cap of
// rows; the error is a *FullError, which names the cap. Callers answer 409.
var ErrFull = errors.New("store: table full")

// FullError is the error of a create beyond MaxFortunes: nothing was
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

// fortuneCap holds MaxFortunes as the number the capped insert compares
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

// ErrInvalid reports a value the database cannot store as given, such as a
// message with invalid UTF-8; callers answer 422.
var ErrInvalid = errors.New("store: invalid value")

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

// The statements, written once for both drivers with $N placeholders
// (SQLite gets them as ?N). Every value is a bound parameter.
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

// The conditional write checks the current value in its own WHERE: on
// PostgreSQL a writer that waited for the row lock re-checks it against the
// row the other writer left, so two writers holding the same ETag cannot
// both succeed; SQLite has one writer at a time.
const (
	sqliteSetWorldIf   = `UPDATE World SET randomNumber = $1 WHERE id = $2 AND randomNumber IN (SELECT value FROM json_each($3)) RETURNING id, randomNumber`
	postgresSetWorldIf = `UPDATE World SET randomNumber = $1 WHERE id = $2 AND randomNumber = ANY($3::int[]) RETURNING id, randomNumber`
)
