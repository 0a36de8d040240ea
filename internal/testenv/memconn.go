package testenv

import (
	"bytes"
	"net"
	"time"
)

// MemConn is an in-memory net.Conn for serving requests without a socket,
// as fasthttp's own allocation tests do: the server reads the request from
// In and writes its answer to Out. Once In is drained, reads return io.EOF,
// as from a peer that half-closed.
type MemConn struct {
	In, Out bytes.Buffer
}

var memAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}

func (c *MemConn) Read(b []byte) (int, error)       { return c.In.Read(b) }
func (c *MemConn) Write(b []byte) (int, error)      { return c.Out.Write(b) }
func (c *MemConn) Close() error                     { return nil }
func (c *MemConn) LocalAddr() net.Addr              { return memAddr }
func (c *MemConn) RemoteAddr() net.Addr             { return memAddr }
func (c *MemConn) SetDeadline(time.Time) error      { return nil }
func (c *MemConn) SetReadDeadline(time.Time) error  { return nil }
func (c *MemConn) SetWriteDeadline(time.Time) error { return nil }
