package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawAnswer is what came back on one raw connection.
type rawAnswer struct {
	status int    // of the first response; 0 when none arrived
	text   string // everything read
	closed bool   // the server closed the connection
	reset  bool   // it did so with a reset
}

// exchange writes payload on a fresh connection (concurrently with reading,
// so a server that answers before the body is sent does not block us) and
// reads until the server closes or wait passes.
func exchange(t *testing.T, addr string, payload []byte, wait time.Duration) rawAnswer {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	go func() { _, _ = conn.Write(payload) }() // a refusal may reset the rest
	if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(conn)
	a := rawAnswer{text: string(b)}
	switch {
	case err == nil:
		a.closed = true
	case errors.Is(err, os.ErrDeadlineExceeded):
	default:
		a.closed, a.reset = true, true
	}
	if rest, ok := strings.CutPrefix(a.text, "HTTP/1.1 "); ok && len(rest) >= 3 {
		a.status, _ = strconv.Atoi(rest[:3])
	}
	return a
}

// appAddr is host:port of a process's application listener.
func appAddr(p *proc) string { return strings.TrimPrefix(p.app, "http://") }

// dialApp opens a raw connection to p's application port and sends payload
// (nothing when empty); the caller closes it.
func dialApp(t *testing.T, p *proc, payload string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", appAddr(p))
	if err != nil {
		t.Fatal(err)
	}
	if payload != "" {
		if _, err := conn.Write([]byte(payload)); err != nil {
			conn.Close()
			t.Fatal(err)
		}
	}
	return conn
}

