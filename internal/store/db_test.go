package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDBReadsAndWritesOnBothDrivers(t *testing.T) {
	forEachDB(t, nil, func(t *testing.T, e env, db *DB) {
		ctx := context.Background()
		if db.Driver() != e.opts.Driver {
			t.Errorf("Driver() = %q, want %q", db.Driver(), e.opts.Driver)
		}
		for i, name := range []string{"Ada", "Grace", "Edsger"} {
			if n := mustExec(t, db, `INSERT INTO authors (id, name) VALUES ($1, $2)`, i+1, name); n != 1 {
				t.Errorf("insert %s: %d rows affected, want 1", name, n)
			}
		}
		var name string
		if err := db.QueryRow(ctx, `SELECT name FROM authors WHERE id = $1`, 2).Scan(&name); err != nil || name != "Grace" {
			t.Errorf("QueryRow author 2: %q, %v; want Grace", name, err)
		}
		if err := db.QueryRow(ctx, `SELECT name FROM authors WHERE id = $1`, 99).Scan(&name); !errors.Is(err, ErrNotFound) {
			t.Errorf("QueryRow author 99: %v, want ErrNotFound", err)
		}

		rows, err := db.Query(ctx, `SELECT id, name FROM authors WHERE id >= $1 ORDER BY id`, 2)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var id int
			if err := rows.Scan(&id, &name); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%d %s", id, name))
		}
		rows.Close()
		rows.Close() // a second Close is harmless
		if err := rows.Err(); err != nil || !slices.Equal(got, []string{"2 Grace", "3 Edsger"}) {
			t.Errorf("Query: %q, %v; want [2 Grace 3 Edsger]", got, err)
		}

		b := AcquireBatch()
		for _, id := range []int{3, 99, 1, 3} {
			b.Queue(`SELECT name FROM authors WHERE id = $1`, id)
		}
		br := db.SendBatch(ctx, b)
		var names []string
		for i := range b.Len() {
			err := br.QueryRow().Scan(&name)
			switch {
			case i == 1 && !errors.Is(err, ErrNotFound):
				t.Errorf("batch row %d: %v, want ErrNotFound", i, err)
			case i != 1 && err != nil:
				t.Errorf("batch row %d: %v", i, err)
			case err == nil:
				names = append(names, name)
			}
		}
		if err := br.QueryRow().Scan(&name); err == nil {
			t.Error("a QueryRow beyond the queries queued succeeded")
		}
		if err := br.Close(); err != nil || !slices.Equal(names, []string{"Edsger", "Ada", "Edsger"}) {
			t.Errorf("batch: %q, Close %v; want [Edsger Ada Edsger], in queue order with the repeat", names, err)
		}
		ReleaseBatch(b)
		// Extreme values of a 32-bit key break no statement.
		for _, id := range []int32{-1 << 31, 1<<31 - 1} {
			if err := db.QueryRow(ctx, `SELECT name FROM authors WHERE id = $1`, id).Scan(&name); !errors.Is(err, ErrNotFound) {
				t.Errorf("QueryRow author %d: %v, want ErrNotFound", id, err)
			}
		}

		if n := mustExec(t, db, `UPDATE authors SET name = name || $1 WHERE id <= $2`, "!", 2); n != 2 {
			t.Errorf("update: %d rows affected, want 2", n)
		}
		// A $1 in a literal, a quoted identifier or a comment is text on
		// both drivers.
		var lit string
		var n int
		q := `SELECT "$1", n FROM (SELECT '$1 -- ''$2''' AS "$1", CAST($1 AS integer) AS n /* $2 */) AS t -- $3` + "\n"
		if err := db.QueryRow(ctx, q, 7).Scan(&lit, &n); err != nil || lit != "$1 -- '$2'" || n != 7 {
			t.Errorf("literal and placeholder: %q %d, %v; want $1 -- '$2' and 7", lit, n, err)
		}
	})
}

