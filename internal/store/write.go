package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/hotpath/hotpath/internal/tracing"
)

// Write runs fn in one write transaction, bounded by Options.Timeout
// unless ctx has an earlier deadline, and returns the answer render makes
// of it. Everything fn does, the events it emits (Tx.Emit) and the answer
// stored for key commit together or not at all; the webhook dispatcher is
// woken after the commit.
//
// With key nil: fn, then render (which may be nil: the zero Answer), then
// commit. With a key: on PostgreSQL the key's advisory lock is taken first
// (ErrKeyInFlight, at once, when another transaction on any replica holds
// it; on SQLite the one writer already serialises writes); then the stored
// answer is looked up. Found for the same Fingerprint: it is returned with
// Replayed set, fn is not run and nothing changes. Found for another:
// ErrKeyReused. None: fn, then render, whose answer is saved with the key,
// then commit.
//
// An error returned by fn or render passes through unchanged, after the
// transaction is rolled back; errors of the store's own statements are
// classified (see errors.go).
func (db *DB) Write(ctx context.Context, key *Key, fn func(*Tx) error, render func() (Answer, error)) (Answer, error) {
	if key != nil && render == nil {
		return Answer{}, errors.New("store: Write with an idempotency key needs render: its answer is stored with the key")
	}
	if err := db.unusable(); err != nil {
		return Answer{}, err
	}
	ctx, cancel := withTimeout(ctx, db.timeout)
	defer cancel()
	tx, err := db.begin(ctx)
	if err != nil {
		return Answer{}, err
	}
	defer tx.end() // rolls back unless committed, fn panicking included
	ans, err := tx.run(key, fn, render)
	if err != nil || ans.Replayed {
		return ans, err
	}
	if err := tx.commit(); err != nil {
		return Answer{}, err
	}
	if tx.emitted {
		db.outbox.notify()
	}
	return ans, nil
}

// Tx is the transaction of one Write, passed to its fn and valid only
// until fn returns. Its statements are bounded by Write's context; on
// PostgreSQL, close Rows before running the next statement.
type Tx struct {
	db      *DB
	ctx     context.Context
	lite    *sql.Tx
	pg      pgx.Tx
	to      *receivers // read once, so all of a change's events go to one set of URLs
	emitted bool
	ended   bool // committed or rolled back
	done    bool // Write has returned

	// The last statement bound to this transaction, so that a loop of one
	// statement binds it once (SQLite).
	lastSQL  string
	lastStmt *sql.Stmt
	missed   []string // statements prepared for this transaction only, to cache after it
}

// errTxDone is the error of a Tx used after its Write's fn returned.
var errTxDone = errors.New("store: Tx used after its Write returned")

func (db *DB) begin(ctx context.Context) (*Tx, error) {
	tx := &Tx{db: db, ctx: ctx, to: db.outbox.current()}
	var err error
	if db.pg != nil {
		tx.pg, err = db.pg.pool.Begin(ctx)
	} else {
		tx.lite, err = db.lite.write.BeginTx(ctx, nil) // IMMEDIATE, see openSQLite
	}
	if err != nil {
		return nil, db.fail(ctx, "begin write", err)
	}
	return tx, nil
}

// run is the body of Write inside the transaction.
func (tx *Tx) run(key *Key, fn func(*Tx) error, render func() (Answer, error)) (Answer, error) {
	if key != nil {
		stored, found, err := tx.storedAnswer(key)
		if err != nil || found {
			return stored, err
		}
	}
	if err := fn(tx); err != nil {
		return Answer{}, err
	}
	var ans Answer
	if render != nil {
		var err error
		if ans, err = render(); err != nil {
			return Answer{}, err
		}
	}
	if key != nil {
		if err := tx.saveAnswer(key, ans); err != nil {
			return Answer{}, err
		}
	}
	return ans, nil
}

func (tx *Tx) commit() (err error) {
	span := tracing.StartDB(tx.ctx, tx.db.system, "COMMIT")
	defer func() { endSpan(span, err) }()
	tx.ended = true // a failed commit ends the transaction too
	if tx.pg != nil {
		err = tx.pg.Commit(tx.ctx)
	} else {
		err = tx.lite.Commit()
	}
	if err != nil {
		return tx.db.fail(tx.ctx, "commit write", err)
	}
	return nil
}

// end rolls the transaction back unless it was committed, makes the Tx
// unusable and caches, now that the writer is free, the statements this
// transaction had to prepare for itself. A rollback that fails leaves
// nothing written either (the driver discards the connection), and what
// made the transaction end is the error Write reports, so its error is
// not one to return.
func (tx *Tx) end() {
	if !tx.ended {
		tx.ended = true
		if tx.pg != nil {
			_ = tx.pg.Rollback(tx.ctx)
		} else {
			_ = tx.lite.Rollback()
		}
	}
	tx.done = true
	if tx.lite == nil {
		return
	}
	for _, q := range tx.missed {
		// A failure only means the next use prepares the statement again.
		if st, _, err := tx.db.lite.writes.get(tx.ctx, q); err == nil && st == nil {
			break // the cache is full
		}
	}
}

