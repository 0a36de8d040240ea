package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotpath/hotpath/internal/testenv"
	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// db is what the tests need from either driver; like any consumer, the
// test declares the interface itself.
type db interface {
	Ready() bool
	Ping(ctx context.Context) error
	World(ctx context.Context, id int32) (World, error)
	Worlds(ctx context.Context, ids []int32, dst []World) ([]World, error)
	AllWorlds(ctx context.Context, dst []World) ([]World, error)
	UpdateWorlds(ctx context.Context, ws []World) error
	SetWorld(ctx context.Context, id, randomNumber int32) (World, error)
	Fortunes(ctx context.Context, dst []Fortune) ([]Fortune, error)
	FortunesAfter(ctx context.Context, after int32, limit int, dst []Fortune) ([]Fortune, error)
	Fortune(ctx context.Context, id int32) (Fortune, error)
	AddFortune(ctx context.Context, message string) (Fortune, error)
	DeleteFortune(ctx context.Context, id int32) error
	Close() error
}

var (
	_ db = (*SQLite)(nil)
	_ db = (*Postgres)(nil)
)

// underlying and ref reach, from a test's db interface, what the
// reference types are built on.
func (r *reference) underlying() *DB { return r.DB }
func (r *reference) ref() *reference { return r }

// env is one freshly created database, reachable through the store and,
// for checks the store does not offer, through raw SQL.
type env struct {
	opts Options
	// scalar runs a query without arguments and returns its single int.
	scalar func(t testing.TB, q string) int64
	// text runs a query without arguments and returns its single text.
	text func(t testing.TB, q string) string
	// exec runs a statement written with $N placeholders, or a script of
	// several statements without arguments.
	exec func(t testing.TB, q string, args ...any)
}

// open opens a store on the database and waits until it is ready; it is
// closed when the test ends.
func (e env) open(t testing.TB) db {
	t.Helper()
	s, err := openStore(e.opts)
	if err != nil {
		t.Fatalf("open %s store: %v", e.opts.Driver, err)
	}
	t.Cleanup(func() { closeStore(t, s) })
	waitReady(t, s, 10*time.Second)
	return s
}

// migrations is the number of migration files of the framework and the
// components the store opens with, for the driver: what
// hotpath_migrations must hold once they are applied.
func (e env) migrations(t testing.TB) int64 {
	t.Helper()
	plan, err := loadComponents(e.opts.Driver, withReference(e.opts.Components))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range plan {
		n += len(c.ms)
	}
	return int64(n)
}

// openStore opens the store o.Driver names.
func openStore(o Options) (db, error) {
	if o.Driver == "postgres" {
		return OpenPostgres(context.Background(), o)
	}
	return OpenSQLite(context.Background(), o)
}

// drivers lists how to create a fresh database for each driver.
var drivers = []struct {
	name string
	env  func(t testing.TB) env
}{
	{"sqlite", sqliteEnv},
	{"postgres", postgresEnv},
}

func sqliteEnv(t testing.TB) env {
	dsn := filepath.Join(t.TempDir(), "nested", "hotpath.db") // the store must create "nested"
	raw := func(t testing.TB, fn func(*sql.DB) error) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(dsn), 0o755); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := fn(db); err != nil {
			t.Fatal(err)
		}
	}
	return env{
		opts: Options{Driver: "sqlite", DSN: dsn, Timeout: 2 * time.Second, Logger: testLogger(t)},
		scalar: func(t testing.TB, q string) (n int64) {
			t.Helper()
			raw(t, func(db *sql.DB) error { return wrapQuery(q, db.QueryRow(q).Scan(&n)) })
			return n
		},
		text: func(t testing.TB, q string) (v string) {
			t.Helper()
			raw(t, func(db *sql.DB) error { return wrapQuery(q, db.QueryRow(q).Scan(&v)) })
			return v
		},
		exec: func(t testing.TB, q string, args ...any) {
			t.Helper()
			raw(t, func(db *sql.DB) error {
				if len(args) > 0 {
					q = sqliteParams(q)
				}
				_, err := db.Exec(q, args...)
				return wrapQuery(q, err)
			})
		},
	}
}

