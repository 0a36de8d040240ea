package hotpath

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/hotpath/hotpath/internal/store"
)

// DB is the service's database: the embedded SQLite file (db.driver =
// "sqlite", the default) or PostgreSQL ("postgres"), open from start to
// stop. Statements are written once for both with $1, $2 ... placeholders,
// and every value travels as a bound parameter, never as SQL text. Every
// call is bounded by db.timeout and joins the request's trace when given
// the request's context.
type DB struct {
	app *App
	s   *store.DB
}

// DB is the service's database, usable from start (OnStart) to stop.
func (a *App) DB() *DB { return a.db }

// Open opens a database outside an App, for tools and tests: driver
// "sqlite" (dsn a file path) or "postgres" (a postgres:// URL). It applies
// hotpath's own migrations and none of a service's; Close it.
func Open(ctx context.Context, driver, dsn string) (*DB, error) {
	s, err := store.Open(ctx, store.Options{Driver: driver, DSN: dsn, Timeout: 5 * time.Second, MaxConns: 2})
	if err != nil {
		return nil, err
	}
	return &DB{s: s}, nil
}

// Close closes a database from Open; an App closes its own.
func (db *DB) Close() error {
	if db.app != nil {
		return errors.New("hotpath: the App closes its database at stop")
	}
	return db.s.Close()
}

func (db *DB) store() *store.DB {
	if db.s == nil {
		panic("hotpath: the database is open from start to stop; this call came before the App started")
	}
	return db.s
}

// Driver is "sqlite" or "postgres", for the rare statement that must be
// written for each.
func (db *DB) Driver() string { return db.store().Driver() }

// QueryRow runs a query expected to return at most one row; Scan reports
// ErrNotFound when there is none.
func (db *DB) QueryRow(ctx context.Context, sql string, args ...any) Row {
	return Row{db.store().QueryRow(ctx, sql, args...)}
}

// Query runs a query; close the rows when done.
func (db *DB) Query(ctx context.Context, sql string, args ...any) (Rows, error) {
	r, err := db.store().Query(ctx, sql, args...)
	return Rows{r}, err
}

// Exec runs a statement outside a transaction and returns the rows it
// changed. Use Write for a change that must commit with others, with its
// events or with an Idempotency-Key.
func (db *DB) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	return db.store().Exec(ctx, sql, args...)
}

// Batch holds single-row queries sent together: in one round trip on
// PostgreSQL, one after another on SQLite.
type Batch struct{ b store.Batch }

// Queue adds a query to the batch.
func (b *Batch) Queue(sql string, args ...any) { b.b.Queue(sql, args...) }

// SendBatch runs b; read each query's row from the results in queue order,
// then Close them.
func (db *DB) SendBatch(ctx context.Context, b *Batch) BatchResults {
	return BatchResults{db.store().SendBatch(ctx, &b.b)}
}

// BatchResults are the rows of a sent Batch.
type BatchResults struct{ r *store.BatchResults }

// QueryRow is the row of the next query of the batch.
func (r BatchResults) QueryRow() Row { return Row{r.r.QueryRow()} }

// Close ends the batch; its error is the batch's first.
func (r BatchResults) Close() error { return r.r.Close() }

// Row is the result of QueryRow.
type Row struct{ r store.Row }

// Scan copies the row's columns into dst; ErrNotFound when there was no row.
func (r Row) Scan(dst ...any) error { return r.r.Scan(dst...) }

// Rows are the result of Query.
type Rows struct{ r *store.Rows }

// Next advances to the next row; false at the end or on an error (Err).
func (r Rows) Next() bool { return r.r.Next() }

// Scan copies the current row's columns into dst.
func (r Rows) Scan(dst ...any) error { return r.r.Scan(dst...) }

// Err is the error that ended the rows, if any.
func (r Rows) Err() error { return r.r.Err() }

// Close releases the rows' connection.
func (r Rows) Close() { r.r.Close() }

// Tx is one write transaction: its statements, the events it emits and
// the route's Idempotency-Key answer commit together or not at all.
type Tx struct{ t *store.Tx }

// QueryRow runs a query in the transaction.
func (tx *Tx) QueryRow(sql string, args ...any) Row { return Row{tx.t.QueryRow(sql, args...)} }

// Query runs a query in the transaction; close the rows before the next
// statement.
func (tx *Tx) Query(sql string, args ...any) (Rows, error) {
	r, err := tx.t.Query(sql, args...)
	return Rows{r}, err
}

// Exec runs a statement in the transaction and returns the rows it changed.
func (tx *Tx) Exec(sql string, args ...any) (int64, error) { return tx.t.Exec(sql, args...) }

// Emit records a webhook event of type event (such as "note.created")
// with data, encoded as JSON, for every receiver in webhooks.urls: it is
// delivered, signed, at least once after the transaction commits, and
// never if it rolls back. With no receivers it records nothing.
func (tx *Tx) Emit(event string, data any) error { return tx.t.Emit(event, data) }

// Write runs fn in one write transaction and commits it; an error from fn
// rolls it back and is returned as it is.
func (db *DB) Write(ctx context.Context, fn func(tx *Tx) error) error {
	_, err := db.store().Write(ctx, nil, func(t *store.Tx) error { return fn(&Tx{t}) }, nil)
	return err
}

// errReplayed ends a Write whose Idempotency-Key was answered before: the
// stored answer goes out instead of the handler's.
var errReplayed = errors.New("hotpath: this Idempotency-Key was answered before; its answer is sent again")

// Write runs fn, the change of a handler, in one write transaction of the
// App's database, and commits it with the events fn emits and, on an
// Idempotent route whose request has an Idempotency-Key, with the answer
// made of fn's result, stored for retries. When the key was answered
// before, fn does not run: Write returns the zero Out and an error that
// makes the route send the stored answer; return it as it is. Out must be
// the route's answer type.
func Write[Out any](c *Ctx, fn func(tx *Tx) (Out, error)) (Out, error) {
	var out Out
	var key *store.Key
	if c.state.HasKey {
		key = &c.state.Key
	}
	plan := c.route.out
	if plan == nil || plan.outType != reflect.TypeFor[Out]() {
		return out, fmt.Errorf("hotpath.Write returns %v, but route %v answers %v", reflect.TypeFor[Out](), c.route, plan.typeName())
	}
	render := func() (store.Answer, error) { return plan.render(&out) }
	ans, err := c.route.app.db.store().Write(c.Context(), key, func(t *store.Tx) error {
		var err error
		out, err = fn(&Tx{t})
		return err
	}, render)
	if err != nil {
		var zero Out
		return zero, err
	}
	if key != nil {
		c.storedAnswer, c.stored = ans, true
		if ans.Replayed {
			var zero Out
			return zero, errReplayed
		}
	}
	return out, nil
}
