package router

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkGuardOrdinaryRequest is the guard's price on every request: a
// wrk-shaped GET that passes all checks.
func BenchmarkGuardOrdinaryRequest(b *testing.B) {
	var ctx fasthttp.RequestCtx
	raw := "GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\n" +
		"Accept: text/plain,text/html;q=0.9\r\nConnection: keep-alive\r\n\r\n"
	if err := ctx.Request.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		b.Fatal(err)
	}
	g := newGuard()
	b.ReportAllocs()
	for b.Loop() {
		if _, status, _ := g.check(&ctx); status != 0 {
			b.Fatal("an ordinary request was refused")
		}
	}
}

func TestGuardCountsFieldsAndFindsFraming(t *testing.T) {
	g := newGuard()
	cases := []struct {
		headers string
		want    int
	}{
		{"Host: x\r\nContent-Length: 0\r\n", 0},
		{"Host: x\r\nTransfer-Encoding: chunked\r\n", 0},
		{"Host: x\r\ncontent-LENGTH: 3\r\ntransfer-encoding: chunked\r\n", 400},
		{"Host: x\r\nX-A: 1\r\n\t2\r\n", 400},
		{"Host: x\r\nX\tA: 1\r\n", 400},
		{"Host: x\r\n" + strings.Repeat("X: y\r\n", MaxHeaders-1), 0},
		{"Host: x\r\n" + strings.Repeat("X: y\r\n", MaxHeaders), 431},
	}
	for _, tc := range cases {
		_, status, _ := g.checkFields([]byte(tc.headers + "\r\n"))
		if status != tc.want {
			t.Errorf("%q: %d, want %d", tc.headers, status, tc.want)
		}
	}
}

func TestGuardFindsTheFirstRequestID(t *testing.T) {
	g := newGuard()
	cases := []struct {
		headers string
		want    string
	}{
		{"Host: x\r\n", ""},
		{"Host: x\r\nX-Request-ID: abc-1\r\n", "abc-1"},
		{"x-request-id:\t  spaced \t\r\nHost: x\r\n", "spaced"},
		{"X-REQUEST-ID: first\r\nX-Request-Id: second\r\n", "first"},
		{"X-Request-IDs: other\r\nX-Forwarded-For: 1.2.3.4\r\n", ""},
		{"X-Request-ID:\r\n", ""},
	}
	for _, tc := range cases {
		f, status, _ := g.checkFields([]byte(tc.headers + "\r\n"))
		if status != 0 || string(f.id) != tc.want {
			t.Errorf("%q: id %q status %d, want %q and 0", tc.headers, f.id, status, tc.want)
		}
	}
}

func TestGuardFindsTraceContext(t *testing.T) {
	g := newGuard()
	cases := []struct {
		headers         string
		parent, state   string
		parents, states int
	}{
		{"Host: x\r\n", "", "", 0, 0},
		{"traceparent: 00-a-b-01 \r\nHost: x\r\n", "00-a-b-01", "", 1, 0},
		{"TraceParent:\t00-a\r\ntraceparent: 00-b\r\n", "00-a", "", 2, 0},
		{"tracestate: k=v\r\nTRACESTATE: l=w\r\n", "", "k=v", 0, 2},
		{"traceparents: no\r\ntracestate-x: no\r\nTransfer-Encoding: chunked\r\n", "", "", 0, 0},
	}
	for _, tc := range cases {
		f, status, _ := g.checkFields([]byte(tc.headers + "\r\n"))
		if status != 0 || string(f.traceparent) != tc.parent || string(f.tracestate) != tc.state ||
			f.traceparents != tc.parents || f.tracestates != tc.states {
			t.Errorf("%q: %+v status %d, want %q %q %d %d", tc.headers, f, status, tc.parent, tc.state, tc.parents, tc.states)
		}
	}
}