func postgresEnv(t testing.TB) env {
	dsn := testenv.PostgresDSN(t)
	return env{
		opts: Options{Driver: "postgres", DSN: dsn, Timeout: 2 * time.Second, Logger: testLogger(t)},
		scalar: func(t testing.TB, q string) int64 {
			t.Helper()
			return pgScalar(t, dsn, q)
		},
		text: func(t testing.TB, q string) (v string) {
			t.Helper()
			pgRaw(t, dsn, func(c *pgx.Conn) error { return wrapQuery(q, c.QueryRow(context.Background(), q).Scan(&v)) })
			return v
		},
		exec: func(t testing.TB, q string, args ...any) {
			t.Helper()
			pgRaw(t, dsn, func(c *pgx.Conn) error {
				_, err := c.Exec(context.Background(), q, args...)
				return wrapQuery(q, err)
			})
		},
	}
}

// pgRaw runs fn on a connection of its own to dsn.
func pgRaw(t testing.TB, dsn string, fn func(*pgx.Conn) error) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := fn(conn); err != nil {
		t.Fatal(err)
	}
}

// wrapQuery names the statement that failed.
func wrapQuery(q string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", q, err)
	}
	return nil
}

// testLogger sends the store's log to the test's, shown when it fails.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func pgScalar(t testing.TB, dsn, q string) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func waitReady(t testing.TB, s db, within time.Duration) {
	t.Helper()
	if err := pingUntil(s, within); err != nil {
		t.Fatalf("store not ready after %v: %v", within, err)
	}
	if !s.Ready() {
		t.Fatalf("Ping succeeded but Ready() is false")
	}
}

// pingUntil pings s until it answers or within has passed.
func pingUntil(s db, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := s.Ping(context.Background())
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func closeStore(t testing.TB, s db) {
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// forEachDriver runs fn as a subtest against a fresh database per driver.
func forEachDriver(t *testing.T, fn func(t *testing.T, e env, s db)) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			e := d.env(t)
			fn(t, e, e.open(t))
		})
	}
}

// seedFortunes is the standard TechEmpower fortune table, written out here
// independently of the migration files.
var seedFortunes = []Fortune{
	{1, "fortune: No such file or directory"},
	{2, "A computer scientist is someone who fixes things that aren't broken."},
	{3, "After enough decimal places, nobody gives a damn."},
	{4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"},
	{5, "A computer program does what you tell it to do, not what you want it to do."},
	{6, "Emacs is a nice operating system, but I prefer UNIX. \u2014 Tom Christaensen"},
	{7, "Any program that runs right is obsolete."},
	{8, "A list is only as strong as its weakest link. \u2014 Donald Knuth"},
	{9, "Feature: A bug with seniority."},
	{10, "Computers make very fast, very accurate mistakes."},
	{11, `<script>alert("This should not be displayed in a browser alert box.");</script>`},
	{12, "\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af\u306e\u30d9\u30f3\u30c1\u30de\u30fc\u30af"},
}

func sortedFortunes(fs []Fortune) []Fortune {
	fs = slices.Clone(fs)
	slices.SortFunc(fs, func(a, b Fortune) int { return int(a.ID - b.ID) })
	return fs
}

func TestSeedCreatesWorldsAndFortunes(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e env, s db) {
		ctx := context.Background()
		ws, err := s.AllWorlds(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) != 10000 {
			t.Fatalf("AllWorlds: %d rows, want 10000", len(ws))
		}
		distinct := map[int32]bool{}
		for i, w := range ws {
			if w.ID != int32(i+1) || w.RandomNumber < 1 || w.RandomNumber > 10000 {
				t.Fatalf("AllWorlds[%d] = %+v, want id %d and randomNumber in 1..10000", i, w, i+1)
			}
			distinct[w.RandomNumber] = true
		}
		if len(distinct) < 5000 { // 10000 draws from 10000 values give about 6321 distinct
			t.Errorf("only %d distinct random numbers: the seed is not random", len(distinct))
		}
		fs, err := s.Fortunes(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := sortedFortunes(fs); !slices.Equal(got, seedFortunes) {
			t.Errorf("Fortunes:\n got %q\nwant %q", got, seedFortunes)
		}
		if n, want := e.scalar(t, "SELECT count(*) FROM hotpath_migrations"), e.migrations(t); n != want {
			t.Errorf("hotpath_migrations has %d rows, want %d", n, want)
		}
	})
}

func TestPostgresFoldsUnquotedNames(t *testing.T) {
	e := postgresEnv(t)
	e.open(t)
	n := e.scalar(t, `SELECT count(*) FROM information_schema.columns
		WHERE table_schema = 'public' AND table_name IN ('world', 'fortune') AND column_name IN ('id', 'randomnumber', 'message')`)
	if n != 4 {
		t.Fatalf("found %d of the 4 lower-case columns world.id, world.randomnumber, fortune.id, fortune.message", n)
	}
}

