package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/hotpath/hotpath/internal/tracing"
)

// Row is the result of a query for one row. It is a value, so a read of
// one row allocates nothing of its own; Scan must be called once: it
// reads the row, releases the connection, cancels the call's timeout and
// ends its span.
type Row struct {
	lite   *sql.Row
	pg     pgx.Row
	err    error // the call failed before reaching the driver
	db     *DB
	ctx    context.Context
	cancel context.CancelFunc // nil for a row of a Tx or a batch
	span   tracing.Span
	sql    string
	batch  *BatchResults // the batch the row belongs to, which owns the span
}

// Scan copies the row's columns into dst. Without a row it returns an
// error wrapping ErrNotFound; every other failure is classified (see
// errors.go).
func (r Row) Scan(dst ...any) error {
	err := r.err
	if err == nil {
		switch {
		case r.pg != nil:
			err = r.pg.Scan(heapCopy(dst)...)
		case r.lite != nil:
			err = r.lite.Scan(dst...)
		default:
			err = errZeroRow
		}
		if err != nil && r.db != nil {
			err = r.db.fail(r.ctx, statementOp(r.sql), err)
		}
	}
	if r.cancel != nil {
		r.cancel()
	}
	if r.batch != nil {
		r.batch.saw(err)
	} else {
		endSpan(r.span, err)
	}
	return err
}

// Rows is the result of a query for many rows. Close must be called: it
// releases the connection, cancels the call's timeout and ends its span.
// Within a Tx, close it before the transaction's next statement.
type Rows struct {
	lite   *sql.Rows
	pg     pgx.Rows
	db     *DB
	ctx    context.Context
	cancel context.CancelFunc // nil for rows of a Tx
	span   tracing.Span
	sql    string
	err    error // the first failure, classified
	closed bool
}

// Next prepares the next row for Scan and reports whether there is one;
// after false, Err tells an error from the end of the rows.
func (r *Rows) Next() bool {
	if r.err != nil || r.closed {
		return false
	}
	if r.pg != nil {
		return r.pg.Next()
	}
	return r.lite.Next()
}

// Scan copies the current row's columns into dst.
func (r *Rows) Scan(dst ...any) error {
	var err error
	if r.pg != nil {
		err = r.pg.Scan(heapCopy(dst)...)
	} else {
		err = r.lite.Scan(dst...)
	}
	if err != nil {
		err = r.db.fail(r.ctx, statementOp(r.sql), err)
		if r.err == nil {
			r.err = err
		}
	}
	return err
}

// Err is the error that ended the rows early, if any, classified.
func (r *Rows) Err() error {
	if r.err != nil {
		return r.err
	}
	var err error
	if r.pg != nil {
		err = r.pg.Err()
	} else {
		err = r.lite.Err()
	}
	if err != nil {
		r.err = r.db.fail(r.ctx, statementOp(r.sql), err)
	}
	return r.err
}

// Close ends the rows; it may be called more than once.
func (r *Rows) Close() {
	if r.closed {
		return
	}
	if r.pg != nil {
		r.pg.Close()
	} else if err := r.lite.Close(); err != nil && r.err == nil {
		r.err = r.db.fail(r.ctx, statementOp(r.sql), err)
	}
	err := r.Err()
	r.closed = true
	if r.cancel != nil {
		r.cancel() // after closing the rows, which would see the cancel as their error
	}
	endSpan(r.span, err)
}

// Batch is a list of single-row queries sent together by DB.SendBatch:
// in one round trip on PostgreSQL (a pgx.Batch), one after another on
// SQLite. Its zero value is empty and ready to use. Queue nothing more and
// do not send it again before its BatchResults are closed; Reset empties
// it for reuse, keeping its memory.
type Batch struct {
	queries []batchQuery
	args    []any // every query's arguments, one after the other
	pg      pgx.Batch
	results BatchResults // what SendBatch returns, kept here so sending allocates none
}

type batchQuery struct {
	sql      string
	from, to int // the query's arguments are args[from:to]
}

// Queue adds a query for one row.
func (b *Batch) Queue(query string, args ...any) {
	b.queries = append(b.queries, batchQuery{sql: query, from: len(b.args), to: len(b.args) + len(args)})
	b.args = append(b.args, args...) // copied, so the caller's args do not escape
}

