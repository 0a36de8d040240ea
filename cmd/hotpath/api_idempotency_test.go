package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hotpath/hotpath/internal/testenv"
)

// otherToken is a second caller's token, for the scoping tests.
const otherToken = "other-token-0123456789abcdef"

// keyed sends a write with the test token and an Idempotency-Key.
func keyed(t *testing.T, method, url, key, body string, headers ...string) (*http.Response, string) {
	t.Helper()
	h := append([]string{"Content-Type", "application/json", authHeader[0], authHeader[1], "Idempotency-Key", key}, headers...)
	return send(t, method, url, body, h...)
}

// sameAnswer checks a replay carries the first answer unchanged, and says
// it is a replay.
func sameAnswer(t *testing.T, what string, first *http.Response, firstBody string, again *http.Response, againBody string) {
	t.Helper()
	if again.StatusCode != first.StatusCode || againBody != firstBody {
		t.Errorf("%s: %d %q, the first answer was %d %q", what, again.StatusCode, againBody, first.StatusCode, firstBody)
	}
	for _, h := range []string{"Location", "ETag", "Content-Type", "Cache-Control"} {
		if again.Header.Get(h) != first.Header.Get(h) {
			t.Errorf("%s: %s %q, the first answer had %q", what, h, again.Header.Get(h), first.Header.Get(h))
		}
	}
	if got := again.Header.Get("Idempotency-Replayed"); got != "true" {
		t.Errorf("%s: Idempotency-Replayed %q, want true", what, got)
	}
	if first.Header.Get("Idempotency-Replayed") != "" {
		t.Errorf("%s: the first answer says it is a replay", what)
	}
}