func TestDBClassifiesErrorsOnBothDrivers(t *testing.T) {
	forEachDB(t, nil, func(t *testing.T, e env, db *DB) {
		ctx := context.Background()
		mustExec(t, db, `INSERT INTO authors (id, name) VALUES ($1, $2)`, 1, "Ada")
		mustExec(t, db, `INSERT INTO books (author, title) VALUES ($1, $2)`, 1, "Notes")
		sentinels := []error{ErrNotFound, ErrUnavailable, ErrInvalid, ErrConflict}
		check := func(what string, err, want error) {
			t.Helper()
			for _, s := range sentinels {
				if errors.Is(err, s) != (s == want) {
					t.Errorf("%s: %v; errors.Is(%v) = %v, want %v", what, err, s, !(s == want), s == want)
				}
			}
		}
		exec := func(q string, args ...any) error { _, err := db.Exec(ctx, q, args...); return err }
		check("unique name", exec(`INSERT INTO authors (id, name) VALUES ($1, $2)`, 2, "Ada"), ErrConflict)
		check("primary key", exec(`INSERT INTO authors (id, name) VALUES ($1, $2)`, 1, "Grace"), ErrConflict)
		check("foreign key", exec(`INSERT INTO books (author, title) VALUES ($1, $2)`, 99, "Orphan"), ErrConflict)
		check("still referenced", exec(`DELETE FROM authors WHERE id = $1`, 1), ErrConflict)
		check("check", exec(`INSERT INTO books (author, title) VALUES ($1, $2)`, 1, ""), ErrInvalid)
		check("check on update", exec(`UPDATE books SET copies = $1`, -1), ErrInvalid)
		check("not null", exec(`INSERT INTO books (author, title) VALUES ($1, NULL)`, 1), ErrInvalid)
		check("invalid UTF-8", exec(`INSERT INTO books (author, title) VALUES ($1, $2)`, 1, "bad \xff"), ErrInvalid)
		check("NUL", exec(`INSERT INTO books (author, title) VALUES ($1, $2)`, 1, "a\x00b"), ErrInvalid)
		var title string
		check("invalid UTF-8 read", db.QueryRow(ctx, `SELECT title FROM books WHERE title = $1`, "\xff").Scan(&title), ErrInvalid)
		check("no row", db.QueryRow(ctx, `SELECT title FROM books WHERE id = $1`, 99).Scan(&title), ErrNotFound)
		syntax := exec(`INSERT INTO nowhere (x) VALUES ($1)`, 1)
		check("no such table", syntax, nil)
		if syntax == nil || !strings.Contains(syntax.Error(), "INSERT nowhere") {
			t.Errorf("no such table: %v; want the error to name INSERT nowhere", syntax)
		}
		if _, err := db.Query(ctx, `SELECT nothing FROM books WHERE id = $1`, 1); err == nil {
			t.Error("Query of a missing column succeeded")
		} else {
			check("missing column", err, nil)
		}
		if e.opts.Driver == "postgres" {
			check("too long", exec(`INSERT INTO books (author, title) VALUES ($1, $2)`, 1, strings.Repeat("x", 101)), ErrInvalid)
		}

		// The same classes inside a transaction, passed through Write.
		_, err := db.Write(ctx, nil, func(tx *Tx) error {
			if _, err := tx.Exec(`INSERT INTO books (author, title) VALUES ($1, $2)`, 1, "Kept?"); err != nil {
				return err
			}
			_, err := tx.Exec(`INSERT INTO authors (id, name) VALUES ($1, $2)`, 3, "Ada")
			return err
		}, nil)
		check("unique name in a Write", err, ErrConflict)
		var one string
		check("no row in a Write", func() error {
			_, err := db.Write(ctx, nil, func(tx *Tx) error { return tx.QueryRow(`SELECT name FROM authors WHERE id = $1`, 99).Scan(&one) }, nil)
			return err
		}(), ErrNotFound)
		if n := e.scalar(t, "SELECT count(*) FROM books"); n != 1 {
			t.Errorf("books: %d rows after the failed Write, want 1 (rolled back)", n)
		}
	})
}

// errBoom is a service's own error, which Write must hand back as it is.
var errBoom = errors.New("boom")

