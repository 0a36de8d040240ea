package store

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const hookA, hookB = "http://127.0.0.1:1/a", "http://127.0.0.1:1/b"

// withHooks turns the outbox on for hookA and hookB.
func withHooks(e *env) { e.opts.OutboxURLs = []string{hookA, hookB} }

// author is a row of authors, and the data of its events.
type author struct {
	ID   int32  `json:"id"`
	Name string `json:"name"`
}

// The changes of the outbox tests, each returning the author it wrote.
const (
	sqlAddAuthor    = `INSERT INTO authors (id, name) VALUES ($1, $2) RETURNING id, name`
	sqlRenameAuthor = `UPDATE authors SET name = $2 WHERE id = $1 RETURNING id, name`
	sqlDeleteAuthor = `DELETE FROM authors WHERE id = $1 RETURNING id, name`
)

// change runs q, which writes one author, and emits event about it in the
// same Write, as a service's handler does.
func change(ctx context.Context, db *DB, event, q string, args ...any) (author, error) {
	var a author
	_, err := db.Write(ctx, nil, func(tx *Tx) error {
		if err := tx.QueryRow(q, args...).Scan(&a.ID, &a.Name); err != nil {
			return err
		}
		return tx.Emit(event, a)
	}, nil)
	return a, err
}

// addAuthors adds the authors ids, named "author <id>", one change and
// one author.created event each, in order.
func addAuthors(t *testing.T, db *DB, ids ...int32) {
	t.Helper()
	for _, id := range ids {
		if _, err := change(context.Background(), db, "author.created", sqlAddAuthor, id, "author "+strconv.Itoa(int(id))); err != nil {
			t.Fatalf("add author %d: %v", id, err)
		}
	}
}

func claim(t *testing.T, db *DB, url, owner string) (OutboxEvent, bool) {
	t.Helper()
	ev, ok, err := db.ClaimEvent(context.Background(), url, owner, time.Minute)
	if err != nil {
		t.Fatalf("ClaimEvent(%s, %s): %v", url, owner, err)
	}
	return ev, ok
}

func TestOutboxRecordsEachChangeOncePerURLInOrder(t *testing.T) {
	forEachDB(t, withHooks, func(t *testing.T, e env, db *DB) {
		ctx := context.Background()
		for _, c := range []struct {
			event, q string
			args     []any
		}{
			{"author.created", sqlAddAuthor, []any{1, "outbox"}},
			{"author.renamed", sqlRenameAuthor, []any{1, "outbox <b>&</b>"}},
			{"author.deleted", sqlDeleteAuthor, []any{1}},
		} {
			if _, err := change(ctx, db, c.event, c.q, c.args...); err != nil {
				t.Fatalf("%s: %v", c.event, err)
			}
		}
		select {
		case <-db.OutboxSignal():
		default:
			t.Error("no signal after committed changes with events")
		}
		// A change that emits nothing records nothing; failed changes
		// record nothing, whether the statement or fn itself failed.
		if err := setCounters(ctx, db, []int32{1, 2}, 3); err != nil {
			t.Fatal(err)
		}
		if _, err := change(ctx, db, "author.deleted", sqlDeleteAuthor, 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete: %v, want ErrNotFound", err)
		}
		if _, err := change(ctx, db, "author.renamed", sqlRenameAuthor, 99, "x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("rename of a missing author: %v, want ErrNotFound", err)
		}
		if _, err := change(ctx, db, "author.created", sqlAddAuthor, 2, "bad \x00"); !errors.Is(err, ErrInvalid) {
			t.Errorf("a name with NUL: %v, want ErrInvalid", err)
		}
		_, err := db.Write(ctx, nil, func(tx *Tx) error {
			if err := tx.Emit("author.created", author{ID: 3}); err != nil {
				return err
			}
			return errBoom
		}, nil)
		if err != errBoom {
			t.Errorf("fn failing after Emit: %v, want errBoom", err)
		}
		if n := e.scalar(t, "SELECT count(*) FROM webhook_outbox"); n != 6 {
			t.Fatalf("outbox rows = %d, want 6 (3 changes x 2 URLs; a change without events and failures record none)", n)
		}
		if n, err := db.EventBacklog(ctx); err != nil || n != 6 {
			t.Errorf("EventBacklog = %d, %v; want 6", n, err)
		}

		want := []struct {
			typ  string
			data string
		}{
			{"author.created", `{"id":1,"name":"outbox"}`},
			{"author.renamed", `{"id":1,"name":"outbox <b>&</b>"}`},
			{"author.deleted", `{"id":1,"name":"outbox <b>&</b>"}`},
		}
		ids := map[string]string{}
		for _, url := range []string{hookA, hookB} {
			var last int64
			for i, w := range want {
				ev, ok := claim(t, db, url, "me")
				if !ok {
					t.Fatalf("%s: event %d missing", url, i)
				}
				if ev.Type != w.typ || !sameJSON(t, ev.Data, w.data) || ev.URL != url || ev.Seq <= last {
					t.Errorf("%s event %d = %s %s %s seq %d, want %s %s after seq %d", url, i, ev.Type, ev.Data, ev.URL, ev.Seq, w.typ, w.data, last)
				}
				if _, err := time.Parse(time.RFC3339Nano, ev.Time); err != nil || len(ev.ID) != 36 {
					t.Errorf("event time %q id %q: want RFC 3339 and a UUID (%v)", ev.Time, ev.ID, err)
				}
				if other, ok := ids[w.typ]; ok && other != ev.ID {
					t.Errorf("%s has id %s for %s and %s for the other URL; want one id per event", w.typ, ev.ID, hookA, other)
				}
				ids[w.typ] = ev.ID
				last = ev.Seq
				if err := db.EventDelivered(ctx, ev.Seq, "me"); err != nil {
					t.Fatal(err)
				}
			}
			if ev, ok := claim(t, db, url, "me"); ok {
				t.Errorf("%s: unexpected extra event %+v", url, ev)
			}
		}
		if len(ids) != 3 || ids["author.created"] == ids["author.deleted"] {
			t.Errorf("event ids %v: want three distinct", ids)
		}
		if n, err := db.EventBacklog(ctx); err != nil || n != 0 {
			t.Errorf("EventBacklog after delivery = %d, %v; want 0", n, err)
		}
	})
}

