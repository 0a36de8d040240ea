package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hotpath/hotpath/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// proxied returns options for a fresh database reached through a fault
// proxy, the proxy, and the direct DSN for side channels.
func proxied(t *testing.T, timeout time.Duration) (Options, *testenv.Proxy, string) {
	dsn := testenv.PostgresDSN(t)
	p := testenv.NewProxy(t, testenv.TargetAddr(t, dsn))
	return pgOptions(t, testenv.ReplaceHost(t, dsn, p.Addr()), timeout), p, dsn
}

// expectUnavailable calls fn and checks it fails with ErrUnavailable
// within limit.
func expectUnavailable(t *testing.T, what string, limit time.Duration, fn func() error) {
	t.Helper()
	start := time.Now()
	err := fn()
	if d := time.Since(start); !errors.Is(err, ErrUnavailable) || d > limit {
		t.Errorf("%s: %v after %v; want ErrUnavailable within %v", what, err, d, limit)
	}
}

// readsUnavailable makes n concurrent one-row reads, each with a deadline
// of d, and checks each fails with ErrUnavailable within limit.
func readsUnavailable(t *testing.T, what string, db *DB, n int, d, limit time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			expectUnavailable(t, what, limit, func() error { _, err := readCounter(ctx, db, 1); return err })
		})
	}
	wg.Wait()
}

