package clientip

import (
	"bufio"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// request makes a request from peer carrying the header lines given as
// "Name: value" strings.
func request(t testing.TB, peer string, lines ...string) *fasthttp.RequestCtx {
	t.Helper()
	var req fasthttp.Request
	raw := "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Join(append(lines, ""), "\r\n") + "\r\n"
	if err := req.Read(bufioReader(raw)); err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(peer), Port: 40000}, nil)
	return ctx
}

func TestAddr(t *testing.T) {
	proxies := []string{"10.0.0.0/8", "2001:db8:1::/48", "192.0.2.7"}
	cases := []struct {
		name    string
		trusted []string
		peer    string
		headers []string
		want    string
	}{
		{"no trusted proxies: the peer, header ignored", nil, "10.1.2.3", []string{"X-Forwarded-For: 198.51.100.1"}, "10.1.2.3"},
		{"untrusted peer: a spoofed header changes nothing", proxies, "198.51.100.9", []string{"X-Forwarded-For: 203.0.113.5"}, "198.51.100.9"},
		{"trusted peer without a header", proxies, "10.1.2.3", nil, "10.1.2.3"},
		{"trusted peer: the client it names", proxies, "10.1.2.3", []string{"X-Forwarded-For: 203.0.113.5"}, "203.0.113.5"},
		{"the right-most untrusted entry, not a spoofed left one", proxies, "10.1.2.3", []string{"X-Forwarded-For: 1.1.1.1, 203.0.113.5, 10.9.9.9"}, "203.0.113.5"},
		{"entries over several lines, last line right-most", proxies, "10.1.2.3", []string{"X-Forwarded-For: 1.1.1.1", "X-Forwarded-For: 203.0.113.5,10.0.0.2"}, "203.0.113.5"},
		{"a single trusted address", proxies, "192.0.2.7", []string{"X-Forwarded-For: 203.0.113.5"}, "203.0.113.5"},
		{"a neighbour of the single trusted address is not trusted", proxies, "192.0.2.8", []string{"X-Forwarded-For: 203.0.113.5"}, "192.0.2.8"},
		{"every entry trusted: the left-most", proxies, "10.1.2.3", []string{"X-Forwarded-For: 10.5.5.5, 10.6.6.6"}, "10.5.5.5"},
		{"garbage right of the client stops at the last trusted hop", proxies, "10.1.2.3", []string{"X-Forwarded-For: 203.0.113.5, nonsense, 10.0.0.2"}, "10.0.0.2"},
		{"garbage as the only entry: the peer", proxies, "10.1.2.3", []string{"X-Forwarded-For: unknown"}, "10.1.2.3"},
		{"IPv4 with a port", proxies, "10.1.2.3", []string{"X-Forwarded-For: 203.0.113.5:5555"}, "203.0.113.5"},
		{"IPv6 entries", proxies, "2001:db8:1::1", []string{"X-Forwarded-For: 2001:db8:99::5, 2001:db8:1::2"}, "2001:db8:99::5"},
		{"IPv6 in brackets with a port", proxies, "10.1.2.3", []string{"X-Forwarded-For: [2001:db8:99::5]:443"}, "2001:db8:99::5"},
		{"IPv4-mapped IPv6 is IPv4", proxies, "10.1.2.3", []string{"X-Forwarded-For: ::ffff:203.0.113.5"}, "203.0.113.5"},
		{"a zone is not an address", proxies, "10.1.2.3", []string{"X-Forwarded-For: fe80::1%eth0"}, "10.1.2.3"},
		{"empty items are skipped", proxies, "10.1.2.3", []string{"X-Forwarded-For: 203.0.113.5, ,"}, "203.0.113.5"},
		{"Forwarded", proxies, "10.1.2.3", []string{`Forwarded: for=203.0.113.5;proto=https;by=10.0.0.1`}, "203.0.113.5"},
		{"Forwarded, right-most untrusted", proxies, "10.1.2.3", []string{`Forwarded: for=1.1.1.1, for="[2001:db8:99::5]:4711", for=10.0.0.2`}, "2001:db8:99::5"},
		{"Forwarded, quoted comma in another parameter", proxies, "10.1.2.3", []string{`Forwarded: for=1.1.1.1;ext="a,b", for=203.0.113.5`}, "203.0.113.5"},
		{"Forwarded, case-insensitive parameter name", proxies, "10.1.2.3", []string{`Forwarded: For=203.0.113.5`}, "203.0.113.5"},
		{"Forwarded, obfuscated client stops at the last trusted hop", proxies, "10.1.2.3", []string{`Forwarded: for=_hidden, for=10.0.0.2`}, "10.0.0.2"},
		{"Forwarded, an element without for=", proxies, "10.1.2.3", []string{`Forwarded: for=203.0.113.5, by=10.0.0.2`}, "10.1.2.3"},
		{"both headers: neither is trusted", proxies, "10.1.2.3", []string{"X-Forwarded-For: 203.0.113.5", "Forwarded: for=198.51.100.1"}, "10.1.2.3"},
	}
	for _, c := range cases {
		r, err := New(c.trusted)
		if err != nil {
			t.Fatal(err)
		}
		got := r.Addr(request(t, c.peer, c.headers...))
		if got != netip.MustParseAddr(c.want) {
			t.Errorf("%s: peer %s, headers %q: got %s, want %s", c.name, c.peer, c.headers, got, c.want)
		}
	}
}

