package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/hotpath/hotpath/internal/tracing"
)

// SQLite is the embedded store: one file, a pool of readers and a single
// writer. SQLite allows one writer at a time anyway; funnelling writes
// through one connection makes them queue in Go instead of spinning on
// SQLITE_BUSY.
type SQLite struct {
	read    *sql.DB
	write   *sql.DB
	timeout time.Duration
	outbox  *outbox
	closed  atomic.Bool // set by Close, so late calls answer unavailable
	cap     fortuneCap

	world, fortunes, fortunesAfter, fortune *sql.Stmt // on read
	updateWorld, setWorld, setWorldIf       *sql.Stmt // on write
	addFortune, deleteFortune               *sql.Stmt // on write
	recordEvent                             *sql.Stmt // on write, see outbox.go
	keyAnswer, saveKeyAnswer                *sql.Stmt // on write, see idempotency.go
}

// OpenSQLite opens (creating it and its directory if needed) the database
// file at o.DSN, applies the migrations of the framework, the reference
// component and o.Components, and prepares every statement.
func OpenSQLite(ctx context.Context, o Options) (*SQLite, error) {
	if o.DSN == "" || strings.ContainsAny(o.DSN, "?#") {
		return nil, fmt.Errorf("open sqlite %q: db.dsn must be a file path without '?' or '#'", o.DSN)
	}
	if dir := filepath.Dir(o.DSN); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open sqlite %s: create directory: %w", o.DSN, err)
		}
	}
	plan, err := loadComponents("sqlite", withReference(o.Components))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", o.DSN, err)
	}
	s := &SQLite{timeout: orDefault(o.Timeout), outbox: newOutbox(o.OutboxURLs)}
	s.cap.set(o.MaxFortunes)
	busy := "_pragma=busy_timeout(" + strconv.FormatInt(s.timeout.Milliseconds(), 10) + ")"

	// WAL lets readers run while the writer commits. The pragmas go into
	// the DSN, so every connection the writer pool ever opens (it reopens
	// after conn_max_lifetime) gets them before its first statement.
	sync, err := synchronousPragma(o.SQLiteSynchronous)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", o.DSN, err)
	}
	s.write = openPool(o.DSN+"?"+busy+"&_pragma=journal_mode(WAL)&_pragma=synchronous("+sync+")&_pragma=foreign_keys(1)&_txlock=immediate", 1, o)
	if err := s.migrate(ctx, plan, orDiscard(o.Logger)); err != nil {
		return nil, errors.Join(fmt.Errorf("open sqlite %s: %w", o.DSN, err), s.write.Close())
	}

	readers := o.MaxConns
	if readers <= 0 {
		readers = runtime.GOMAXPROCS(0)
	}
	s.read = openPool(o.DSN+"?"+busy+"&_pragma=query_only(1)", readers, o)

	stmts := []struct {
		dst **sql.Stmt
		db  *sql.DB
		q   string
	}{
		{&s.world, s.read, sqlWorld},
		{&s.fortunes, s.read, sqlFortunes},
		{&s.fortunesAfter, s.read, sqlFortunesAfter},
		{&s.fortune, s.read, sqlFortune},
		{&s.updateWorld, s.write, sqlUpdateWorld},
		{&s.setWorld, s.write, sqlSetWorld},
		{&s.setWorldIf, s.write, sqliteSetWorldIf},
		// One writer runs one statement at a time, and another process's
		// commit in between fails this one (SQLITE_BUSY), never lets it
		// count from a stale snapshot: the cap holds.
		{&s.addFortune, s.write, sqlAddFortune + ` RETURNING id`},
		{&s.deleteFortune, s.write, sqlDeleteFortune},
		{&s.recordEvent, s.write, sqliteRecordEvent},
		{&s.keyAnswer, s.write, sqlKeyAnswer},
		{&s.saveKeyAnswer, s.write, sqlSaveKeyAnswer},
	}
	for _, st := range stmts {
		if *st.dst, err = st.db.PrepareContext(ctx, sqliteParams(st.q)); err != nil {
			return nil, errors.Join(fmt.Errorf("open sqlite %s: prepare %q: %w", o.DSN, st.q, err), s.Close())
		}
	}
	return s, nil
}

