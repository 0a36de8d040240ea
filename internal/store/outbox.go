package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hotpath/hotpath/internal/tracing"
)

// The outbox turns committed changes into webhook events without losing
// any: SetWorld, AddFortune and DeleteFortune write one webhook_outbox row
// per receiver URL in the transaction that makes the change, and a
// dispatcher (internal/webhook) claims, delivers and marks them later.
//
// Each URL's rows form a queue delivered head first: ClaimEvent hands out
// only the oldest pending row of a URL, and only when no lease on it is
// live, so one URL never has two events in flight and replicas sharing a
// PostgreSQL database do not deliver the same row twice while its lease
// (the UPDATE below, which PostgreSQL re-checks after waiting for a row
// lock) holds. A replica that dies mid-delivery leaves a lease that
// expires; the row is then delivered again: delivery is at least once.

// Event types, the "type" of a webhook body.
const (
	EventFortuneCreated = "fortune.created"
	EventFortuneDeleted = "fortune.deleted"
	EventWorldUpdated   = "world.updated"
)

// OutboxEvent is one change event waiting for delivery to one URL.
type OutboxEvent struct {
	// Seq orders the outbox; a URL's events are delivered in Seq order.
	Seq int64
	// ID is the event's unique id, the same for every URL.
	ID string
	// URL is the receiver.
	URL string
	// Type is one of the Event constants.
	Type string
	// Time is when the change was made, RFC 3339 in UTC.
	Time string
	// Data is the changed object as JSON.
	Data []byte
	// Attempts counts the failed deliveries so far.
	Attempts int
	// Traceparent and Tracestate are the W3C trace context of the request
	// that made the change (empty when it had none); its delivery
	// continues that trace.
	Traceparent, Tracestate string
}

// Outbox row states.
const (
	statePending   = 0
	stateDelivered = 1
	stateGivenUp   = 2
)

const (
	// One statement writes the rows of every URL; the URLs travel as a
	// JSON array on SQLite, an array on PostgreSQL.
	sqliteRecordEvent = `INSERT INTO webhook_outbox (event_id, url, type, occurred_at, data, created_at, traceparent, tracestate)
SELECT $1, value, $2, $3, $4, $5, $7, $8 FROM json_each($6) ORDER BY key`
	postgresRecordEvent = `INSERT INTO webhook_outbox (event_id, url, type, occurred_at, data, created_at, traceparent, tracestate)
SELECT $1, u, $2, $3, $4, $5, $7, $8 FROM unnest($6::text[]) AS u`
	sqlClaimEvent = `UPDATE webhook_outbox SET leased_until = $3, lease_owner = $4
WHERE seq = (SELECT min(seq) FROM webhook_outbox WHERE url = $1 AND state = 0)
  AND state = 0 AND next_attempt_at <= $2 AND leased_until <= $2
RETURNING seq, event_id, url, type, occurred_at, data, attempts, traceparent, tracestate`
	sqlEventDelivered = `UPDATE webhook_outbox SET state = 1, done_at = $3, leased_until = 0, last_error = ''
WHERE seq = $1 AND lease_owner = $2 AND state = 0`
	sqlEventFailed = `UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = $3, leased_until = 0,
  last_error = $4, state = $5, done_at = $6
WHERE seq = $1 AND lease_owner = $2 AND state = 0`
	sqlEventPostponed = `UPDATE webhook_outbox SET next_attempt_at = $3, leased_until = 0
WHERE seq = $1 AND lease_owner = $2 AND state = 0`
	// The prune deletes in batches ($2 rows): a backlog of millions is cut
	// into statements that each end within db.timeout, and SQLite's one
	// writer is free between them.
	sqlPruneDone = `DELETE FROM webhook_outbox WHERE seq IN
  (SELECT seq FROM webhook_outbox WHERE state <> 0 AND done_at < $1 LIMIT $2)`
	sqlBacklog    = `SELECT count(*) FROM webhook_outbox WHERE state = 0`
	maxLastErrLen = 512
)

// outbox is the mutation side, shared by both drivers.
type outbox struct {
	// receivers is swapped whole when webhooks.urls is reloaded; a change
	// reads it once, so its events go to the old URLs or the new ones.
	receivers  atomic.Pointer[receivers]
	signal     chan struct{}
	pruneBatch int // rows one prune statement deletes at most
}

// receivers are the URLs events are recorded for.
type receivers struct {
	urls []string
	json string // urls as a JSON array, for SQLite's json_each
}

func newOutbox(urls []string) *outbox {
	o := &outbox{signal: make(chan struct{}, 1), pruneBatch: 5000}
	o.set(urls)
	return o
}

