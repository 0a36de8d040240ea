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
	"strings"
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
	e.opts.OutboxURLs = []string{hookA}
	db := e.open(t)

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
	expectUnavailable("Exec", func() error { _, err := db.Exec(ctx, sqlSetCounter, 1, 1); return err })
	expectUnavailable("Write", func() error { return setCounters(ctx, db, []int32{1, 2}, 1) })
	expectUnavailable("a keyed Write", func() error {
		_, err := db.Write(ctx, newKey("c", "k", "r"), func(tx *Tx) error { return tx.Emit("counter.set", 1) },
			func() (Answer, error) { return Answer{Status: 204}, nil })
		return err
	})
	expectUnavailable("ClaimEvent, a row of the writer", func() error { _, _, err := db.ClaimEvent(ctx, hookA, "me", time.Minute); return err })

	// WAL: readers are not blocked by the writer.
	if _, err := readCounter(ctx, db, 1); err != nil {
		t.Errorf("QueryRow while another connection writes: %v", err)
	}
	release()
	if _, err := db.Exec(ctx, sqlSetCounter, 1, 1); err != nil {
		t.Errorf("Exec after the lock was released: %v", err)
	}
}

func TestSQLiteExpiredContextIsUnavailable(t *testing.T) {
	t.Parallel()
	db := sqliteEnv(t).open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := readCounter(ctx, db, 1); !errors.Is(err, ErrUnavailable) {
		t.Errorf("QueryRow with a cancelled context: %v, want ErrUnavailable", err)
	}
	if err := setCounters(ctx, db, []int32{1}, 1); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Write with a cancelled context: %v, want ErrUnavailable", err)
	}
}

// TestSQLiteClosedIsUnavailable: a request still running when shutdown has
// closed the database gets the outage answer, not an internal error.
func TestSQLiteClosedIsUnavailable(t *testing.T) {
	db, err := Open(context.Background(), Options{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "c.db"), Components: testComponents()})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := readCounter(ctx, db, 1); !errors.Is(err, ErrUnavailable) {
		t.Errorf("QueryRow after Close: %v, want ErrUnavailable", err)
	}
	if _, err := db.Exec(ctx, sqlSetCounter, 2, 1); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Exec after Close: %v, want ErrUnavailable", err)
	}
	if err := setCounters(ctx, db, []int32{1}, 2); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Write after Close: %v, want ErrUnavailable", err)
	}
}

func TestSQLiteRejectsURIDSN(t *testing.T) {
	for _, dsn := range []string{"", filepath.Join(t.TempDir(), "x.db?mode=ro"), "file:x.db#frag"} {
		if db, err := Open(context.Background(), Options{Driver: "sqlite", DSN: dsn}); err == nil || !strings.Contains(err.Error(), "db.dsn") {
			if db != nil {
				_ = db.Close()
			}
			t.Errorf("Open(sqlite, %q): %v; want an error naming db.dsn", dsn, err)
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
	db := e.open(t)
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("Open returned after %v while the write lock was held", d)
	}
	if _, err := db.Exec(ctx, sqlSetCounter, 2, 1); err != nil {
		t.Errorf("Exec after open: %v", err)
	}
}

// killChildEnv, when set, makes TestSQLiteKeepsAckedWritesAfterKill act as
// the process to be killed, writing to the database file it names.
const killChildEnv = "HOTPATH_STORE_KILL_CHILD_DB"

// killBatch is the set of counters write number v sets to v.
func killBatch(v int32) []int32 {
	ids := make([]int32, 10)
	for k := range ids {
		ids[k] = (v*7+int32(k)*31)%300 + 1
	}
	return ids
}

// TestSQLiteKeepsAckedWritesAfterKill kills a writing process with SIGKILL
// and checks the file: intact, every acknowledged write present, and no
// write half-applied.
func TestSQLiteKeepsAckedWritesAfterKill(t *testing.T) {
	if path := os.Getenv(killChildEnv); path != "" {
		db, err := Open(context.Background(), Options{Driver: "sqlite", DSN: path, Components: testComponents()})
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(1)
		}
		for v := int32(1); v < 30000; v++ { // bounded, in case nobody kills us
			if err := setCounters(context.Background(), db, killBatch(v), v); err != nil {
				fmt.Println("write:", err)
				os.Exit(1)
			}
			fmt.Println(v) // the acknowledgement
		}
		os.Exit(0)
	}
	t.Parallel()
	e := sqliteEnv(t)
	closeDB(t, e.open(t)) // migrated before the child starts

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
		if acked = int32(v); acked >= 300 {
			break
		}
	}
	_ = cmd.Process.Kill() // SIGKILL: no chance to finish or close anything
	_ = cmd.Wait()
	if acked < 300 {
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
	stored := allCounters(t, e.open(t))
	for v := int32(1); v <= acked; v++ {
		for _, id := range killBatch(v) {
			if got := stored[id]; got < v {
				t.Fatalf("counter %d holds %d, but write %d, which set it to %d, was acknowledged", id, got, v, v)
			}
		}
	}
	for id, v := range stored {
		if v == 0 {
			continue // never written by the child
		}
		for _, x := range killBatch(v) {
			if got := stored[x]; got < v {
				t.Fatalf("write %d is half-applied: counter %d has it, counter %d holds %d", v, id, x, got)
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
		db := e.open(t)
		ctx := context.Background()
		for round := range 3 {
			conn, err := db.lite.write.Conn(ctx)
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
		if st := db.lite.write.Stats(); st.MaxLifetimeClosed == 0 {
			t.Errorf("db.sqlite_synchronous %q: the writer was never reopened (stats %+v), so only one connection was checked", tc.setting, st)
		}
	}
	if db, err := Open(context.Background(), Options{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "x.db"), SQLiteSynchronous: "off"}); err == nil ||
		!strings.Contains(err.Error(), "db.sqlite_synchronous") {
		if db != nil {
			_ = db.Close()
		}
		t.Errorf(`Open with SQLiteSynchronous "off": %v; want an error naming db.sqlite_synchronous`, err)
	}
}