// migrate applies the migrations with busy_timeout raised to
// MigrationTimeout: db.timeout suits requests, not waiting for another
// process that is seeding the same file.
func (s *SQLite) migrate(ctx context.Context, plan []componentMigrations, log *slog.Logger) error {
	// The writer pool has one connection, so the pragmas reach the
	// connection that migrates.
	setBusy := func(d time.Duration) error {
		_, err := s.write.ExecContext(ctx, "PRAGMA busy_timeout = "+strconv.FormatInt(d.Milliseconds(), 10))
		return err
	}
	// The first statement opens the connection, whose journal_mode(WAL)
	// pragma needs a moment of exclusive access: SQLite answers SQLITE_BUSY
	// at once, without waiting out busy_timeout, while another process is
	// opening or migrating the same new file. So opening is retried.
	deadline := time.Now().Add(MigrationTimeout)
	for {
		err := setBusy(MigrationTimeout)
		if err == nil {
			break
		}
		if !isBusy(err) || time.Now().After(deadline) {
			return fmt.Errorf("set busy_timeout: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("set busy_timeout: %w", errors.Join(err, ctx.Err()))
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := migrate(ctx, "sqlite", sqliteMigrations(s.write), plan, log); err != nil {
		return err
	}
	if err := setBusy(s.timeout); err != nil {
		return fmt.Errorf("set busy_timeout: %w", err)
	}
	return nil
}

// synchronousPragma is the value of SQLite's synchronous pragma for
// db.sqlite_synchronous. In WAL mode FULL syncs the log at every commit, so
// a transaction is durable once COMMIT returns, power loss included
// (https://www.sqlite.org/pragma.html#pragma_synchronous); NORMAL syncs it
// only at checkpoints, so the commits since the last one can be rolled back
// by a power loss or an OS crash, while a crash of the process alone loses
// nothing (https://www.sqlite.org/wal.html#performance_considerations).
func synchronousPragma(setting string) (string, error) {
	switch setting {
	case "", "full":
		return "FULL", nil
	case "normal":
		return "NORMAL", nil
	}
	return "", fmt.Errorf("db.sqlite_synchronous %q: want full or normal", setting)
}

// openPool opens a database/sql pool of n connections that never shrinks
// below n, so prepared statements stay prepared.
func openPool(dsn string, n int, o Options) *sql.DB {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		panic(err) // sql.Open only fails for an unregistered driver name
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(o.ConnMaxLifetime)
	db.SetConnMaxIdleTime(o.ConnMaxIdleTime)
	return db
}

// Ready reports whether the schema is in place; for SQLite that is true
// from the moment OpenSQLite returns.
func (s *SQLite) Ready() bool { return true }

// Ping reports whether the database file answers a query.
func (s *SQLite) Ping(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx, s.timeout)
	defer cancel()
	var id int32
	if err := s.world.QueryRowContext(ctx, 1).Scan(&id, &id); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return s.fail(ctx, "ping sqlite", err)
	}
	return nil
}

// World returns the world with the given id.
func (s *SQLite) World(ctx context.Context, id int32) (_ World, err error) {
	defer endSpan(tracing.StartDB(ctx, sqliteSystem, sqlWorld), &err)
	ctx, cancel := withTimeout(ctx, s.timeout)
	defer cancel()
	var w World
	if err := s.world.QueryRowContext(ctx, id).Scan(&w.ID, &w.RandomNumber); err != nil {
		return World{}, s.fail(ctx, "select world", err)
	}
	return w, nil
}

// Worlds appends to dst[:0] the world of each id, in order, reading each
// with its own statement.
func (s *SQLite) Worlds(ctx context.Context, ids []int32, dst []World) (_ []World, err error) {
	defer endSpan(tracing.StartDB(ctx, sqliteSystem, sqlWorld), &err)
	ctx, cancel := withTimeout(ctx, s.timeout)
	defer cancel()
	dst = dst[:0]
	for _, id := range ids {
		var w World
		if err := s.world.QueryRowContext(ctx, id).Scan(&w.ID, &w.RandomNumber); err != nil {
			return dst, s.fail(ctx, "select worlds", err)
		}
		dst = append(dst, w)
	}
	return dst, nil
}

// AllWorlds appends every world to dst[:0], ordered by id.
func (s *SQLite) AllWorlds(ctx context.Context, dst []World) ([]World, error) {
	ctx, cancel := withTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.read.QueryContext(ctx, sqlAllWorlds)
	if err != nil {
		return dst[:0], s.fail(ctx, "select all worlds", err)
	}
	dst, err = scanRows(rows, dst[:0], func(r *sql.Rows, w *World) error { return r.Scan(&w.ID, &w.RandomNumber) })
	if err != nil {
		return dst, s.fail(ctx, "select all worlds", err)
	}
	return dst, nil
}

// UpdateWorlds stores every ws[i].RandomNumber in one transaction. When an
// id repeats, the last value wins and the earlier entries of ws are set to
// it, so ws matches the table afterwards. Ids that do not exist are ignored.
func (s *SQLite) UpdateWorlds(ctx context.Context, ws []World) (err error) {
	defer endSpan(tracing.StartDB(ctx, sqliteSystem, sqlUpdateWorld), &err)
	ctx, cancel := withTimeout(ctx, s.timeout)
	defer cancel()
	sorted := lastWins(ws, make([]World, 0, len(ws)))
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(ctx, "update worlds: begin", err)
	}
	st := tx.StmtContext(ctx, s.updateWorld)
	for _, w := range sorted {
		if _, err := st.ExecContext(ctx, w.RandomNumber, w.ID); err != nil {
			return s.fail(ctx, "update worlds", errors.Join(err, ignoreDone(tx.Rollback())))
		}
	}
	if err := tx.Commit(); err != nil {
		return s.fail(ctx, "update worlds: commit", err)
	}
	return nil
}