func TestIdempotencyKeyReplaysTheAnswer(t *testing.T) {
	t.Setenv("HOTPATH_AUTH__TOKENS", apiToken+","+otherToken)
	forEachDriver(t, func(t *testing.T, p *proc, db database) {
		ctx := context.Background()
		url := p.app + "/api/v1/fortunes"
		before := fortuneCount(t, db)
		first, firstBody := keyed(t, "POST", url, `"create-1"`, `{"message":"only once"}`)
		if first.StatusCode != 201 {
			t.Fatalf("POST with a key: %d %s", first.StatusCode, firstBody)
		}
		// The quoted key of the draft and the bare token are one key.
		again, againBody := keyed(t, "POST", url, `create-1`, `{"message":"only once"}`)
		sameAnswer(t, "retried POST", first, firstBody, again, againBody)
		if n := fortuneCount(t, db); n != before+1 {
			t.Errorf("two POSTs with one key added %d fortunes, want 1", n-before)
		}
		resp, body := keyed(t, "POST", url, `create-1`, `{"message":"another text"}`)
		expectProblem(t, "the key with another body", resp, body, 422)
		resp, body = keyed(t, "POST", url+"?x=1", `create-1`, `{"message":"only once"}`)
		expectProblem(t, "the key on another target", resp, body, 422)

		// Another caller's key of the same name is its own.
		resp, body = send(t, "POST", url, `{"message":"only once"}`, "Content-Type", "application/json",
			"Authorization", "Bearer "+otherToken, "Idempotency-Key", "create-1")
		if resp.StatusCode != 201 || resp.Header.Get("Idempotency-Replayed") != "" || body == firstBody {
			t.Errorf("another caller, same key: %d %q (replayed %q); want a fortune of its own", resp.StatusCode, body, resp.Header.Get("Idempotency-Replayed"))
		}

		for _, bad := range []string{`"a b"`, `a,b`, strings.Repeat("k", 256), `"unterminated`, `""`, "caf\u00e9"} {
			resp, body := keyed(t, "POST", url, bad, `{"message":"bad key"}`)
			expectProblem(t, "Idempotency-Key "+bad, resp, body, 400)
		}
		req, _ := http.NewRequest("POST", url, strings.NewReader(`{"message":"two keys"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(authHeader[0], authHeader[1])
		req.Header.Add("Idempotency-Key", "k1")
		req.Header.Add("Idempotency-Key", "k2")
		if resp, err := client.Do(req); err != nil || resp.StatusCode != 400 {
			t.Errorf("two Idempotency-Key headers: %v %v, want 400", resp.StatusCode, err)
		} else {
			resp.Body.Close()
		}
		// A refused write stores nothing: the key stays free.
		resp, body = keyed(t, "POST", url, "refused-first", `{"message":""}`)
		expectProblem(t, "invalid body with a key", resp, body, 422, "message")
		if resp, body := keyed(t, "POST", url, "refused-first", `{"message":"valid now"}`); resp.StatusCode != 201 {
			t.Errorf("the key of a refused write, reused: %d %s", resp.StatusCode, body)
		}

		// PUT: the retry is answered from the record, not written again.
		wurl := p.app + "/api/v1/worlds/77"
		w1, w1Body := keyed(t, "PUT", wurl, "put-1", `{"randomNumber":4321}`)
		if w1.StatusCode != 200 {
			t.Fatalf("PUT with a key: %d %s", w1.StatusCode, w1Body)
		}
		// Someone else writes the World; a retry must not write it back.
		if _, err := db.SetWorld(ctx, 77, 1111); err != nil {
			t.Fatal(err)
		}
		w2, w2Body := keyed(t, "PUT", wurl, "put-1", `{"randomNumber":4321}`)
		sameAnswer(t, "retried PUT", w1, w1Body, w2, w2Body)
		if w, _ := db.World(ctx, 77); w.RandomNumber != 1111 {
			t.Errorf("World 77 holds %d after a replayed PUT, want the later write's 1111", w.RandomNumber)
		}

		// DELETE: the retry gets the 204, not a 404.
		f, err := db.AddFortune(ctx, "delete me once")
		if err != nil {
			t.Fatal(err)
		}
		durl := fmt.Sprintf("%s/api/v1/fortunes/%d", p.app, f.ID)
		d1, d1Body := keyed(t, "DELETE", durl, "del-1", "")
		if d1.StatusCode != 204 {
			t.Fatalf("DELETE with a key: %d %s", d1.StatusCode, d1Body)
		}
		d2, d2Body := keyed(t, "DELETE", durl, "del-1", "")
		sameAnswer(t, "retried DELETE", d1, d1Body, d2, d2Body)
		resp, body = keyed(t, "DELETE", durl, "del-2", "")
		expectProblem(t, "DELETE of the gone fortune with a new key", resp, body, 404)
	})
}

// keyedResult is one answer of a concurrent keyed request.
type keyedResult struct {
	status   int
	body     string
	location string
	replayed bool
	err      error
}

// sendKeyedUntilAnswered sends a keyed POST from any goroutine, retrying
// as a client would while the answer says to (409: the key is in flight;
// 503: the database is busy, as a shared one can be), and returns the
// final answer.
func sendKeyedUntilAnswered(url, key, body string) keyedResult {
	for range 200 {
		req, err := http.NewRequest("POST", url, strings.NewReader(body))
		if err != nil {
			return keyedResult{err: err}
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(authHeader[0], authHeader[1])
		req.Header.Set("Idempotency-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			return keyedResult{err: err}
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return keyedResult{err: err}
		}
		if resp.StatusCode == 409 || resp.StatusCode == 503 {
			if resp.Header.Get("Retry-After") == "" {
				return keyedResult{err: fmt.Errorf("%d without Retry-After: %s", resp.StatusCode, b)}
			}
			time.Sleep(20 * time.Millisecond) // Retry-After says 1s; the test is impatient
			continue
		}
		return keyedResult{status: resp.StatusCode, body: string(b), location: resp.Header.Get("Location"),
			replayed: resp.Header.Get("Idempotency-Replayed") == "true"}
	}
	return keyedResult{err: fmt.Errorf("still told to retry after 200 tries")}
}

// atOnce runs send(0..n-1) from n goroutines released at once and returns
// the answers in order.
func atOnce(n int, send func(i int) keyedResult) []keyedResult {
	results := make([]keyedResult, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			results[i] = send(i)
		}()
	}
	start.Done()
	done.Wait()
	return results
}

// expectOneAnswer checks concurrent keyed requests made one fortune and
// all got its answer.
func expectOneAnswer(t *testing.T, results []keyedResult) {
	t.Helper()
	fresh := 0
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("request %d: %v", i, r.err)
		}
		if r.status != 201 || r.body != results[0].body || r.location != results[0].location {
			t.Errorf("request %d: %d %q at %q; request 0: %d %q at %q", i, r.status, r.body, r.location, results[0].status, results[0].body, results[0].location)
		}
		if !r.replayed {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d of %d requests say they made the change, want 1", fresh, len(results))
	}
}

// TestIdempotentPostRetriedConcurrently: 20 copies of one keyed POST from
// several goroutines at once create one fortune, and every answer is it.
func TestIdempotentPostRetriedConcurrently(t *testing.T) {
	withToken(t)
	forEachDriver(t, func(t *testing.T, p *proc, db database) {
		before := fortuneCount(t, db)
		expectOneAnswer(t, atOnce(20, func(int) keyedResult {
			return sendKeyedUntilAnswered(p.app+"/api/v1/fortunes", "burst-1", `{"message":"twenty tries, one fortune"}`)
		}))
		if got := fortuneCount(t, db); got != before+1 {
			t.Errorf("20 concurrent copies of one keyed POST added %d fortunes, want 1", got-before)
		}
	})
}

// TestIdempotencyKeySurvivesKill9 sends a keyed POST over a raw connection
// and never reads the answer; once the fortune is in the database the
// process is killed with SIGKILL, so the client has no answer, whatever
// the server managed to write to its socket. A new process on the same
// database answers the retry from the record: the same fortune, once.
func TestIdempotencyKeySurvivesKill9(t *testing.T) {
	withToken(t)
	for _, d := range drivers() {
		t.Run(d.name, func(t *testing.T) {
			args := d.args(t)
			driver, dsn := strings.TrimPrefix(args[0], "--db.driver="), strings.TrimPrefix(args[1], "--db.dsn=")
			p := startProc(t, args...)
			waitReady(t, p)
			db := openDirect(t, driver, dsn)
			before := fortuneCount(t, db)

			const msg = "committed, then the process died"
			body := `{"message":"` + msg + `"}`
			conn, err := net.Dial("tcp", strings.TrimPrefix(p.app, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			req := "POST /api/v1/fortunes HTTP/1.1\r\nHost: hotpath\r\nContent-Type: application/json\r\n" +
				"Authorization: Bearer " + apiToken + "\r\nIdempotency-Key: kill-9\r\n" +
				fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
			if _, err := conn.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
			var stored *Fortune
			for deadline := time.Now().Add(10 * time.Second); stored == nil && time.Now().Before(deadline); {
				fs, err := db.Fortunes(context.Background(), nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range fs {
					if f.Message == msg {
						stored = &f
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
			if stored == nil {
				t.Fatal("the keyed POST never reached the database")
			}
			if err := p.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			p.wait(t, 10*time.Second)
			conn.Close() // the client gives up on the answer it never read

			p2 := startProc(t, args...)
			defer p2.stop(t)
			waitReady(t, p2)
			resp, got := keyed(t, "POST", p2.app+"/api/v1/fortunes", "kill-9", body)
			if resp.StatusCode != 201 || resp.Header.Get("Idempotency-Replayed") != "true" ||
				resp.Header.Get("Location") != fmt.Sprintf("/api/v1/fortunes/%d", stored.ID) {
				t.Errorf("retry after kill -9: %d %q at %q (replayed %q), want the stored fortune %d",
					resp.StatusCode, got, resp.Header.Get("Location"), resp.Header.Get("Idempotency-Replayed"), stored.ID)
			}
			if n := fortuneCount(t, db); n != before+1 {
				t.Errorf("the POST and its retry across a kill -9 added %d fortunes, want 1", n-before)
			}
		})
	}
}

// TestIdempotencyAcrossReplicas runs two processes on one PostgreSQL
// database: a key used on one is answered from the record by the other;
// while the first request is still in flight, the other answers 409 with
// Retry-After; copies sent to both at once make one fortune.
func TestIdempotencyAcrossReplicas(t *testing.T) {
	withToken(t)
	dsn := testenv.PostgresDSN(t)
	// The test holds a row lock that a's PUT waits for until the test has
	// seen it waiting, however slow the machine: db.timeout, which is also
	// PostgreSQL's lock_timeout, must not end that wait first.
	const dbTimeout = 5 * time.Minute
	args := []string{"--db.driver=postgres", "--db.dsn=" + dsn, "--db.timeout=" + dbTimeout.String()}
	a, b := startProc(t, args...), startProc(t, args...)
	defer a.stop(t)
	defer b.stop(t)
	waitReady(t, a)
	waitReady(t, b)
	db := openDirect(t, "postgres", dsn)

	first, firstBody := keyed(t, "POST", a.app+"/api/v1/fortunes", "replica-1", `{"message":"made on a"}`)
	again, againBody := keyed(t, "POST", b.app+"/api/v1/fortunes", "replica-1", `{"message":"made on a"}`)
	if first.StatusCode != 201 {
		t.Fatalf("POST on a: %d %s", first.StatusCode, firstBody)
	}
	sameAnswer(t, "the retry on b", first, firstBody, again, againBody)

	// Hold World 5's row lock, so a keyed PUT on a stays in flight.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT id FROM World WHERE id = 5 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		resp *http.Response
		body string
		err  error
	}
	onA := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("PUT", a.app+"/api/v1/worlds/5", strings.NewReader(`{"randomNumber":555}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(authHeader[0], authHeader[1])
		req.Header.Set("Idempotency-Key", "in-flight")
		// Not the shared client: its 10s timeout would give up on the
		// PUT while it rightly waits for the lock.
		resp, err := (&http.Client{Timeout: dbTimeout + time.Minute}).Do(req)
		if err != nil {
			onA <- answer{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		onA <- answer{resp, string(b), err}
	}()
	// Wait until a's transaction holds the key and waits for the row: a
	// backend of this database blocked by the test's own, whatever the
	// statement it runs. Should a's PUT answer instead, nothing will wait.
	// The look runs on a connection of its own: inside the test's
	// transaction pg_stat_activity would stay the snapshot of its first
	// read.
	var holder int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&holder); err != nil {
		t.Fatal(err)
	}
	watch, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(ctx)
	for waiting := 0; waiting == 0; time.Sleep(20 * time.Millisecond) {
		select {
		case got := <-onA:
			if got.err != nil {
				t.Fatalf("a's PUT failed before it was seen waiting for the row lock the test holds: %v", got.err)
			}
			t.Fatalf("a's PUT answered %d %s before it was seen waiting for the row lock the test holds", got.resp.StatusCode, got.body)
		default:
		}
		if err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND $1 = ANY(pg_blocking_pids(pid))`, holder).Scan(&waiting); err != nil {
			t.Fatalf("look for a's PUT waiting for the lock: %v", err)
		}
	}
	resp, body := keyed(t, "PUT", b.app+"/api/v1/worlds/5", "in-flight", `{"randomNumber":555}`)
	expectProblem(t, "the key in flight on the other replica", resp, body, 409)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("409 without Retry-After")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	fromA := <-onA
	if fromA.err != nil || fromA.resp.StatusCode != 200 {
		t.Fatalf("a's PUT after the lock was released: %+v", fromA)
	}
	resp, body = keyed(t, "PUT", b.app+"/api/v1/worlds/5", "in-flight", `{"randomNumber":555}`)
	sameAnswer(t, "the retry on b after a finished", fromA.resp, fromA.body, resp, body)

	before := fortuneCount(t, db)
	expectOneAnswer(t, atOnce(20, func(i int) keyedResult {
		target := []*proc{a, b}[i%2]
		return sendKeyedUntilAnswered(target.app+"/api/v1/fortunes", "both-replicas", `{"message":"sent to both"}`)
	}))
	if got := fortuneCount(t, db); got != before+1 {
		t.Errorf("20 copies of one keyed POST on two replicas added %d fortunes, want 1", got-before)
	}
}

// TestIdempotencyKeysExpire: with api.idempotency_ttl = 1s a key's answer
// is pruned from the table, and the key then makes a new change.
func TestIdempotencyKeysExpire(t *testing.T) {
	withToken(t)
	p := startProc(t, "--api.idempotency_ttl=1s")
	defer p.stop(t)
	path := dbPath(t, p)
	first, _ := keyed(t, "POST", p.app+"/api/v1/fortunes", "short-lived", `{"message":"kept a second"}`)
	if first.StatusCode != 201 {
		t.Fatalf("POST: %d", first.StatusCode)
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	waitFor(t, 10*time.Second, "the expired answer pruned", func() bool {
		var n int
		if err := raw.QueryRow("SELECT count(*) FROM idempotency_keys").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
	again, _ := keyed(t, "POST", p.app+"/api/v1/fortunes", "short-lived", `{"message":"kept a second"}`)
	if again.StatusCode != 201 || again.Header.Get("Idempotency-Replayed") != "" || again.Header.Get("Location") == first.Header.Get("Location") {
		t.Errorf("the key after expiry: %d at %q (replayed %q), want a new fortune", again.StatusCode, again.Header.Get("Location"), again.Header.Get("Idempotency-Replayed"))
	}
	if !strings.Contains(p.stderr.String(), "idempotency keys pruned") {
		t.Errorf("no prune logged:\n%s", p.stderr.String())
	}
}
