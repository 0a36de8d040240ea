package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/config"
)

// watchedPair returns a connection under a running watchdog with timeouts
// t, and its peer, over real TCP.
func watchedPair(t *testing.T, to Timeouts) (*watchedConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	w := newWatchdog(to)
	c := &watchedConn{}
	c.watch(raw, w)
	go w.run(c.expire)
	t.Cleanup(func() { w.close(); raw.Close(); peer.Close() })
	return c, peer
}

// readUntilError reads until Read fails and returns the error and when.
func readUntilError(c net.Conn, start time.Time) (time.Duration, error) {
	b := make([]byte, 64)
	for {
		if _, err := c.Read(b); err != nil {
			return time.Since(start), err
		}
	}
}

func within(took, lo, hi time.Duration) bool { return took >= lo && took <= hi }

func TestTimeoutsEndASilentFirstReadAtReadTimeout(t *testing.T) {
	c, _ := watchedPair(t, Timeouts{Read: 200 * time.Millisecond, Write: time.Second, Idle: 2 * time.Second})
	took, err := readUntilError(c, time.Now())
	if !errors.Is(err, os.ErrDeadlineExceeded) || !within(took, 200*time.Millisecond, time.Second) {
		t.Errorf("silent connection: %v after %s, want a timeout at about 200ms", err, took)
	}
}

func TestTimeoutsGiveAKeepAliveConnectionTheIdleTimeout(t *testing.T) {
	c, peer := watchedPair(t, Timeouts{Read: 100 * time.Millisecond, Write: time.Second, Idle: 500 * time.Millisecond})
	if _, err := peer.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("response")); err != nil {
		t.Fatal(err)
	}
	took, err := readUntilError(c, time.Now())
	if !errors.Is(err, os.ErrDeadlineExceeded) || !within(took, 500*time.Millisecond, 2*time.Second) {
		t.Errorf("idle keep-alive connection: %v after %s, want a timeout at the 500ms idle timeout, not the 100ms read timeout", err, took)
	}
}

func TestTimeoutsBoundTheWholeRequestNotEachRead(t *testing.T) {
	c, peer := watchedPair(t, Timeouts{Read: 300 * time.Millisecond, Write: time.Second, Idle: 5 * time.Second})
	stop := make(chan struct{})
	defer close(stop)
	start := time.Now()
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := peer.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	// Every read returns within 20ms; the request as a whole must not
	// outlive the read timeout that began with its first byte.
	took, err := readUntilError(c, start)
	if !errors.Is(err, os.ErrDeadlineExceeded) || !within(took, 300*time.Millisecond, 1500*time.Millisecond) {
		t.Errorf("trickled request: %v after %s, want a timeout at about 300ms", err, took)
	}
}

func TestTimeoutsEndAWriteToAStalledReader(t *testing.T) {
	c, _ := watchedPair(t, Timeouts{Read: time.Second, Write: 200 * time.Millisecond, Idle: time.Second})
	start := time.Now()
	// Far more than the socket buffers hold; the peer reads nothing.
	n, err := c.Write(make([]byte, 64<<20))
	took := time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) || !within(took, 200*time.Millisecond, 1500*time.Millisecond) {
		t.Errorf("stalled reader: wrote %d bytes, %v after %s; want a timeout at about 200ms", n, err, took)
	}
}

func TestTimeoutsIgnoreAnExpiryMeantForAFinishedRead(t *testing.T) {
	c, peer := watchedPair(t, Timeouts{Read: time.Second, Write: time.Second, Idle: 2 * time.Second})
	if _, err := peer.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	// What the watchdog does when a read ends just as it judges it overdue.
	if err := c.Conn.SetReadDeadline(expired); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, _ = peer.Write([]byte("b"))
	}()
	b := make([]byte, 8)
	if n, err := c.Read(b); err != nil || string(b[:n]) != "b" {
		t.Errorf("read after a stale expiry = %q, %v; want the next byte", b[:n], err)
	}
}