func TestWriteCommitsChangeEventsAndAnswerTogether(t *testing.T) {
	forEachDB(t, func(e *env) { e.opts.OutboxURLs = []string{hookA, hookB} }, func(t *testing.T, e env, db *DB) {
		ctx := context.Background()
		mustExec(t, db, `INSERT INTO authors (id, name) VALUES ($1, $2)`, 1, "Ada")
		counts := func() string {
			return fmt.Sprint(e.scalar(t, "SELECT count(*) FROM books"), " books, ",
				e.scalar(t, "SELECT count(*) FROM webhook_outbox"), " events, ",
				e.scalar(t, "SELECT count(*) FROM idempotency_keys"), " answers")
		}
		signalled := func() bool {
			select {
			case <-db.OutboxSignal():
				return true
			default:
				return false
			}
		}
		runs := 0
		var id int
		addBook := func(title string, fail error) func(*Tx) error {
			return func(tx *Tx) error {
				runs++
				if err := tx.QueryRow(`INSERT INTO books (author, title) VALUES ($1, $2) RETURNING id`, 1, title).Scan(&id); err != nil {
					return err
				}
				if err := tx.Emit("book.created", map[string]any{"id": id, "title": title}); err != nil {
					return err
				}
				return fail
			}
		}
		render := func() (Answer, error) {
			return Answer{Status: 201, ContentType: "application/json", Location: fmt.Sprint("/books/", id), Body: fmt.Appendf(nil, `{"id":%d}`, id)}, nil
		}

		key := newKey("caller", "k1", "POST /books Dune")
		first, err := db.Write(ctx, key, addBook("Dune", nil), render)
		if err != nil || first.Replayed || first.Status != 201 || runs != 1 {
			t.Fatalf("first Write: %+v, %v, fn ran %d times", first, err, runs)
		}
		if got, want := counts(), "1 books, 2 events, 1 answers"; got != want || !signalled() {
			t.Errorf("after the first Write: %s, signalled %v; want %s and a signal", got, signalled(), want)
		}
		ev, ok, err := db.ClaimEvent(ctx, hookA, "me", time.Minute)
		if err != nil || !ok || ev.Type != "book.created" || !sameJSON(t, ev.Data, fmt.Sprintf(`{"id":%d,"title":"Dune"}`, id)) {
			t.Errorf("event %+v, %v, %v; want book.created with the book", ev, ok, err)
		}

		again, err := db.Write(ctx, newKey("caller", "k1", "POST /books Dune"), addBook("Dune", nil), render)
		if err != nil || !again.Replayed || string(again.Body) != string(first.Body) || again.Location != first.Location || runs != 1 {
			t.Errorf("retry: %+v, %v, fn ran %d times; want the first answer replayed and fn not run", again, err, runs)
		}
		if _, err := db.Write(ctx, newKey("caller", "k1", "POST /books Emma"), addBook("Emma", nil), render); !errors.Is(err, ErrKeyReused) || runs != 1 {
			t.Errorf("same key, another request: %v, fn ran %d times; want ErrKeyReused and fn not run", err, runs)
		}

		// fn's own error, after it wrote and emitted, undoes everything
		// and comes back as it was.
		_, err = db.Write(ctx, newKey("caller", "k2", "POST /books Emma"), addBook("Emma", errBoom), render)
		if err != errBoom {
			t.Errorf("fn failing: %v, want errBoom itself", err)
		}
		_, err = db.Write(ctx, newKey("caller", "k3", "POST /books Emma"), addBook("Emma", nil), func() (Answer, error) { return Answer{}, errBoom })
		if err != errBoom {
			t.Errorf("render failing: %v, want errBoom itself", err)
		}
		if got, want := counts(), "1 books, 2 events, 1 answers"; got != want || signalled() {
			t.Errorf("after the failed Writes: %s, signalled %v; want %s and no signal", got, signalled(), want)
		}
		if _, err := db.Write(ctx, newKey("caller", "k4", "x"), addBook("Emma", nil), nil); err == nil {
			t.Error("Write with a key and no render succeeded")
		}

		// Without a key and a render: committed, the zero answer.
		var kept *Tx
		ans, err := db.Write(ctx, nil, func(tx *Tx) error { kept = tx; return addBook("Emma", nil)(tx) }, nil)
		if err != nil || ans.Status != 0 || ans.Replayed {
			t.Errorf("Write without a key: %+v, %v", ans, err)
		}
		if got, want := counts(), "2 books, 4 events, 1 answers"; got != want {
			t.Errorf("after a Write without a key: %s, want %s", got, want)
		}
		if _, err := kept.Exec(`DELETE FROM books`); !errors.Is(err, errTxDone) {
			t.Errorf("Tx used after its Write: %v, want errTxDone", err)
		}
		if err := kept.QueryRow(`SELECT 1`).Scan(&id); !errors.Is(err, errTxDone) {
			t.Errorf("Tx.QueryRow after its Write: %v, want errTxDone", err)
		}
	})
}

