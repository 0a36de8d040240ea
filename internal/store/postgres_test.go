package store

import (
	"context"
	"errors"
	"sync"
	"testing"
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
	return Options{Driver: "postgres", DSN: testenv.ReplaceHost(t, dsn, p.Addr()), Timeout: timeout}, p, dsn
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

// worldsUnavailable makes n concurrent World calls, each with a deadline
// of d, and checks each fails with ErrUnavailable within limit.
func worldsUnavailable(t *testing.T, what string, s db, n int, d, limit time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			expectUnavailable(t, what, limit, func() error { _, err := s.World(ctx, 1); return err })
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

func TestPostgresStartsWhileDatabaseIsDown(t *testing.T) {
	t.Parallel()
	o, proxy, _ := proxied(t, time.Second)
	proxy.SetMode(testenv.Refuse)

	start := time.Now()
	p, err := OpenPostgres(context.Background(), o)
	if err != nil {
		t.Fatalf("OpenPostgres with the database down: %v; want a store that waits for it", err)
	}
	t.Cleanup(func() { closeStore(t, p) })
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("OpenPostgres took %v with the database down", d)
	}
	if p.Ready() {
		t.Fatal("Ready() with the database down")
	}
	ctx := context.Background()
	expectUnavailable(t, "Ping while down", 100*time.Millisecond, func() error { return p.Ping(ctx) })
	expectUnavailable(t, "World while down", 100*time.Millisecond, func() error { _, err := p.World(ctx, 1); return err })
	expectUnavailable(t, "UpdateWorlds while down", 100*time.Millisecond, func() error { return p.UpdateWorlds(ctx, []World{{1, 1}}) })

	proxy.SetMode(testenv.Pass)
	eventually(t, "Ping after the database came up", 10*time.Second, func() error { return p.Ping(ctx) })
	if w, err := p.World(ctx, 1); err != nil || w.ID != 1 {
		t.Errorf("World(1) after recovery = %+v, %v", w, err)
	}
}

func TestPostgresRecoversFromLostConnections(t *testing.T) {
	t.Parallel()
	o, proxy, _ := proxied(t, time.Second)
	p := (env{opts: o}).open(t).(*Postgres)
	ctx := context.Background()
	if _, err := p.Worlds(ctx, []int32{1, 2, 3}, nil); err != nil {
		t.Fatal(err)
	}

	proxy.SetMode(testenv.Reset) // every pooled connection dies, new ones are reset
	for range 3 {
		expectUnavailable(t, "Worlds with connections reset", time.Second, func() error {
			_, err := p.Worlds(ctx, []int32{1, 2, 3}, nil)
			return err
		})
	}
	proxy.SetMode(testenv.Pass)
	eventually(t, "Worlds after the network came back", 5*time.Second, func() error {
		_, err := p.Worlds(ctx, []int32{1, 2, 3}, nil)
		return err
	})

	proxy.Cut() // a blip on live connections: the next call may fail, later ones must not
	_, _ = p.World(ctx, 1)
	eventually(t, "World after a cut", 5*time.Second, func() error { _, err := p.World(ctx, 1); return err })
}

func TestPostgresBlackholeEndsAtDeadline(t *testing.T) {
	t.Parallel()
	o, proxy, _ := proxied(t, time.Second)
	p := (env{opts: o}).open(t).(*Postgres)

	proxy.SetMode(testenv.Blackhole)
	worldsUnavailable(t, "World through a blackhole", p, 8, 200*time.Millisecond, 700*time.Millisecond)
	// With no deadline of its own the call is bounded by Options.Timeout.
	expectUnavailable(t, "World without a deadline", 1500*time.Millisecond, func() error {
		_, err := p.World(context.Background(), 1)
		return err
	})
	proxy.SetMode(testenv.Pass)
	eventually(t, "World after the blackhole", 5*time.Second, func() error { _, err := p.World(context.Background(), 1); return err })
}

// slowFortunes makes every insert into Fortune sleep, standing in for a
// query that runs too long.
func slowFortunes(t *testing.T, dsn string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `
		CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_sleep(5); RETURN NEW; END $$;
		CREATE TRIGGER slow_insert BEFORE INSERT ON Fortune FOR EACH ROW EXECUTE FUNCTION slow_insert();`); err != nil {
		t.Fatal(err)
	}
}