// SetWorld stores randomNumber for the world id and returns the stored
// row, recording a world.updated event when the outbox is on.
func (s *SQLite) SetWorld(ctx context.Context, id, randomNumber int32) (World, error) {
	return applyFor[World](ctx, s, Change{Kind: SetWorld, ID: id, RandomNumber: randomNumber})
}

// Fortunes appends every fortune to dst[:0], in no particular order.
func (s *SQLite) Fortunes(ctx context.Context, dst []Fortune) (_ []Fortune, err error) {
	defer endSpan(tracing.StartDB(ctx, sqliteSystem, sqlFortunes), &err)
	ctx, cancel := withTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.fortunes.QueryContext(ctx)
	return s.fortuneRows(ctx, "select fortunes", rows, err, dst[:0])
}

// FortunesAfter appends to dst[:0] up to limit fortunes with id > after,
// ordered by id: pass the last id of one page to get the next. A limit
// below 1 gives an empty page.
func (s *SQLite) FortunesAfter(ctx context.Context, after int32, limit int, dst []Fortune) (_ []Fortune, err error) {
	defer endSpan(tracing.StartDB(ctx, sqliteSystem, sqlFortunesAfter), &err)
	if limit <= 0 {
		return dst[:0], nil
	}
	ctx, cancel := withTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.fortunesAfter.QueryContext(ctx, after, limit)
	return s.fortuneRows(ctx, "select fortunes page", rows, err, dst[:0])
}

func (s *SQLite) fortuneRows(ctx context.Context, op string, rows *sql.Rows, err error, dst []Fortune) ([]Fortune, error) {
	if err != nil {
		return dst, s.fail(ctx, op, err)
	}
	dst, err = scanRows(rows, dst, func(r *sql.Rows, f *Fortune) error { return r.Scan(&f.ID, &f.Message) })
	if err != nil {
		return dst, s.fail(ctx, op, err)
	}
	return dst, nil
}

// Fortune returns the fortune with the given id.
func (s *SQLite) Fortune(ctx context.Context, id int32) (_ Fortune, err error) {
	defer endSpan(tracing.StartDB(ctx, sqliteSystem, sqlFortune), &err)
	ctx, cancel := withTimeout(ctx, s.timeout)
	defer cancel()
	var f Fortune
	if err := s.fortune.QueryRowContext(ctx, id).Scan(&f.ID, &f.Message); err != nil {
		return Fortune{}, s.fail(ctx, "select fortune", err)
	}
	return f, nil
}

// AddFortune stores a new fortune and returns it with the id the database
// assigned. Messages that are not valid UTF-8, contain NUL or exceed
// MaxMessageLen characters are refused with ErrInvalid. A fortune.created
// event is recorded when the outbox is on.
func (s *SQLite) AddFortune(ctx context.Context, message string) (Fortune, error) {
	return applyFor[Fortune](ctx, s, Change{Kind: AddFortune, Message: message})
}

// DeleteFortune removes the fortune with the given id, recording a
// fortune.deleted event carrying the removed fortune when the outbox is on.
func (s *SQLite) DeleteFortune(ctx context.Context, id int32) error {
	_, err := applyFor[Fortune](ctx, s, Change{Kind: DeleteFortune, ID: id})
	return err
}

