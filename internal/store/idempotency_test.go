package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// applier is what these tests need beyond db.
type keyDB interface {
	db
	Apply(ctx context.Context, c Change, render Render) (Answer, error)
	PruneIdempotencyKeys(ctx context.Context, now time.Time) (int64, error)
}

var (
	_ keyDB = (*SQLite)(nil)
	_ keyDB = (*Postgres)(nil)
)

// created renders an AddFortune the way the API does, closely enough: the
// id goes into Location and the body.
func created(v any) (Answer, error) {
	f := v.(Fortune)
	id := strconv.Itoa(int(f.ID))
	return Answer{Status: 201, ContentType: "application/json", Location: "/f/" + id, ETag: `"f` + id + `"`,
		Body: []byte(`{"id":` + id + `}`)}, nil
}

func newKey(scope, key, request string) *Key {
	return &Key{Scope: scope, Key: key, Fingerprint: sha256.Sum256([]byte(request)), TTL: time.Hour}
}

func TestIdempotentChangeRunsOnce(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e env, s db) {
		ctx := context.Background()
		k := s.(keyDB)
		count := func() int64 { return e.scalar(t, "SELECT count(*) FROM Fortune") }
		before := count()
		add := func(key *Key, msg string) (Answer, error) {
			return k.Apply(ctx, Change{Kind: AddFortune, Message: msg, Key: key}, created)
		}
		first, err := add(newKey("caller-a", "k1", "one"), "one")
		if err != nil || first.Replayed || first.Status != 201 {
			t.Fatalf("first request: %+v, %v", first, err)
		}
		again, err := add(newKey("caller-a", "k1", "one"), "one")
		if err != nil || !again.Replayed {
			t.Fatalf("retry: %+v, %v; want the stored answer", again, err)
		}
		again.Replayed = false
		if string(again.Body) != string(first.Body) || again.Location != first.Location || again.ETag != first.ETag ||
			again.Status != first.Status || again.ContentType != first.ContentType {
			t.Errorf("retry answered %+v, the first %+v", again, first)
		}
		if n := count(); n != before+1 {
			t.Errorf("Fortune grew by %d, want 1", n-before)
		}
		if _, err := add(newKey("caller-a", "k1", "two"), "two"); !errors.Is(err, ErrKeyReused) {
			t.Errorf("same key, another request: %v, want ErrKeyReused", err)
		}
		// Another caller's key of the same name is another key.
		other, err := add(newKey("caller-b", "k1", "one"), "one")
		if err != nil || other.Replayed || string(other.Body) == string(first.Body) {
			t.Errorf("another caller with the same key: %+v, %v; want a change of its own", other, err)
		}
		// A change refused (here: a failed precondition) stores nothing, so
		// the key stays free.
		_, err = k.Apply(ctx, Change{Kind: SetWorld, ID: 5, RandomNumber: 1, IfNumberIn: []int32{}, Key: newKey("caller-a", "k2", "w")}, func(any) (Answer, error) {
			return Answer{Status: 200}, nil
		})
		if !errors.Is(err, ErrPrecondition) {
			t.Fatalf("conditional change with a key: %v, want ErrPrecondition", err)
		}
		if n := e.scalar(t, "SELECT count(*) FROM idempotency_keys WHERE idem_key = 'k2'"); n != 0 {
			t.Errorf("a refused change stored %d answers for its key", n)
		}
		if n := count(); n != before+2 {
			t.Errorf("Fortune grew by %d, want 2", n-before)
		}
	})
}

func TestIdempotencyKeysExpireAndArePruned(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e env, s db) {
		ctx := context.Background()
		k := s.(keyDB)
		short := func(key string) *Key {
			kk := newKey("c", key, key)
			kk.TTL = time.Millisecond
			return kk
		}
		for i := range 3 {
			if _, err := k.Apply(ctx, Change{Kind: AddFortune, Message: "gone soon", Key: short("old" + strconv.Itoa(i))}, created); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := k.Apply(ctx, Change{Kind: AddFortune, Message: "kept", Key: newKey("c", "live", "live")}, created); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		// An expired key is free again, for another request too.
		ans, err := k.Apply(ctx, Change{Kind: AddFortune, Message: "reused", Key: newKey("c", "old0", "something else")}, created)
		if err != nil || ans.Replayed {
			t.Fatalf("expired key: %+v, %v; want a new change", ans, err)
		}
		n, err := k.PruneIdempotencyKeys(ctx, time.Now())
		if err != nil || n != 2 {
			t.Errorf("prune: %d, %v; want the 2 expired answers deleted", n, err)
		}
		if left := e.scalar(t, "SELECT count(*) FROM idempotency_keys"); left != 2 {
			t.Errorf("%d answers left after pruning, want 2 (live and the reused one)", left)
		}
	})
}