func TestPostgresCancelsSlowQueryOnTheServer(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresDSN(t)
	p := (env{opts: Options{Driver: "postgres", DSN: dsn, Timeout: 300 * time.Millisecond}}).open(t)
	slowFortunes(t, dsn)

	// The caller's deadline is generous: only statement_timeout can end it early.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	expectUnavailable(t, "AddFortune running pg_sleep(5)", 1500*time.Millisecond, func() error {
		_, err := p.AddFortune(ctx, "slow")
		return err
	})
	active := pgScalar(t, dsn, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state = 'active' AND query LIKE 'INSERT INTO Fortune%'`)
	if active != 0 {
		t.Errorf("%d inserts still running on the server after the timeout", active)
	}
	if n := pgScalar(t, dsn, "SELECT count(*) FROM Fortune"); n != 12 {
		t.Errorf("%d fortunes after the cancelled insert, want 12", n)
	}
}

// lockWorld holds an exclusive lock on World until the returned function
// is called.
func lockWorld(t *testing.T, dsn string) (release func()) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE World IN ACCESS EXCLUSIVE MODE"); err != nil {
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
	p := (env{opts: Options{Driver: "postgres", DSN: dsn, Timeout: 300 * time.Millisecond}}).open(t)
	release := lockWorld(t, dsn)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	expectUnavailable(t, "UpdateWorlds on a locked table", 1500*time.Millisecond, func() error {
		return p.UpdateWorlds(ctx, []World{{1, 1}, {2, 2}})
	})
	release()
	if err := p.UpdateWorlds(ctx, []World{{1, 1}, {2, 2}}); err != nil {
		t.Errorf("UpdateWorlds after the lock was released: %v", err)
	}
}

func TestPostgresPoolExhaustionFailsFast(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresDSN(t)
	p := (env{opts: Options{Driver: "postgres", DSN: dsn, Timeout: 3 * time.Second, MaxConns: 2}}).open(t)
	release := lockWorld(t, dsn)

	// Two calls wait on the lock and hold both connections.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := p.World(context.Background(), 1); err != nil {
				t.Errorf("World holding a connection: %v", err)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	worldsUnavailable(t, "World with the pool exhausted", p, 50, 100*time.Millisecond, 600*time.Millisecond)
	release()
	wg.Wait()
	if w, err := p.World(context.Background(), 3); err != nil || w.ID != 3 {
		t.Errorf("World after the pool recovered = %+v, %v", w, err)
	}
}

func TestPostgresRefusesSimpleProtocol(t *testing.T) {
	_, err := OpenPostgres(context.Background(), Options{DSN: "postgres://u@127.0.0.1:1/d?default_query_exec_mode=simple_protocol"})
	if err == nil {
		t.Fatal("OpenPostgres accepted default_query_exec_mode=simple_protocol")
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
	// Seeding takes longer than 20ms; db.timeout must not apply to it.
	e := postgresEnv(t)
	e.opts.Timeout = 20 * time.Millisecond
	s := e.open(t)
	if n := e.scalar(t, "SELECT count(*) FROM World"); n != 10000 {
		t.Fatalf("%d worlds, want 10000", n)
	}
	expectUnavailable(t, "UpdateWorlds on a locked table", time.Second, func() error {
		release := lockWorld(t, e.opts.DSN)
		defer release()
		return s.UpdateWorlds(context.Background(), []World{{1, 1}})
	})
}

// TestPostgresDownAnswersUnavailableOnEveryCall: while the database has
// not been reached and migrated, every call of the generic API fails fast
// with ErrUnavailable; once it is up they all work, without a reopen.
func TestPostgresDownAnswersUnavailableOnEveryCall(t *testing.T) {
	t.Parallel()
	o, proxy, _ := proxied(t, time.Second)
	proxy.SetMode(testenv.Refuse)
	o.Components = []Component{libraryComponent()}
	db, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open with the database down: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
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
			_, err := db.Write(ctx, newKey("c", "k", "r"), func(tx *Tx) error { return nil }, func() (Answer, error) { return Answer{}, nil })
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
}
