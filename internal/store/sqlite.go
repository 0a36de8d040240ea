package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// sqliteDB is the embedded driver: one file, a pool of readers and a
// single writer. SQLite allows one writer at a time anyway; funnelling
// writes through one connection makes them queue in Go instead of
// spinning on SQLITE_BUSY.
type sqliteDB struct {
	read, write   *sql.DB
	reads, writes stmtCache // the statements prepared on each pool
}

// openSQLite opens (creating it and its directory if needed) the database
// file at o.DSN and applies the migrations.
func openSQLite(ctx context.Context, o Options) (*DB, error) {
	if o.DSN == "" || strings.ContainsAny(o.DSN, "?#") {
		return nil, fmt.Errorf("open sqlite %q: db.dsn must be a file path without '?' or '#'", o.DSN)
	}
	plan, err := loadComponents("sqlite", o.Components)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", o.DSN, err)
	}
	sync, err := synchronousPragma(o.SQLiteSynchronous)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", o.DSN, err)
	}
	if dir := filepath.Dir(o.DSN); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open sqlite %s: create directory: %w", o.DSN, err)
		}
	}
	db := newDB("sqlite", sqliteSystem, o)
	s := &sqliteDB{}
	db.lite = s
	busy := "_pragma=busy_timeout(" + strconv.FormatInt(db.timeout.Milliseconds(), 10) + ")"

	// WAL lets readers run while the writer commits. The pragmas go into
	// the DSN, so every connection the writer pool ever opens (it reopens
	// after conn_max_lifetime) gets them before its first statement.
	s.write = openPool(o.DSN+"?"+busy+"&_pragma=journal_mode(WAL)&_pragma=synchronous("+sync+")&_pragma=foreign_keys(1)&_txlock=immediate", 1, o)
	if err := migrateSQLite(ctx, s.write, db.timeout, plan, db.log); err != nil {
		return nil, errors.Join(fmt.Errorf("open sqlite %s: %w", o.DSN, err), s.write.Close())
	}
	readers := o.MaxConns
	if readers <= 0 {
		readers = runtime.GOMAXPROCS(0)
	}
	s.read = openPool(o.DSN+"?"+busy+"&_pragma=query_only(1)", readers, o)
	s.reads.pool, s.writes.pool = s.read, s.write
	return db, nil
}

// migrateSQLite applies the migrations of plan on write, the writer pool,
// with busy_timeout raised to MigrationTimeout meanwhile: timeout
// (db.timeout) suits requests, not waiting for another process that is
// seeding the same file.
func migrateSQLite(ctx context.Context, write *sql.DB, timeout time.Duration, plan []componentMigrations, log *slog.Logger) error {
	// The writer pool has one connection, so the pragmas reach the
	// connection that migrates.
	setBusy := func(d time.Duration) error {
		_, err := write.ExecContext(ctx, "PRAGMA busy_timeout = "+strconv.FormatInt(d.Milliseconds(), 10))
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
	if err := migrate(ctx, "sqlite", sqliteMigrations(write), plan, log); err != nil {
		return err
	}
	if err := setBusy(timeout); err != nil {
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

// close closes both pools; prepared statements go with their connections.
func (s *sqliteDB) close() error {
	var errs []error
	for _, db := range []*sql.DB{s.read, s.write} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// maxCachedStmts bounds the statements prepared per pool. A service has a
// few dozen; one that builds SQL text at run time would otherwise grow the
// cache without end, so beyond the bound a text is prepared per call.
const maxCachedStmts = 1024

// stmtCache holds one pool's prepared statements, by their $N text. It is
// copied on write: a lookup is an atomic load and a map read, no lock.
type stmtCache struct {
	pool  *sql.DB
	mu    sync.Mutex // serialises additions
	stmts atomic.Pointer[map[string]*sql.Stmt]
}

// lookup returns the statement prepared for q, or nil.
func (c *stmtCache) lookup(q string) *sql.Stmt {
	if m := c.stmts.Load(); m != nil {
		return (*m)[q]
	}
	return nil
}

// get returns the statement prepared for q, preparing it on first use.
// When the cache is full it returns nil and q rewritten for SQLite, to be
// run unprepared.
func (c *stmtCache) get(ctx context.Context, q string) (*sql.Stmt, string, error) {
	if st := c.lookup(q); st != nil {
		return st, "", nil
	}
	if m := c.stmts.Load(); m != nil && len(*m) >= maxCachedStmts {
		return nil, sqliteParams(q), nil
	}
	// Prepared outside the lock: preparing waits for a connection, and
	// the writer's one connection may be held by a transaction that is
	// about to add a statement of its own.
	st, err := c.pool.PrepareContext(ctx, sqliteParams(q))
	if err != nil {
		return nil, "", err
	}
	return c.add(q, st), "", nil
}

// add caches st for q and returns it, or the statement another caller
// cached for q meanwhile (closing st).
func (c *stmtCache) add(q string, st *sql.Stmt) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.stmts.Load()
	if old != nil {
		if other := (*old)[q]; other != nil {
			_ = st.Close() // never used: closing it only frees its connections' copies
			return other
		}
	}
	next := make(map[string]*sql.Stmt, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[q] = st
	c.stmts.Store(&next)
	return st
}

func lenOf(m *map[string]*sql.Stmt) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

func (c *stmtCache) queryRow(ctx context.Context, q string, args []any) (*sql.Row, error) {
	st, text, err := c.get(ctx, q)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return c.pool.QueryRowContext(ctx, text, args...), nil
	}
	return st.QueryRowContext(ctx, args...), nil
}

func (c *stmtCache) query(ctx context.Context, q string, args []any) (*sql.Rows, error) {
	st, text, err := c.get(ctx, q)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return c.pool.QueryContext(ctx, text, args...)
	}
	return st.QueryContext(ctx, args...)
}

func (c *stmtCache) exec(ctx context.Context, q string, args []any) (sql.Result, error) {
	st, text, err := c.get(ctx, q)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return c.pool.ExecContext(ctx, text, args...)
	}
	return st.ExecContext(ctx, args...)
}