// TestIdempotentRetriesConcurrentlyChangeOnce: many goroutines send one
// keyed change at once; each either gets the one answer or (PostgreSQL)
// ErrKeyInFlight, and retrying those gets the answer too. ErrUnavailable
// (a shared database out of connections) is retried the same way.
func TestIdempotentRetriesConcurrentlyChangeOnce(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e env, s db) {
		ctx := context.Background()
		k := s.(keyDB)
		before := e.scalar(t, "SELECT count(*) FROM Fortune")
		const n = 16
		answers := make([]Answer, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 1000 {
					answers[i], errs[i] = k.Apply(ctx, Change{Kind: AddFortune, Message: "once", Key: newKey("c", "same", "once")}, created)
					if !errors.Is(errs[i], ErrKeyInFlight) && !errors.Is(errs[i], ErrUnavailable) {
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		fresh := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("request %d: %v", i, errs[i])
			}
			if !answers[i].Replayed {
				fresh++
			}
			if string(answers[i].Body) != string(answers[0].Body) {
				t.Errorf("request %d answered %s, request 0 %s", i, answers[i].Body, answers[0].Body)
			}
		}
		if fresh != 1 {
			t.Errorf("%d requests made the change, want 1", fresh)
		}
		if got := e.scalar(t, "SELECT count(*) FROM Fortune"); got != before+1 {
			t.Errorf("Fortune grew by %d, want 1", got-before)
		}
	})
}

// TestKeyInFlightOnPostgres holds a key's lock the way a request in flight
// on another replica does: the request is refused at once, not queued.
func TestKeyInFlightOnPostgres(t *testing.T) {
	e := postgresEnv(t)
	s := e.open(t).(keyDB)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.opts.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	key := newKey("c", "busy", "busy")
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, sqlKeyLock, lockID(key)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Apply(ctx, Change{Kind: AddFortune, Message: "busy", Key: key}, created)
	if !errors.Is(err, ErrKeyInFlight) || errors.Is(err, ErrUnavailable) || time.Since(start) > time.Second {
		t.Errorf("key locked elsewhere: %v after %s; want ErrKeyInFlight at once", err, time.Since(start))
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if ans, err := s.Apply(ctx, Change{Kind: AddFortune, Message: "busy", Key: key}, created); err != nil || ans.Replayed {
		t.Errorf("after the lock is gone: %+v, %v; want the change made", ans, err)
	}
}

func TestConditionalSetWorld(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e env, s db) {
		ctx := context.Background()
		k := s.(keyDB)
		w, err := s.World(ctx, 9)
		if err != nil {
			t.Fatal(err)
		}
		set := func(n int32, in []int32) error {
			_, err := k.Apply(ctx, Change{Kind: SetWorld, ID: 9, RandomNumber: n, IfNumberIn: in}, func(any) (Answer, error) { return Answer{}, nil })
			return err
		}
		other := w.RandomNumber%10000 + 1
		if err := set(other, []int32{other}); !errors.Is(err, ErrPrecondition) {
			t.Errorf("stale number: %v, want ErrPrecondition", err)
		}
		if err := set(other, []int32{}); !errors.Is(err, ErrPrecondition) {
			t.Errorf("empty list: %v, want ErrPrecondition", err)
		}
		if got, _ := s.World(ctx, 9); got != w {
			t.Fatalf("refused writes changed World 9 to %+v", got)
		}
		if err := set(other, []int32{1, w.RandomNumber}); err != nil {
			t.Errorf("current number in the list: %v", err)
		}
		if got, _ := s.World(ctx, 9); got.RandomNumber != other {
			t.Errorf("World 9 holds %d, want %d", got.RandomNumber, other)
		}
		_, err = k.Apply(ctx, Change{Kind: SetWorld, ID: 10001, RandomNumber: 1, IfNumberIn: []int32{1}}, func(any) (Answer, error) { return Answer{}, nil })
		if !errors.Is(err, ErrPrecondition) {
			t.Errorf("missing World: %v, want ErrPrecondition", err)
		}
	})
}