func TestAddrBeyondMaxHops(t *testing.T) {
	r, err := New([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	hops := []string{"203.0.113.5"}
	for i := range maxHops + 4 {
		hops = append(hops, netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}).String())
	}
	got := r.Addr(request(t, "10.1.2.3", "X-Forwarded-For: "+strings.Join(hops, ", ")))
	// The client is beyond the entries examined: the left-most kept proxy
	// stands for it, never anything further left.
	if want := netip.AddrFrom4([4]byte{10, 0, 0, 5}); got != want {
		t.Errorf("%d trusted hops: got %s, want the left-most kept hop %s", len(hops)-1, got, want)
	}
}

func TestParsePrefixes(t *testing.T) {
	good := map[string]string{
		"10.0.0.0/8":          "10.0.0.0/8",
		"192.0.2.7":           "192.0.2.7/32",
		"2001:db8::/32":       "2001:db8::/32",
		"::1":                 "::1/128",
		"::ffff:10.0.0.0/104": "10.0.0.0/8",
	}
	for in, want := range good {
		got, err := ParsePrefixes([]string{in})
		if err != nil || len(got) != 1 || got[0].String() != want {
			t.Errorf("%q: got %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"10.0.0.1/8", "10.0.0.0/33", "example.com", "", "fe80::1%eth0", "10.0.0.0/8,10.1.0.0/16"} {
		if got, err := ParsePrefixes([]string{bad}); err == nil {
			t.Errorf("%q: accepted as %v, want an error", bad, got)
		}
	}
}

func TestSetTrustedKeepsOldOnError(t *testing.T) {
	r, err := New([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetTrusted([]string{"nonsense"}); err == nil {
		t.Fatal("SetTrusted accepted nonsense")
	}
	if got := r.Addr(request(t, "10.1.2.3", "X-Forwarded-For: 203.0.113.5")); got.String() != "203.0.113.5" {
		t.Errorf("after a refused change: got %s, want the client named by the still-trusted proxy", got)
	}
	if err := r.SetTrusted(nil); err != nil {
		t.Fatal(err)
	}
	if got := r.Addr(request(t, "10.1.2.3", "X-Forwarded-For: 203.0.113.5")); got.String() != "10.1.2.3" {
		t.Errorf("after trusting none: got %s, want the peer", got)
	}
}

func TestAddrAllocatesNothing(t *testing.T) {
	r, err := New([]string{"10.0.0.0/8", "2001:db8:1::/48"})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{
		"X-Forwarded-For: 198.51.100.1, 203.0.113.5, 10.9.9.9",
		`Forwarded: for="[2001:db8:99::5]:4711", for=10.0.0.2`,
		"X-Forwarded-For: 2001:db8:99::5",
	} {
		ctx := request(t, "10.1.2.3", h)
		r.Addr(ctx) // grow fasthttp's reused header buffers
		if n := testing.AllocsPerRun(100, func() { r.Addr(ctx) }); n != 0 {
			t.Errorf("%s: %v allocations, want 0", h, n)
		}
	}
}

func BenchmarkAddr(b *testing.B) {
	none, _ := New(nil)
	proxies, _ := New([]string{"10.0.0.0/8"})
	for _, bc := range []struct {
		name string
		r    *Resolver
		h    string
	}{
		{"peer", none, "X-Forwarded-For: 203.0.113.5"},
		{"xff", proxies, "X-Forwarded-For: 198.51.100.1, 203.0.113.5, 10.9.9.9"},
		{"forwarded", proxies, `Forwarded: for=203.0.113.5;proto=https, for=10.0.0.2`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := request(b, "10.1.2.3", bc.h)
			b.ReportAllocs()
			for b.Loop() {
				bc.r.Addr(ctx)
			}
		})
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
