// Package clientip finds the address of the client a request comes from:
// the socket's peer, or, when the peer is one of server.trusted_proxies,
// the right-most address in X-Forwarded-For (or Forwarded) that is not a
// trusted proxy itself. The access log records it and the rate limits key
// on it.
//
// Proxies append the address they received a request from, so the entries
// to the right of the first untrusted one were written by trusted proxies,
// and everything to its left was written by the client and proves nothing.
// A header from a peer that is not trusted is never read.
package clientip

import (
	"bytes"
	"fmt"
	"net/netip"
	"sync/atomic"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// maxHops is how many of the right-most header entries are examined. A
// request that passed more trusted proxies than this is taken to come from
// the left-most of them.
const maxHops = 16

// Header names, as fasthttp normalises them.
const (
	headerXFF       = "X-Forwarded-For"
	headerForwarded = "Forwarded"
)

// Resolver finds client addresses. It is safe for concurrent use, and
// SetTrusted may change the trusted proxies while requests are served.
type Resolver struct {
	trusted atomic.Pointer[[]netip.Prefix]
}

// New returns a resolver trusting the proxies in cidrs (server.trusted_proxies):
// CIDR prefixes such as "10.0.0.0/8", or single addresses. With none, the
// socket peer is always the client and no header is read.
func New(cidrs []string) (*Resolver, error) {
	r := &Resolver{}
	if err := r.SetTrusted(cidrs); err != nil {
		return nil, err
	}
	return r, nil
}

// SetTrusted replaces the trusted proxies; on an error nothing changes.
func (r *Resolver) SetTrusted(cidrs []string) error {
	prefixes, err := ParsePrefixes(cidrs)
	if err != nil {
		return err
	}
	r.trusted.Store(&prefixes)
	return nil
}

// ParsePrefixes parses server.trusted_proxies: each entry is a CIDR prefix
// with no bits set past its length ("10.0.0.0/8", not "10.0.0.1/8") or a
// single IPv4 or IPv6 address.
func ParsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("invalid proxy %q: want a CIDR prefix such as 10.0.0.0/8 or a single address", s)
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Masked() != p {
			return nil, fmt.Errorf("invalid proxy %q: bits are set past the prefix length; did you mean %s?", s, p.Masked())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p)
	}
	return out, nil
}

// Peer returns the socket peer's address (0.0.0.0 for a connection that is
// not TCP, as in tests over in-memory connections).
func Peer(ctx *fasthttp.RequestCtx) netip.Addr {
	a, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return a.Unmap()
}

// Addr returns the client address of the request. With no trusted proxies
// (or a nil Resolver) it is the peer, found without reading any header;
// otherwise it reads
// X-Forwarded-For or Forwarded without allocating. A request carrying
// both headers is taken to come from the peer itself: a proxy that writes
// one passes the other through from the client, so neither can be trusted.
func (r *Resolver) Addr(ctx *fasthttp.RequestCtx) netip.Addr {
	peer := Peer(ctx)
	if r == nil {
		return peer
	}
	trusted := *r.trusted.Load()
	if len(trusted) == 0 || !contains(trusted, peer) {
		return peer
	}
	h := &ctx.Request.Header
	forwarded := len(h.PeekAll(headerForwarded)) > 0
	// PeekAll reuses one buffer, so the second call's result stands alone.
	xff := h.PeekAll(headerXFF)
	var hops ring
	switch {
	case forwarded && len(xff) > 0:
		return peer
	case len(xff) > 0:
		for _, v := range xff {
			hops.addList(v)
		}
	case forwarded:
		for _, v := range h.PeekAll(headerForwarded) {
			hops.addForwarded(v)
		}
	default:
		return peer
	}
	return hops.client(peer, trusted)
}

func contains(trusted []netip.Prefix, a netip.Addr) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ring keeps the last maxHops header entries, in order; an entry is the raw
// address text (nil for a Forwarded element without a for= parameter).
type ring struct {
	hops [maxHops][]byte
	n    int // entries seen; the last min(n, maxHops) are kept
}