func (o *outbox) set(urls []string) {
	r := &receivers{urls: append([]string{}, urls...)}
	b, _ := json.Marshal(r.urls) // a []string always encodes
	r.json = string(b)
	o.receivers.Store(r)
}

// current returns the receivers; with none, changes record no events.
func (o *outbox) current() *receivers { return o.receivers.Load() }

// notify wakes the dispatcher after a commit; it never blocks, and one
// pending wake-up is as good as many.
func (o *outbox) notify() {
	select {
	case o.signal <- struct{}{}:
	default:
	}
}

// newEvent is an event about to be written.
type newEvent struct {
	id, typ, time           string
	data                    string
	created                 int64
	traceparent, tracestate string
}

// makeEvent is the event of type typ about obj, in the trace of ctx.
func makeEvent(ctx context.Context, typ string, obj any) (newEvent, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return newEvent{}, fmt.Errorf("encode %s event: %w", typ, err)
	}
	now := time.Now()
	tp, ts := tracing.Traceparent(ctx)
	return newEvent{id: newEventID(), typ: typ, time: now.UTC().Format(time.RFC3339Nano), data: string(data), created: now.UnixMilli(),
		traceparent: tp, tracestate: ts}, nil
}

// newEventID returns a random (version 4) UUID.
func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// failedState is the state and done time of a row after a failed attempt.
func failedState(giveUp bool, now int64) (state int, doneAt int64) {
	if giveUp {
		return stateGivenUp, now
	}
	return statePending, 0
}

// truncate cuts s to at most n bytes of valid UTF-8: PostgreSQL refuses a
// text parameter that is not, and an error may quote a raw byte or be cut
// inside a character.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// SQLite

// SetOutboxURLs makes urls the receivers that changes from now on record
// events for (webhooks.urls, reloaded). Events already recorded for a URL
// no longer listed stay pending until webhooks.retention prunes them, and
// are delivered should the URL come back before that.
func (s *SQLite) SetOutboxURLs(urls []string) { s.outbox.set(urls) }

// OutboxSignal receives a value after a change with events commits, so the
// dispatcher can deliver at once instead of at its next poll.
func (s *SQLite) OutboxSignal() <-chan struct{} { return s.outbox.signal }

