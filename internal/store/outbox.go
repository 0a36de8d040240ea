package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hotpath/hotpath/internal/tracing"
)

// The outbox turns committed changes into webhook events without losing
// any: Tx.Emit writes one webhook_outbox row per receiver URL in the
// transaction that makes the change, and a dispatcher (internal/webhook)
// claims, delivers and marks them later.
//
// Each URL's rows form a queue delivered head first: ClaimEvent hands out
// only the oldest pending row of a URL, and only when no lease on it is
// live, so one URL never has two events in flight and replicas sharing a
// PostgreSQL database do not deliver the same row twice while its lease
// (the UPDATE below, which PostgreSQL re-checks after waiting for a row
// lock) holds. A replica that dies mid-delivery leaves a lease that
// expires; the row is then delivered again: delivery is at least once.

// OutboxEvent is one change event waiting for delivery to one URL.
type OutboxEvent struct {
	// Seq orders the outbox; a URL's events are delivered in Seq order.
	Seq int64
	// ID is the event's unique id, the same for every URL.
	ID string
	// URL is the receiver.
	URL string
	// Type is the event type given to Tx.Emit.
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
	// Pending events of URLs no longer configured; the URLs travel as for
	// the record statements.
	sqlitePruneUnlisted = `DELETE FROM webhook_outbox WHERE seq IN (SELECT seq FROM webhook_outbox
  WHERE state = 0 AND created_at < $1 AND url NOT IN (SELECT value FROM json_each($2)) LIMIT $3)`
	postgresPruneUnlisted = `DELETE FROM webhook_outbox WHERE seq IN (SELECT seq FROM webhook_outbox
  WHERE state = 0 AND created_at < $1 AND url <> ALL($2::text[]) LIMIT $3)`
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

// SetOutboxURLs makes urls the receivers that changes from now on record
// events for (webhooks.urls, reloaded). Events already recorded for a URL
// no longer listed stay pending until webhooks.retention prunes them, and
// are delivered should the URL come back before that.
func (db *DB) SetOutboxURLs(urls []string) { db.outbox.set(urls) }

// OutboxSignal receives a value after a Write that emitted events commits,
// so the dispatcher can deliver at once instead of at its next poll.
// Changes made by other replicas are found by polling.
func (db *DB) OutboxSignal() <-chan struct{} { return db.outbox.signal }

// ClaimEvent leases the oldest pending event for url to owner for lease,
// if it is due and not leased already; ok is false when there is none.
func (db *DB) ClaimEvent(ctx context.Context, url, owner string, lease time.Duration) (e OutboxEvent, ok bool, err error) {
	now := time.Now()
	var data string
	err = db.writeRow(ctx, sqlClaimEvent, url, now.UnixMilli(), now.Add(lease).UnixMilli(), owner).
		Scan(&e.Seq, &e.ID, &e.URL, &e.Type, &e.Time, &data, &e.Attempts, &e.Traceparent, &e.Tracestate)
	if errors.Is(err, ErrNotFound) {
		return OutboxEvent{}, false, nil
	}
	if err != nil {
		return OutboxEvent{}, false, fmt.Errorf("claim outbox event: %w", err)
	}
	e.Data = []byte(data)
	return e, true, nil
}

// EventDelivered marks the event at seq delivered, if owner still holds
// its lease.
func (db *DB) EventDelivered(ctx context.Context, seq int64, owner string) error {
	if _, err := db.Exec(ctx, sqlEventDelivered, seq, owner, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("mark outbox event delivered: %w", err)
	}
	return nil
}

// EventFailed records a failed attempt at the event at seq, if owner still
// holds its lease: it becomes due again after retryIn, or is given up.
func (db *DB) EventFailed(ctx context.Context, seq int64, owner string, retryIn time.Duration, giveUp bool, reason string) error {
	now := time.Now()
	state, done := failedState(giveUp, now.UnixMilli())
	if _, err := db.Exec(ctx, sqlEventFailed, seq, owner, now.Add(retryIn).UnixMilli(),
		truncate(reason, maxLastErrLen), state, done); err != nil {
		return fmt.Errorf("mark outbox event failed: %w", err)
	}
	return nil
}

// EventPostponed gives back owner's lease on the event at seq without
// counting an attempt, due again after retryIn: for an attempt that never
// reached the receiver (its circuit breaker was open, or hotpath stopping).
func (db *DB) EventPostponed(ctx context.Context, seq int64, owner string, retryIn time.Duration) error {
	if _, err := db.Exec(ctx, sqlEventPostponed, seq, owner, time.Now().Add(retryIn).UnixMilli()); err != nil {
		return fmt.Errorf("postpone outbox event: %w", err)
	}
	return nil
}

// PruneEvents deletes events delivered or given up before before, and
// pending events older than before for URLs no longer configured.
func (db *DB) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	batch := db.outbox.pruneBatch
	unlisted := pruneStatement{sqlitePruneUnlisted, []any{before.UnixMilli(), db.outbox.current().json, batch}}
	if db.pg != nil {
		unlisted = pruneStatement{postgresPruneUnlisted, []any{before.UnixMilli(), db.outbox.current().urls, batch}}
	}
	n, err := pruneInBatches(batch, []pruneStatement{{sqlPruneDone, []any{before.UnixMilli(), batch}}, unlisted},
		func(q string, args []any) (int64, error) { return db.Exec(ctx, q, args...) })
	if err != nil {
		return n, fmt.Errorf("prune outbox: %w", err)
	}
	return n, nil
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
func (db *DB) EventBacklog(ctx context.Context) (int64, error) {
	var n int64
	if err := db.QueryRow(ctx, sqlBacklog).Scan(&n); err != nil {
		return 0, fmt.Errorf("count outbox backlog: %w", err)
	}
	return n, nil
}
