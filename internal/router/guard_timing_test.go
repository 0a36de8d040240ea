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
		if g.refuse(&ctx) {
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
		status, _ := g.checkFields([]byte(tc.headers + "\r\n"))
		if status != tc.want {
			t.Errorf("%q: %d, want %d", tc.headers, status, tc.want)
		}
	}
}