// Len is the number of queries queued.
func (b *Batch) Len() int { return len(b.queries) }

// Reset empties the batch, dropping its references to the arguments.
func (b *Batch) Reset() {
	clear(b.args)
	b.queries, b.args = b.queries[:0], b.args[:0]
	clear(b.pg.QueuedQueries)
	b.pg.QueuedQueries = b.pg.QueuedQueries[:0]
	b.results = BatchResults{}
}

// batches are the Batches of AcquireBatch.
var batches = sync.Pool{New: func() any { return new(Batch) }}

// AcquireBatch returns an empty Batch from a pool, with the memory of its
// earlier uses, so that a path sending a batch per request allocates none
// for it (BenchmarkBatch20). Give it back with ReleaseBatch.
func AcquireBatch() *Batch { return batches.Get().(*Batch) }

// ReleaseBatch empties b and returns it to the pool. Call it only after
// closing b's BatchResults, and do not use b afterwards.
func ReleaseBatch(b *Batch) {
	b.Reset()
	batches.Put(b)
}

// BatchResults are the rows of a sent Batch, read with QueryRow in queue
// order. Close must be called: it ends the call. BatchResults belong to
// their Batch and are valid until it is sent again.
type BatchResults struct {
	db     *DB
	batch  *Batch
	ctx    context.Context
	cancel context.CancelFunc
	span   tracing.Span
	first  string // the first statement, which names the span and errors
	pg     pgx.BatchResults
	next   int
	err    error // the batch could not be sent
	failed error // the first failure a row returned, for the span
	closed bool
}

// errBatchRead is the error of a QueryRow beyond the queries queued.
var errBatchRead = errors.New("store: BatchResults.QueryRow called more times than queries were queued")

// SendBatch sends b, bounded by Options.Timeout unless ctx has an earlier
// deadline. The span of the call is named after b's first statement.
func (db *DB) SendBatch(ctx context.Context, b *Batch) *BatchResults {
	r := &b.results
	*r = BatchResults{db: db, batch: b}
	if len(b.queries) > 0 {
		r.first = b.queries[0].sql
	}
	r.span = tracing.StartDB(ctx, db.system, r.first)
	if r.err = db.unusable(); r.err != nil {
		return r
	}
	r.ctx, r.cancel = withTimeout(ctx, db.timeout)
	if db.pg != nil {
		b.pg.QueuedQueries = b.pg.QueuedQueries[:0]
		for _, q := range b.queries {
			b.pg.Queue(q.sql, b.args[q.from:q.to:q.to]...)
		}
		r.pg = db.pg.pool.SendBatch(r.ctx, &b.pg)
	}
	return r
}

// QueryRow returns the row of the next query queued.
func (r *BatchResults) QueryRow() Row {
	if r.err != nil {
		return Row{err: r.err, batch: r}
	}
	if r.closed || r.next >= len(r.batch.queries) {
		return Row{err: errBatchRead, batch: r}
	}
	q := r.batch.queries[r.next]
	r.next++
	row := Row{db: r.db, ctx: r.ctx, sql: q.sql, batch: r}
	if r.pg != nil {
		row.pg = r.pg.QueryRow()
		return row
	}
	args := r.batch.args[q.from:q.to]
	err := checkText(args)
	if err == nil {
		row.lite, err = r.db.lite.reads.queryRow(r.ctx, q.sql, args)
	}
	if err != nil {
		row.err = r.db.fail(r.ctx, statementOp(q.sql), err)
	}
	return row
}

// saw records the outcome of one of the batch's rows.
func (r *BatchResults) saw(err error) {
	if err != nil && r.failed == nil && !errors.Is(err, ErrNotFound) {
		r.failed = err
	}
}

// Close ends the batch. It returns the error that kept the batch from
// completing, unless a Row has returned it already.
func (r *BatchResults) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	var err error
	if r.pg != nil {
		if e := r.pg.Close(); e != nil {
			err = failPostgres(statementOp(r.first), e)
		}
	}
	if r.cancel != nil {
		r.cancel()
	}
	spanErr := r.failed
	if spanErr == nil {
		spanErr = errors.Join(r.err, err)
	}
	endSpan(r.span, spanErr)
	if r.failed != nil {
		return nil // a row has reported what went wrong
	}
	return errors.Join(r.err, err)
}
