package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestSQLiteBusyWriterIsUnavailable(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t)
	e.opts.Timeout = 300 * time.Millisecond
	s := e.open(t)

	// Another process holding the write lock looks the same as this
	// connection holding it.
	other, err := sql.Open("sqlite", e.opts.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
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
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
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