func (g *ring) add(hop []byte) {
	g.hops[g.n%maxHops] = hop
	g.n++
}

// addList adds the entries of one X-Forwarded-For line.
func (g *ring) addList(v []byte) {
	for len(v) > 0 {
		item := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		if item = trimOWS(item); len(item) > 0 {
			g.add(item)
		}
	}
}

// addForwarded adds the for= value of each element of one Forwarded line
// (RFC 7239: elements split by commas, pairs by semicolons, values tokens
// or quoted strings).
func (g *ring) addForwarded(v []byte) {
	for len(v) > 0 {
		end := elementEnd(v)
		elem := v[:end]
		if end < len(v) {
			v = v[end+1:]
		} else {
			v = nil
		}
		if len(trimOWS(elem)) == 0 {
			continue
		}
		var hop []byte
		for len(elem) > 0 {
			pair := elem
			if i := bytes.IndexByte(elem, ';'); i >= 0 {
				pair, elem = elem[:i], elem[i+1:]
			} else {
				elem = nil
			}
			pair = trimOWS(pair)
			if len(pair) > 4 && (pair[0]|0x20) == 'f' && (pair[1]|0x20) == 'o' && (pair[2]|0x20) == 'r' && pair[3] == '=' {
				hop = pair[4:]
				if len(hop) >= 2 && hop[0] == '"' && hop[len(hop)-1] == '"' {
					hop = hop[1 : len(hop)-1]
				}
			}
		}
		g.add(hop) // nil when the element names no client: that stops the walk
	}
}

// elementEnd returns the index of the comma that ends the first element of
// a Forwarded value, skipping commas inside quoted strings, or len(v).
func elementEnd(v []byte) int {
	quoted := false
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"':
			quoted = !quoted
		case '\\':
			i++
		case ',':
			if !quoted {
				return i
			}
		}
	}
	return len(v)
}

// client walks the entries from the right: the first that is not a
// trusted proxy is the client. An entry that is not an address (garbage,
// "unknown", an obfuscated name) stops the walk at the last trusted hop,
// which is the safe answer: that proxy, not anything the client wrote.
func (g *ring) client(peer netip.Addr, trusted []netip.Prefix) netip.Addr {
	kept := min(g.n, maxHops)
	addr := peer
	for i := 1; i <= kept; i++ {
		a, ok := parseHop(g.hops[(g.n-i)%maxHops])
		if !ok {
			return addr
		}
		addr = a
		if !contains(trusted, a) {
			return a
		}
	}
	return addr
}

// parseHop reads one entry: an IPv4 or IPv6 address, optionally with a
// port ("192.0.2.1:8080", "[2001:db8::1]:8080") or in brackets.
func parseHop(b []byte) (netip.Addr, bool) {
	if len(b) == 0 || len(b) > 64 {
		return netip.Addr{}, false
	}
	if b[0] == '[' {
		end := bytes.IndexByte(b, ']')
		if end < 0 || !isPort(b[end+1:]) {
			return netip.Addr{}, false
		}
		b = b[1:end]
	} else if i := bytes.IndexByte(b, ':'); i >= 0 && bytes.IndexByte(b[i+1:], ':') < 0 {
		// One colon: IPv4 with a port. IPv6 without brackets has several.
		if !isPort(b[i:]) {
			return netip.Addr{}, false
		}
		b = b[:i]
	}
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':') {
			return netip.Addr{}, false // no zones, names or garbage reach the parser
		}
	}
	// ParseAddr keeps no reference to its input once it returns, so the
	// request's bytes can be lent to it without copying them to a string.
	a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(b), len(b)))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// isPort accepts "" or ":digits".
func isPort(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if b[0] != ':' || len(b) < 2 || len(b) > 6 {
		return false
	}
	for _, c := range b[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// trimOWS trims the spaces and tabs HTTP allows around list items.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