// eventually retries fn until it succeeds or within passes.
func eventually(t *testing.T, what string, within time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPostgresRecoversFromLostConnections(t *testing.T) {
	t.Parallel()
	o, proxy, _ := proxied(t, time.Second)
	db := (env{opts: o}).open(t)
	ctx := context.Background()
	batch := func() error { _, err := readCounters(ctx, db, 1, 2, 3); return err }
	if err := batch(); err != nil {
		t.Fatal(err)
	}

	proxy.SetMode(testenv.Reset) // every pooled connection dies, new ones are reset
	for range 3 {
		expectUnavailable(t, "a batch with connections reset", time.Second, batch)
	}
	proxy.SetMode(testenv.Pass)
	eventually(t, "a batch after the network came back", 5*time.Second, batch)

	proxy.Cut() // a blip on live connections: the next call may fail, later ones must not
	_, _ = readCounter(ctx, db, 1)
	eventually(t, "QueryRow after a cut", 5*time.Second, func() error { _, err := readCounter(ctx, db, 1); return err })
}

func TestPostgresBlackholeEndsAtDeadline(t *testing.T) {
	t.Parallel()
	o, proxy, _ := proxied(t, time.Second)
	db := (env{opts: o}).open(t)

	proxy.SetMode(testenv.Blackhole)
	readsUnavailable(t, "QueryRow through a blackhole", db, 8, 200*time.Millisecond, 700*time.Millisecond)
	// With no deadline of its own the call is bounded by Options.Timeout.
	expectUnavailable(t, "QueryRow without a deadline", 1500*time.Millisecond, func() error {
		_, err := readCounter(context.Background(), db, 1)
		return err
	})
	proxy.SetMode(testenv.Pass)
	eventually(t, "QueryRow after the blackhole", 5*time.Second, func() error { _, err := readCounter(context.Background(), db, 1); return err })
}

// slowBooks makes every insert into books sleep, standing in for a
// query that runs too long.
func slowBooks(t *testing.T, dsn string) {
	pgRaw(t, dsn, func(c *pgx.Conn) error {
		_, err := c.Exec(context.Background(), `
		CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_sleep(5); RETURN NEW; END $$;
		CREATE TRIGGER slow_insert BEFORE INSERT ON books FOR EACH ROW EXECUTE FUNCTION slow_insert();`)
		return err
	})
}

func TestPostgresCancelsSlowQueryOnTheServer(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresDSN(t)
	db := (env{opts: pgOptions(t, dsn, 300*time.Millisecond)}).open(t)
	mustExec(t, db, `INSERT INTO authors (id, name) VALUES ($1, $2)`, 1, "Ada")
	slowBooks(t, dsn)

	// The caller's deadline is generous: only statement_timeout can end it early.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	expectUnavailable(t, "an insert running pg_sleep(5)", 1500*time.Millisecond, func() error {
		_, err := db.Exec(ctx, `INSERT INTO books (author, title) VALUES ($1, $2)`, 1, "slow")
		return err
	})
	active := pgScalar(t, dsn, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state = 'active' AND query LIKE 'INSERT INTO books%'`)
	if active != 0 {
		t.Errorf("%d inserts still running on the server after the timeout", active)
	}
	if n := pgScalar(t, dsn, "SELECT count(*) FROM books"); n != 0 {
		t.Errorf("%d books after the cancelled insert, want 0", n)
	}
}

// lockCounters holds an exclusive lock on counters until the returned
// function is called.
func lockCounters(t *testing.T, dsn string) (release func()) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE counters IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = tx.Rollback(ctx) // ends the lock; nothing was written
			_ = conn.Close(ctx)
		})
	}
	t.Cleanup(release)
	return release
}

func TestPostgresLockWaitEndsAtTimeout(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresDSN(t)
	db := (env{opts: pgOptions(t, dsn, 300*time.Millisecond)}).open(t)
	release := lockCounters(t, dsn)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	expectUnavailable(t, "a Write on a locked table", 1500*time.Millisecond, func() error {
		return setCounters(ctx, db, []int32{1, 2}, 1)
	})
	release()
	if err := setCounters(ctx, db, []int32{1, 2}, 1); err != nil {
		t.Errorf("Write after the lock was released: %v", err)
	}
}

func TestPostgresPoolExhaustionFailsFast(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresDSN(t)
	o := pgOptions(t, dsn, 3*time.Second)
	o.MaxConns = 2
	db := (env{opts: o}).open(t)
	release := lockCounters(t, dsn)

	// Two calls wait on the lock and hold both connections.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := readCounter(context.Background(), db, 1); err != nil {
				t.Errorf("QueryRow holding a connection: %v", err)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	readsUnavailable(t, "QueryRow with the pool exhausted", db, 50, 100*time.Millisecond, 600*time.Millisecond)
	release()
	wg.Wait()
	if _, err := readCounter(context.Background(), db, 3); err != nil {
		t.Errorf("QueryRow after the pool recovered: %v", err)
	}
}

func TestPostgresRefusesSimpleProtocol(t *testing.T) {
	db, err := Open(context.Background(), Options{Driver: "postgres", DSN: "postgres://u@127.0.0.1:1/d?default_query_exec_mode=simple_protocol"})
	if err == nil {
		_ = db.Close()
		t.Fatal("Open accepted default_query_exec_mode=simple_protocol")
	}
}

func TestPostgresErrorClasses(t *testing.T) {
	pg := func(code string) error { return &pgconn.PgError{Code: code, Message: "m"} }
	for _, c := range []struct {
		err  error
		want error // the sentinel errors.Is must find, or nil for none
	}{
		{pgx.ErrNoRows, ErrNotFound},
		{pg("57014"), ErrUnavailable}, // statement_timeout
		{pg("55P03"), ErrUnavailable}, // lock_timeout
		{pg("53300"), ErrUnavailable}, // too many connections
		{pg("57P01"), ErrUnavailable}, // admin shutdown
		{pg("08006"), ErrUnavailable}, // connection failure
		{pg("40P01"), ErrUnavailable}, // deadlock detected
		{pg("22001"), ErrInvalid},     // value too long
		{pg("22021"), ErrInvalid},     // invalid byte sequence for UTF8
		{pg("23514"), ErrInvalid},     // check violation
		{pg("23502"), ErrInvalid},     // not null violation
		{pg("23505"), ErrConflict},    // unique violation
		{pg("23503"), ErrConflict},    // foreign key violation
		{pg("23P01"), ErrConflict},    // exclusion violation
		{pg("42P01"), nil},            // undefined table: a bug or a broken schema, not an outage
		{pg("42601"), nil},            // syntax error
		{context.DeadlineExceeded, ErrUnavailable},
		{errors.New("dial tcp: connection refused"), ErrUnavailable},
	} {
		got := failPostgres("op", c.err)
		for _, sentinel := range []error{ErrNotFound, ErrUnavailable, ErrInvalid, ErrConflict} {
			if errors.Is(got, sentinel) != (sentinel == c.want) {
				t.Errorf("fail(%v) = %v: errors.Is(%v) = %v, want %v", c.err, got, sentinel, !(sentinel == c.want), sentinel == c.want)
			}
		}
		if c.want != ErrNotFound && !errors.Is(got, c.err) { // a missing row needs no cause
			t.Errorf("fail(%v) = %v: lost the cause", c.err, got)
		}
	}
}

func TestPostgresMigratesDespiteShortTimeout(t *testing.T) {
	t.Parallel()
	// A migration that takes 200ms: db.timeout (20ms) must not apply to it.
	slow := Component{Name: "slow", FS: fstest.MapFS{"postgres/0001_slow.sql": {Data: []byte(`SELECT pg_sleep(0.2);`)}}}
	e := postgresEnv(t)
	e.opts.Timeout = 20 * time.Millisecond
	e.opts.Components = append(e.opts.Components, slow)
	db := e.open(t)
	if n := e.scalar(t, "SELECT count(*) FROM hotpath_migrations WHERE component = 'slow'"); n != 1 {
		t.Fatalf("the slow migration recorded %d times, want once", n)
	}
	// It still bounds the calls made afterwards.
	expectUnavailable(t, "a Write on a locked table", time.Second, func() error {
		release := lockCounters(t, e.opts.DSN)
		defer release()
		return setCounters(context.Background(), db, []int32{1}, 1)
	})
}

// TestPostgresDownAnswersUnavailableOnEveryCall: Open returns at once
// with the database down; until it has been reached and migrated, every
// call of the generic API fails fast with ErrUnavailable; once it is up
// they all work, without a reopen.
func TestPostgresDownAnswersUnavailableOnEveryCall(t *testing.T) {
	t.Parallel()
	o, proxy, _ := proxied(t, time.Second)
	proxy.SetMode(testenv.Refuse)
	start := time.Now()
	db, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open with the database down: %v; want a store that waits for it", err)
	}
	t.Cleanup(func() { closeDB(t, db) })
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Open took %v with the database down", d)
	}
	if db.Ready() {
		t.Fatal("Ready() with the database down")
	}
	ctx := context.Background()
	calls := map[string]func() error{
		"Ping": func() error { return db.Ping(ctx) },
		"QueryRow": func() error {
			var n int
			return db.QueryRow(ctx, `SELECT count(*) FROM authors`).Scan(&n)
		},
		"Query": func() error {
			rows, err := db.Query(ctx, `SELECT id FROM authors`)
			if err == nil {
				rows.Close()
			}
			return err
		},
		"Exec": func() error { _, err := db.Exec(ctx, `DELETE FROM authors WHERE id = $1`, 1); return err },
		"SendBatch": func() error {
			var b Batch
			b.Queue(`SELECT name FROM authors WHERE id = $1`, 1)
			br := db.SendBatch(ctx, &b)
			var name string
			return errors.Join(br.QueryRow().Scan(&name), br.Close())
		},
		"Write": func() error {
			_, err := db.Write(ctx, newKey("c", "k", "r"), func(tx *Tx) error { _, err := tx.Exec(sqlSetCounter, 5, 1); return err },
				func() (Answer, error) { return Answer{Status: 204}, nil })
			return err
		},
	}
	for what, call := range calls {
		expectUnavailable(t, what+" while down", 100*time.Millisecond, call)
	}
	proxy.SetMode(testenv.Pass)
	eventually(t, "Ping after the database came up", 10*time.Second, func() error { return db.Ping(ctx) })
	for what, call := range calls {
		if err := call(); err != nil && !errors.Is(err, ErrNotFound) {
			t.Errorf("%s after recovery: %v", what, err)
		}
	}
	if n, err := readCounter(ctx, db, 1); err != nil || n != 5 {
		t.Errorf("counter 1 after the Write made on recovery = %d, %v; want 5", n, err)
	}
}