func TestEmitWithoutReceiversRecordsNothing(t *testing.T) {
	forEachDB(t, nil, func(t *testing.T, e env, db *DB) {
		_, err := db.Write(context.Background(), nil, func(tx *Tx) error {
			if _, err := tx.Exec(`INSERT INTO authors (id, name) VALUES ($1, $2)`, 1, "Ada"); err != nil {
				return err
			}
			return tx.Emit("author.created", map[string]any{"id": 1})
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-db.OutboxSignal():
			t.Error("a Write without receivers signalled the dispatcher")
		default:
		}
		if n := e.scalar(t, "SELECT count(*) FROM webhook_outbox"); n != 0 {
			t.Errorf("%d outbox rows without receivers, want 0", n)
		}
		db.SetOutboxURLs([]string{hookA})
		if _, err := db.Write(context.Background(), nil, func(tx *Tx) error { return tx.Emit("author.seen", 1) }, nil); err != nil {
			t.Fatal(err)
		}
		if n := e.scalar(t, "SELECT count(*) FROM webhook_outbox WHERE type = 'author.seen'"); n != 1 {
			t.Errorf("%d events after SetOutboxURLs, want 1", n)
		}
	})
}

// TestOpenCreatesOnlyTheTablesOfItsComponents: a DB has the framework's
// tables and those of the components it was opened with, and no other.
func TestOpenCreatesOnlyTheTablesOfItsComponents(t *testing.T) {
	forEachDB(t, nil, func(t *testing.T, e env, db *DB) {
		_, _, ownersQ, _ := migrationQueries(e.opts.Driver)
		want := "counters/1/counters library/1/library hotpath/3/outbox hotpath/4/outbox_trace hotpath/5/idempotency"
		if got := e.text(t, ownersQ); got != want {
			t.Errorf("hotpath_migrations\n got %s\nwant %s", got, want)
		}
		tablesQ := map[string]string{
			"sqlite": `SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master
				WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name)`,
			"postgres": `SELECT string_agg(tablename, ' ' ORDER BY tablename) FROM pg_tables WHERE schemaname = current_schema()`,
		}[e.opts.Driver]
		if got, want := e.text(t, tablesQ), "authors books counters hotpath_migrations idempotency_keys webhook_outbox"; got != want {
			t.Errorf("tables\n got %s\nwant %s", got, want)
		}
	})
}

// TestLegacyDatabaseRefusedByAnotherService: a database of the one
// sequence, opened by a service that does not declare the reference
// service's migrations, is refused, naming the first legacy row it
// cannot place.
func TestLegacyDatabaseRefusedByAnotherService(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			e := d.env(t)
			legacyDatabase(t, e, 6)
			db, err := Open(context.Background(), e.opts) // the test components only
			if err == nil {
				_ = db.Close()
				t.Fatal("a service without the reference component opened the reference service's database")
			}
			if !errors.Is(err, ErrForeignDatabase) || !strings.Contains(err.Error(), "version 1 (schema)") {
				t.Errorf("open: %v; want ErrForeignDatabase naming version 1 (schema)", err)
			}
			if n := e.scalar(t, "SELECT count(*) FROM schema_migrations"); n != 6 {
				t.Errorf("schema_migrations has %d rows after the refusal, want 6", n)
			}
		})
	}
}

func TestOpenRefusesAnUnknownDriver(t *testing.T) {
	if db, err := Open(context.Background(), Options{Driver: "mysql", DSN: "x"}); err == nil || !strings.Contains(err.Error(), "db.driver") {
		if db != nil {
			_ = db.Close()
		}
		t.Errorf("Open of driver mysql: %v; want an error naming db.driver", err)
	}
}

