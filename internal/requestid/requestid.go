// Package requestid gives every request an id: the caller's X-Request-ID
// when it is safe to echo, else a new one.
package requestid

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync/atomic"
)

// Header is the request and response header that carries the id.
const Header = "X-Request-ID"

// MaxLen is the longest incoming id that is honoured.
const MaxLen = 128

// Generator makes ids unique across processes without a random read per
// request: a random process prefix plus a counter.
type Generator struct {
	prefix [16]byte
	next   atomic.Uint64
}

// NewGenerator seeds a generator from crypto/rand.
func NewGenerator() (*Generator, error) {
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("seed request ids: %w", err)
	}
	g := &Generator{}
	hex.Encode(g.prefix[:], seed[:])
	return g, nil
}

// Append appends a new id to dst and returns it: the prefix, a dash and
// the counter in hex without leading zeros.
func (g *Generator) Append(dst []byte) []byte {
	dst = append(dst, g.prefix[:]...)
	dst = append(dst, '-')
	n := g.next.Add(1)
	// Hand-rolled hex: strconv.AppendUint's general path was the larger part
	// of the id's cost in BenchmarkPlaintext's profile.
	var buf [16]byte
	i := len(buf)
	for {
		i--
		buf[i] = hexDigits[n&0xf]
		n >>= 4
		if n == 0 {
			break
		}
	}
	return append(dst, buf[i:]...)
}

const hexDigits = "0123456789abcdef"

// Valid reports whether an incoming id may be echoed: 1..MaxLen visible
// ASCII characters, so it cannot split a header or a log line.
func Valid(id []byte) bool {
	if len(id) == 0 || len(id) > MaxLen {
		return false
	}
	for _, c := range id {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
