package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// outboxDB is what the dispatcher uses of either driver.
type outboxDB interface {
	db
	ClaimEvent(ctx context.Context, url, owner string, lease time.Duration) (OutboxEvent, bool, error)
	EventDelivered(ctx context.Context, seq int64, owner string) error
	EventFailed(ctx context.Context, seq int64, owner string, retryIn time.Duration, giveUp bool, reason string) error
	EventPostponed(ctx context.Context, seq int64, owner string, retryIn time.Duration) error
	PruneEvents(ctx context.Context, before time.Time) (int64, error)
	EventBacklog(ctx context.Context) (int64, error)
	OutboxSignal() <-chan struct{}
}

const hookA, hookB = "http://127.0.0.1:1/a", "http://127.0.0.1:1/b"

// forEachOutboxDriver runs fn on each driver with the outbox on for hookA
// and hookB; env lets fn open more stores on the same database.
func forEachOutboxDriver(t *testing.T, fn func(t *testing.T, s outboxDB, e env)) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			e := d.env(t)
			e.opts.OutboxURLs = []string{hookA, hookB}
			fn(t, e.open(t).(outboxDB), e)
		})
	}
}

func claim(t *testing.T, s outboxDB, url, owner string) (OutboxEvent, bool) {
	t.Helper()
	ev, ok, err := s.ClaimEvent(context.Background(), url, owner, time.Minute)
	if err != nil {
		t.Fatalf("ClaimEvent(%s, %s): %v", url, owner, err)
	}
	return ev, ok
}

func TestOutboxRecordsEachChangeOncePerURLInOrder(t *testing.T) {
	forEachOutboxDriver(t, func(t *testing.T, s outboxDB, e env) {
		ctx := context.Background()
		f, err := s.AddFortune(ctx, "outbox <b>&</b>")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetWorld(ctx, 42, 4242); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateWorlds(ctx, []World{{ID: 43, RandomNumber: 1}}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteFortune(ctx, f.ID); err != nil {
			t.Fatal(err)
		}
		select {
		case <-s.OutboxSignal():
		default:
			t.Error("no signal after committed changes with events")
		}
		// Failed changes record nothing.
		if err := s.DeleteFortune(ctx, f.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("second DeleteFortune: %v, want ErrNotFound", err)
		}
		if _, err := s.SetWorld(ctx, 10001, 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("SetWorld(10001): %v, want ErrNotFound", err)
		}
		if _, err := s.AddFortune(ctx, "bad \x00"); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddFortune(NUL): %v, want ErrInvalid", err)
		}
		if n := e.scalar(t, "SELECT count(*) FROM webhook_outbox"); n != 6 {
			t.Fatalf("outbox rows = %d, want 6 (3 changes x 2 URLs; /updates and failures record none)", n)
		}
		if n, err := s.EventBacklog(ctx); err != nil || n != 6 {
			t.Errorf("EventBacklog = %d, %v; want 6", n, err)
		}

		want := []struct {
			typ  string
			data string
		}{
			{EventFortuneCreated, `{"id":` + itoa(f.ID) + `,"message":"outbox <b>&</b>"}`},
			{EventWorldUpdated, `{"id":42,"randomNumber":4242}`},
			{EventFortuneDeleted, `{"id":` + itoa(f.ID) + `,"message":"outbox <b>&</b>"}`},
		}
		ids := map[string]string{}
		for _, url := range []string{hookA, hookB} {
			var last int64
			for i, w := range want {
				ev, ok := claim(t, s, url, "me")
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
				if err := s.EventDelivered(ctx, ev.Seq, "me"); err != nil {
					t.Fatal(err)
				}
			}
			if ev, ok := claim(t, s, url, "me"); ok {
				t.Errorf("%s: unexpected extra event %+v", url, ev)
			}
		}
		if len(ids) != 3 || ids[EventFortuneCreated] == ids[EventFortuneDeleted] {
			t.Errorf("event ids %v: want three distinct", ids)
		}
		if n, err := s.EventBacklog(ctx); err != nil || n != 0 {
			t.Errorf("EventBacklog after delivery = %d, %v; want 0", n, err)
		}
	})
}

