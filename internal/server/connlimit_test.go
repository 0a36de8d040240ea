package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/config"
)

// startCapped serves "ok" with the given connection caps on loopback.
func startCapped(t *testing.T, concurrency, perIP int) string {
	t.Helper()
	cfg := config.Default().Server
	cfg.Concurrency, cfg.MaxConnsPerIP = concurrency, perIP
	return serveLoopback(t, cfg, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") })
}

// serveLoopback serves h with cfg on a loopback port until the test ends
// and returns the address.
func serveLoopback(t *testing.T, cfg config.Server, h fasthttp.RequestHandler) string {
	t.Helper()
	s := New(cfg, h, slog.New(slog.DiscardHandler))
	ln, err := Listen("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s.Addr().String()
}

// hold opens a keep-alive connection and completes one request on it.
func hold(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a connection within the caps: %v %v", resp, err)
	}
	return c
}

// refused dials once more and returns the answer the server sent before
// closing.
func refused(t *testing.T, addr string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer on a connection over the cap: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestConnectionCapsAnswerWithProblems(t *testing.T) {
	cases := []struct {
		name               string
		concurrency, perIP int
		status             int
	}{
		{"server.concurrency", 2, 0, 503},
		{"server.max_conns_per_ip", 100, 2, 429},
	}
	for _, tc := range cases {
		addr := startCapped(t, tc.concurrency, tc.perIP)
		first := hold(t, addr)
		hold(t, addr)
		resp, body := refused(t, addr)
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" ||
			resp.Header.Get("Retry-After") == "" || !resp.Close || !strings.Contains(body, tc.name) {
			t.Errorf("%s: third connection got %d %v %q, want a %d problem naming the key, with Retry-After, closed",
				tc.name, resp.StatusCode, resp.Header, body, tc.status)
		}
		// Like every answer of the port: Server, and a Date of now.
		date, err := http.ParseTime(resp.Header.Get("Date"))
		if resp.Header.Get("Server") != "hotpath" || err != nil || time.Since(date).Abs() > 5*time.Second {
			t.Errorf("%s: Server %q, Date %q (%v), want hotpath and the current time", tc.name,
				resp.Header.Get("Server"), resp.Header.Get("Date"), err)
		}
		// Closing a connection frees its slot.
		first.Close()
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			c.Close()
			if err == nil && resp.StatusCode == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no slot freed 5s after closing a connection", tc.name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// failingListener fails its first n Accepts the way a process out of file
// descriptors does, then accepts for real.
type failingListener struct {
	net.Listener
	n atomic.Int32
}

func (f *failingListener) Accept() (net.Conn, error) {
	if f.n.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return f.Listener.Accept()
}

// TestAcceptSurvivesRunningOutOfDescriptors: fasthttp ends Serve on any
// accept error but a timeout; the listener must wait and retry instead.
func TestAcceptSurvivesRunningOutOfDescriptors(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{Listener: inner}
	fl.n.Store(3)
	l := newLimitListener(fl, "hotpath", 10, 0, Timeouts{Read: time.Second, Write: time.Second, Idle: time.Second})
	defer l.stopWatching()
	defer l.Close()
	client, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept after 3 EMFILE failures: %v, want the next connection", err)
	}
	c.Close()
	if n := l.acceptErrors.Load(); n != 3 {
		t.Errorf("%d failed accepts retried, want 3", n)
	}
	l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a closed listener: %v, want net.ErrClosed", err)
	}
}
