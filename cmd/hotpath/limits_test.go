package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loggedClient sends GET /plaintext with an X-Forwarded-For header and
// returns the remote_addr the access log recorded for it.
func loggedClient(t *testing.T, p *proc, id, xff string) string {
	t.Helper()
	get(t, "GET", p.app+"/plaintext", "X-Request-ID", id, "X-Forwarded-For", xff)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range accessLines(t, p.stdout.String()) {
			if l["request_id"] == id {
				addr, _ := l["remote_addr"].(string)
				return addr
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no access-log line for request %s:\n%s", id, p.stdout.String())
	return ""
}

// TestClientAddressFollowsTrustedProxiesOnly: X-Forwarded-For names the
// client only when the socket peer is a trusted proxy, and then only its
// right-most untrusted entry counts.
func TestClientAddressFollowsTrustedProxiesOnly(t *testing.T) {
	untrusted := startProc(t, "--log.access_sample=1")
	defer untrusted.stop(t)
	if got := loggedClient(t, untrusted, "spoof-1", "203.0.113.5"); got != "127.0.0.1" {
		t.Errorf("no trusted proxies: X-Forwarded-For 203.0.113.5 logged as %q, want the peer 127.0.0.1", got)
	}

	other := startProc(t, "--log.access_sample=1", "--server.trusted_proxies=10.0.0.0/8")
	defer other.stop(t)
	if got := loggedClient(t, other, "spoof-2", "203.0.113.5"); got != "127.0.0.1" {
		t.Errorf("peer outside server.trusted_proxies: logged %q, want the peer 127.0.0.1", got)
	}

	trusted := startProc(t, "--log.access_sample=1", "--server.trusted_proxies=127.0.0.1,10.0.0.0/8")
	defer trusted.stop(t)
	for _, c := range []struct{ xff, want string }{
		{"203.0.113.5", "203.0.113.5"},
		{"1.1.1.1, 203.0.113.5, 10.0.0.7", "203.0.113.5"},
		{"10.0.0.8", "10.0.0.8"},
		{"not-an-address", "127.0.0.1"},
	} {
		if got := loggedClient(t, trusted, "via-proxy-"+c.want+"-"+itoa(len(c.xff)), c.xff); got != c.want {
			t.Errorf("trusted peer, X-Forwarded-For %q: logged %q, want %q", c.xff, got, c.want)
		}
	}
}

func TestTrustedProxiesAreValidated(t *testing.T) {
	for _, bad := range []string{"10.0.0.1/8", "proxy.internal", "10.0.0.0/40"} {
		code, _, stderr := runExit(t, nil, "--server.trusted_proxies="+bad)
		if code != 2 || !strings.Contains(stderr, "server.trusted_proxies") {
			t.Errorf("--server.trusted_proxies=%s: exit %d, stderr %q; want 2 naming the key", bad, code, stderr)
		}
	}
}

// fromAddr makes c connect from the local address ip (any of 127.0.0.0/8
// reaches the server on 127.0.0.1), so one test can be several clients.
func (c *formClient) fromAddr(ip string) *formClient {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c.http.Transport = &http.Transport{DialContext: d.DialContext}
	return c
}

// countStored counts the fortunes on /fortunes whose message starts with prefix.
func countStored(t *testing.T, p *proc, prefix string) int {
	t.Helper()
	_, body := get(t, "GET", p.app+"/fortunes")
	return strings.Count(body, "<td>"+prefix)
}

// TestFormPosterIsLimitedPerAddress is the scripted form poster: one
// address fetching the form and posting 100 times stores at most the
// default allowance (20 a minute, plus what refills while it runs), then
// gets 429 with Retry-After and the RateLimit headers, while a second
// address still posts.
func TestFormPosterIsLimitedPerAddress(t *testing.T) {
	for _, d := range drivers() {
		t.Run(d.name, func(t *testing.T) {
			p := startProc(t, d.args(t)...)
			defer p.stop(t)
			waitReady(t, p)
			poster := newFormClient(t, p.app)
			start := time.Now()
			var stored, limited int
			var first *http.Response
			for i := range 100 {
				resp, body := poster.post(fmt.Sprintf("poster-%d", i), poster.token())
				switch resp.StatusCode {
				case 303:
					stored++
					if limited > 0 {
						// A bucket refills one post every 3s: fine after a
						// wait, never straight after a refusal.
						t.Logf("post %d stored after %d refusals, %s in", i, limited, time.Since(start))
					}
				case 429:
					limited++
					if first == nil {
						first = resp
						if !strings.Contains(body, "limits.anonymous_writes allows 20/m") || resp.Header.Get("Content-Type") != "application/problem+json" {
							t.Errorf("429 body %s (%s), want a problem naming limits.anonymous_writes", body, resp.Header.Get("Content-Type"))
						}
					}
				default:
					t.Fatalf("post %d: %d %s", i, resp.StatusCode, body)
				}
			}
			refills := int(time.Since(start)/(3*time.Second)) + 1
			if stored < 20 || stored > 20+refills {
				t.Errorf("%d of 100 posts stored in %s, want 20 plus at most %d refills", stored, time.Since(start), refills)
			}
			if got := countStored(t, p, "poster-"); got != stored {
				t.Errorf("%d poster fortunes in /fortunes, want the %d posts answered 303", got, stored)
			}
			if first == nil {
				t.Fatal("no post was refused")
			}
			if ra, err := strconv.Atoi(first.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 3 {
				t.Errorf("Retry-After %q, want 1..3 seconds (one post refills every 3s)", first.Header.Get("Retry-After"))
			}
			if got := first.Header.Get("RateLimit-Policy"); got != `"anonymous_writes";q=20;w=60` {
				t.Errorf("RateLimit-Policy %q, want \"anonymous_writes\";q=20;w=60", got)
			}
			if got, want := first.Header.Get("RateLimit"), `"anonymous_writes";r=0;t=`+first.Header.Get("Retry-After"); got != want {
				t.Errorf("RateLimit %q, want %q (reset when Retry-After says)", got, want)
			}
			if got := metricValue(t, p, `http_rate_limited_total{class="anonymous_writes"}`); int(got) != limited {
				t.Errorf("http_rate_limited_total{class=\"anonymous_writes\"} = %v, want %d", got, limited)
			}

			second := newFormClient(t, p.app).fromAddr("127.0.0.2")
			resp, body := second.post("second-address", second.token())
			if resp.StatusCode != 303 {
				t.Errorf("a second address: %d %s, want 303: limits are per client", resp.StatusCode, body)
			}
			if got := resp.Header.Get("RateLimit"); got != `"anonymous_writes";r=19;t=3` {
				t.Errorf("a second address: RateLimit %q, want its own full bucket less one", got)
			}
		})
	}
}

// TestLimitsKeyOnTheClientAProxyNames: behind a trusted proxy each client
// named in X-Forwarded-For has its own bucket; from an untrusted peer the
// header is ignored, so spoofing it gains nothing.
func TestLimitsKeyOnTheClientAProxyNames(t *testing.T) {
	post := func(c *formClient, xff string) int {
		resp, _ := c.post("via "+xff, c.token(), "X-Forwarded-For", xff)
		return resp.StatusCode
	}
	untrusted := startProc(t, "--limits.anonymous_writes=2/h")
	defer untrusted.stop(t)
	c := newFormClient(t, untrusted.app)
	got := []int{post(c, "203.0.113.1"), post(c, "203.0.113.2"), post(c, "203.0.113.3")}
	if got[0] != 303 || got[1] != 303 || got[2] != 429 {
		t.Errorf("untrusted peer, three spoofed addresses: %v, want [303 303 429]: one bucket, the peer's", got)
	}

	trusted := startProc(t, "--limits.anonymous_writes=2/h", "--server.trusted_proxies=127.0.0.1")
	defer trusted.stop(t)
	c = newFormClient(t, trusted.app)
	got = []int{post(c, "203.0.113.1"), post(c, "203.0.113.1"), post(c, "203.0.113.1"), post(c, "198.51.100.1, 203.0.113.2")}
	if got[0] != 303 || got[1] != 303 || got[2] != 429 || got[3] != 303 {
		t.Errorf("trusted proxy: %v, want [303 303 429 303]: one bucket per client it names", got)
	}
}

// TestTokenWritesAreLimitedPerToken: one token over limits.token_writes is
// refused while another is served; writes with a wrong token count as
// anonymous writes of their address, never against a token.
func TestTokenWritesAreLimitedPerToken(t *testing.T) {
	const other = "other-token-0123456789abcdef"
	for _, d := range drivers() {
		t.Run(d.name, func(t *testing.T) {
			p := startProc(t, append(d.args(t), "--auth.tokens="+apiToken+","+other,
				"--limits.token_writes=3/m", "--limits.anonymous_writes=2/m")...)
			defer p.stop(t)
			waitReady(t, p)
			create := func(token, msg string) *http.Response {
				resp, _ := send(t, "POST", p.app+"/api/v1/fortunes", `{"message":"`+msg+`"}`,
					"Content-Type", "application/json", "Authorization", "Bearer "+token)
				return resp
			}
			for i := range 3 {
				if resp := create(apiToken, fmt.Sprintf("token-a-%d", i)); resp.StatusCode != 201 {
					t.Fatalf("token A, write %d: %d, want 201", i+1, resp.StatusCode)
				}
			}
			resp := create(apiToken, "token-a-over")
			if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "20" ||
				resp.Header.Get("RateLimit-Policy") != `"token_writes";q=3;w=60` || resp.Header.Get("RateLimit") != `"token_writes";r=0;t=20` {
				t.Errorf("token A, write 4: %d Retry-After %q RateLimit-Policy %q RateLimit %q; want 429, 20, \"token_writes\";q=3;w=60, r=0;t=20",
					resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("RateLimit-Policy"), resp.Header.Get("RateLimit"))
			}
			if resp := create(other, "token-b"); resp.StatusCode != 201 || resp.Header.Get("RateLimit") != `"token_writes";r=2;t=20` {
				t.Errorf("token B: %d RateLimit %q, want 201 from its own bucket", resp.StatusCode, resp.Header.Get("RateLimit"))
			}
			if got := countStored(t, p, "token-"); got != 4 {
				t.Errorf("%d fortunes stored, want 4: nothing from the refused write", got)
			}
			wrong := []int{create("wrong-token-0123456789ab", "x").StatusCode, create("wrong-token-0123456789ab", "x").StatusCode, create("wrong-token-0123456789ab", "x").StatusCode}
			if wrong[0] != 401 || wrong[1] != 401 || wrong[2] != 429 {
				t.Errorf("wrong token three times: %v, want [401 401 429] (limits.anonymous_writes = 2/m)", wrong)
			}
			if resp := create(other, "token-b-2"); resp.StatusCode != 201 {
				t.Errorf("token B after the wrong-token writes: %d, want 201", resp.StatusCode)
			}
			for class, want := range map[string]float64{"token_writes": 1, "anonymous_writes": 1, "reads": 0} {
				if got := metricValue(t, p, `http_rate_limited_total{class="`+class+`"}`); got != want {
					t.Errorf("http_rate_limited_total{class=%q} = %v, want %v", class, got, want)
				}
			}
			if strings.Contains(p.stdout.String()+p.stderr.String(), apiToken) {
				t.Error("a token's text reached a log")
			}
		})
	}
}

// TestFailedTokenWritesSpendTheAnonymousAllowance: with the default
// limits, /api/v1 writes with a wrong or missing token are anonymous
// writes of their address: twenty are answered 401, the RateLimit header
// counting down from r=19, then 429 naming limits.anonymous_writes; the
// HTML form from that address, which shares the allowance, is refused
// too, while a write with a valid token from the same address is served.
func TestFailedTokenWritesSpendTheAnonymousAllowance(t *testing.T) {
	withToken(t)
	p := startProc(t)
	defer p.stop(t)
	waitReady(t, p)
	failed := []struct {
		method, path, body, auth string
	}{
		{"POST", "/api/v1/fortunes", `{"message":"guess"}`, "Bearer wrong-token-0123456789ab"},
		{"PUT", "/api/v1/worlds/1", `{"randomNumber":1}`, ""},
		{"DELETE", "/api/v1/fortunes/1", "", "Bearer short"},
		{"POST", "/api/v1/fortunes", `{"message":"guess"}`, "Basic dXNlcjpwYXNz"},
	}
	start := time.Now()
	var refused []int
	var over *http.Response
	for i := 0; over == nil && i < 40; i++ {
		w := failed[i%len(failed)]
		headers := []string{"Content-Type", "application/json"}
		if w.auth != "" {
			headers = append(headers, "Authorization", w.auth)
		}
		resp, body := send(t, w.method, p.app+w.path, w.body, headers...)
		switch resp.StatusCode {
		case 401:
			if i == 0 && !strings.HasPrefix(resp.Header.Get("RateLimit"), `"anonymous_writes";r=19;`) {
				t.Errorf("first wrong-token write: RateLimit %q, want \"anonymous_writes\";r=19: it spends the address's anonymous allowance", resp.Header.Get("RateLimit"))
			}
			refused = append(refused, i)
		case 429:
			over = resp
			if !strings.Contains(body, "limits.anonymous_writes allows 20/m") || resp.Header.Get("Retry-After") == "" {
				t.Errorf("%s %s over the allowance: %s (Retry-After %q), want a problem naming limits.anonymous_writes", w.method, w.path, body, resp.Header.Get("Retry-After"))
			}
		default:
			t.Fatalf("%s %s with Authorization %q: %d %s, want 401 then 429", w.method, w.path, w.auth, resp.StatusCode, body)
		}
	}
	refills := int(time.Since(start)/(3*time.Second)) + 1 // 20/m refills one every 3s
	if over == nil || len(refused) < 20 || len(refused) > 20+refills {
		t.Fatalf("%d failed-token writes answered 401 before a 429 (got one: %v), want 20 plus at most %d refills", len(refused), over != nil, refills)
	}
	form := newFormClient(t, p.app)
	if resp, _ := form.post("from the guessing address", form.token()); resp.StatusCode != 429 {
		t.Errorf("the HTML form from the same address: %d, want 429: it shares limits.anonymous_writes", resp.StatusCode)
	}
	resp, body := sendJSON(t, "POST", p.app+"/api/v1/fortunes", `{"message":"valid token, same address"}`)
	if resp.StatusCode != 201 || strings.Contains(resp.Header.Get("RateLimit"), "anonymous_writes") {
		t.Errorf("a valid-token write from the same address: %d %s (RateLimit %q), want 201 outside limits.anonymous_writes",
			resp.StatusCode, body, resp.Header.Get("RateLimit"))
	}
	if got := metricValue(t, p, `http_rate_limited_total{class="anonymous_writes"}`); got != 2 {
		t.Errorf("http_rate_limited_total{class=\"anonymous_writes\"} = %v, want 2 (the API write and the form post)", got)
	}
}

// TestReadsLimit: with limits.reads on, /plaintext, /json and a 404 share
// one bucket per address; a write route does not spend it.
func TestReadsLimit(t *testing.T) {
	p := startProc(t, "--limits.reads=4/h")
	defer p.stop(t)
	var codes []int
	for _, path := range []string{"/plaintext", "/json", "/no-such-page", "/plaintext"} {
		resp, _ := get(t, "GET", p.app+path)
		codes = append(codes, resp.StatusCode)
		if resp.Header.Get("RateLimit-Policy") != `"reads";q=4;w=3600` {
			t.Errorf("GET %s: RateLimit-Policy %q, want \"reads\";q=4;w=3600", path, resp.Header.Get("RateLimit-Policy"))
		}
	}
	c := newFormClient(t, p.app).fromAddr("127.0.0.2")
	token := c.token()
	if resp, _ := c.post("not a read", token); resp.StatusCode != 303 || resp.Header.Get("RateLimit-Policy") != `"anonymous_writes";q=20;w=60` {
		t.Errorf("form post: %d with RateLimit-Policy %q, want 303 under anonymous_writes only", resp.StatusCode, resp.Header.Get("RateLimit-Policy"))
	}
	resp, body := get(t, "GET", p.app+"/json")
	codes = append(codes, resp.StatusCode)
	if want := []int{200, 200, 404, 200, 429}; fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Errorf("five reads on a 4/h bucket: %v, want %v", codes, want)
	}
	if !strings.Contains(body, "limits.reads allows 4/h") || resp.Header.Get("Retry-After") != "900" {
		t.Errorf("refused read: Retry-After %q body %s, want 900 and a problem naming limits.reads", resp.Header.Get("Retry-After"), body)
	}
}

// TestRateLimitTableStaysBounded: 200,000 distinct client addresses through
// a trusted proxy's header, each leaving a bucket that would stay for an
// hour, fill the reads table to its cap and no further, and the process's
// memory stays put.
func TestRateLimitTableStaysBounded(t *testing.T) {
	p := startProc(t, "--server.trusted_proxies=127.0.0.1", "--limits.reads=1/h")
	defer p.stop(t)
	get(t, "GET", p.app+"/plaintext", "X-Forwarded-For", "192.0.2.1")
	before := rssBytes(t, p)
	const clients = 200_000
	const workers = 8
	var wg sync.WaitGroup
	var refused atomic.Int64
	for w := range workers {
		wg.Go(func() {
			conn, err := net.Dial("tcp", strings.TrimPrefix(p.app, "http://"))
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			// Pipelined in batches: 200,000 requests in seconds.
			const batch = 100
			for i := w; i < clients; i += workers * batch {
				var req bytes.Buffer
				n := 0
				for j := i; j < i+workers*batch && j < clients; j += workers {
					fmt.Fprintf(&req, "GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.%d.%d.%d\r\n\r\n", j>>16, j>>8&0xff, j&0xff)
					n++
				}
				if _, err := conn.Write(req.Bytes()); err != nil {
					t.Error(err)
					return
				}
				for range n {
					resp, err := http.ReadResponse(r, nil)
					if err != nil {
						t.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						refused.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	after := rssBytes(t, p)
	live := metricValue(t, p, `http_rate_limit_buckets{class="reads"}`)
	evicted := metricValue(t, p, `http_rate_limit_evictions_total{class="reads"}`)
	t.Logf("%d clients: %v live buckets, %v evicted, %d refused; RSS %d KiB before, %d KiB after",
		clients, live, evicted, refused.Load(), before>>10, after>>10)
	if live > 65536 || live < 65536*99/100 {
		t.Errorf("%v live buckets, want the table full at its cap of 65536 and no more", live)
	}
	if int(evicted) < clients-65536 {
		t.Errorf("%v evictions, want at least %d: every client beyond the cap evicts one", evicted, clients-65536)
	}
	if refused.Load() != 0 {
		t.Errorf("%d first requests refused, want none: each client had a fresh bucket", refused.Load())
	}
	// 200,000 buckets kept in a map would take tens of MiB.
	if grew := after - before; grew > 8<<20 {
		t.Errorf("RSS grew by %d KiB, want under 8 MiB: the table is allocated once, at start", grew>>10)
	}
}

// TestReloadChangesRateLimits: limits.* reload in place, and a client's
// bucket carries over into the new rate.
func TestReloadChangesRateLimits(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	replaceFile(t, path, conf(`limits.reads = "2/h"`))
	p := startConfigured(t, dir, path)
	defer p.stop(t)
	status := func() int {
		resp, _ := get(t, "GET", p.app+"/plaintext")
		return resp.StatusCode
	}
	if got := []int{status(), status(), status()}; fmt.Sprint(got) != "[200 200 429]" {
		t.Fatalf("three reads at 2/h: %v, want [200 200 429]", got)
	}
	replaceFile(t, path, conf(`limits.reads = "0"`))
	waitMetric(t, p, reloadsOK, 1)
	if resp, _ := get(t, "GET", p.app+"/plaintext"); resp.StatusCode != 200 || resp.Header.Get("RateLimit") != "" {
		t.Errorf("limits.reads reloaded to 0: %d with RateLimit %q, want 200 without the header", resp.StatusCode, resp.Header.Get("RateLimit"))
	}
	// Two requests taken an hour's worth of 2/h: at 3/h the bucket holds
	// only two more after 20 minutes, so it is still over.
	replaceFile(t, path, conf(`limits.reads = "3/h"`, `limits.anonymous_writes = "0"`))
	waitMetric(t, p, reloadsOK, 2)
	resp, _ := get(t, "GET", p.app+"/plaintext")
	if resp.StatusCode != 429 || resp.Header.Get("RateLimit-Policy") != `"reads";q=3;w=3600` {
		t.Errorf("limits.reads reloaded to 3/h: %d, RateLimit-Policy %q; want 429 under the new policy", resp.StatusCode, resp.Header.Get("RateLimit-Policy"))
	}
	if !strings.Contains(p.stderr.String(), `"changed":["limits.anonymous_writes","limits.reads"]`) {
		t.Errorf("no reload line naming the changed limits:\n%s", p.stderr.String())
	}
}

// TestMaxFortunes: at api.max_fortunes a create through the API or the
// form is refused with 409 naming the limit, counted, and stores nothing;
// reads are unaffected; a delete frees a place; a reload moves the cap.
func TestMaxFortunes(t *testing.T) {
	for _, d := range drivers() {
		t.Run(d.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.toml")
			replaceFile(t, path, conf("api.max_fortunes = 15", `auth.tokens = ["`+apiToken+`"]`))
			p := startConfigured(t, dir, path, d.args(t)...)
			defer p.stop(t)
			waitReady(t, p)
			create := func(msg string) (*http.Response, string) {
				return send(t, "POST", p.app+"/api/v1/fortunes", `{"message":"`+msg+`"}`,
					"Content-Type", "application/json", authHeader[0], authHeader[1])
			}
			var ids []string
			for i := range 3 { // 12 seeded fortunes and 3 more
				resp, body := create(fmt.Sprintf("capped-%d", i))
				if resp.StatusCode != 201 {
					t.Fatalf("create %d under the cap: %d %s", i+1, resp.StatusCode, body)
				}
				ids = append(ids, strings.TrimPrefix(resp.Header.Get("Location"), "/api/v1/fortunes/"))
			}
			resp, body := create("capped-over")
			if resp.StatusCode != 409 || resp.Header.Get("Content-Type") != "application/problem+json" ||
				!strings.Contains(body, "api.max_fortunes") || !strings.Contains(body, "at most 15") {
				t.Errorf("create at the cap: %d %s %s, want a 409 problem naming api.max_fortunes and 15", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			form := newFormClient(t, p.app)
			if resp, body := form.post("capped-form", form.token()); resp.StatusCode != 409 || !strings.Contains(body, "api.max_fortunes") {
				t.Errorf("form post at the cap: %d %s, want the same 409", resp.StatusCode, body)
			}
			if got := metricValue(t, p, "fortune_cap_refusals_total"); got != 2 {
				t.Errorf("fortune_cap_refusals_total = %v, want 2", got)
			}
			if got := countStored(t, p, "capped-"); got != 3 {
				t.Errorf("%d capped fortunes on /fortunes, want the 3 created under the cap", got)
			}
			if resp, _ := get(t, "GET", p.app+"/api/v1/fortunes/"+ids[0]); resp.StatusCode != 200 {
				t.Errorf("a read at the cap: %d, want 200", resp.StatusCode)
			}
			if resp, _ := send(t, "DELETE", p.app+"/api/v1/fortunes/"+ids[0], "", authHeader...); resp.StatusCode != 204 {
				t.Fatalf("delete: %d", resp.StatusCode)
			}
			if resp, body := form.post("capped-after-delete", form.token()); resp.StatusCode != 303 {
				t.Errorf("form post after a delete: %d %s, want 303: the delete freed one place", resp.StatusCode, body)
			}
			if resp, _ := create("capped-again"); resp.StatusCode != 409 {
				t.Errorf("create once the freed place is taken: %d, want 409", resp.StatusCode)
			}
			replaceFile(t, path, conf("api.max_fortunes = 16", `auth.tokens = ["`+apiToken+`"]`))
			waitMetric(t, p, reloadsOK, 1)
			if resp, body := create("capped-raised"); resp.StatusCode != 201 {
				t.Errorf("create after api.max_fortunes was reloaded to 16: %d %s, want 201", resp.StatusCode, body)
			}
			if got := countStored(t, p, "capped-"); got != 4 {
				t.Errorf("%d capped fortunes at the end, want 4", got)
			}
		})
	}
}
