package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotpath/hotpath/internal/testenv"
)

// TestRollingRestart runs three replicas on one PostgreSQL database behind
// a readiness-aware balancer and replaces each in turn, the way a
// Deployment with maxSurge 1 and maxUnavailable 0 does, while clients send
// a mix of reads and writes through the balancer. No request may fail, every
// old replica must exit 0, and a write through one replica must be read
// through another.
func TestRollingRestart(t *testing.T) {
	const (
		replicas  = 3
		pollEvery = 50 * time.Millisecond
		// drain must outlast the balancer's probe interval with room to
		// spare on a busy machine, as preStop + shutdown.drain must outlast
		// endpoint propagation on a cluster.
		drain = 300 * time.Millisecond
	)
	dsn := testenv.PostgresDSN(t)
	args := []string{
		"--db.driver=postgres", "--db.dsn=" + dsn,
		"--auth.tokens=" + apiToken,
		"--shutdown.drain=" + drain.String(), "--shutdown.timeout=5s",
	}

	// All three start at once on an empty database, so they migrate
	// concurrently, as replicas of a new Deployment do.
	old := startReplicas(t, replicas, args)
	applied := map[string]int{}
	for _, p := range old {
		waitReady(t, p)
		for _, v := range migrationsApplied(p.stderr.String()) {
			applied[v]++
		}
	}
	if len(applied) == 0 {
		t.Errorf("no replica logged an applied migration on an empty database")
	}
	for v, n := range applied {
		if n != 1 {
			t.Errorf("migration %s applied %d times across %d replicas starting together, want once", v, n, replicas)
		}
	}
	db := openDirect(t, "postgres", dsn)
	worldsIntact(t, db)
	if n := fortuneCount(t, db); n != 12 {
		t.Errorf("Fortune has %d rows after concurrent start, want 12", n)
	}
	writeThroughReadElsewhere(t, old)

	lb := newBalancer(t, pollEvery)
	backends := make([]*backend, replicas)
	for i, p := range old {
		backends[i] = lb.add(fmt.Sprintf("old-%d", i), p)
		backends[i].waitReady(t, true, 5*time.Second)
	}

	ld := startLoad(t, lb.url, 4)
	time.Sleep(500 * time.Millisecond) // traffic on the old set first

	rollStart := time.Now()
	var fresh []*proc
	for i, p := range old {
		stepStart := time.Now()
		np := startProc(t, args...)
		waitReady(t, np)
		started := time.Since(stepStart)
		nb := lb.add(fmt.Sprintf("new-%d", i), np)
		inRotation := nb.waitReady(t, true, 5*time.Second)
		fresh = append(fresh, np)

		sigAt := time.Now()
		p.signal(t, syscall.SIGTERM)
		out := backends[i].waitReady(t, false, 5*time.Second)
		code := p.wait(t, 10*time.Second)
		exited := time.Since(sigAt)
		lb.remove(backends[i])
		if code != 0 {
			t.Errorf("old-%d: exit status %d after SIGTERM, want 0:\n%s", i, code, p.stderr.String())
		}
		if !backends[i].drained.Load() {
			t.Errorf("old-%d left the rotation by not answering, not by /readyz 503 while draining", i)
		}
		t.Logf("step %d: new replica ready in %s, in rotation %s later; old-%d out of rotation %s after SIGTERM, exited %s after SIGTERM (drain %s)",
			i, ms(started), ms(inRotation), i, ms(out), ms(exited), drain)
		time.Sleep(300 * time.Millisecond) // traffic on the new set between steps
	}
	rollTook := time.Since(rollStart)
	time.Sleep(500 * time.Millisecond) // traffic on the new set only
	res := ld.finish()

	t.Logf("rolling restart of %d replicas took %s", replicas, ms(rollTook))
	t.Logf("through the balancer: %d requests (%d GET /json, %d GET world, %d PUT world), %d failed; balancer retries %d, transport resends %d, balancer 5xx %d",
		res.total(), res.ok["json"], res.ok["get"], res.ok["put"], len(res.failures)+res.moreFailures,
		lb.retries.Load(), lb.resends.Load(), lb.failed.Load())
	lb.mu.Lock()
	all := append(append([]*backend{}, backends...), lb.backends...)
	lb.mu.Unlock()
	for _, be := range all {
		t.Logf("%s served %d", be.name, be.served.Load())
		if be.served.Load() == 0 {
			t.Errorf("%s served nothing: the balancer did not spread the load", be.name)
		}
	}

	for _, f := range res.failures {
		t.Errorf("request failed: %s", f)
	}
	if res.moreFailures > 0 {
		t.Errorf("and %d more failed requests", res.moreFailures)
	}
	for _, kind := range []string{"json", "get", "put"} {
		if res.ok[kind] == 0 {
			t.Errorf("no %s request succeeded: the load did not run", kind)
		}
	}
	// Every acknowledged write survived the restart of every replica.
	lost := 0
	for id, want := range res.acked {
		_, body := get(t, "GET", fresh[id%len(fresh)].app+fmt.Sprintf("/api/v1/worlds/%d", id))
		w := decodeWorlds(t, "GET world after the restart", body, false)[0]
		if w.RandomNumber != want {
			lost++
			if lost <= 5 {
				t.Errorf("world %d holds %d after the restart, but %d was acknowledged last", id, w.RandomNumber, want)
			}
		}
	}
	t.Logf("%d worlds written through the balancer, %d acknowledged values lost", len(res.acked), lost)
	writeThroughReadElsewhere(t, fresh)
	for _, p := range fresh {
		p.stop(t)
	}
}

