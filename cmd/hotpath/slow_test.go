package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// metricValue reads one unlabelled metric from the admin listener.
func metricValue(t *testing.T, p *proc, name string) float64 {
	t.Helper()
	_, body := get(t, "GET", p.admin+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %q: %v", name, line, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not in /metrics", name)
	return 0
}

// rssBytes is the resident set size of the process.
func rssBytes(t *testing.T, p *proc) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatalf("VmRSS %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T, p *proc) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// plaintextLatencies times n sequential keep-alive GET /plaintext.
func plaintextLatencies(t *testing.T, p *proc, n int) []time.Duration {
	t.Helper()
	conn := dialApp(t, p, "")
	defer conn.Close()
	r := bufio.NewReader(conn)
	out := make([]time.Duration, 0, n)
	for i := range n {
		start := time.Now()
		if _, err := conn.Write([]byte("GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := readPlaintext(r); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		out = append(out, time.Since(start))
		time.Sleep(5 * time.Millisecond)
	}
	slices.Sort(out)
	return out
}

// readPlaintext reads one /plaintext answer off a keep-alive connection.
func readPlaintext(r *bufio.Reader) error {
	status, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(status, "HTTP/1.1 200") {
		return fmt.Errorf("status line %q", status)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			break
		}
	}
	body := make([]byte, len("Hello, World!"))
	_, err = r.Read(body[:cap(body)])
	return err
}

func TestSlowClientsAreCutAtReadTimeout(t *testing.T) {
	p := startProc(t, "--server.read_timeout=1s")
	defer p.stop(t)
	baseline := openFDs(t, p)

	cases := []struct {
		name    string
		payload string // sent at once
		trickle string // then one byte every 100ms
		want    int    // status, 0 for a bare close
	}{
		{"silent connection", "", "", 408},
		{"partial header then silence", "GET /plaintext HTTP/1.1\r\nHost: x\r\nX-A: ", "", 408},
		{"header trickled a byte at a time", "GET /plaintext HTTP/1.1\r\n", strings.Repeat("X-Slow: aaaaaaaaaaaa\r\n", 10), 408},
		{"body trickled a byte at a time", "POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", strings.Repeat("b", 1000), 408},
	}
	for _, tc := range cases {
		conn, err := net.Dial("tcp", appAddr(p))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		go func() {
			_, _ = conn.Write([]byte(tc.payload))
			for i := range len(tc.trickle) {
				if _, err := conn.Write([]byte{tc.trickle[i]}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 4096)
		n, _ := conn.Read(b)
		took := time.Since(start)
		conn.Close()
		got := string(b[:n])
		if !strings.HasPrefix(got, fmt.Sprintf("HTTP/1.1 %d", tc.want)) || !strings.Contains(got, "Connection: close") {
			t.Errorf("%s: got %q after %s, want %d and Connection: close", tc.name, head(got), took, tc.want)
		}
		if took < 900*time.Millisecond || took > 3*time.Second {
			t.Errorf("%s: answered after %s, want at the 1s read_timeout", tc.name, took)
		}
	}

	// Slowloris: 200 connections trickling headers while a client measures.
	const lorises = 200
	var wg sync.WaitGroup
	closedAt := make(chan time.Duration, lorises)
	start := time.Now()
	for range lorises {
		conn, err := net.Dial("tcp", appAddr(p))
		if err != nil {
			t.Fatalf("slowloris dial: %v", err)
		}
		wg.Go(func() {
			defer conn.Close()
			_, _ = conn.Write([]byte("GET /plaintext HTTP/1.1\r\n"))
			go func() {
				for range 40 {
					time.Sleep(100 * time.Millisecond)
					if _, err := conn.Write([]byte("X")); err != nil {
						return
					}
				}
			}()
			_ = conn.SetReadDeadline(time.Now().Add(6 * time.Second))
			buf := make([]byte, 512)
			for {
				if _, err := conn.Read(buf); err != nil {
					closedAt <- time.Since(start)
					return
				}
			}
		})
	}
	lat := plaintextLatencies(t, p, 100)
	wg.Wait()
	close(closedAt)
	var latest time.Duration
	for d := range closedAt {
		latest = max(latest, d)
	}
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	t.Logf("with %d slowloris connections: /plaintext p50 %s p99 %s; last slowloris closed after %s", lorises, p50, p99, latest)
	if p99 > 100*time.Millisecond {
		t.Errorf("/plaintext p99 %s next to %d slowloris connections, want under 100ms", p99, lorises)
	}
	if latest > 4*time.Second {
		t.Errorf("the last slowloris connection was closed after %s, want about the 1s read_timeout", latest)
	}
	// fasthttp keeps idle worker goroutines for 10s, so count descriptors.
	waitFor(t, 5*time.Second, "file descriptors back to baseline", func() bool {
		return openFDs(t, p) <= baseline+2
	})
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s after %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestIdleKeepAliveConnectionsAreClosed(t *testing.T) {
	p := startProc(t, "--server.idle_timeout=500ms")
	defer p.stop(t)
	conn := dialApp(t, p, "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
	defer conn.Close()
	r := bufio.NewReader(conn)
	if err := readPlaintext(r); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := r.ReadByte()
	if took := time.Since(start); err == nil || took < 400*time.Millisecond || took > 3*time.Second {
		t.Errorf("idle keep-alive connection: read returned %v after %s, want a close at the 500ms idle_timeout", err, took)
	}
}

func TestMaxConnsPerIPIsHonoured(t *testing.T) {
	p := startProc(t, "--server.max_conns_per_ip=5")
	defer p.stop(t)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 5 {
		c := dialApp(t, p, "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
		held = append(held, c)
		if err := readPlaintext(bufio.NewReader(c)); err != nil {
			t.Fatalf("connection %d within the cap: %v", len(held), err)
		}
	}
	a := exchange(t, appAddr(p), []byte("GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"), 5*time.Second)
	if a.status != 429 || !a.closed || !strings.Contains(a.text, "application/problem+json") {
		t.Errorf("sixth connection from one IP: %q, want a 429 problem and a close", head(a.text))
	}
	held[0].Close()
	held = held[1:]
	waitFor(t, 5*time.Second, "a slot free after closing one connection", func() bool {
		return exchange(t, appAddr(p), []byte("GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 5*time.Second).status == 200
	})
}

// TestTenThousandIdleConnectionsHoldBoundedMemory opens 10,000 keep-alive
// connections, each served once and left idle, and reports the server's RSS.
func TestTenThousandIdleConnectionsHoldBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 connections; runs without -short")
	}
	const conns = 10000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < conns+1000 {
		lim.Cur = min(lim.Max, conns+2000)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < conns+1000 {
			t.Fatalf("RLIMIT_NOFILE %d is too low for %d connections (raise the hard limit): %v", lim.Cur, conns, err)
		}
	}
	p := startProc(t)
	defer p.stop(t)
	before := rssBytes(t, p)
	held := make([]net.Conn, conns)
	defer func() {
		for _, c := range held {
			if c != nil {
				c.Close()
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			buf := make([]byte, 512)
			for i := w; i < conns; i += 8 {
				c, err := net.Dial("tcp", appAddr(p))
				if err != nil {
					errs <- fmt.Errorf("dial %d: %w", i, err)
					return
				}
				held[i] = c
				if _, err := c.Write([]byte("GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
					errs <- err
					return
				}
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Read(buf); err != nil {
					errs <- fmt.Errorf("answer on connection %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	open := metricValue(t, p, "go_goroutines")
	after := rssBytes(t, p)
	start := time.Now()
	lat := plaintextLatencies(t, p, 50)
	perConn := float64(after-before) / conns
	t.Logf("%d idle keep-alive connections: RSS %.1f MiB -> %.1f MiB (%.1f KiB per connection), %.0f goroutines; /plaintext p50 %s p99 %s (%s)",
		conns, float64(before)/(1<<20), float64(after)/(1<<20), perConn/1024, open, lat[len(lat)/2], lat[len(lat)-1], time.Since(start).Round(time.Millisecond))
	if perConn > 64<<10 {
		t.Errorf("%.1f KiB per idle connection, want at most 64 KiB", perConn/1024)
	}
	if lat[len(lat)/2] > 50*time.Millisecond {
		t.Errorf("/plaintext p50 %s next to %d idle connections, want under 50ms", lat[len(lat)/2], conns)
	}
}

// TestSlowReaderIsDroppedAtWriteTimeout pipelines requests for large
// answers and reads nothing: once the socket buffers fill, the server's
// write blocks and must give up at server.write_timeout.
func TestSlowReaderIsDroppedAtWriteTimeout(t *testing.T) {
	p := startProc(t, "--server.write_timeout=1s")
	defer p.stop(t)
	waitReady(t, p)
	baseline := openFDs(t, p)
	conn := dialApp(t, p, "")
	defer conn.Close()
	// Each answer is about 17 KiB: 50 MiB in all, far more than the socket
	// buffers on both sides can hold.
	const requests = 3000
	go func() {
		for range requests {
			if _, err := conn.Write([]byte("GET /cached-queries?count=500 HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
				return
			}
		}
	}()
	time.Sleep(3 * time.Second) // read nothing, well past write_timeout
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var total int
	buf := make([]byte, 64<<10)
	for {
		n, err := conn.Read(buf)
		total += n
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("connection still open 13s after the reader stalled, %d bytes read", total)
			}
			break
		}
	}
	t.Logf("the stalled reader got %d KiB of about %d KiB before the server gave up", total>>10, requests*17)
	if total >= requests*17<<10 {
		t.Errorf("read %d bytes: every answer arrived, so the server never gave up on the stalled reader", total)
	}
	waitFor(t, 5*time.Second, "file descriptors back to baseline", func() bool { return openFDs(t, p) <= baseline+1 })
}
