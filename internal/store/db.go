package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/hotpath/hotpath/internal/tracing"
)

// DB is an open database of either driver. Reads (QueryRow, Query,
// SendBatch) go to SQLite's pool of readers; single statements that write
// (Exec) and transactions (Write) go to its one writer connection, so
// writes queue in Go instead of spinning on SQLITE_BUSY. On PostgreSQL
// everything shares one pgx pool, whose statement cache prepares each
// text once per connection. A DB is safe for concurrent use.
type DB struct {
	driver  string // "sqlite" or "postgres"
	system  string // db.system.name of its spans
	timeout time.Duration
	log     *slog.Logger
	outbox  *outbox
	closed  atomic.Bool // set by Close, so late calls answer unavailable

	lite *sqliteDB   // driver "sqlite"
	pg   *postgresDB // driver "postgres"
}

// Open opens the database o.Driver names at o.DSN and applies the
// migrations of the framework and of o.Components. SQLite is ready when
// Open returns. PostgreSQL may be down at start: Open then returns a DB
// whose Ready is false and whose calls answer ErrUnavailable while it
// migrates in the background, until it has. Open fails when o is
// unusable (the DSN, a component's files), or when the database belongs
// to another service (ErrForeignDatabase).
func Open(ctx context.Context, o Options) (*DB, error) {
	switch o.Driver {
	case "sqlite":
		return openSQLite(ctx, o)
	case "postgres":
		return openPostgres(ctx, o)
	}
	return nil, fmt.Errorf("open database: db.driver %q: want sqlite or postgres", o.Driver)
}

// newDB is the part of a DB both drivers share.
func newDB(driver, system string, o Options) *DB {
	return &DB{driver: driver, system: system, timeout: orDefault(o.Timeout), log: orDiscard(o.Logger), outbox: newOutbox(o.OutboxURLs)}
}

// Driver is "sqlite" or "postgres", for the few statements that must
// differ between them.
func (db *DB) Driver() string { return db.driver }

// Ready reports whether the schema is in place, so calls can succeed:
// always for SQLite, once migrated for PostgreSQL.
func (db *DB) Ready() bool { return db.pg == nil || db.pg.ready.Load() }

// Ping reports whether the database answers (and, for PostgreSQL, is
// migrated).
func (db *DB) Ping(ctx context.Context) error {
	if err := db.unusable(); err != nil {
		return err
	}
	ctx, cancel := withTimeout(ctx, db.timeout)
	defer cancel()
	if db.pg != nil {
		if err := db.pg.pool.Ping(ctx); err != nil {
			return failPostgres("ping postgres", err)
		}
		return nil
	}
	var one int
	row, err := db.lite.reads.queryRow(ctx, "SELECT 1", nil)
	if err == nil {
		err = row.Scan(&one)
	}
	if err != nil {
		return db.fail(ctx, "ping sqlite", err)
	}
	return nil
}

// Close closes the database; calls made after it answer ErrUnavailable.
// On PostgreSQL it first stops the background migration, if still running,
// and waits for connections in use to be returned.
func (db *DB) Close() error {
	db.closed.Store(true)
	if db.pg != nil {
		db.pg.close()
		return nil
	}
	return db.lite.close()
}

// unusable is the error of a call that cannot reach the database now.
func (db *DB) unusable() error {
	if db.closed.Load() {
		return errClosed
	}
	if db.pg != nil && !db.pg.ready.Load() {
		return errNotMigrated
	}
	return nil
}

// fail wraps err, the failure of op, and classifies it for the driver.
func (db *DB) fail(ctx context.Context, op string, err error) error {
	if db.pg != nil {
		return failPostgres(op, err)
	}
	return failSQLite(ctx, db.closed.Load(), op, err)
}

// QueryRow runs a query expected to return at most one row, bounded by
// Options.Timeout unless ctx has an earlier deadline. Its error, if any,
// comes from Row.Scan, which must be called: it ends the call.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) Row {
	return db.queryRow(ctx, false, query, args)
}