// assertServing checks the server still answers an ordinary request.
func assertServing(t *testing.T, p *proc, after string) {
	t.Helper()
	a := exchange(t, appAddr(p), []byte("GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 5*time.Second)
	if a.status != 200 || !strings.HasSuffix(a.text, "Hello, World!") {
		t.Fatalf("after %s, GET /plaintext got %q, want 200", after, a.text)
	}
}

func TestMalformedRequestsGet4xxAndTheServerCarriesOn(t *testing.T) {
	p := startProc(t, "--server.read_timeout=2s")
	defer p.stop(t)
	big := strings.Repeat("a", 17<<10) // over the 16 KiB read buffer
	headers := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "X-H%d: v\r\n", i)
		}
		return b.String()
	}
	const get = "GET /plaintext HTTP/1.1\r\nHost: x\r\n"
	cases := []struct {
		name    string
		payload string
		want    []int // any of these; the connection must close after
	}{
		// A. Malformed HTTP.
		{"no Host on 1.1", "GET /plaintext HTTP/1.1\r\n\r\n", []int{400}},
		{"two Host headers", get + "Host: y\r\n\r\n", []int{400}},
		{"NUL in a header value", get + "X-A: a\x00b\r\n\r\n", []int{400}},
		{"lone CR in a header value", get + "X-A: a\rb\r\n\r\n", []int{400}},
		{"NUL in the path", "GET /plain\x00text HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}},
		// fasthttp waits for a CRLF that never comes, then times out.
		{"bare LF line endings", "GET /plaintext HTTP/1.1\nHost: x\n\n", []int{400, 408}},
		{"empty header name", get + ": x\r\n\r\n", []int{400}},
		{"space inside a header name", get + "X A: y\r\n\r\n", []int{400}},
		{"space before the colon", get + "X-A : y\r\n\r\n", []int{400}},
		{"0x85 in a header name", get + "X-\x85: y\r\n\r\n", []int{400}},
		{"space before the first header", "GET /plaintext HTTP/1.1\r\n Host: x\r\n\r\n", []int{400}},
		{"double space in the request line", "GET  /plaintext HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}},
		{"obs-fold continuation line", get + "X-A: one\r\n two\r\n\r\n", []int{400}},
		{"obs-fold with a tab", get + "X-A: one\r\n\ttwo\r\n\r\n", []int{400}},
		{"HTTP/2.0 request line", "GET /plaintext HTTP/2.0\r\nHost: x\r\n\r\n", []int{505}},
		{"HTTP/3.0 request line", "GET /plaintext HTTP/3.0\r\nHost: x\r\n\r\n", []int{505}},
		{"HTTP/9.9 request line", "GET /plaintext HTTP/9.9\r\nHost: x\r\n\r\n", []int{505}},
		{"HTTP/1.2 request line", "GET /plaintext HTTP/1.2\r\nHost: x\r\n\r\n", []int{505}},
		{"not a version", "GET /plaintext FTP/1.1\r\nHost: x\r\n\r\n", []int{400}},
		// B. Size limits.
		{"URI over the read buffer", "GET /plaintext?" + big + " HTTP/1.1\r\nHost: x\r\n\r\n", []int{414, 431}},
		{"one header over the read buffer", get + "Cookie: " + big + "\r\n\r\n", []int{431}},
		{"101 header fields", "GET /plaintext HTTP/1.1\r\nHost: x\r\n" + headers(100) + "\r\n", []int{431}},
		{"300 header fields", "GET /plaintext HTTP/1.1\r\nHost: x\r\n" + headers(300) + "\r\n", []int{431}},
		{"body over max_body_size", "POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n" + strings.Repeat("b", 2<<20), []int{413}},
		{"chunked body over max_body_size", "POST /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			strings.Repeat("100000\r\n"+strings.Repeat("c", 1<<20)+"\r\n", 2) + "0\r\n\r\n", []int{413}},
		// C. Smuggling and framing.
		{"Content-Length with Transfer-Encoding", "POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"0\r\n\r\nGET /json HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}},
		{"Transfer-Encoding then Content-Length", "POST /plaintext HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n" +
			"0\r\n\r\n", []int{400}},
		{"two different Content-Length", "POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", []int{400}},
		{"two equal Content-Length", "POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", []int{400}},
		{"TE gzip, chunked", "POST /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", []int{400, 501}},
		{"TE xchunked", "POST /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", []int{400, 501}},
		{"TE ,chunked", "POST /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n", []int{400, 501}},
		{"two TE lines", "POST /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []int{400, 501}},
		{"TE identity, body read as the next request", "POST /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n" +
			"GET /json HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}},
		{"TE chunked, identity", "POST /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", []int{400}},
		{"bare LF before a Content-Length", "POST /plaintext HTTP/1.1\r\nHost: x\r\nX-A: y\nContent-Length: 5\r\n\r\n" +
			"helloGET /json HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}},
		{"bare LF ending the header block", get + "\nGET /json HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}},
		{"TE on HTTP/1.0", "POST /plaintext HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []int{400, 501}},
		{"Content-Length +5", "POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", []int{400}},
		{"Content-Length -1", "POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\nhello", []int{400}},
		{"Content-Length 0x5", "POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello", []int{400}},
		{"Content-Length 5 5", "POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 5 5\r\n\r\nhello", []int{400}},
		{"Content-Length empty", "POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\nhello", []int{400}},
		{"Content-Length past 2^64", "POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 21000000000000000000\r\n\r\nhello", []int{400, 413}},
		{"chunk size 0x5", "POST /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", []int{400}},
		{"chunk size _5", "POST /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n_5\r\nhello\r\n0\r\n\r\n", []int{400}},
		{"chunk size 5 5", "POST /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 5\r\nhello\r\n0\r\n\r\n", []int{400}},
		{"bare LF in a chunk extension", "POST /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n", []int{400}},
		{"trailer Content-Length", "POST /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n", []int{400}},
	}
	for _, tc := range cases {
		a := exchange(t, appAddr(p), []byte(tc.payload), 5*time.Second)
		ok := false
		for _, w := range tc.want {
			ok = ok || a.status == w
		}
		// fasthttp may close an over-long body with a reset before the 413
		// is read (fasthttp#1348); a reset is tolerated, never a 2xx.
		if !ok && !(a.reset && a.status == 0 && strings.Contains(tc.name, "over max_body_size")) {
			t.Errorf("%s: got %q, want one of %v", tc.name, head(a.text), tc.want)
		} else if !a.closed {
			t.Errorf("%s: %d but the connection stayed open, want it closed", tc.name, a.status)
		}
		if a.status != 0 && !strings.Contains(a.text, "application/problem+json") {
			t.Errorf("%s: %d is not a problem+json answer: %q", tc.name, a.status, head(a.text))
		}
		if strings.Contains(a.text, "Hello, World!") || strings.Contains(a.text, `"message"`) {
			t.Errorf("%s: a route ran: %q", tc.name, a.text)
		}
		assertServing(t, p, tc.name)
	}
}

func head(s string) string {
	if i := strings.Index(s, "\r\n\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

func TestHeaderCountCapIsExactly100(t *testing.T) {
	p := startProc(t)
	defer p.stop(t)
	for _, n := range []int{100, 101} {
		var b strings.Builder
		b.WriteString("GET /plaintext HTTP/1.1\r\nConnection: close\r\n")
		for i := range n - 2 {
			fmt.Fprintf(&b, "X-H%d: v\r\n", i)
		}
		b.WriteString("Host: x\r\n\r\n")
		a := exchange(t, appAddr(p), []byte(b.String()), 5*time.Second)
		want := 200
		if n > 100 {
			want = 431
		}
		if a.status != want {
			t.Errorf("%d header fields: got %q, want %d", n, head(a.text), want)
		}
	}
}

func TestOversizedExpectContinueIsRefusedBeforeContinue(t *testing.T) {
	p := startProc(t)
	defer p.stop(t)
	a := exchange(t, appAddr(p), []byte("POST /plaintext HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 52428800\r\n\r\n"), 5*time.Second)
	if a.status != 413 || strings.Contains(a.text, "100 Continue") || !a.closed {
		t.Errorf("Expect: 100-continue with a 50 MiB body: got %q (closed %v), want 413 without 100 Continue, closed", a.text, a.closed)
	}
	// A body within the limit is still invited.
	conn := dialApp(t, p, "POST /plaintext HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 Continue") {
		t.Errorf("Expect: 100-continue with 5 bytes: first line %q (%v), want 100 Continue", line, err)
	}
}

func TestPipelinedRequestsAnswerInOrder(t *testing.T) {
	p := startProc(t)
	defer p.stop(t)
	a := exchange(t, appAddr(p), []byte(
		"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"+
			"GET /json HTTP/1.1\r\nHost: x\r\n\r\n"+
			"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 5*time.Second)
	r := bufio.NewReader(strings.NewReader(a.text))
	for i, want := range []struct {
		status int
		body   string
	}{{200, "Hello, World!"}, {200, `{"message":"Hello, World!"}`}, {404, `"status":404`}} {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("response %d of %q: %v", i, a.text, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want.status || !strings.Contains(string(b), want.body) {
			t.Errorf("response %d: %d %q, want %d with %q", i, resp.StatusCode, b, want.status, want.body)
		}
	}
}

func TestMethodsAndPathsStayInsideTheirRoutes(t *testing.T) {
	p := startProc(t)
	defer p.stop(t)
	cases := []struct {
		line string
		want int
	}{
		{"get /plaintext", 405},
		{"FOO /plaintext", 405},
		{"TRACE /plaintext", 405},
		{"G(T /plaintext", 400},
		{"GET /x/../../etc/passwd", 404},
		{"GET /a/%2e%2e/%2e%2e/etc/passwd", 404},
		{"GET /%252e%252e/etc/passwd", 404},
		{"GET /x/..\\..\\etc/passwd", 404},
	}
	for _, tc := range cases {
		a := exchange(t, appAddr(p), []byte(tc.line+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 5*time.Second)
		if a.status != tc.want {
			t.Errorf("%s: got %q, want %d", tc.line, head(a.text), tc.want)
		}
		if a.status == 405 && !strings.Contains(a.text, "Allow: ") {
			t.Errorf("%s: 405 without Allow: %q", tc.line, head(a.text))
		}
		if strings.Contains(a.text, "root:") {
			t.Errorf("%s: leaked a file: %q", tc.line, a.text)
		}
	}
}

func TestRequestIDCannotInjectHeaders(t *testing.T) {
	p := startProc(t)
	defer p.stop(t)
	for _, id := range []string{"a%0d%0aSet-Cookie:x=1", "a\rSet-Cookie: x=1", `a"}{"level":"error`, strings.Repeat("z", 500)} {
		a := exchange(t, appAddr(p), []byte("GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Request-ID: "+id+"\r\n\r\n"), 5*time.Second)
		h := head(a.text)
		for _, line := range strings.Split(h, "\r\n") {
			if strings.HasPrefix(strings.ToLower(line), "set-cookie") {
				t.Errorf("X-Request-ID %q split the headers: %q", id, h)
			}
		}
		if strings.Count(h, "\r") != strings.Count(h, "\r\n") {
			t.Errorf("X-Request-ID %q put a lone CR into the headers: %q", id, h)
		}
		if a.status != 200 && a.status != 400 {
			t.Errorf("X-Request-ID %q: status %d, want 200 (replaced) or 400", id, a.status)
		}
	}
	assertServing(t, p, "request-id injection")
}

// TestParseErrorsDoNotLogCredentials: fasthttp's parse errors quote the
// request line or a header value; the application log must not carry the
// bearer token or cookie that came with a broken request.
func TestParseErrorsDoNotLogCredentials(t *testing.T) {
	p := startProc(t)
	defer p.stop(t)
	const token, cookie = "tok-0123456789abcdef-SECRET", "csrf-cookie-SECRET"
	creds := "Authorization: Bearer " + token + "\r\nCookie: hotpath_csrf=" + cookie + "\r\n"
	for _, payload := range []string{
		"GET /api/v1/fortunes\r\nHost: x\r\n" + creds + "\r\n",              // no protocol: the line is quoted
		"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-A: a\x00" + creds + "\r\n", // a bad value, quoted
		"GET /plain text?" + token + " HTTP/1.1\r\nHost: x\r\n" + creds + "\r\n",
	} {
		if a := exchange(t, appAddr(p), []byte(payload), 5*time.Second); a.status != 400 {
			t.Errorf("%.40q: status %d, want 400", payload, a.status)
		}
	}
	assertServing(t, p, "after broken requests with credentials")
	logged := p.stderr.String()
	if !strings.Contains(logged, "error when serving connection") {
		t.Fatalf("no fasthttp error logged; the test sent nothing broken enough:\n%s", logged)
	}
	for _, secret := range []string{token, cookie} {
		if strings.Contains(logged, secret) {
			t.Errorf("the application log holds %q:\n%s", secret, logged)
		}
	}
}

// TestRefusalsBeforeTheRouterAreCounted: answers no route sees (requests
// fasthttp cannot read, the connection caps) are in /metrics all the same.
func TestRefusalsBeforeTheRouterAreCounted(t *testing.T) {
	p := startProc(t, "--server.max_conns_per_ip=1")
	defer p.stop(t)
	for _, payload := range []string{
		"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",                                 // 400
		"GET /plaintext HTTP/1.1\r\nHost: x\r\nCookie: " + strings.Repeat("c", 17<<10) + "\r\n\r\n", // 431
	} {
		if a := exchange(t, appAddr(p), []byte(payload), 5*time.Second); a.status != 400 && a.status != 431 {
			t.Fatalf("%.40q: status %d, want 400 or 431", payload, a.status)
		}
	}
	held := dialApp(t, p, "GET /plaintext HTTP/1.1\r\nHost: x\r\n")
	defer held.Close()
	if a := exchange(t, appAddr(p), []byte("GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"), 5*time.Second); a.status != 429 {
		t.Fatalf("second connection from one IP: status %d, want 429", a.status)
	}
	for code, want := range map[string]float64{"400": 1, "431": 1, "429": 1, "503": 0} {
		if v := metricValue(t, p, `http_refused_total{code="`+code+`"}`); v != want {
			t.Errorf("http_refused_total{code=%q} = %v, want %v", code, v, want)
		}
	}
}