// startReplicas launches n replicas at once and waits until each serves.
func startReplicas(t *testing.T, n int, args []string) []*proc {
	t.Helper()
	ps := make([]*proc, n)
	addrs := make([]chan [2]string, n)
	for i := range ps {
		ps[i], addrs[i] = launch(t, args...)
	}
	for i, p := range ps {
		select {
		case a := <-addrs[i]:
			p.app, p.admin = "http://"+a[0], "http://"+a[1]
		case err := <-p.exited:
			t.Fatalf("replica %d exited before serving: %v\n%s", i, err, p.stderr.String())
		case <-time.After(20 * time.Second):
			t.Fatalf("replica %d did not start in 20s:\n%s", i, p.stderr.String())
		}
	}
	return ps
}

// migrationsApplied lists the versions a process logged as applied.
func migrationsApplied(stderr string) []string {
	var vs []string
	for _, l := range strings.Split(stderr, "\n") {
		var line struct {
			Msg     string          `json:"msg"`
			Version json.RawMessage `json:"version"`
		}
		if json.Unmarshal([]byte(l), &line) == nil && line.Msg == "migration applied" {
			vs = append(vs, string(line.Version))
		}
	}
	return vs
}

// writeThroughReadElsewhere PUTs a new randomNumber through each replica
// directly and reads it back through the next one: the replicas share one
// database and keep no copy of a World that a read would answer from.
func writeThroughReadElsewhere(t *testing.T, ps []*proc) {
	t.Helper()
	for i, a := range ps {
		b := ps[(i+1)%len(ps)]
		id := 9000 + rand.IntN(1000)
		number := 1 + rand.IntN(10000)
		resp, body := sendJSON(t, "PUT", a.app+fmt.Sprintf("/api/v1/worlds/%d", id), fmt.Sprintf(`{"randomNumber":%d}`, number))
		if resp.StatusCode != 200 {
			t.Fatalf("PUT world %d through %s: status %d %s", id, a.app, resp.StatusCode, body)
		}
		resp, body = get(t, "GET", b.app+fmt.Sprintf("/api/v1/worlds/%d", id))
		if resp.StatusCode != 200 {
			t.Fatalf("GET world %d through %s: status %d %s", id, b.app, resp.StatusCode, body)
		}
		if w := decodeWorlds(t, "GET world", body, false)[0]; w.ID != id || w.RandomNumber != number {
			t.Errorf("world %d written as %d through %s reads %+v through %s", id, number, a.app, w, b.app)
		}
	}
}

