package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/hotpath/hotpath/internal/testenv"
)

// faultTimeout is db.timeout in these tests: every database call is bounded
// by it, so every answer during a fault must come within it plus slack.
const faultTimeout = 500 * time.Millisecond

// faultSlack covers process scheduling on a busy machine.
const faultSlack = 1500 * time.Millisecond

// pgBehindProxy returns a throwaway PostgreSQL database's DSN, the same DSN
// rewritten to go through a fault proxy, and the proxy.
func pgBehindProxy(t *testing.T) (direct, proxied string, proxy *testenv.Proxy) {
	t.Helper()
	direct = testenv.PostgresDSN(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy = testenv.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	return direct, u.String(), proxy
}

// timedGet fetches url and reports status, Retry-After and how long it took.
func timedGet(t *testing.T, url string) (int, string, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, _ := get(t, "GET", url)
	return resp.StatusCode, resp.Header.Get("Retry-After"), time.Since(start)
}

// assertUnavailable checks a database route answers a bounded 503 with
// Retry-After while the database is faulty, and /plaintext stays up.
func assertUnavailable(t *testing.T, p *proc, path, fault string) {
	t.Helper()
	status, retry, took := timedGet(t, p.app+path)
	if status != 503 || retry == "" || took > faultTimeout+faultSlack {
		t.Errorf("%s: %s answered %d (Retry-After %q) after %s, want 503 with Retry-After within db.timeout %s", fault, path, status, retry, took, faultTimeout)
	}
	if status, _, took := timedGet(t, p.app+"/plaintext"); status != 200 || took > 200*time.Millisecond {
		t.Errorf("%s: /plaintext answered %d after %s, want 200 at once", fault, status, took)
	}
}

// assertRecovers waits for readiness and a 200 from path, with no restart.
func assertRecovers(t *testing.T, p *proc, path, fault string) {
	t.Helper()
	waitFor(t, 20*time.Second, "ready again after "+fault, func() bool {
		resp, _ := get(t, "GET", p.admin+"/readyz")
		return resp.StatusCode == 200
	})
	waitFor(t, 10*time.Second, path+" answering 200 after "+fault, func() bool {
		status, _, _ := timedGet(t, p.app+path)
		return status == 200
	})
}

// assertNotReady waits for /readyz to report the fault.
func assertNotReady(t *testing.T, p *proc, fault string) {
	t.Helper()
	waitFor(t, 10*time.Second, "/readyz 503 during "+fault, func() bool {
		resp, _ := get(t, "GET", p.admin+"/readyz")
		return resp.StatusCode == 503
	})
}

func TestPostgresDownAtStart(t *testing.T) {
	_, dsn, proxy := pgBehindProxy(t)
	proxy.SetMode(testenv.Refuse)
	p := startProc(t, "--db.driver=postgres", "--db.dsn="+dsn, "--db.timeout="+faultTimeout.String())
	defer p.stop(t)
	assertNotReady(t, p, "a refused database at start")
	for _, path := range []string{"/db", "/queries?queries=5", "/updates?queries=5", "/fortunes"} {
		assertUnavailable(t, p, path, "refused at start")
	}
	proxy.SetMode(testenv.Pass)
	assertRecovers(t, p, "/db", "the database came up")
	if status, _, _ := timedGet(t, p.app+"/fortunes"); status != 200 {
		t.Errorf("/fortunes %d once the database is up, want 200", status)
	}
}

func TestPostgresFaultsMidRun(t *testing.T) {
	_, dsn, proxy := pgBehindProxy(t)
	p := startProc(t, "--admin.pprof", "--db.driver=postgres", "--db.dsn="+dsn, "--db.timeout="+faultTimeout.String())
	defer p.stop(t)
	waitReady(t, p)
	assertRecovers(t, p, "/db", "start")
	baseline := metricValue(t, p, "go_goroutines")

	// Every pooled connection dies at once, as when the server restarts.
	proxy.Cut()
	assertRecovers(t, p, "/updates?queries=10", "every connection was cut")

	proxy.SetMode(testenv.Reset)
	assertUnavailable(t, p, "/db", "connections reset")
	assertUnavailable(t, p, "/updates?queries=10", "connections reset")
	assertNotReady(t, p, "connections reset")
	proxy.SetMode(testenv.Pass)
	assertRecovers(t, p, "/db", "resets ended")

	// A blackhole answers nothing: only deadlines end the wait, so many
	// requests at once must all end at db.timeout, not pile up.
	proxy.SetMode(testenv.Blackhole)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { assertUnavailable(t, p, "/db", "blackhole") })
	}
	wg.Wait()
	assertNotReady(t, p, "blackhole")
	proxy.SetMode(testenv.Pass)
	assertRecovers(t, p, "/queries?queries=20", "the blackhole ended")

	// Nothing may stay stuck in a handler or the database driver. fasthttp
	// keeps idle workers up to 20s, so the count alone says little; the
	// stacks say where each goroutine waits.
	var now float64
	waitFor(t, 10*time.Second, "no goroutine left in a handler or the driver", func() bool {
		_, dump := get(t, "GET", p.admin+"/debug/pprof/goroutine?debug=1")
		if !strings.Contains(dump, "goroutine profile") {
			t.Fatalf("no goroutine profile from /debug/pprof: %.200s", dump)
		}
		now = metricValue(t, p, "go_goroutines")
		for _, g := range strings.Split(dump, "\n\n") {
			if strings.Contains(g, "internal/handler.") || strings.Contains(g, "internal/store.") || strings.Contains(g, "pgconn.") {
				return false
			}
		}
		return true
	})
	if now > baseline+40 {
		t.Errorf("%.0f goroutines after the faults, %.0f before: more than idle workers can explain", now, baseline)
	}
	t.Logf("goroutines: %.0f before the faults, %.0f after", baseline, now)
}