// TestSQLiteStatementCacheIsBounded: each text is prepared once per pool,
// up to maxCachedStmts texts; beyond, statements still run, prepared per
// call, and the cache stops growing. A statement first seen inside a
// Write is cached once the Write ends.
func TestSQLiteStatementCacheIsBounded(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t)
	db := e.open(t)
	ctx := context.Background()
	size := func(c *stmtCache) int { return lenOf(c.stmts.Load()) }

	q := `SELECT $1 + 1`
	for range 3 {
		var n int
		if err := db.QueryRow(ctx, q, 41).Scan(&n); err != nil || n != 42 {
			t.Fatalf("%s: %d, %v", q, n, err)
		}
	}
	if st := db.lite.reads.lookup(q); st == nil || size(&db.lite.reads) != 2 { // q and Ping's SELECT 1
		t.Errorf("after one text run three times: %d statements cached, %v for it; want it cached once", size(&db.lite.reads), st)
	}

	ins := `INSERT INTO authors (id, name) VALUES ($1, $2)`
	if _, err := db.Write(ctx, nil, func(tx *Tx) error {
		for i := range 3 {
			if _, err := tx.Exec(ins, i+1, fmt.Sprint("author ", i)); err != nil {
				return err
			}
		}
		return nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	if db.lite.writes.lookup(ins) == nil {
		t.Errorf("%s, first run inside a Write, is not cached on the writer after it", ins)
	}

	for i := range maxCachedStmts + 50 {
		var n int
		text := fmt.Sprintf("SELECT $1 + %d", i)
		if err := db.QueryRow(ctx, text, 1).Scan(&n); err != nil || n != i+1 {
			t.Fatalf("%s: %d, %v; want %d", text, n, err, i+1)
		}
	}
	if got := size(&db.lite.reads); got != maxCachedStmts {
		t.Errorf("after %d distinct texts, %d statements cached; want the bound %d", maxCachedStmts+52, got, maxCachedStmts)
	}
	var name string
	if err := db.QueryRow(ctx, `SELECT name FROM authors WHERE id = $1 AND name <> '$1'`, 2).Scan(&name); err != nil || name != "author 1" {
		t.Errorf("an uncached statement: %q, %v; want author 1", name, err)
	}
}

// TestQueryRowAllocatesAsAPreparedStatement pins what a one-row read
// costs on SQLite: no more allocations than the same read through
// database/sql on a statement prepared by hand, which is what a service
// would otherwise write (BenchmarkQueryRow has the figures).
func TestQueryRowAllocatesAsAPreparedStatement(t *testing.T) {
	e := sqliteEnv(t)
	db := e.open(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour) // a deadline, as a handler's context has
	defer cancel()
	mustExec(t, db, `INSERT INTO authors (id, name) VALUES ($1, $2)`, 1, "Ada")
	q := `SELECT id, name FROM authors WHERE id = $1`
	raw, err := db.lite.read.PrepareContext(ctx, sqliteParams(q))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var (
		id   int32
		name string
	)
	// database/sql starts a goroutine per query, which now and then
	// allocates a new one instead of reusing one: the least of a few
	// rounds is the figure to compare.
	byHand, generic := math.Inf(1), math.Inf(1)
	for range 5 {
		byHand = min(byHand, testing.AllocsPerRun(200, func() {
			if err := raw.QueryRowContext(ctx, 1).Scan(&id, &name); err != nil {
				t.Fatal(err)
			}
		}))
		generic = min(generic, testing.AllocsPerRun(200, func() {
			if err := db.QueryRow(ctx, q, 1).Scan(&id, &name); err != nil {
				t.Fatal(err)
			}
		}))
	}
	t.Logf("allocations of one row: %v through DB.QueryRow, %v through a prepared *sql.Stmt", generic, byHand)
	if generic > byHand {
		t.Errorf("DB.QueryRow(...).Scan allocates %v times, a prepared *sql.Stmt %v; want no more", generic, byHand)
	}
}

// TestWriteWhoseFnPanicsReleasesTheWriter: a panic in fn (which hotpath
// recovers further up) rolls the transaction back and frees the writer
// (SQLite) or the connection (PostgreSQL, here a pool of one), so the
// next Write goes through.
func TestWriteWhoseFnPanicsReleasesTheWriter(t *testing.T) {
	forEachDB(t, func(e *env) { e.opts.MaxConns = 1 }, func(t *testing.T, e env, db *DB) {
		insert := func(tx *Tx, id int) error {
			_, err := tx.Exec(`INSERT INTO authors (id, name) VALUES ($1, $2)`, id, fmt.Sprint("author ", id))
			return err
		}
		func() {
			defer func() {
				if r := recover(); r != "boom" {
					t.Errorf("recovered %v, want the panic of fn", r)
				}
			}()
			_, _ = db.Write(context.Background(), nil, func(tx *Tx) error {
				if err := insert(tx, 1); err != nil {
					return err
				}
				panic("boom")
			}, nil)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := db.Write(ctx, nil, func(tx *Tx) error { return insert(tx, 2) }, nil); err != nil {
			t.Fatalf("Write after a panicking one: %v", err)
		}
		if got := e.text(t, "SELECT CAST(min(id) AS text) || ' ' || CAST(count(*) AS text) FROM authors"); got != "2 1" {
			t.Errorf("authors after the panic and a Write: %q, want only author 2", got)
		}
	})
}