func TestOutboxHeadBlocksItsURLUntilDeliveredOrGivenUp(t *testing.T) {
	forEachOutboxDriver(t, func(t *testing.T, s outboxDB, e env) {
		ctx := context.Background()
		for _, n := range []int32{1, 2} {
			if _, err := s.SetWorld(ctx, n, n); err != nil {
				t.Fatal(err)
			}
		}
		first, ok := claim(t, s, hookA, "me")
		if !ok {
			t.Fatal("no event to claim")
		}
		if _, ok := claim(t, s, hookA, "other"); ok {
			t.Fatal("a second claim got an event while the head is leased: order or exclusivity broken")
		}
		if err := s.EventFailed(ctx, first.Seq, "me", time.Hour, false, "503 from receiver"); err != nil {
			t.Fatal(err)
		}
		if _, ok := claim(t, s, hookA, "me"); ok {
			t.Fatal("the next event was handed out while the head waits for its retry")
		}
		if ev, ok := claim(t, s, hookB, "me"); !ok || ev.ID != first.ID {
			t.Errorf("hookB head = %+v %v, want the same first event: URLs do not block each other", ev, ok)
		}
		if err := s.EventFailed(ctx, first.Seq, "me", 0, false, "retry now"); err != nil {
			t.Fatal(err)
		}
		again, ok := claim(t, s, hookA, "me")
		if !ok || again.Seq != first.Seq || again.Attempts != 2 {
			t.Fatalf("retry = %+v %v, want seq %d with 2 failed attempts", again, ok, first.Seq)
		}
		if err := s.EventFailed(ctx, again.Seq, "me", 0, true, "gave up"); err != nil {
			t.Fatal(err)
		}
		next, ok := claim(t, s, hookA, "me")
		if !ok || next.Seq <= first.Seq || !sameJSON(t, next.Data, `{"id":2,"randomNumber":2}`) {
			t.Errorf("after giving up the head: %+v %v, want the second event", next, ok)
		}
	})
}

func TestOutboxLeaseExpiresAndOnlyItsOwnerMarks(t *testing.T) {
	forEachOutboxDriver(t, func(t *testing.T, s outboxDB, e env) {
		ctx := context.Background()
		if _, err := s.SetWorld(ctx, 7, 7); err != nil {
			t.Fatal(err)
		}
		ev, ok, err := s.ClaimEvent(ctx, hookA, "dead-replica", 50*time.Millisecond)
		if err != nil || !ok {
			t.Fatalf("claim: %v %v", ok, err)
		}
		time.Sleep(80 * time.Millisecond) // the owner "died" without marking
		again, ok := claim(t, s, hookA, "survivor")
		if !ok || again.Seq != ev.Seq {
			t.Fatalf("after the lease expired: %+v %v, want seq %d again", again, ok, ev.Seq)
		}
		// The late owner's mark must not count: the survivor holds the lease.
		if err := s.EventDelivered(ctx, ev.Seq, "dead-replica"); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.EventBacklog(ctx); n != 2 {
			t.Errorf("backlog = %d after a stale owner's mark, want 2 (still pending)", n)
		}
		if err := s.EventDelivered(ctx, ev.Seq, "survivor"); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.EventBacklog(ctx); n != 1 {
			t.Errorf("backlog = %d after the owner's mark, want 1", n)
		}
	})
}

func TestOutboxReplicasNeverClaimTheSameEventTwice(t *testing.T) {
	forEachOutboxDriver(t, func(t *testing.T, s outboxDB, e env) {
		ctx := context.Background()
		const events = 20
		for i := range int32(events) {
			if _, err := s.SetWorld(ctx, i+1, i+1); err != nil {
				t.Fatal(err)
			}
		}
		// Four stores on one database stand for four replicas.
		replicas := []outboxDB{s, e.open(t).(outboxDB), e.open(t).(outboxDB), e.open(t).(outboxDB)}
		var (
			mu   sync.Mutex
			got  []int64
			wg   sync.WaitGroup
			errs = make(chan error, len(replicas))
		)
		for i, r := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := "replica-" + itoa(int32(i))
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
			}()
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
	forEachOutboxDriver(t, func(t *testing.T, s outboxDB, e env) {
		ctx := context.Background()
		for _, n := range []int32{1, 2} {
			if _, err := s.SetWorld(ctx, n, n); err != nil {
				t.Fatal(err)
			}
		}
		ev, _ := claim(t, s, hookA, "me")
		if err := s.EventDelivered(ctx, ev.Seq, "me"); err != nil {
			t.Fatal(err)
		}
		if n, err := s.PruneEvents(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Errorf("prune before the delivery: %d, %v; want 0", n, err)
		}
		if n, err := s.PruneEvents(ctx, time.Now().Add(time.Second)); err != nil || n != 1 {
			t.Errorf("prune after the delivery: %d, %v; want 1 (the delivered row only)", n, err)
		}
		// hookB is dropped from the configuration: its old pending rows go.
		e.opts.OutboxURLs = []string{hookA}
		only := e.open(t).(outboxDB)
		if n, err := only.PruneEvents(ctx, time.Now().Add(time.Second)); err != nil || n != 2 {
			t.Errorf("prune with hookB unconfigured: %d, %v; want 2", n, err)
		}
		if n := e.scalar(t, "SELECT count(*) FROM webhook_outbox"); n != 1 {
			t.Errorf("rows left = %d, want 1 (hookA's pending event)", n)
		}
	})
}

func TestOutboxOffRecordsNothing(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			e := d.env(t)
			s := e.open(t)
			ctx := context.Background()
			f, err := s.AddFortune(ctx, "quiet")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.SetWorld(ctx, 3, 3); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteFortune(ctx, f.ID); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteFortune(ctx, f.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("second DeleteFortune: %v, want ErrNotFound", err)
			}
			if n := e.scalar(t, "SELECT count(*) FROM webhook_outbox"); n != 0 {
				t.Errorf("outbox rows = %d with no URLs, want 0", n)
			}
		})
	}
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

