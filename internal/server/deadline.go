package server

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// lazyDeadlineConn keeps fasthttp's per-request socket deadlines cheap.
// fasthttp moves the read deadline twice and the write deadline once for
// every request (idle, read and write timeouts), and each move re-arms a
// runtime timer: on pipelined traffic that was about a fifth of the CPU.
// Here a later deadline is only recorded; the socket keeps the earlier one
// armed, and when that fires before the recorded deadline, Read or Write
// re-arms the socket with the recorded deadline and carries on. An earlier
// deadline is armed at once, so every timeout still ends at its deadline.
type lazyDeadlineConn struct {
	net.Conn

	mu                    sync.Mutex
	readAt, writeAt       time.Time // the deadlines asked for; zero is none
	readArmed, writeArmed time.Time // the deadlines the socket has
}

func (c *lazyDeadlineConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *lazyDeadlineConn) SetReadDeadline(t time.Time) error {
	return c.set(t, &c.readAt, &c.readArmed, c.Conn.SetReadDeadline)
}

func (c *lazyDeadlineConn) SetWriteDeadline(t time.Time) error {
	return c.set(t, &c.writeAt, &c.writeArmed, c.Conn.SetWriteDeadline)
}

// set records deadline t and arms the socket only when mustArm says so.
func (c *lazyDeadlineConn) set(t time.Time, at, armed *time.Time, arm func(time.Time) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	*at = t
	if !mustArm(t, *armed) {
		return nil
	}
	*armed = t
	return arm(t)
}

// mustArm reports whether the socket must get deadline t now: when it is
// earlier than the armed one, or clears or replaces no deadline.
func mustArm(t, armed time.Time) bool {
	switch {
	case t.IsZero():
		return !armed.IsZero()
	case armed.IsZero():
		return true
	}
	return t.Before(armed)
}

func (c *lazyDeadlineConn) Read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if n > 0 || err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || !c.rearm(&c.readAt, &c.readArmed, c.Conn.SetReadDeadline) {
			return n, err
		}
	}
}

func (c *lazyDeadlineConn) Write(b []byte) (int, error) {
	total := 0
	for {
		n, err := c.Conn.Write(b)
		total += n
		b = b[n:]
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || !c.rearm(&c.writeAt, &c.writeArmed, c.Conn.SetWriteDeadline) {
			return total, err
		}
		if len(b) == 0 {
			return total, nil
		}
	}
}

// rearm is called when the armed deadline fired: if the deadline asked for
// is still ahead, it arms that one and reports true, so the call is retried.
func (c *lazyDeadlineConn) rearm(at, armed *time.Time, set func(time.Time) error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.Equal(*armed) || (!at.IsZero() && !time.Now().Before(*at)) {
		return false // the deadline asked for has passed: a real timeout
	}
	*armed = *at
	return set(*at) == nil
}