func TestReopenKeepsData(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e env, s db) {
		ctx := context.Background()
		if _, err := s.SetWorld(ctx, 77, 4242); err != nil {
			t.Fatal(err)
		}
		added, err := s.AddFortune(ctx, "kept across restarts")
		if err != nil {
			t.Fatal(err)
		}
		closeStore(t, s)

		s2 := e.open(t)
		if w, err := s2.World(ctx, 77); err != nil || w.RandomNumber != 4242 {
			t.Errorf("after reopen World(77) = %+v, %v; want randomNumber 4242", w, err)
		}
		if f, err := s2.Fortune(ctx, added.ID); err != nil || f != added {
			t.Errorf("after reopen Fortune(%d) = %+v, %v; want %+v", added.ID, f, err, added)
		}
		if n := e.scalar(t, "SELECT count(*) FROM Fortune"); n != 13 {
			t.Errorf("after reopen %d fortunes, want 13 (seed must not run twice)", n)
		}
		if n, want := e.scalar(t, "SELECT count(*) FROM hotpath_migrations"), e.migrations(t); n != want {
			t.Errorf("after reopen hotpath_migrations has %d rows, want %d", n, want)
		}
	})
}

func TestConcurrentMigrationAppliesOnce(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			e := d.env(t)
			results := make(chan error, 3)
			for range 3 {
				go func() {
					s, err := openStore(e.opts)
					if err == nil {
						t.Cleanup(func() { closeStore(t, s) })
						err = pingUntil(s, 10*time.Second)
					}
					results <- err
				}()
			}
			for range 3 {
				if err := <-results; err != nil {
					t.Errorf("concurrent open: %v", err)
				}
			}
			for q, want := range map[string]int64{
				"SELECT count(*) FROM World":              10000,
				"SELECT count(*) FROM Fortune":            12,
				"SELECT count(*) FROM hotpath_migrations": e.migrations(t),
			} {
				if n := e.scalar(t, q); n != want {
					t.Errorf("%s = %d, want %d", q, n, want)
				}
			}
		})
	}
}

func TestWorldReadsOneRow(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e env, s db) {
		ctx := context.Background()
		all, err := s.AllWorlds(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []int32{1, 2, 5000, 9999, 10000} {
			if w, err := s.World(ctx, id); err != nil || w != all[id-1] {
				t.Errorf("World(%d) = %+v, %v; want %+v", id, w, err, all[id-1])
			}
		}
		for _, id := range []int32{0, -1, 10001, 1<<31 - 1, -1 << 31} {
			if w, err := s.World(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("World(%d) = %+v, %v; want ErrNotFound", id, w, err)
			}
		}
	})
}

func TestWorldsKeepsOrderAndDuplicates(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e env, s db) {
		ctx := context.Background()
		all, err := s.AllWorlds(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids := []int32{10000, 3, 3, 512, 1, 3}
		dst := make([]World, 7, 16) // stale contents must be dropped
		got, err := s.Worlds(ctx, ids, dst)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]World, len(ids))
		for i, id := range ids {
			want[i] = all[id-1]
		}
		if !slices.Equal(got, want) {
			t.Errorf("Worlds(%v) = %v, want %v", ids, got, want)
		}
		if &got[0] != &dst[:1][0] {
			t.Errorf("Worlds did not reuse dst")
		}
		if _, err := s.Worlds(ctx, []int32{1, 10001}, nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("Worlds with a missing id: %v, want ErrNotFound", err)
		}
		if got, err := s.Worlds(ctx, nil, dst); err != nil || len(got) != 0 {
			t.Errorf("Worlds(nil) = %v, %v; want empty", got, err)
		}
	})
}

func TestUpdateWorldsLastDuplicateWins(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e env, s db) {
		ctx := context.Background()
		ws := []World{{5, 100}, {3, 200}, {5, 300}, {7, 400}, {5, 500}, {3, 600}}
		if err := s.UpdateWorlds(ctx, ws); err != nil {
			t.Fatal(err)
		}
		want := []World{{5, 500}, {3, 600}, {5, 500}, {7, 400}, {5, 500}, {3, 600}}
		if !slices.Equal(ws, want) {
			t.Errorf("caller's slice after UpdateWorlds = %v, want %v", ws, want)
		}
		for _, w := range want {
			if got, err := s.World(ctx, w.ID); err != nil || got != w {
				t.Errorf("World(%d) = %+v, %v; want %+v", w.ID, got, err, w)
			}
		}
		if err := s.UpdateWorlds(ctx, nil); err != nil {
			t.Errorf("UpdateWorlds(nil): %v", err)
		}
	})
}