func TestPostgresPoolExhaustedAnswers503(t *testing.T) {
	direct, dsn, _ := pgBehindProxy(t)
	p := startProc(t, "--db.driver=postgres", "--db.dsn="+dsn, "--db.timeout="+faultTimeout.String(), "--db.max_conns=2")
	defer p.stop(t)
	waitReady(t, p)
	assertRecovers(t, p, "/db", "start")

	// Hold a lock every World query waits on, so the two pooled
	// connections stay busy and every other request queues for the pool.
	ctx := context.Background()
	locker, err := pgx.Connect(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE world IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() { assertUnavailable(t, p, "/db", "pool exhausted behind a lock") })
	}
	wg.Wait()
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	assertRecovers(t, p, "/db", "the lock was released")

	// The server cancelled its statements: none is left waiting on the lock.
	var waiting int
	if err := locker.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()").Scan(&waiting); err != nil {
		t.Fatal(err)
	}
	if waiting != 0 {
		t.Errorf("%d statements still active on the server after the fault, want 0", waiting)
	}
}

func TestSQLiteWriteLockHeldElsewhere(t *testing.T) {
	dsn := t.TempDir() + "/hotpath.db"
	p := startProc(t, "--db.dsn="+dsn, "--db.timeout="+faultTimeout.String())
	defer p.stop(t)
	waitReady(t, p)

	other, err := sql.Open("sqlite", dsn+"?_pragma=busy_timeout(100)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatalf("take the write lock: %v", err)
	}
	assertUnavailable(t, p, "/updates?queries=5", "another process holds the write lock")
	// WAL readers are not blocked by a writer.
	if status, _, took := timedGet(t, p.app+"/db"); status != 200 || took > faultTimeout {
		t.Errorf("/db with the write lock held elsewhere: %d after %s, want 200 at once", status, took)
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	assertRecovers(t, p, "/updates?queries=5", "the write lock was released")
}

// TestInterruptedUpdatesAreAllOrNothing cuts every database connection
// while a large /updates is running, many times. Whatever the answer, the
// rows must change all together or not at all: comparing snapshots, either
// nothing changed or (almost) every id of the request did; the few a
// committed request leaves unchanged are repeated ids and values redrawn
// equal to the old one.
func TestInterruptedUpdatesAreAllOrNothing(t *testing.T) {
	direct, dsn, proxy := pgBehindProxy(t)
	p := startProc(t, "--db.driver=postgres", "--db.dsn="+dsn, "--db.timeout="+faultTimeout.String())
	defer p.stop(t)
	waitReady(t, p)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	snapshot := func() []int32 {
		rows, err := conn.Query(ctx, "SELECT randomNumber FROM world ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil || len(out) != 10000 {
			t.Fatalf("snapshot: %d rows, %v", len(out), err)
		}
		return out
	}
	const path = "/updates?queries=500"
	start := time.Now()
	for range 3 {
		if status, _, _ := timedGet(t, p.app+path); status != 200 {
			t.Fatalf("%s before any fault: %d", path, status)
		}
	}
	typical := time.Since(start) / 3

	outcomes := map[string]int{}
	for i := range 25 {
		before := snapshot()
		cut := time.AfterFunc(time.Duration(i)*typical/25, proxy.Cut)
		status, _, _ := timedGet(t, p.app+path)
		cut.Stop()
		after := snapshot()
		changed := 0
		for id := range before {
			if before[id] != after[id] {
				changed++
			}
		}
		// 500 draws from 10,000 ids repeat about 12; 450 leaves ample room.
		switch {
		case changed == 0:
			outcomes[fmt.Sprintf("%d, nothing changed", status)]++
		case changed >= 450:
			outcomes[fmt.Sprintf("%d, all changed", status)]++
		default:
			t.Errorf("try %d: %s answered %d and changed %d rows: a partial write", i, path, status, changed)
		}
		if status == 200 && changed == 0 {
			t.Errorf("try %d: %s answered 200 but no row changed", i, path)
		}
		assertRecovers(t, p, "/db", "a cut")
	}
	t.Logf("interrupted %s, typical %s: %v", path, typical.Round(time.Millisecond), outcomes)
}

// TestSQLiteKilledMidWriteKeepsAckedWrites kills the server with SIGKILL
// while one client runs /updates back to back, then checks the file: it
// passes integrity_check, and every acknowledged value is still there,
// except where the one request in flight at the kill may have committed.
func TestSQLiteKilledMidWriteKeepsAckedWrites(t *testing.T) {
	dsn := t.TempDir() + "/hotpath.db"
	p := startProc(t, "--db.dsn="+dsn)
	waitReady(t, p)
	const perRequest = 20
	acked := map[int]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := &http.Client{Timeout: 5 * time.Second}
		for {
			resp, err := c.Get(p.app + "/updates?queries=20")
			if err != nil {
				return // the server is gone
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				return
			}
			var ws []world
			if err := json.Unmarshal(body, &ws); err != nil {
				return
			}
			for _, w := range ws {
				acked[w.ID] = w.RandomNumber
			}
		}
	}()
	time.Sleep(700 * time.Millisecond)
	p.signal(t, syscall.SIGKILL)
	<-done
	p.wait(t, 10*time.Second)

	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check after SIGKILL: %q, %v", check, err)
	}
	differ := 0
	for id, want := range acked {
		var got int
		if err := db.QueryRow("SELECT randomNumber FROM World WHERE id = ?", id).Scan(&got); err != nil {
			t.Fatalf("world %d: %v", id, err)
		}
		if got != want {
			differ++
		}
	}
	t.Logf("%d worlds acknowledged before SIGKILL, %d differ afterwards", len(acked), differ)
	if len(acked) == 0 {
		t.Fatalf("no update was acknowledged before the kill")
	}
	if differ > perRequest {
		t.Errorf("%d acknowledged worlds lost their value, more than the %d the request in flight could have rewritten", differ, perRequest)
	}
}