// QueryRow runs a query for at most one row in the transaction; its
// error, if any, comes from Row.Scan.
func (tx *Tx) QueryRow(query string, args ...any) Row {
	span := tracing.StartDB(tx.ctx, tx.db.system, query)
	r := Row{db: tx.db, ctx: tx.ctx, span: span, sql: query}
	if tx.done {
		r.err = errTxDone
		return r
	}
	if tx.pg != nil {
		r.pg = tx.pg.QueryRow(tx.ctx, query, heapCopy(args)...)
		return r
	}
	st, err := tx.stmt(query, args)
	if err == nil {
		r.lite = st.QueryRowContext(tx.ctx, args...)
	} else {
		r.err = tx.db.fail(tx.ctx, statementOp(query), err)
	}
	return r
}

// Query runs a query in the transaction; the Rows must be closed.
func (tx *Tx) Query(query string, args ...any) (*Rows, error) {
	span := tracing.StartDB(tx.ctx, tx.db.system, query)
	r := &Rows{db: tx.db, ctx: tx.ctx, span: span, sql: query}
	err := errTxDone
	if !tx.done {
		if tx.pg != nil {
			r.pg, err = tx.pg.Query(tx.ctx, query, heapCopy(args)...)
		} else {
			var st *sql.Stmt
			if st, err = tx.stmt(query, args); err == nil {
				r.lite, err = st.QueryContext(tx.ctx, args...)
			}
		}
	}
	if err != nil {
		err = tx.db.fail(tx.ctx, statementOp(query), err)
		endSpan(span, err)
		return nil, err
	}
	return r, nil
}

// Exec runs a statement in the transaction and returns the number of rows
// it changed.
func (tx *Tx) Exec(query string, args ...any) (rowsAffected int64, err error) {
	span := tracing.StartDB(tx.ctx, tx.db.system, query)
	defer func() { endSpan(span, err) }()
	if tx.done {
		return 0, errTxDone
	}
	if tx.pg != nil {
		tag, err := tx.pg.Exec(tx.ctx, query, heapCopy(args)...)
		if err != nil {
			return 0, failPostgres(statementOp(query), err)
		}
		return tag.RowsAffected(), nil
	}
	st, err := tx.stmt(query, args)
	if err != nil {
		return 0, tx.db.fail(tx.ctx, statementOp(query), err)
	}
	res, err := st.ExecContext(tx.ctx, args...)
	if err != nil {
		return 0, tx.db.fail(tx.ctx, statementOp(query), err)
	}
	return affected(res)
}

// stmt returns q prepared on the transaction's connection (SQLite), after
// checking its text arguments. A statement the writer has cached is bound
// to the transaction; one it has not is prepared for the transaction
// alone, since preparing it on the writer pool would wait for the one
// connection this transaction holds, and is cached once it ends.
func (tx *Tx) stmt(q string, args []any) (*sql.Stmt, error) {
	if err := checkText(args); err != nil {
		return nil, err
	}
	if q == tx.lastSQL {
		return tx.lastStmt, nil
	}
	var st *sql.Stmt
	if cached := tx.db.lite.writes.lookup(q); cached != nil {
		st = tx.lite.StmtContext(tx.ctx, cached)
	} else {
		var err error
		if st, err = tx.lite.PrepareContext(tx.ctx, sqliteParams(q)); err != nil {
			return nil, err
		}
		tx.missed = append(tx.missed, q)
	}
	tx.lastSQL, tx.lastStmt = q, st
	return st, nil
}

// Emit records an event of eventType about data (encoded as JSON) for
// each configured receiver URL, in the transaction: the event exists
// exactly when the change commits. It carries the trace context of
// Write's ctx, so that its delivery continues the request's trace. With no
// receivers configured it does nothing and costs nothing.
func (tx *Tx) Emit(eventType string, data any) error {
	if len(tx.to.urls) == 0 {
		return nil
	}
	ev, err := makeEvent(tx.ctx, eventType, data)
	if err != nil {
		return err
	}
	q, urls := sqliteRecordEvent, any(tx.to.json)
	if tx.pg != nil {
		q, urls = postgresRecordEvent, tx.to.urls
	}
	if _, err := tx.Exec(q, ev.id, ev.typ, ev.time, ev.data, ev.created, urls, ev.traceparent, ev.tracestate); err != nil {
		return fmt.Errorf("record %s event: %w", eventType, err)
	}
	tx.emitted = true
	return nil
}