func TestOutboxHeadBlocksItsURLUntilDeliveredOrGivenUp(t *testing.T) {
	forEachDB(t, withHooks, func(t *testing.T, e env, db *DB) {
		ctx := context.Background()
		addAuthors(t, db, 1, 2)
		first, ok := claim(t, db, hookA, "me")
		if !ok {
			t.Fatal("no event to claim")
		}
		if _, ok := claim(t, db, hookA, "other"); ok {
			t.Fatal("a second claim got an event while the head is leased: order or exclusivity broken")
		}
		if err := db.EventFailed(ctx, first.Seq, "me", time.Hour, false, "503 from receiver"); err != nil {
			t.Fatal(err)
		}
		if _, ok := claim(t, db, hookA, "me"); ok {
			t.Fatal("the next event was handed out while the head waits for its retry")
		}
		if ev, ok := claim(t, db, hookB, "me"); !ok || ev.ID != first.ID {
			t.Errorf("hookB head = %+v %v, want the same first event: URLs do not block each other", ev, ok)
		}
		if err := db.EventFailed(ctx, first.Seq, "me", 0, false, "retry now"); err != nil {
			t.Fatal(err)
		}
		again, ok := claim(t, db, hookA, "me")
		if !ok || again.Seq != first.Seq || again.Attempts != 2 {
			t.Fatalf("retry = %+v %v, want seq %d with 2 failed attempts", again, ok, first.Seq)
		}
		if err := db.EventFailed(ctx, again.Seq, "me", 0, true, "gave up"); err != nil {
			t.Fatal(err)
		}
		next, ok := claim(t, db, hookA, "me")
		if !ok || next.Seq <= first.Seq || !sameJSON(t, next.Data, `{"id":2,"name":"author 2"}`) {
			t.Errorf("after giving up the head: %+v %v, want the second event", next, ok)
		}
	})
}

func TestOutboxLeaseExpiresAndOnlyItsOwnerMarks(t *testing.T) {
	forEachDB(t, withHooks, func(t *testing.T, e env, db *DB) {
		ctx := context.Background()
		addAuthors(t, db, 7)
		ev, ok, err := db.ClaimEvent(ctx, hookA, "dead-replica", 50*time.Millisecond)
		if err != nil || !ok {
			t.Fatalf("claim: %v %v", ok, err)
		}
		time.Sleep(80 * time.Millisecond) // the owner "died" without marking
		again, ok := claim(t, db, hookA, "survivor")
		if !ok || again.Seq != ev.Seq {
			t.Fatalf("after the lease expired: %+v %v, want seq %d again", again, ok, ev.Seq)
		}
		// The late owner's mark must not count: the survivor holds the lease.
		if err := db.EventDelivered(ctx, ev.Seq, "dead-replica"); err != nil {
			t.Fatal(err)
		}
		if n, _ := db.EventBacklog(ctx); n != 2 {
			t.Errorf("backlog = %d after a stale owner's mark, want 2 (still pending)", n)
		}
		if err := db.EventDelivered(ctx, ev.Seq, "survivor"); err != nil {
			t.Fatal(err)
		}
		if n, _ := db.EventBacklog(ctx); n != 1 {
			t.Errorf("backlog = %d after the owner's mark, want 1", n)
		}
	})
}