func TestSetWorld(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e env, s db) {
		ctx := context.Background()
		if w, err := s.SetWorld(ctx, 42, 777); err != nil || w != (World{42, 777}) {
			t.Errorf("SetWorld(42, 777) = %+v, %v", w, err)
		}
		if w, err := s.World(ctx, 42); err != nil || w.RandomNumber != 777 {
			t.Errorf("World(42) after SetWorld = %+v, %v; want 777", w, err)
		}
		for _, id := range []int32{0, 10001, -5} {
			if _, err := s.SetWorld(ctx, id, 1); !errors.Is(err, ErrNotFound) {
				t.Errorf("SetWorld(%d) = %v, want ErrNotFound", id, err)
			}
		}
		if n := e.scalar(t, "SELECT count(*) FROM World"); n != 10000 {
			t.Errorf("%d worlds after SetWorld on missing ids, want 10000", n)
		}
	})
}

func TestFortunesCRUDAndPages(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e env, s db) {
		ctx := context.Background()
		added, err := s.AddFortune(ctx, "new fortune")
		if err != nil {
			t.Fatal(err)
		}
		if added.ID <= 12 || added.Message != "new fortune" {
			t.Fatalf("AddFortune = %+v, want an id above the seed's 12", added)
		}
		if f, err := s.Fortune(ctx, added.ID); err != nil || f != added {
			t.Errorf("Fortune(%d) = %+v, %v; want %+v", added.ID, f, err, added)
		}
		all := append(slices.Clone(seedFortunes), added)

		var pages []Fortune
		var page []Fortune
		after := int32(0)
		for range 10 {
			page, err = s.FortunesAfter(ctx, after, 5, page)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			if len(page) > 5 {
				t.Fatalf("page of %d fortunes, limit 5", len(page))
			}
			pages = append(pages, page...)
			after = page[len(page)-1].ID
		}
		if !slices.Equal(pages, all) {
			t.Errorf("pages joined = %v, want %v", pages, all)
		}
		if got, err := s.FortunesAfter(ctx, 0, 0, nil); err != nil || len(got) != 0 {
			t.Errorf("FortunesAfter(limit 0) = %v, %v; want empty", got, err)
		}

		if err := s.DeleteFortune(ctx, added.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Fortune(ctx, added.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Fortune after delete: %v, want ErrNotFound", err)
		}
		if err := s.DeleteFortune(ctx, added.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("second DeleteFortune: %v, want ErrNotFound", err)
		}
		again, err := s.AddFortune(ctx, "another")
		if err != nil || again.ID <= added.ID {
			t.Errorf("AddFortune after delete = %+v, %v; want an id above %d (ids are not reused)", again, err, added.ID)
		}
	})
}

func TestAddFortuneRefusesInvalidMessages(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e env, s db) {
		ctx := context.Background()
		for _, m := range []string{"bad \xff utf-8", "nul \x00 byte", strings.Repeat("é", MaxMessageLen+1)} {
			if _, err := s.AddFortune(ctx, m); !errors.Is(err, ErrInvalid) {
				t.Errorf("AddFortune(%.20q...) = %v, want ErrInvalid", m, err)
			}
		}
		long := strings.Repeat("é", MaxMessageLen) // 2048 characters, 4096 bytes
		f, err := s.AddFortune(ctx, long)
		if err != nil {
			t.Fatalf("AddFortune of %d characters: %v", MaxMessageLen, err)
		}
		if got, err := s.Fortune(ctx, f.ID); err != nil || got.Message != long {
			t.Errorf("long message did not read back intact (%v)", err)
		}
		if n := e.scalar(t, "SELECT count(*) FROM Fortune"); n != 13 {
			t.Errorf("%d fortunes, want 13: refused messages must not be stored", n)
		}
	})
}

// injections are classic SQL injection payloads; each must be stored and
// read back verbatim and change nothing else.
var injections = []string{
	`' OR '1'='1`,
	`1;DROP TABLE World--`,
	`'); DELETE FROM Fortune;--`,
	`$$`,
	`$1`,
	`?`,
	`?1`,
	`\`,
	`\'; DROP TABLE Fortune; --`,
	`';SELECT pg_sleep(5)--`,
	`'; SELECT randomblob(1000000000);--`,
	`" OR ""="`,
	`1' UNION SELECT id, randomNumber FROM World--`,
	"Robert'); DROP TABLE Fortune;--\u2603 \u202e \U0001F600 \u00e9\u0301 \ufeff",
}

