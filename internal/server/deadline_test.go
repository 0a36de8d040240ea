package server

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// lazyPair returns a lazy-deadline conn and its peer over real TCP.
func lazyPair(t *testing.T) (*lazyDeadlineConn, net.Conn) {
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
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	return &lazyDeadlineConn{Conn: c}, peer
}

func TestLazyDeadlineStillEndsAReadAtItsDeadline(t *testing.T) {
	c, _ := lazyPair(t)
	start := time.Now()
	if err := c.SetReadDeadline(start.Add(150 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(make([]byte, 1))
	took := time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) || took < 140*time.Millisecond || took > time.Second {
		t.Errorf("Read ended after %s with %v, want a timeout at about 150ms", took, err)
	}
}

func TestLazyDeadlineExtensionOutlivesTheArmedOne(t *testing.T) {
	c, peer := lazyPair(t)
	start := time.Now()
	// The first deadline is armed; the later one is only recorded, so the
	// socket fires at 100ms and Read must re-arm and keep waiting.
	if err := c.SetReadDeadline(start.Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(start.Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, _ = peer.Write([]byte("x"))
	}()
	b := make([]byte, 1)
	n, err := c.Read(b)
	if err != nil || n != 1 || b[0] != 'x' {
		t.Errorf("Read = %d %q %v, want the byte sent at 300ms (deadline extended to 2s)", n, b[:n], err)
	}
	if c.readArmed.Equal(start.Add(100 * time.Millisecond)) {
		t.Errorf("the socket still has the first deadline after it fired")
	}
}

func TestLazyDeadlineArmsAnEarlierDeadlineAtOnce(t *testing.T) {
	c, _ := lazyPair(t)
	start := time.Now()
	if err := c.SetReadDeadline(start.Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(start.Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(make([]byte, 1))
	if took := time.Since(start); !errors.Is(err, os.ErrDeadlineExceeded) || took > time.Second {
		t.Errorf("Read ended after %s with %v, want a timeout at about 100ms", took, err)
	}
}

func TestLazyDeadlineClearingRemovesTheArmedOne(t *testing.T) {
	c, peer := lazyPair(t)
	if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		_, _ = peer.Write([]byte("y"))
	}()
	b := make([]byte, 1)
	if n, err := c.Read(b); err != nil || n != 1 {
		t.Errorf("Read after clearing the deadline = %d %v, want the byte", n, err)
	}
}

func TestLazyDeadlineWriteCompletesAcrossAFiredDeadline(t *testing.T) {
	c, peer := lazyPair(t)
	start := time.Now()
	if err := c.SetWriteDeadline(start.Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := c.SetWriteDeadline(start.Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// More than the socket buffers hold, read slowly after the first
	// deadline has fired: the write must finish whole.
	payload := make([]byte, 8<<20)
	got := make(chan int, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		n, _ := io.Copy(io.Discard, io.LimitReader(peer, int64(len(payload))))
		got <- int(n)
	}()
	n, err := c.Write(payload)
	if err != nil || n != len(payload) {
		t.Fatalf("Write = %d, %v; want all %d bytes", n, err, len(payload))
	}
	if r := <-got; r != len(payload) {
		t.Errorf("peer read %d bytes, want %d", r, len(payload))
	}
}