// inTx runs fn, the statements of one change, in a transaction when tx is
// set (and then wakes the dispatcher after the commit), else on its own.
// fn runs its statements through st, which binds them to the transaction
// (or leaves them alone when there is none).
func (s *SQLite) inTx(ctx context.Context, tx bool, fn func(st func(*sql.Stmt) *sql.Stmt) error) error {
	if !tx {
		return fn(func(x *sql.Stmt) *sql.Stmt { return x })
	}
	t, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(func(x *sql.Stmt) *sql.Stmt { return t.StmtContext(ctx, x) }); err != nil {
		return errors.Join(err, ignoreDone(t.Rollback()))
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	s.outbox.notify()
	return nil
}

// record writes the event of type typ about obj through st, one row per
// URL of to.
func (s *SQLite) record(ctx context.Context, st func(*sql.Stmt) *sql.Stmt, typ string, obj any, to *receivers) error {
	ev, err := makeEvent(ctx, typ, obj)
	if err != nil {
		return err
	}
	if _, err := st(s.recordEvent).ExecContext(ctx, ev.id, ev.typ, ev.time, ev.data, ev.created, to.json,
		ev.traceparent, ev.tracestate); err != nil {
		return fmt.Errorf("record %s event: %w", typ, err)
	}
	return nil
}

// ClaimEvent leases the oldest pending event for url to owner for lease,
// if it is due and not leased already; ok is false when there is none.
func (s *SQLite) ClaimEvent(ctx context.Context, url, owner string, lease time.Duration) (e OutboxEvent, ok bool, err error) {
	ctx, cancel := withTimeout(ctx, s.timeout)
	defer cancel()
	now := time.Now()
	var data string
	err = s.write.QueryRowContext(ctx, sqliteParams(sqlClaimEvent), url, now.UnixMilli(), now.Add(lease).UnixMilli(), owner).
		Scan(&e.Seq, &e.ID, &e.URL, &e.Type, &e.Time, &data, &e.Attempts, &e.Traceparent, &e.Tracestate)
	if errors.Is(err, sql.ErrNoRows) {
		return OutboxEvent{}, false, nil
	}
	if err != nil {
		return OutboxEvent{}, false, s.fail(ctx, "claim outbox event", err)
	}
	e.Data = []byte(data)
	return e, true, nil
}

// EventDelivered marks the event at seq delivered, if owner still holds
// its lease.
func (s *SQLite) EventDelivered(ctx context.Context, seq int64, owner string) error {
	ctx, cancel := withTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.write.ExecContext(ctx, sqliteParams(sqlEventDelivered), seq, owner, time.Now().UnixMilli()); err != nil {
		return s.fail(ctx, "mark outbox event delivered", err)
	}
	return nil
}

// EventFailed records a failed attempt at the event at seq, if owner still
// holds its lease: it becomes due again after retryIn, or is given up.
func (s *SQLite) EventFailed(ctx context.Context, seq int64, owner string, retryIn time.Duration, giveUp bool, reason string) error {
	ctx, cancel := withTimeout(ctx, s.timeout)
	defer cancel()
	now := time.Now()
	state, done := failedState(giveUp, now.UnixMilli())
	if _, err := s.write.ExecContext(ctx, sqliteParams(sqlEventFailed), seq, owner, now.Add(retryIn).UnixMilli(),
		truncate(reason, maxLastErrLen), state, done); err != nil {
		return s.fail(ctx, "mark outbox event failed", err)
	}
	return nil
}

// EventPostponed gives back owner's lease on the event at seq without
// counting an attempt, due again after retryIn: for an attempt that never
// reached the receiver (its circuit breaker was open, or hotpath stopping).
func (s *SQLite) EventPostponed(ctx context.Context, seq int64, owner string, retryIn time.Duration) error {
	ctx, cancel := withTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.write.ExecContext(ctx, sqliteParams(sqlEventPostponed), seq, owner, time.Now().Add(retryIn).UnixMilli()); err != nil {
		return s.fail(ctx, "postpone outbox event", err)
	}
	return nil
}

// PruneEvents deletes events delivered or given up before before, and
// pending events older than before for URLs no longer configured.
func (s *SQLite) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	batch := s.outbox.pruneBatch
	return pruneInBatches(batch, []pruneStatement{
		{sqlPruneDone, []any{before.UnixMilli(), batch}},
		{`DELETE FROM webhook_outbox WHERE seq IN (SELECT seq FROM webhook_outbox
  WHERE state = 0 AND created_at < $1 AND url NOT IN (SELECT value FROM json_each($2)) LIMIT $3)`, []any{before.UnixMilli(), s.outbox.current().json, batch}},
	}, func(q string, args []any) (int64, error) {
		c, cancel := withTimeout(ctx, s.timeout)
		defer cancel()
		res, err := s.write.ExecContext(c, sqliteParams(q), args...)
		if err != nil {
			return 0, s.fail(c, "prune outbox", err)
		}
		return res.RowsAffected() // the sqlite driver always knows it
	})
}

// pruneStatement is one batched DELETE of the prune and its arguments.
type pruneStatement struct {
	sql  string
	args []any
}

// pruneInBatches runs each statement until it deletes fewer than batch
// rows, each run under its own db.timeout, and returns the rows deleted.
func pruneInBatches(batch int, stmts []pruneStatement, exec func(q string, args []any) (int64, error)) (int64, error) {
	var n int64
	for _, st := range stmts {
		for {
			d, err := exec(st.sql, st.args)
			n += d
			if err != nil {
				return n, err
			}
			if d < int64(batch) {
				break
			}
		}
	}
	return n, nil
}

// EventBacklog counts the events waiting for delivery.
func (s *SQLite) EventBacklog(ctx context.Context) (int64, error) {
	ctx, cancel := withTimeout(ctx, s.timeout)
	defer cancel()
	var n int64
	if err := s.read.QueryRowContext(ctx, sqlBacklog).Scan(&n); err != nil {
		return 0, s.fail(ctx, "count outbox backlog", err)
	}
	return n, nil
}

// PostgreSQL

// querier is what a change needs of the pool or of a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// OutboxSignal receives a value after a change with events commits, so the
// dispatcher can deliver at once instead of at its next poll. Changes made
// by other replicas are found by polling.
func (p *Postgres) OutboxSignal() <-chan struct{} { return p.outbox.signal }

// SetOutboxURLs is SQLite.SetOutboxURLs for PostgreSQL.
func (p *Postgres) SetOutboxURLs(urls []string) { p.outbox.set(urls) }

// inTx is SQLite.inTx for PostgreSQL: fn runs on q, the pool or the
// transaction.
func (p *Postgres) inTx(ctx context.Context, tx bool, fn func(q querier) error) error {
	if !tx {
		return fn(p.pool)
	}
	err := pgx.BeginFunc(ctx, p.pool, func(t pgx.Tx) error { return fn(t) })
	if err == nil {
		p.outbox.notify()
	}
	return err
}

