package server

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/problem"
)

// limitListener enforces server.concurrency and server.max_conns_per_ip in
// front of fasthttp, whose own refusals are plain text: these are problems
// like every other error answer of the application port. It also puts every
// connection it admits under the timeouts' watchdog.
type limitListener struct {
	net.Listener
	max, perIP int
	watch      *watchdog

	mu    sync.Mutex
	byIP  map[netip.Addr]int
	conns map[*limitedConn]struct{}

	// Whole HTTP responses but for the Date header, encoded once.
	busy, crowded refusal

	acceptErrors atomic.Int64     // failed accepts retried, for tests
	log          *Logger          // rate-limited; nil in tests
	refused      func(status int) // told of each refusal; nil in tests
}

func newLimitListener(ln net.Listener, name string, max, perIP int, t Timeouts) *limitListener {
	l := &limitListener{
		Listener: ln, max: max, perIP: perIP, watch: newWatchdog(t),
		byIP: map[netip.Addr]int{}, conns: map[*limitedConn]struct{}{},
		busy: newRefusal(name, fasthttp.StatusServiceUnavailable,
			"the server holds server.concurrency connections; retry after the time in Retry-After"),
		crowded: newRefusal(name, fasthttp.StatusTooManyRequests,
			"this address holds server.max_conns_per_ip connections; close one first"),
	}
	go l.watch.run(l.sweep)
	return l
}

// sweep expires the connections whose blocked call is overdue.
func (l *limitListener) sweep(now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.expire(now)
	}
}

// stopWatching ends the watchdog; connections still open keep no timeouts.
func (l *limitListener) stopWatching() { l.watch.close() }

// refusal is a complete answer written on a connection that is then
// closed: head, then the Date line of the moment, then tail.
type refusal struct {
	status     int
	head, tail []byte
}

func newRefusal(name string, status int, detail string) refusal {
	body := problem.Static(status, detail)
	return refusal{
		status: status,
		head: []byte("HTTP/1.1 " + strconv.Itoa(status) + " " + fasthttp.StatusMessage(status) + "\r\n" +
			"Server: " + name + "\r\nDate: "),
		tail: []byte("\r\nContent-Type: " + problem.ContentType + "\r\n" +
			"Content-Length: " + strconv.Itoa(len(body)) + "\r\n" +
			"Retry-After: 1\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n" + string(body)),
	}
}

// at is the whole answer, dated now.
func (r refusal) at(now time.Time) []byte {
	b := make([]byte, 0, len(r.head)+len("Mon, 02 Jan 2006 15:04:05 GMT")+len(r.tail))
	b = append(b, r.head...)
	b = fasthttp.AppendHTTPDate(b, now)
	return append(b, r.tail...)
}

// Accept returns the next connection within the limits; the others are
// answered and closed here, so fasthttp never sees them.
func (l *limitListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			// Out of file descriptors (EMFILE, ENFILE) or another passing
			// failure: fasthttp would end Serve for good on anything but a
			// timeout, leaving the port bound and dead. Wait and try again,
			// as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.acceptErrors.Add(1)
			if l.log != nil {
				l.log.Printf("accept failed, retrying in %s: %v", backoff, err)
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		lc := &limitedConn{l: l, ip: remoteIP(c)}
		lc.watch(c, l.watch)
		if answer := l.admit(lc); answer != nil {
			// A fresh socket's send buffer takes this at once; the deadline
			// keeps a peer with a zero window from stalling the accept loop.
			if l.refused != nil {
				l.refused(answer.status)
			}
			now := time.Now()
			_ = c.SetWriteDeadline(now.Add(100 * time.Millisecond))
			_, _ = c.Write(answer.at(now)) // the connection is closed either way
			_ = c.Close()
			continue
		}
		return lc, nil
	}
}

// admit counts a new connection, or returns the refusal to send.
func (l *limitListener) admit(c *limitedConn) *refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.conns) >= l.max {
		return &l.busy
	}
	if ip := c.ip; l.perIP > 0 && ip.IsValid() {
		if l.byIP[ip] >= l.perIP {
			return &l.crowded
		}
		l.byIP[ip]++
	}
	l.conns[c] = struct{}{}
	return nil
}

func (l *limitListener) release(c *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
	if ip := c.ip; l.perIP > 0 && ip.IsValid() {
		if l.byIP[ip]--; l.byIP[ip] <= 0 {
			delete(l.byIP, ip)
		}
	}
}

// limitedConn gives its slot back when closed, once.
type limitedConn struct {
	watchedConn
	l      *limitListener
	ip     netip.Addr
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c)
	}
	return c.Conn.Close()
}

func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}
