package testenv

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// Mode is what a Proxy does with connections.
type Mode int

const (
	// Pass forwards bytes both ways.
	Pass Mode = iota
	// Refuse closes the listener, so connection attempts are refused.
	Refuse
	// Reset accepts connections and resets them (RST) at once.
	Reset
	// Blackhole accepts connections and swallows every byte: no answer, no
	// FIN, no RST, so only the client's deadlines end its wait.
	Blackhole
)

// Proxy is a TCP proxy on 127.0.0.1 in front of one target address, used to
// put network faults between a client under test and a real server.
type Proxy struct {
	t      testing.TB
	target string
	addr   string

	mu     sync.Mutex
	mode   Mode
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewProxy starts a proxy in Pass mode forwarding to target (host:port).
// It stops, resetting every connection it holds, when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &Proxy{t: t, target: target, addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept(ln)
	t.Cleanup(p.close)
	return p
}

// Addr is the host:port clients should dial instead of the target.
func (p *Proxy) Addr() string { return p.addr }

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// SetMode switches the proxy to m. Every open connection is reset, except
// when switching to Blackhole, where open connections stay up but go silent.
func (p *Proxy) SetMode(m Mode) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || m == p.mode {
		return
	}
	p.mode = m
	if m != Blackhole {
		p.resetLocked()
	}
	switch {
	case m == Refuse && p.ln != nil:
		_ = p.ln.Close() // the accept loop sees the error and ends
		p.ln = nil
	case m != Refuse && p.ln == nil:
		ln, err := listenAgain(p.addr)
		if err != nil {
			p.t.Fatalf("proxy listen again on %s: %v", p.addr, err)
		}
		p.ln = ln
		p.wg.Add(1)
		go p.accept(ln)
	}
}

// Cut resets every open connection and keeps the mode, as a network blip
// or a restarted server would.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resetLocked()
}

// Conns reports how many connections the proxy holds open.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

func (p *Proxy) close() {
	p.mu.Lock()
	p.closed = true
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	p.resetLocked()
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // listener closed by SetMode(Refuse) or close
		}
		p.mu.Lock()
		mode, closed := p.mode, p.closed
		if closed || mode == Reset {
			p.mu.Unlock()
			reset(c)
			continue
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(c, mode)
	}
}

// serve handles one client connection until either side ends it.
func (p *Proxy) serve(c net.Conn, mode Mode) {
	defer p.wg.Done()
	defer p.forget(c)
	if mode == Blackhole {
		p.pipe(nil, c)
		return
	}
	up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		reset(c) // to the client this looks like the server is down
		return
	}
	if !p.track(up) {
		reset(up)
		return
	}
	defer p.forget(up)
	done := make(chan struct{})
	go func() {
		p.pipe(up, c)
		close(done)
	}()
	p.pipe(c, up)
	<-done
}

// pipe copies src to dst, dropping the bytes while the proxy is in
// Blackhole mode (or always, when dst is nil). When src ends, both sides
// are closed so the opposite pipe ends too.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && dst != nil && p.Mode() != Blackhole {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			break
		}
	}
	_ = src.Close()
	if dst != nil {
		_ = dst.Close()
	}
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) forget(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close() // already closed by pipe or reset in most cases
}

func (p *Proxy) resetLocked() {
	for c := range p.conns {
		reset(c)
		delete(p.conns, c)
	}
}

// reset closes c with an RST instead of a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// listenAgain binds addr again after Refuse closed it. Another process may
// briefly hold the port, so it retries for a moment.
func listenAgain(addr string) (net.Listener, error) {
	var err error
	for range 50 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, errors.Join(errors.New("address stayed busy"), err)
}
