package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestShutdownUnderLoadLosesNothing sends SIGTERM while clients hammer
// /updates and /plaintext. Every request the server accepted must get its
// whole answer; the only error allowed is a refused connection once the
// listener has closed; every acknowledged update must be in the database.
func TestShutdownUnderLoadLosesNothing(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "hotpath.db")
	p := startProc(t, "--db.dsn="+dsn, "--shutdown.drain=500ms", "--shutdown.timeout=5s")
	waitReady(t, p)

	type tally struct {
		ok, refused int
		other       []string
	}
	var mu sync.Mutex
	counts := map[string]*tally{}
	acked := map[int]int{} // world id -> last acknowledged randomNumber
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := func(path string, onBody func(string)) {
		tr := &http.Transport{MaxIdleConnsPerHost: 1}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		mine := &tally{}
		defer func() {
			mu.Lock()
			defer mu.Unlock()
			if old, ok := counts[path]; ok {
				old.ok, old.refused, old.other = old.ok+mine.ok, old.refused+mine.refused, append(old.other, mine.other...)
			} else {
				counts[path] = mine
			}
		}()
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := c.Get(p.app + path)
			if err != nil {
				// Refused: the listener is closed. Reset with no answer at all:
				// the connection was still in the kernel's accept queue when
				// the listener closed, so the server never read the request.
				// Neither is a request the server accepted.
				if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
					mine.refused++
					return // the server is gone
				}
				mine.other = append(mine.other, err.Error())
				continue
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case err != nil:
				mine.other = append(mine.other, fmt.Sprintf("truncated %s body: %v", path, err))
			case resp.StatusCode != 200:
				mine.other = append(mine.other, fmt.Sprintf("%s: status %d %s", path, resp.StatusCode, body))
			default:
				mine.ok++
				if onBody != nil {
					onBody(string(body))
				}
			}
		}
	}
	// One writer, so the order of acknowledgements is the order of writes.
	wg.Go(func() {
		client("/updates?queries=20", func(body string) {
			for _, w := range decodeWorlds(t, "/updates", body, true) {
				acked[w.ID] = w.RandomNumber
			}
		})
	})
	for range 3 {
		wg.Go(func() { client("/plaintext", nil) })
	}
	wg.Go(func() { client("/json", nil) })

	time.Sleep(1500 * time.Millisecond)
	sigAt := time.Now()
	p.signal(t, syscall.SIGTERM)
	code := p.wait(t, 15*time.Second)
	exitAfter := time.Since(sigAt)
	time.AfterFunc(3*time.Second, func() { close(stop) }) // in case a client never sees a refusal
	wg.Wait()

	if code != 0 {
		t.Errorf("exit status %d after SIGTERM under load, want 0:\n%s", code, p.stderr.String())
	}
	for path, c := range counts {
		t.Logf("%s: %d answered in full, %d refused or reset unread after the listener closed, %d other errors", path, c.ok, c.refused, len(c.other))
		if c.ok == 0 {
			t.Errorf("%s: nothing answered; the load did not run", path)
		}
		for i, e := range c.other {
			if i == 5 {
				t.Errorf("%s: %d more", path, len(c.other)-5)
				break
			}
			t.Errorf("%s: %s (only connections refused or reset unread after the listener closed are allowed)", path, e)
		}
	}
	t.Logf("SIGTERM to exit: %s (drain 500ms)", exitAfter.Round(time.Millisecond))

	db := openDirect(t, "sqlite", dsn)
	lost := 0
	for id, want := range acked {
		w, err := db.World(context.Background(), int32(id))
		if err != nil {
			t.Fatalf("read world %d: %v", id, err)
		}
		if int(w.RandomNumber) != want {
			lost++
			if lost <= 5 {
				t.Errorf("world %d holds %d, but %d was acknowledged last", id, w.RandomNumber, want)
			}
		}
	}
	if len(acked) == 0 {
		t.Errorf("no update was acknowledged")
	}
	t.Logf("%d worlds updated and acknowledged, %d lost", len(acked), lost)
}

// TestShutdownClosesIdleSilentAndStuckConnections sends SIGTERM while an
// idle keep-alive client, a connection that never sent a byte and a client
// stuck in the middle of its body are open: none may hold the process past
// server.read_timeout (or shutdown.timeout).
func TestShutdownClosesIdleSilentAndStuckConnections(t *testing.T) {
	p := startProc(t, "--server.read_timeout=2s", "--shutdown.timeout=10s")
	idle := dialApp(t, p, "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
	defer idle.Close()
	if err := readPlaintext(bufio.NewReader(idle)); err != nil {
		t.Fatal(err)
	}
	silent := dialApp(t, p, "")
	defer silent.Close()
	stuck := dialApp(t, p, "POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf")
	defer stuck.Close()
	time.Sleep(100 * time.Millisecond) // let the server accept all three
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	code := p.wait(t, 15*time.Second)
	took := time.Since(start)
	t.Logf("exit %d %s after SIGTERM with idle, silent and stuck connections open", code, took.Round(time.Millisecond))
	if code != 0 {
		t.Errorf("exit status %d, want 0:\n%s", code, p.stderr.String())
	}
	if took > 5*time.Second {
		t.Errorf("exit took %s, want within the 2s read_timeout plus the drain and slack", took)
	}
}