// ms rounds d for a log line.
func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// load is a few clients sending a fixed mix through one URL until told to
// stop, or until each has sent its cap.
type load struct {
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
	mu   sync.Mutex
	res  loadResult
}

// loadResult is what the clients saw.
type loadResult struct {
	ok           map[string]int
	acked        map[int]int // world id -> randomNumber last acknowledged
	failures     []string    // the first few, for the report
	moreFailures int
}

// total counts every request sent, answered or not.
func (r *loadResult) total() int {
	return r.ok["json"] + r.ok["get"] + r.ok["put"] + len(r.failures) + r.moreFailures
}

// perClientCap bounds the run even if the test is slow to stop it.
const perClientCap = 20000

// startLoad starts n clients against base. Each keeps one keep-alive
// connection, paces itself so that the replicas keep some of the machine's
// CPU, and writes only to its own World ids, so that its last acknowledged
// value for an id is the one the database must hold. The clients stop when
// the test ends, even if it ends early.
func startLoad(t *testing.T, base string, n int) *load {
	l := &load{stop: make(chan struct{}), res: loadResult{ok: map[string]int{}, acked: map[int]int{}}}
	for c := range n {
		l.wg.Go(func() { l.client(base, c) })
	}
	t.Cleanup(func() { l.finish() })
	return l
}

// finish stops the clients and returns what they saw.
func (l *load) finish() loadResult {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.res
}

// client sends GET /json, GET and PUT /api/v1/worlds/{id} in turn.
func (l *load) client(base string, c int) {
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := range perClientCap {
		select {
		case <-l.stop:
			return
		default:
		}
		id := 1 + c*100 + rand.IntN(50)
		var kind, method, path, body string
		switch i % 3 {
		case 0:
			kind, method, path = "json", "GET", "/json"
		case 1:
			kind, method, path = "get", "GET", fmt.Sprintf("/api/v1/worlds/%d", id)
		default:
			kind, method, path = "put", "PUT", fmt.Sprintf("/api/v1/worlds/%d", id)
			body = fmt.Sprintf(`{"randomNumber":%d}`, 1+rand.IntN(10000))
		}
		got, err := do(hc, method, base+path, body)
		if err == nil {
			err = checkAnswer(kind, id, body, got)
		}
		l.record(kind, method+" "+path, id, got, err)
		time.Sleep(2 * time.Millisecond)
	}
}

// do sends one request and reads the whole answer; a short body is an error.
func do(hc *http.Client, method, url, body string) (string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(authHeader[0], authHeader[1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read body after status %d from %s: %w", resp.StatusCode, resp.Header.Get("X-Backend"), err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d from %s: %s", resp.StatusCode, resp.Header.Get("X-Backend"), b)
	}
	return string(b), nil
}

// checkAnswer checks a 200 body is whole and says what was asked.
func checkAnswer(kind string, id int, sent, got string) error {
	if kind == "json" {
		if got != `{"message":"Hello, World!"}` {
			return fmt.Errorf("body %q", got)
		}
		return nil
	}
	var w struct {
		ID           *int `json:"id"`
		RandomNumber *int `json:"randomNumber"`
	}
	if err := json.Unmarshal([]byte(got), &w); err != nil || w.ID == nil || w.RandomNumber == nil {
		return fmt.Errorf("body %q is not a World (%v)", got, err)
	}
	if *w.ID != id {
		return fmt.Errorf("asked for world %d, got %q", id, got)
	}
	if kind == "put" && sent != fmt.Sprintf(`{"randomNumber":%d}`, *w.RandomNumber) {
		return fmt.Errorf("sent %s, answer %q", sent, got)
	}
	return nil
}

// record counts one answer; for a PUT it keeps the acknowledged value.
func (l *load) record(kind, what string, id int, body string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if len(l.res.failures) < 10 {
			l.res.failures = append(l.res.failures, fmt.Sprintf("%s: %v", what, err))
		} else {
			l.res.moreFailures++
		}
		return
	}
	l.res.ok[kind]++
	if kind == "put" {
		var w world
		_ = json.Unmarshal([]byte(body), &w) // checkAnswer has decoded it already
		l.res.acked[id] = w.RandomNumber
	}
}
