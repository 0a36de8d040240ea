package server

import (
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
// like every other error answer of the application port.
type limitListener struct {
	net.Listener
	max, perIP int

	mu   sync.Mutex
	open int
	byIP map[netip.Addr]int

	// Whole HTTP responses, encoded once.
	busy, crowded []byte
}

func newLimitListener(ln net.Listener, max, perIP int) *limitListener {
	return &limitListener{
		Listener: ln, max: max, perIP: perIP, byIP: map[netip.Addr]int{},
		busy: refusal(fasthttp.StatusServiceUnavailable,
			"the server holds server.concurrency connections; retry after the time in Retry-After"),
		crowded: refusal(fasthttp.StatusTooManyRequests,
			"this address holds server.max_conns_per_ip connections; close one first"),
	}
}

// refusal is a complete answer written on a connection that is then closed.
func refusal(status int, detail string) []byte {
	body := problem.Static(status, detail)
	return []byte("HTTP/1.1 " + strconv.Itoa(status) + " " + fasthttp.StatusMessage(status) + "\r\n" +
		"Content-Type: " + problem.ContentType + "\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n" +
		"Retry-After: 1\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n" + string(body))
}

// Accept returns the next connection within the limits; the others are
// answered and closed here, so fasthttp never sees them.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		if answer := l.admit(ip); answer != nil {
			// A fresh socket's send buffer takes this at once; the deadline
			// keeps a peer with a zero window from stalling the accept loop.
			_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = c.Write(answer) // the connection is closed either way
			_ = c.Close()
			continue
		}
		return &limitedConn{Conn: &lazyDeadlineConn{Conn: c}, l: l, ip: ip}, nil
	}
}

// admit counts a new connection from ip, or returns the refusal to send.
func (l *limitListener) admit(ip netip.Addr) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.max {
		return l.busy
	}
	if l.perIP > 0 && ip.IsValid() {
		if l.byIP[ip] >= l.perIP {
			return l.crowded
		}
		l.byIP[ip]++
	}
	l.open++
	return nil
}

func (l *limitListener) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.perIP > 0 && ip.IsValid() {
		if l.byIP[ip]--; l.byIP[ip] <= 0 {
			delete(l.byIP, ip)
		}
	}
}

// limitedConn gives its slot back when closed, once.
type limitedConn struct {
	net.Conn
	l      *limitListener
	ip     netip.Addr
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.ip)
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
