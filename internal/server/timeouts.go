package server

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Timeouts bound how long a connection may block the server: the read of a
// request, the write of a response, the wait for the next request.
//
// fasthttp can enforce them itself, but then it reads the clock and moves a
// socket deadline three times for every request, which cost a third of the
// throughput on pipelined traffic. Here the serving goroutine only stamps,
// from a clock that one watchdog goroutine advances every tick, when a
// blocked Read or Write must end; the watchdog expires the sockets that are
// past their stamp. A timeout so ends between its duration and that plus
// two ticks.
type Timeouts struct {
	Read, Write, Idle time.Duration
}

// tick is the watchdog's period: a sixteenth of the shortest timeout, so a
// timeout ends at most an eighth late, between 1ms and 100ms.
func (t Timeouts) tick() time.Duration {
	return min(max(min(t.Read, t.Write, t.Idle)/16, time.Millisecond), 100*time.Millisecond)
}

// expired is a deadline in the past: setting it ends a blocked call at once.
var expired = time.Unix(1, 0)

// watchdog keeps the coarse clock and expires overdue connections.
type watchdog struct {
	read, write, idle, tick int64 // nanoseconds
	start                   time.Time
	clock                   atomic.Int64 // nanoseconds since start plus one tick, never 0
	stop, done              chan struct{}
}

func newWatchdog(t Timeouts) *watchdog {
	w := &watchdog{
		read: int64(t.Read), write: int64(t.Write), idle: int64(t.Idle), tick: int64(t.tick()),
		start: time.Now(), stop: make(chan struct{}), done: make(chan struct{}),
	}
	w.clock.Store(w.tick)
	return w
}

func (w *watchdog) now() int64 { return w.clock.Load() }

// run advances the clock every tick and hands each reading to sweep, which
// expires the overdue connections, until close.
func (w *watchdog) run(sweep func(now int64)) {
	defer close(w.done)
	t := time.NewTicker(time.Duration(w.tick))
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		now := int64(time.Since(w.start)) + w.tick
		w.clock.Store(now)
		sweep(now)
	}
}

func (w *watchdog) close() {
	close(w.stop)
	<-w.done
}

// watchedConn is a connection under the watchdog. Its Read and Write are
// called by the one goroutine serving it; readBy and writeBy are what the
// watchdog sees.
type watchedConn struct {
	net.Conn
	w *watchdog

	// requestAt is when the current request's first byte arrived, 0 while
	// waiting for one; responseAt when the current response began to be
	// written, 0 before. wait bounds the wait for a first byte: the read
	// timeout on a new connection, the idle timeout after that.
	requestAt, responseAt, wait int64
	// continued keeps the request's clock running across a 100 Continue.
	continued bool

	// The clock reading by which the blocked Read or Write must end; 0 when
	// none is blocked.
	readBy, writeBy atomic.Int64
}

func (c *watchedConn) watch(conn net.Conn, w *watchdog) {
	c.Conn, c.w, c.wait = conn, w, w.read
}

// startsResponse tells the serving connection, before each request is
// handled, that the next Write begins a new response. Pipelined requests
// already in the read buffer are served with no Read in between, which is
// where the connection otherwise learns it; without this every response of
// such a batch would share the first one's write timeout.
func startsResponse(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if c, ok := ctx.Conn().(*limitedConn); ok {
			c.responseAt = 0
		}
		h(ctx)
	}
}

// expectBody tells the connection that the interim 100 Continue it is about
// to write is not the response: the body's read stays under the read
// timeout that began with the request's first byte.
func (c *watchedConn) expectBody() { c.continued = true }

func (c *watchedConn) Read(b []byte) (int, error) {
	if c.responseAt != 0 {
		// A response went out, so this read waits for the next request.
		c.requestAt, c.responseAt = 0, 0
	}
	by := c.requestAt + c.w.read
	if c.requestAt == 0 {
		by = c.w.now() + c.wait + c.w.tick
	}
	for {
		c.readBy.Store(by)
		n, err := c.Conn.Read(b)
		c.readBy.Store(0)
		if n > 0 && c.requestAt == 0 {
			c.requestAt = c.w.now() + c.w.tick
			c.wait = c.w.idle
		}
		if !c.spurious(err, by, c.Conn.SetReadDeadline) {
			return n, err
		}
	}
}

func (c *watchedConn) Write(b []byte) (int, error) {
	var by int64
	switch {
	case c.continued:
		// The interim answer: the request is not over, so its read goes on.
		c.continued = false
		by = c.w.now() + c.w.tick + c.w.write
	case c.responseAt == 0:
		c.responseAt = c.w.now() + c.w.tick
		fallthrough
	default:
		by = c.responseAt + c.w.write
	}
	total := 0
	for {
		c.writeBy.Store(by)
		n, err := c.Conn.Write(b)
		c.writeBy.Store(0)
		total += n
		b = b[n:]
		if !c.spurious(err, by, c.Conn.SetWriteDeadline) {
			return total, err
		}
		if len(b) == 0 {
			return total, nil
		}
	}
}

// spurious reports whether err is a deadline the watchdog set for an
// earlier blocked call that ended before the deadline reached the socket,
// and clears it so the call can be retried. It reads the same clock the
// watchdog does, so a real timeout is never retried.
func (c *watchedConn) spurious(err error, by int64, clear func(time.Time) error) bool {
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || c.w.now() >= by {
		return false
	}
	return clear(time.Time{}) == nil
}

// expire ends the connection's blocked call if it is past its stamp; a
// call that ended meanwhile meets the deadline on its next try, sees it is
// spurious and clears it.
func (c *watchedConn) expire(now int64) {
	if by := c.readBy.Load(); by != 0 && now >= by {
		_ = c.Conn.SetReadDeadline(expired)
	}
	if by := c.writeBy.Load(); by != 0 && now >= by {
		_ = c.Conn.SetWriteDeadline(expired)
	}
}