func TestTimeoutsKeepTheRequestClockAcross100Continue(t *testing.T) {
	c, peer := watchedPair(t, Timeouts{Read: 300 * time.Millisecond, Write: time.Second, Idle: 5 * time.Second})
	start := time.Now()
	if _, err := peer.Write([]byte("POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 128)); err != nil {
		t.Fatal(err)
	}
	c.expectBody()
	if _, err := c.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// The body never comes: the read timeout of the request ends it, not
	// the idle timeout a response would have started.
	took, err := readUntilError(c, start)
	if !errors.Is(err, os.ErrDeadlineExceeded) || !within(took, 300*time.Millisecond, 1500*time.Millisecond) {
		t.Errorf("body after 100 Continue: %v after %s, want a timeout at about 300ms", err, took)
	}
}

func TestTimeoutsTickFollowsTheShortestTimeout(t *testing.T) {
	cases := []struct {
		t    Timeouts
		want time.Duration
	}{
		{Timeouts{Read: 5 * time.Second, Write: 5 * time.Second, Idle: 60 * time.Second}, 100 * time.Millisecond},
		{Timeouts{Read: 800 * time.Millisecond, Write: 5 * time.Second, Idle: time.Minute}, 50 * time.Millisecond},
		{Timeouts{Read: time.Millisecond, Write: time.Second, Idle: time.Second}, time.Millisecond},
	}
	for _, tc := range cases {
		if got := tc.t.tick(); got != tc.want {
			t.Errorf("%+v: tick %s, want %s", tc.t, got, tc.want)
		}
	}
}

// BenchmarkSweep10000 is the watchdog's cost per tick with 10,000 open
// connections, none of them overdue.
func BenchmarkSweep10000(b *testing.B) {
	l := &limitListener{watch: newWatchdog(Timeouts{Read: 5 * time.Second, Write: 5 * time.Second, Idle: time.Minute}),
		conns: map[*limitedConn]struct{}{}}
	for range 10000 {
		c := &limitedConn{l: l}
		c.watch(nil, l.watch)
		c.readBy.Store(l.watch.now() + int64(time.Minute))
		l.conns[c] = struct{}{}
	}
	for b.Loop() {
		l.sweep(l.watch.now())
	}
}

// slowReader reads at most chunk bytes every pause: a healthy client on a
// slow link.
type slowReader struct {
	r     io.Reader
	chunk int
	pause time.Duration
}

func (s slowReader) Read(b []byte) (int, error) {
	time.Sleep(s.pause)
	return s.r.Read(b[:min(len(b), s.chunk)])
}

// TestTimeoutsGiveEachPipelinedResponseTheWriteTimeout: requests that
// arrive together are served with no Read in between; each response must
// still get its own write timeout, as fasthttp's own WriteTimeout gives,
// not the first one's.
func TestTimeoutsGiveEachPipelinedResponseTheWriteTimeout(t *testing.T) {
	// Bodies larger than the kernel's socket buffers, so writes block on
	// the reader.
	body := strings.Repeat("x", 8<<20)
	cfg := config.Default().Server
	cfg.ReadTimeout, cfg.WriteTimeout, cfg.IdleTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	addr := serveLoopback(t, cfg, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(body) })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(16 << 10)
	const n = 6
	if _, err := c.Write([]byte(strings.Repeat("GET / HTTP/1.1\r\nHost: x\r\n\r\n", n))); err != nil {
		t.Fatal(err)
	}
	// About 0.5s to read each 8 MiB answer: well within the 2s write
	// timeout each, beyond it for the six together.
	br := bufio.NewReaderSize(slowReader{c, 64 << 10, 2 * time.Millisecond}, 64<<10)
	start := time.Now()
	defer func() { t.Logf("%d responses read in %s", n, time.Since(start)) }()
	for i := range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d after %s: %v", i+1, time.Since(start), err)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil || len(got) != len(body) {
			t.Fatalf("response %d after %s: %d of %d bytes, %v: cut by a write timeout that began with an earlier response",
				i+1, time.Since(start), len(got), len(body), err)
		}
	}
}
