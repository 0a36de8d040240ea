package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// holdWriteLock takes the write lock of the database file on a connection
// of its own, as another process would, until release is called.
func holdWriteLock(t *testing.T, dsn string) (release func()) {
	other, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_, _ = conn.ExecContext(ctx, "ROLLBACK") // nothing was written
			_ = conn.Close()
			_ = other.Close()
		})
	}
	t.Cleanup(release)
	return release
}

func TestSQLiteBusyWriterIsUnavailable(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t)
	e.opts.Timeout = 300 * time.Millisecond
	s := e.open(t)

	release := holdWriteLock(t, e.opts.DSN)
	ctx := context.Background()
	expectUnavailable := func(what string, fn func() error) {
		t.Helper()
		start := time.Now()
		err := fn()
		if d := time.Since(start); !errors.Is(err, ErrUnavailable) || d > 2*time.Second {
			t.Errorf("%s with the write lock held elsewhere: %v after %v; want ErrUnavailable after about 300ms", what, err, d)
		}
	}
	expectUnavailable("SetWorld", func() error { _, err := s.SetWorld(ctx, 1, 1); return err })
	expectUnavailable("UpdateWorlds", func() error { return s.UpdateWorlds(ctx, []World{{1, 1}}) })
	expectUnavailable("AddFortune", func() error { _, err := s.AddFortune(ctx, "x"); return err })

	// WAL: readers are not blocked by the writer.
	if _, err := s.World(ctx, 1); err != nil {
		t.Errorf("World while another connection writes: %v", err)
	}
	release()
	if _, err := s.SetWorld(ctx, 1, 1); err != nil {
		t.Errorf("SetWorld after the lock was released: %v", err)
	}
}

func TestSQLiteExpiredContextIsUnavailable(t *testing.T) {
	t.Parallel()
	s := sqliteEnv(t).open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.World(ctx, 1); !errors.Is(err, ErrUnavailable) {
		t.Errorf("World with a cancelled context: %v, want ErrUnavailable", err)
	}
}

func TestSQLiteRejectsURIDSN(t *testing.T) {
	for _, dsn := range []string{"", filepath.Join(t.TempDir(), "x.db?mode=ro"), "file:x.db#frag"} {
		if s, err := OpenSQLite(context.Background(), Options{DSN: dsn}); err == nil {
			_ = s.Close()
			t.Errorf("OpenSQLite(%q) succeeded; want an error naming db.dsn", dsn)
		}
	}
}

func TestSQLiteUsesWAL(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t)
	e.open(t)
	raw, err := sql.Open("sqlite", e.opts.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var mode string
	if err := raw.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
}

func TestSQLiteOpenWaitsForAnotherWriterBeyondTimeout(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t)
	e.opts.Timeout = 50 * time.Millisecond
	e.open(t) // create the file, then hold its write lock from elsewhere
	release := holdWriteLock(t, e.opts.DSN)
	time.AfterFunc(400*time.Millisecond, release)
	ctx := context.Background()
	start := time.Now()
	s := e.open(t)
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("OpenSQLite returned after %v while the write lock was held", d)
	}
	if _, err := s.SetWorld(ctx, 1, 2); err != nil {
		t.Errorf("SetWorld after open: %v", err)
	}
}