func TestInjectionPayloadsAreStoredVerbatim(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e env, s db) {
		ctx := context.Background()
		sum := e.scalar(t, "SELECT sum(randomNumber) FROM World")
		for _, p := range injections {
			start := time.Now()
			f, err := s.AddFortune(ctx, p)
			if err != nil {
				t.Errorf("AddFortune(%q): %v", p, err)
				continue
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("AddFortune(%q) took %v: the payload ran", p, d)
			}
			if got, err := s.Fortune(ctx, f.ID); err != nil || got.Message != p {
				t.Errorf("Fortune(%d) = %q, %v; want %q byte for byte", f.ID, got.Message, err, p)
			}
		}
		// Numbers cannot carry SQL, but extreme values must not break a statement.
		for _, id := range []int32{-1 << 31, -1, 0, 1<<31 - 1} {
			if _, err := s.Fortune(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Fortune(%d): %v, want ErrNotFound", id, err)
			}
			if err := s.DeleteFortune(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("DeleteFortune(%d): %v, want ErrNotFound", id, err)
			}
			if got, err := s.FortunesAfter(ctx, id, 1<<31-1, nil); err != nil {
				t.Errorf("FortunesAfter(%d): %v", id, err)
			} else if id < 0 && len(got) != 12+len(injections) {
				t.Errorf("FortunesAfter(%d) = %d rows, want %d", id, len(got), 12+len(injections))
			}
		}
		if err := s.UpdateWorlds(ctx, []World{{-1 << 31, 1}, {1<<31 - 1, 1}}); err != nil {
			t.Errorf("UpdateWorlds with ids out of range: %v", err)
		}
		if n := e.scalar(t, "SELECT count(*) FROM World"); n != 10000 {
			t.Errorf("%d worlds after the payloads, want 10000", n)
		}
		if n := e.scalar(t, "SELECT sum(randomNumber) FROM World"); n != sum {
			t.Errorf("World checksum changed from %d to %d", sum, n)
		}
		if n := e.scalar(t, "SELECT count(*) FROM Fortune"); n != int64(12+len(injections)) {
			t.Errorf("%d fortunes, want %d", n, 12+len(injections))
		}
		fs, err := s.Fortunes(ctx, nil)
		if err != nil || !slices.Equal(sortedFortunes(fs)[:12], seedFortunes) {
			t.Errorf("seed fortunes changed: %v", err)
		}
	})
}

// TestUpdateWorldsConcurrentIsSerializable runs overlapping UpdateWorlds
// calls on a few hot rows. Each call writes one value, unique to it, to all
// its ids. Afterwards no pair of rows may disagree about which of two calls
// came last: that would be a lost or half-applied write.
func TestUpdateWorldsConcurrentIsSerializable(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e env, s db) {
		const workers, calls, hot = 8, 15, 40
		touched := make([][]int32, workers*calls+1) // call value -> ids it wrote
		var wg sync.WaitGroup
		errs := make(chan error, workers*calls)
		for g := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(g), 1))
				for c := range calls {
					v := int32(g*calls + c + 1)
					ws := make([]World, 10)
					for i := range ws {
						ws[i] = World{ID: rng.Int32N(hot) + 1, RandomNumber: v}
					}
					for _, w := range ws {
						touched[v] = append(touched[v], w.ID)
					}
					if err := s.UpdateWorlds(context.Background(), ws); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("UpdateWorlds: %v", err)
		}
		ids := make([]int32, hot)
		for i := range ids {
			ids[i] = int32(i + 1)
		}
		final, err := s.Worlds(context.Background(), ids, nil)
		if err != nil {
			t.Fatal(err)
		}
		last := map[int32]int32{} // id -> value of the call that wrote it last
		for _, w := range final {
			last[w.ID] = w.RandomNumber
		}
		for x, a := range last {
			if a > int32(workers*calls) {
				continue // never written: still the seed value
			}
			for _, y := range touched[a] {
				b := last[y]
				if b != a && b <= int32(workers*calls) && slices.Contains(touched[b], x) {
					t.Errorf("rows %d and %d disagree: call %d wrote both and is last on %d, call %d wrote both and is last on %d", x, y, a, x, b, y)
				}
			}
		}
	})
}