// Apply makes c and returns the answer render makes of it. When the
// outbox is on or c has a Key, c, its event and its stored answer are one
// transaction; otherwise c is one statement. A repeat of a keyed change
// returns the stored answer, Replayed, and changes nothing.
func (s *SQLite) Apply(ctx context.Context, c Change, render Render) (_ Answer, err error) {
	defer endSpan(tracing.StartDB(ctx, sqliteSystem, c.statement(sqliteSetWorldIf)), &err)
	if err := c.check(); err != nil {
		return Answer{}, err
	}
	ctx, cancel := withTimeout(ctx, s.timeout)
	defer cancel()
	var ans Answer
	to := s.outbox.current()
	err = s.inTx(ctx, len(to.urls) > 0 || c.Key != nil, func(st func(*sql.Stmt) *sql.Stmt) error {
		if c.Key != nil {
			stored, found, err := s.storedAnswer(ctx, st, c.Key)
			if found || err != nil {
				ans = stored
				return err
			}
		}
		obj, err := s.run(ctx, st, &c)
		if err != nil {
			return err
		}
		if len(to.urls) > 0 {
			if err := s.record(ctx, st, c.Kind.event(), obj, to); err != nil {
				return err
			}
		}
		if ans, err = render(obj); err != nil || c.Key == nil {
			return err
		}
		return s.saveAnswer(ctx, st, c.Key, ans)
	})
	if err != nil {
		return Answer{}, s.fail(ctx, c.Kind.op(), err)
	}
	return ans, nil
}

// run makes the change itself through st and returns the changed object.
func (s *SQLite) run(ctx context.Context, st func(*sql.Stmt) *sql.Stmt, c *Change) (any, error) {
	switch c.Kind {
	case SetWorld:
		var w World
		if c.IfNumberIn == nil {
			err := st(s.setWorld).QueryRowContext(ctx, c.RandomNumber, c.ID).Scan(&w.ID, &w.RandomNumber)
			return w, err
		}
		in, err := json.Marshal(c.IfNumberIn)
		if err != nil {
			return nil, err
		}
		err = st(s.setWorldIf).QueryRowContext(ctx, c.RandomNumber, c.ID, string(in)).Scan(&w.ID, &w.RandomNumber)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrPrecondition
		}
		return w, err
	case AddFortune:
		f := Fortune{Message: c.Message}
		err := st(s.addFortune).QueryRowContext(ctx, c.Message, s.cap.max.Load()).Scan(&f.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, s.cap.full()
		}
		return f, err
	case DeleteFortune:
		var f Fortune
		err := st(s.deleteFortune).QueryRowContext(ctx, c.ID).Scan(&f.ID, &f.Message)
		return f, err
	}
	return nil, errUnknownChange
}

// SetMaxFortunes changes the cap on Fortune's rows (api.max_fortunes) for
// the creates that start from now on; 0 is no cap.
func (s *SQLite) SetMaxFortunes(n int) { s.cap.set(n) }

// Close closes both pools; prepared statements go with their connections.
func (s *SQLite) Close() error {
	s.closed.Store(true)
	var errs []error
	for _, db := range []*sql.DB{s.read, s.write} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// primaryCode is the primary result code of an SQLite error (the low byte
// of its extended code), or -1 when err is not one.
func primaryCode(err error) int {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return -1
	}
	return se.Code() & 0xff
}

// isBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED.
func isBusy(err error) bool {
	code := primaryCode(err)
	return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
}

// fail wraps err with op and classifies it: a missing row is ErrNotFound;
// busy, locked, interrupted or out of time is ErrUnavailable.
func (s *SQLite) fail(ctx context.Context, op string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if isBusy(err) || primaryCode(err) == sqlite3.SQLITE_INTERRUPT {
		return unavailable(op, err)
	}
	// A request still running when shutdown.timeout ran out meets a closed
	// database: the process is going away, so 503 like any outage.
	if contextDone(ctx, err) || errors.Is(err, sql.ErrConnDone) || s.closed.Load() {
		return unavailable(op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// scanRows appends one element per row to dst and closes rows.
func scanRows[T any](rows *sql.Rows, dst []T, scan func(*sql.Rows, *T) error) ([]T, error) {
	defer rows.Close()
	for rows.Next() {
		var v T
		if err := scan(rows, &v); err != nil {
			return dst, err
		}
		dst = append(dst, v)
	}
	return dst, rows.Err()
}
