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

func newKey(scope, key, request string) *Key {
	return &Key{Scope: scope, Key: key, Fingerprint: sha256.Sum256([]byte(request)), TTL: time.Hour}
}

// withAuthor adds author 1, whom the books of these tests name.
func withAuthor(t *testing.T, db *DB) {
	t.Helper()
	mustExec(t, db, `INSERT INTO authors (id, name) VALUES ($1, $2)`, 1, "Ada")
}

// addBook is a create the way a route makes it: a keyed Write that
// inserts a book by author 1 and answers with its id in Location and
// the body.
func addBook(ctx context.Context, db *DB, key *Key, title string) (Answer, error) {
	var id int64
	return db.Write(ctx, key, func(tx *Tx) error {
		return tx.QueryRow(`INSERT INTO books (author, title) VALUES ($1, $2) RETURNING id`, 1, title).Scan(&id)
	}, func() (Answer, error) {
		s := strconv.FormatInt(id, 10)
		return Answer{Status: 201, ContentType: "application/json", Location: "/books/" + s, ETag: `"b` + s + `"`,
			Body: []byte(`{"id":` + s + `}`)}, nil
	})
}

func TestIdempotentWriteRunsOnce(t *testing.T) {
	forEachDB(t, nil, func(t *testing.T, e env, db *DB) {
		ctx := context.Background()
		withAuthor(t, db)
		count := func() int64 { return e.scalar(t, "SELECT count(*) FROM books") }
		first, err := addBook(ctx, db, newKey("caller-a", "k1", "one"), "one")
		if err != nil || first.Replayed || first.Status != 201 {
			t.Fatalf("first request: %+v, %v", first, err)
		}
		again, err := addBook(ctx, db, newKey("caller-a", "k1", "one"), "one")
		if err != nil || !again.Replayed {
			t.Fatalf("retry: %+v, %v; want the stored answer", again, err)
		}
		again.Replayed = false
		if string(again.Body) != string(first.Body) || again.Location != first.Location || again.ETag != first.ETag ||
			again.Status != first.Status || again.ContentType != first.ContentType {
			t.Errorf("retry answered %+v, the first %+v", again, first)
		}
		if n := count(); n != 1 {
			t.Errorf("books: %d, want 1", n)
		}
		if _, err := addBook(ctx, db, newKey("caller-a", "k1", "two"), "two"); !errors.Is(err, ErrKeyReused) {
			t.Errorf("same key, another request: %v, want ErrKeyReused", err)
		}
		// Another caller's key of the same name is another key.
		other, err := addBook(ctx, db, newKey("caller-b", "k1", "one"), "one")
		if err != nil || other.Replayed || string(other.Body) == string(first.Body) {
			t.Errorf("another caller with the same key: %+v, %v; want a change of its own", other, err)
		}
		// A change refused (here: an empty title) stores nothing, so the
		// key stays free for the request, corrected.
		if _, err := addBook(ctx, db, newKey("caller-a", "k2", "empty"), ""); !errors.Is(err, ErrInvalid) {
			t.Fatalf("a refused change with a key: %v, want ErrInvalid", err)
		}
		if n := e.scalar(t, "SELECT count(*) FROM idempotency_keys WHERE idem_key = 'k2'"); n != 0 {
			t.Errorf("a refused change stored %d answers for its key", n)
		}
		if ans, err := addBook(ctx, db, newKey("caller-a", "k2", "empty"), "corrected"); err != nil || ans.Replayed {
			t.Errorf("the key of a refused change, used again: %+v, %v; want a change made", ans, err)
		}
		if n := count(); n != 3 {
			t.Errorf("books: %d, want 3", n)
		}
	})
}

func TestIdempotencyKeysExpireAndArePruned(t *testing.T) {
	forEachDB(t, nil, func(t *testing.T, e env, db *DB) {
		ctx := context.Background()
		withAuthor(t, db)
		short := func(key string) *Key {
			k := newKey("c", key, key)
			k.TTL = time.Millisecond
			return k
		}
		for i := range 3 {
			if _, err := addBook(ctx, db, short("old"+strconv.Itoa(i)), "gone soon"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := addBook(ctx, db, newKey("c", "live", "live"), "kept"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		// An expired key is free again, for another request too.
		ans, err := addBook(ctx, db, newKey("c", "old0", "something else"), "reused")
		if err != nil || ans.Replayed {
			t.Fatalf("expired key: %+v, %v; want a new change", ans, err)
		}
		n, err := db.PruneIdempotencyKeys(ctx, time.Now())
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
	forEachDB(t, nil, func(t *testing.T, e env, db *DB) {
		ctx := context.Background()
		withAuthor(t, db)
		const n = 16
		answers := make([]Answer, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				for range 1000 {
					answers[i], errs[i] = addBook(ctx, db, newKey("c", "same", "once"), "once")
					if !errors.Is(errs[i], ErrKeyInFlight) && !errors.Is(errs[i], ErrUnavailable) {
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			})
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
		if got := e.scalar(t, "SELECT count(*) FROM books"); got != 1 {
			t.Errorf("books: %d, want 1", got)
		}
	})
}

// TestKeyInFlightOnPostgres holds a key's lock the way a request in flight
// on another replica does: the request is refused at once, not queued.
func TestKeyInFlightOnPostgres(t *testing.T) {
	e := postgresEnv(t)
	db := e.open(t)
	withAuthor(t, db)
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
	_, err = addBook(ctx, db, key, "busy")
	if !errors.Is(err, ErrKeyInFlight) || errors.Is(err, ErrUnavailable) || time.Since(start) > time.Second {
		t.Errorf("key locked elsewhere: %v after %s; want ErrKeyInFlight at once", err, time.Since(start))
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if ans, err := addBook(ctx, db, key, "busy"); err != nil || ans.Replayed {
		t.Errorf("after the lock is gone: %+v, %v; want the change made", ans, err)
	}
	if n := e.scalar(t, "SELECT count(*) FROM books"); n != 1 {
		t.Errorf("books: %d, want 1 (none from the refused request)", n)
	}
}