func itoa(n int32) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestOutboxPostponeSpendsNoAttempt: a postponed event keeps its attempt
// count and is due again; a failure reason that is not valid UTF-8, or is
// cut inside a character, is still recorded (PostgreSQL refuses bad text).
func TestOutboxPostponeSpendsNoAttempt(t *testing.T) {
	forEachOutboxDriver(t, func(t *testing.T, s outboxDB, e env) {
		ctx := context.Background()
		if _, err := s.SetWorld(ctx, 3, 3); err != nil {
			t.Fatal(err)
		}
		first, ok := claim(t, s, hookA, "me")
		if !ok {
			t.Fatal("no event to claim")
		}
		reason := "receiver path /\xff: " + strings.Repeat("é", 600)
		if err := s.EventFailed(ctx, first.Seq, "me", 0, false, reason); err != nil {
			t.Fatalf("EventFailed with a reason of raw and cut UTF-8: %v", err)
		}
		again, ok := claim(t, s, hookA, "me")
		if !ok || again.Seq != first.Seq || again.Attempts != 1 {
			t.Fatalf("after one failure: %+v %v, want seq %d with 1 attempt", again, ok, first.Seq)
		}
		if err := s.EventPostponed(ctx, again.Seq, "other", 0); err != nil {
			t.Fatal(err)
		}
		if _, ok := claim(t, s, hookA, "me"); ok {
			t.Fatal("a postpone by a process that does not hold the lease released it")
		}
		if err := s.EventPostponed(ctx, again.Seq, "me", 0); err != nil {
			t.Fatal(err)
		}
		third, ok := claim(t, s, hookA, "other")
		if !ok || third.Seq != first.Seq || third.Attempts != 1 {
			t.Fatalf("after a postpone: %+v %v, want seq %d still at 1 attempt, leasable by another process", third, ok, first.Seq)
		}
	})
}

// TestOutboxPruneWorksInBatches: a backlog larger than one batch is deleted
// whole, by as many statements as it takes.
func TestOutboxPruneWorksInBatches(t *testing.T) {
	forEachOutboxDriver(t, func(t *testing.T, s outboxDB, e env) {
		s.(interface{ underlying() *DB }).underlying().outbox.pruneBatch = 2
		ctx := context.Background()
		for n := range int32(5) {
			if _, err := s.SetWorld(ctx, n+1, n+1); err != nil {
				t.Fatal(err)
			}
		}
		for range 5 {
			ev, ok := claim(t, s, hookA, "me")
			if !ok {
				t.Fatal("no event to claim")
			}
			if err := s.EventDelivered(ctx, ev.Seq, "me"); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := s.PruneEvents(ctx, time.Now().Add(time.Second)); err != nil || n != 5 {
			t.Errorf("prune of 5 delivered rows in batches of 2: %d, %v; want 5", n, err)
		}
		if n := e.scalar(t, "SELECT count(*) FROM webhook_outbox WHERE url = '"+hookA+"'"); n != 0 {
			t.Errorf("%d of hookA's delivered rows left, want 0", n)
		}
	})
}