func TestOutboxReplicasNeverClaimTheSameEventTwice(t *testing.T) {
	forEachDB(t, withHooks, func(t *testing.T, e env, db *DB) {
		ctx := context.Background()
		const events = 20
		for i := range int32(events) {
			addAuthors(t, db, i+1)
		}
		// Four stores on one database stand for four replicas.
		replicas := []*DB{db, e.open(t), e.open(t), e.open(t)}
		var (
			mu   sync.Mutex
			got  []int64
			wg   sync.WaitGroup
			errs = make(chan error, len(replicas))
		)
		for i, r := range replicas {
			wg.Go(func() {
				owner := "replica-" + strconv.Itoa(i)
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
					ev, ok, err := r.ClaimEvent(ctx, hookA, owner, time.Minute)
					if err != nil {
						errs <- err
						return
					}
					if !ok {
						if n, _ := r.EventBacklog(ctx); n <= events { // hookA drained; hookB's remain
							return
						}
						continue
					}
					mu.Lock()
					got = append(got, ev.Seq)
					mu.Unlock()
					if err := r.EventDelivered(ctx, ev.Seq, owner); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if len(got) != events {
			t.Fatalf("replicas claimed %d events, want %d exactly once each: %v", len(got), events, got)
		}
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("claims out of order or repeated: %v", got)
			}
		}
	})
}

func TestOutboxPruneKeepsPendingEventsOfConfiguredURLs(t *testing.T) {
	forEachDB(t, withHooks, func(t *testing.T, e env, db *DB) {
		ctx := context.Background()
		addAuthors(t, db, 1, 2)
		ev, _ := claim(t, db, hookA, "me")
		if err := db.EventDelivered(ctx, ev.Seq, "me"); err != nil {
			t.Fatal(err)
		}
		if n, err := db.PruneEvents(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Errorf("prune before the delivery: %d, %v; want 0", n, err)
		}
		if n, err := db.PruneEvents(ctx, time.Now().Add(time.Second)); err != nil || n != 1 {
			t.Errorf("prune after the delivery: %d, %v; want 1 (the delivered row only)", n, err)
		}
		// hookB is dropped from the configuration: its old pending rows go.
		e.opts.OutboxURLs = []string{hookA}
		only := e.open(t)
		if n, err := only.PruneEvents(ctx, time.Now().Add(time.Second)); err != nil || n != 2 {
			t.Errorf("prune with hookB unconfigured: %d, %v; want 2", n, err)
		}
		if n := e.scalar(t, "SELECT count(*) FROM webhook_outbox"); n != 1 {
			t.Errorf("rows left = %d, want 1 (hookA's pending event)", n)
		}
	})
}

func sameJSON(t *testing.T, got []byte, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("event data %q is not JSON: %v", got, err)
		return false
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	return string(gb) == string(wb)
}

// TestOutboxPostponeSpendsNoAttempt: a postponed event keeps its attempt
// count and is due again; a failure reason that is not valid UTF-8, or is
// cut inside a character, is still recorded (PostgreSQL refuses bad text).
func TestOutboxPostponeSpendsNoAttempt(t *testing.T) {
	forEachDB(t, withHooks, func(t *testing.T, e env, db *DB) {
		ctx := context.Background()
		addAuthors(t, db, 3)
		first, ok := claim(t, db, hookA, "me")
		if !ok {
			t.Fatal("no event to claim")
		}
		reason := "receiver path /\xff: " + strings.Repeat("é", 600)
		if err := db.EventFailed(ctx, first.Seq, "me", 0, false, reason); err != nil {
			t.Fatalf("EventFailed with a reason of raw and cut UTF-8: %v", err)
		}
		again, ok := claim(t, db, hookA, "me")
		if !ok || again.Seq != first.Seq || again.Attempts != 1 {
			t.Fatalf("after one failure: %+v %v, want seq %d with 1 attempt", again, ok, first.Seq)
		}
		if err := db.EventPostponed(ctx, again.Seq, "other", 0); err != nil {
			t.Fatal(err)
		}
		if _, ok := claim(t, db, hookA, "me"); ok {
			t.Fatal("a postpone by a process that does not hold the lease released it")
		}
		if err := db.EventPostponed(ctx, again.Seq, "me", 0); err != nil {
			t.Fatal(err)
		}
		third, ok := claim(t, db, hookA, "other")
		if !ok || third.Seq != first.Seq || third.Attempts != 1 {
			t.Fatalf("after a postpone: %+v %v, want seq %d still at 1 attempt, leasable by another process", third, ok, first.Seq)
		}
	})
}

// TestOutboxPruneWorksInBatches: a backlog larger than one batch is deleted
// whole, by as many statements as it takes.
func TestOutboxPruneWorksInBatches(t *testing.T) {
	forEachDB(t, withHooks, func(t *testing.T, e env, db *DB) {
		db.outbox.pruneBatch = 2
		ctx := context.Background()
		addAuthors(t, db, 1, 2, 3, 4, 5)
		for range 5 {
			ev, ok := claim(t, db, hookA, "me")
			if !ok {
				t.Fatal("no event to claim")
			}
			if err := db.EventDelivered(ctx, ev.Seq, "me"); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := db.PruneEvents(ctx, time.Now().Add(time.Second)); err != nil || n != 5 {
			t.Errorf("prune of 5 delivered rows in batches of 2: %d, %v; want 5", n, err)
		}
		if n := e.scalar(t, "SELECT count(*) FROM webhook_outbox WHERE url = '"+hookA+"'"); n != 0 {
			t.Errorf("%d of hookA's delivered rows left, want 0", n)
		}
	})
}
