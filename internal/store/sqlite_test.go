package store

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// TestSQLiteClosedIsUnavailable: a request still running when shutdown has
// closed the database gets the outage answer, not an internal error.
func TestSQLiteClosedIsUnavailable(t *testing.T) {
	s, err := OpenSQLite(context.Background(), Options{DSN: filepath.Join(t.TempDir(), "c.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.World(context.Background(), 1); !errors.Is(err, ErrUnavailable) {
		t.Errorf("World after Close: %v, want ErrUnavailable", err)
	}
	if err := s.UpdateWorlds(context.Background(), []World{{ID: 1, RandomNumber: 2}}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("UpdateWorlds after Close: %v, want ErrUnavailable", err)
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

// killChildEnv, when set, makes TestSQLiteKeepsAckedWritesAfterKill act as
// the process to be killed, writing to the database file it names.
const killChildEnv = "HOTPATH_STORE_KILL_CHILD_DB"

// killBatch is the set of worlds write number v sets to v.
func killBatch(v int32) []World {
	ws := make([]World, 10)
	for k := range ws {
		ws[k] = World{ID: (v*7+int32(k)*31)%300 + 1, RandomNumber: v}
	}
	return ws
}

// TestSQLiteKeepsAckedWritesAfterKill kills a writing process with SIGKILL
// and checks the file: intact, every acknowledged write present, and no
// write half-applied.
func TestSQLiteKeepsAckedWritesAfterKill(t *testing.T) {
	if path := os.Getenv(killChildEnv); path != "" {
		s, err := OpenSQLite(context.Background(), Options{DSN: path})
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(1)
		}
		for v := int32(10001); v < 40000; v++ { // bounded, in case nobody kills us
			if err := s.UpdateWorlds(context.Background(), killBatch(v)); err != nil {
				fmt.Println("update:", err)
				os.Exit(1)
			}
			fmt.Println(v) // the acknowledgement
		}
		os.Exit(0)
	}
	t.Parallel()
	e := sqliteEnv(t)
	closeStore(t, e.open(t).(*SQLite)) // migrated before the child starts

	cmd := exec.Command(os.Args[0], "-test.run=^TestSQLiteKeepsAckedWritesAfterKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), killChildEnv+"="+e.opts.DSN)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked int32
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		v, err := strconv.Atoi(lines.Text())
		if err != nil {
			t.Fatalf("child: %s", lines.Text())
		}
		if acked = int32(v); acked >= 10300 {
			break
		}
	}
	_ = cmd.Process.Kill() // SIGKILL: no chance to finish or close anything
	_ = cmd.Wait()
	if acked < 10300 {
		t.Fatalf("child stopped after write %d: %v", acked, lines.Err())
	}

	raw, err := sql.Open("sqlite", e.opts.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var check string
	if err := raw.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
	s := e.open(t)
	all, err := s.AllWorlds(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	stored := func(id int32) int32 { return all[id-1].RandomNumber }
	for v := int32(10001); v <= acked; v++ {
		for _, w := range killBatch(v) {
			if got := stored(w.ID); got < v {
				t.Fatalf("world %d holds %d, but write %d, which set it to %d, was acknowledged", w.ID, got, v, v)
			}
		}
	}
	for _, w := range all {
		if w.RandomNumber <= 10000 {
			continue // never written by the child
		}
		for _, x := range killBatch(w.RandomNumber) {
			if got := stored(x.ID); got < w.RandomNumber {
				t.Fatalf("write %d is half-applied: world %d has it, world %d holds %d", w.RandomNumber, w.ID, x.ID, got)
			}
		}
	}
}

// TestSQLiteSynchronousOnEveryWritingConnection: db.sqlite_synchronous is in
// force on the connection that writes, and still on the one that replaces
// it once conn_max_lifetime has retired the first: the pragma travels in
// the DSN, not in a statement run once.
func TestSQLiteSynchronousOnEveryWritingConnection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		setting string
		want    int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{{"", 2}, {"full", 2}, {"normal", 1}} {
		e := sqliteEnv(t)
		e.opts.SQLiteSynchronous = tc.setting
		e.opts.ConnMaxLifetime = 50 * time.Millisecond
		s := e.open(t).(*SQLite)
		ctx := context.Background()
		for round := range 3 {
			conn, err := s.lite.write.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var mode int
			if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode); err != nil {
				t.Fatal(err)
			}
			_ = conn.Close()
			if mode != tc.want {
				t.Errorf("db.sqlite_synchronous %q, writer connection %d: PRAGMA synchronous = %d, want %d", tc.setting, round, mode, tc.want)
			}
			time.Sleep(80 * time.Millisecond) // past ConnMaxLifetime: the pool opens a new one
		}
		if st := s.lite.write.Stats(); st.MaxLifetimeClosed == 0 {
			t.Errorf("db.sqlite_synchronous %q: the writer was never reopened (stats %+v), so only one connection was checked", tc.setting, st)
		}
	}
	if _, err := OpenSQLite(context.Background(), Options{DSN: filepath.Join(t.TempDir(), "x.db"), SQLiteSynchronous: "off"}); err == nil {
		t.Error(`OpenSQLite with SQLiteSynchronous "off" succeeded; want an error naming db.sqlite_synchronous`)
	}
}