// record writes the event of type typ about obj on q, one row per URL of
// to.
func (p *Postgres) record(ctx context.Context, q querier, typ string, obj any, to *receivers) error {
	ev, err := makeEvent(ctx, typ, obj)
	if err != nil {
		return err
	}
	if _, err := q.Exec(ctx, postgresRecordEvent, ev.id, ev.typ, ev.time, ev.data, ev.created, to.urls, ev.traceparent, ev.tracestate); err != nil {
		return fmt.Errorf("record %s event: %w", typ, err)
	}
	return nil
}

// ClaimEvent leases the oldest pending event for url to owner for lease,
// if it is due and not leased already; ok is false when there is none.
func (p *Postgres) ClaimEvent(ctx context.Context, url, owner string, lease time.Duration) (e OutboxEvent, ok bool, err error) {
	if !p.ready.Load() {
		return OutboxEvent{}, false, errNotMigrated
	}
	ctx, cancel := withTimeout(ctx, p.timeout)
	defer cancel()
	now := time.Now()
	var data string
	err = p.pool.QueryRow(ctx, sqlClaimEvent, url, now.UnixMilli(), now.Add(lease).UnixMilli(), owner).
		Scan(&e.Seq, &e.ID, &e.URL, &e.Type, &e.Time, &data, &e.Attempts, &e.Traceparent, &e.Tracestate)
	if errors.Is(err, pgx.ErrNoRows) {
		return OutboxEvent{}, false, nil
	}
	if err != nil {
		return OutboxEvent{}, false, p.fail("claim outbox event", err)
	}
	e.Data = []byte(data)
	return e, true, nil
}

// EventDelivered marks the event at seq delivered, if owner still holds
// its lease.
func (p *Postgres) EventDelivered(ctx context.Context, seq int64, owner string) error {
	return p.exec(ctx, "mark outbox event delivered", sqlEventDelivered, seq, owner, time.Now().UnixMilli())
}

// EventFailed records a failed attempt at the event at seq, if owner still
// holds its lease: it becomes due again after retryIn, or is given up.
func (p *Postgres) EventFailed(ctx context.Context, seq int64, owner string, retryIn time.Duration, giveUp bool, reason string) error {
	now := time.Now()
	state, done := failedState(giveUp, now.UnixMilli())
	return p.exec(ctx, "mark outbox event failed", sqlEventFailed, seq, owner, now.Add(retryIn).UnixMilli(),
		truncate(reason, maxLastErrLen), state, done)
}

// EventPostponed gives back owner's lease on the event at seq without
// counting an attempt, due again after retryIn.
func (p *Postgres) EventPostponed(ctx context.Context, seq int64, owner string, retryIn time.Duration) error {
	return p.exec(ctx, "postpone outbox event", sqlEventPostponed, seq, owner, time.Now().Add(retryIn).UnixMilli())
}

func (p *Postgres) exec(ctx context.Context, op, q string, args ...any) error {
	if !p.ready.Load() {
		return errNotMigrated
	}
	ctx, cancel := withTimeout(ctx, p.timeout)
	defer cancel()
	if _, err := p.pool.Exec(ctx, q, args...); err != nil {
		return p.fail(op, err)
	}
	return nil
}

// PruneEvents deletes events delivered or given up before before, and
// pending events older than before for URLs no longer configured.
func (p *Postgres) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	if !p.ready.Load() {
		return 0, errNotMigrated
	}
	batch := p.outbox.pruneBatch
	return pruneInBatches(batch, []pruneStatement{
		{sqlPruneDone, []any{before.UnixMilli(), batch}},
		{`DELETE FROM webhook_outbox WHERE seq IN (SELECT seq FROM webhook_outbox
  WHERE state = 0 AND created_at < $1 AND url <> ALL($2::text[]) LIMIT $3)`, []any{before.UnixMilli(), p.outbox.current().urls, batch}},
	}, func(q string, args []any) (int64, error) {
		c, cancel := withTimeout(ctx, p.timeout)
		defer cancel()
		tag, err := p.pool.Exec(c, q, args...)
		if err != nil {
			return 0, p.fail("prune outbox", err)
		}
		return tag.RowsAffected(), nil
	})
}

// EventBacklog counts the events waiting for delivery.
func (p *Postgres) EventBacklog(ctx context.Context) (int64, error) {
	if !p.ready.Load() {
		return 0, errNotMigrated
	}
	ctx, cancel := withTimeout(ctx, p.timeout)
	defer cancel()
	var n int64
	if err := p.pool.QueryRow(ctx, sqlBacklog).Scan(&n); err != nil {
		return 0, p.fail("count outbox backlog", err)
	}
	return n, nil
}