// writeRow is QueryRow on SQLite's writer, for a statement that writes and
// returns a row (INSERT ... RETURNING) outside a transaction.
func (db *DB) writeRow(ctx context.Context, query string, args ...any) Row {
	return db.queryRow(ctx, true, query, args)
}

func (db *DB) queryRow(ctx context.Context, write bool, q string, args []any) Row {
	span := tracing.StartDB(ctx, db.system, q)
	if err := db.unusable(); err != nil {
		return Row{err: err, span: span}
	}
	ctx, cancel := withTimeout(ctx, db.timeout)
	r := Row{db: db, ctx: ctx, cancel: cancel, span: span, sql: q}
	if db.pg != nil {
		r.pg = db.pg.pool.QueryRow(ctx, q, heapCopy(args)...)
		return r
	}
	stmts := &db.lite.reads
	if write {
		stmts = &db.lite.writes
	}
	err := checkText(args)
	if err == nil {
		r.lite, err = stmts.queryRow(ctx, q, args)
	}
	if err != nil {
		r.err = failSQLite(ctx, db.closed.Load(), statementOp(q), err)
	}
	return r
}

// Query runs a query bounded by Options.Timeout unless ctx has an earlier
// deadline. The Rows must be closed, which ends the call.
func (db *DB) Query(ctx context.Context, query string, args ...any) (*Rows, error) {
	span := tracing.StartDB(ctx, db.system, query)
	if err := db.unusable(); err != nil {
		endSpan(span, err)
		return nil, err
	}
	ctx, cancel := withTimeout(ctx, db.timeout)
	r := &Rows{db: db, ctx: ctx, cancel: cancel, span: span, sql: query}
	var err error
	if db.pg != nil {
		r.pg, err = db.pg.pool.Query(ctx, query, heapCopy(args)...)
	} else if err = checkText(args); err == nil {
		r.lite, err = db.lite.reads.query(ctx, query, args)
	}
	if err != nil {
		err = db.fail(ctx, statementOp(query), err)
		cancel()
		endSpan(span, err)
		return nil, err
	}
	return r, nil
}

// Exec runs one statement that writes, outside a transaction, bounded by
// Options.Timeout unless ctx has an earlier deadline, and returns the
// number of rows it changed.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (rowsAffected int64, err error) {
	span := tracing.StartDB(ctx, db.system, query)
	defer func() { endSpan(span, err) }()
	if err := db.unusable(); err != nil {
		return 0, err
	}
	ctx, cancel := withTimeout(ctx, db.timeout)
	defer cancel()
	if db.pg != nil {
		tag, err := db.pg.pool.Exec(ctx, query, heapCopy(args)...)
		if err != nil {
			return 0, failPostgres(statementOp(query), err)
		}
		return tag.RowsAffected(), nil
	}
	if err := checkText(args); err != nil {
		return 0, err
	}
	res, err := db.lite.writes.exec(ctx, query, args)
	if err != nil {
		return 0, db.fail(ctx, statementOp(query), err)
	}
	return affected(res)
}

// affected is res.RowsAffected, which the sqlite driver always knows.
func affected(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rows affected: %w", err)
	}
	return n, nil
}

// heapCopy copies a variadic list before it goes to pgx. pgx keeps what it
// is given out of sight of escape analysis (an interface call), which
// would move every caller's argument list to the heap; database/sql keeps
// none, so with the copy made on PostgreSQL's path only, SQLite's callers
// keep theirs on the stack. PostgreSQL pays the one allocation it paid
// anyway (BenchmarkQueryRow).
func heapCopy(list []any) []any { return append([]any(nil), list...) }

// errZeroRow is the error of a Row or Rows not made by a DB or Tx.
var errZeroRow = errors.New("store: Scan of a Row that no query made")
