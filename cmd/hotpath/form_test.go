package main

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// formClient is a browser-like client of the HTML form: it keeps cookies
// and does not follow redirects, so tests see the 303.
type formClient struct {
	t    *testing.T
	base string
	jar  *cookiejar.Jar
	http *http.Client
}

func newFormClient(t *testing.T, base string) *formClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &formClient{t: t, base: base, jar: jar, http: &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

var tokenField = regexp.MustCompile(`<input type="hidden" name="csrf_token" value="([A-Za-z0-9_-]+)">`)

// token loads /fortunes/new and returns the form's token; the cookie lands
// in the jar.
func (c *formClient) token() string {
	c.t.Helper()
	resp, body := c.do("GET", "/fortunes/new", "", nil)
	m := tokenField.FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil {
		c.t.Fatalf("GET /fortunes/new: %d, no token in:\n%s", resp.StatusCode, body)
	}
	return m[1]
}

// post submits the form with message and token plus header pairs.
func (c *formClient) post(message, token string, headers ...string) (*http.Response, string) {
	c.t.Helper()
	form := url.Values{"message": {message}}
	if token != "" {
		form.Set("csrf_token", token)
	}
	h := append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)
	return c.do("POST", "/fortunes", form.Encode(), h)
}

func (c *formClient) do(method, path, body string, headers []string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, string(b)
}

// cookie returns the CSRF cookie the jar holds.
func (c *formClient) cookie() string {
	u, _ := url.Parse(c.base)
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == "hotpath_csrf" {
			return ck.Value
		}
	}
	c.t.Fatal("no hotpath_csrf cookie in the jar")
	return ""
}

// expectHTMLHeaders checks the security headers every HTML answer carries.
func expectHTMLHeaders(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, must := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, must) {
			t.Errorf("%s: Content-Security-Policy %q lacks %s", what, csp, must)
		}
	}
	if strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("%s: Content-Security-Policy %q allows script", what, csp)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "same-origin" {
		t.Errorf("%s: nosniff %q, Referrer-Policy %q", what, resp.Header.Get("X-Content-Type-Options"), resp.Header.Get("Referrer-Policy"))
	}
}

func TestFormPageAndCookie(t *testing.T) {
	p := startProc(t)
	defer p.stop(t)
	c := newFormClient(t, p.app)
	resp, body := c.do("GET", "/fortunes/new", "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /fortunes/new: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	expectHTMLHeaders(t, "GET /fortunes/new", resp)
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Vary") != "Sec-Fetch-Site, Origin" {
		t.Errorf("form page: Cache-Control %q, Vary %q", resp.Header.Get("Cache-Control"), resp.Header.Get("Vary"))
	}
	set := strings.ToLower(resp.Header.Get("Set-Cookie"))
	for _, must := range []string{"hotpath_csrf=", "httponly", "samesite=strict", "path=/"} {
		if !strings.Contains(set, must) {
			t.Errorf("Set-Cookie %q lacks %s", set, must)
		}
	}
	if strings.Contains(set, "domain=") || strings.Contains(set, "secure") {
		t.Errorf("Set-Cookie %q: no Domain, and no Secure on plain http", set)
	}
	if !tokenField.MatchString(body) || !strings.Contains(body, `action="/fortunes"`) || !strings.Contains(body, `name="message"`) {
		t.Errorf("form page lacks the form:\n%s", body)
	}
	first := c.cookie()
	c.token()
	if c.cookie() != first {
		t.Error("a second visit replaced a valid CSRF cookie")
	}

	// Behind a TLS ingress the cookie is Secure and __Host- prefixed.
	ps := startProc(t, "--security.secure_cookie=true")
	defer ps.stop(t)
	resp, _ = get(t, "GET", ps.app+"/fortunes/new")
	if set := resp.Header.Get("Set-Cookie"); !strings.HasPrefix(set, "__Host-hotpath_csrf=") || !strings.Contains(strings.ToLower(set), "secure") {
		t.Errorf("with security.secure_cookie: Set-Cookie %q, want a Secure __Host- cookie", set)
	}
}

func TestFormCSRF(t *testing.T) {
	// Some 30 posts from one address: limits.anonymous_writes is another
	// test's subject.
	p := startProc(t, "--security.trusted_origins=https://partner.example", "--limits.anonymous_writes=0")
	defer p.stop(t)
	withToken(t) // unused by the form; proves API tokens are no form credential
	db := openDirect(t, "sqlite", dbPath(t, p))
	count := fortuneCount(t, db)

	victim := newFormClient(t, p.app)
	token := victim.token()
	other := newFormClient(t, p.app)
	otherToken := other.token()
	own := p.app

	refused := []struct {
		name    string
		client  *formClient
		token   string
		headers []string
		status  int
	}{
		{"no token", victim, "", nil, 403},
		{"wrong token", victim, strings.Repeat("A", len(token)), nil, 403},
		{"another client's token", victim, otherToken, nil, 403},
		{"the cookie value as token", victim, victim.cookie(), nil, 403},
		{"no cookie", newFormClient(t, p.app), token, nil, 403},
		{"Sec-Fetch-Site cross-site", victim, token, []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"Sec-Fetch-Site same-site", victim, token, []string{"Sec-Fetch-Site", "same-site"}, 403},
		{"foreign Origin", victim, token, []string{"Origin", "https://evil.example"}, 403},
		{"look-alike Origin", victim, token, []string{"Origin", own + ".evil.example"}, 403},
		{"other port", victim, token, []string{"Origin", "http://127.0.0.1:1"}, 403},
		{"https Origin for an http server", victim, token, []string{"Origin", strings.Replace(own, "http:", "https:", 1)}, 403},
		{"null Origin", victim, token, []string{"Origin", "null"}, 403},
		{"foreign Referer", victim, token, []string{"Referer", "https://evil.example/attack.html"}, 403},
		{"same-origin claim with a foreign Origin", victim, token, []string{"Sec-Fetch-Site", "same-origin", "Origin", "https://evil.example"}, 403},
		{"trusted origin without token", victim, "", []string{"Origin", "https://partner.example"}, 403},
		{"API token instead of CSRF token", newFormClient(t, p.app), "", authHeader, 403},
	}
	for _, c := range refused {
		resp, body := c.client.post("forged", c.token, c.headers...)
		expectProblem(t, "form post: "+c.name, resp, body, c.status)
		if resp.Header.Get("Vary") != "Sec-Fetch-Site, Origin" {
			t.Errorf("form post %s: Vary %q", c.name, resp.Header.Get("Vary"))
		}
	}
	resp, body := victim.do("POST", "/fortunes", "message=forged&csrf_token="+token, []string{"Content-Type", "text/plain"})
	expectProblem(t, "form post as text/plain", resp, body, 415)
	for _, m := range []string{"GET", "HEAD"} {
		victim.do(m, "/fortunes?message=forged&csrf_token="+url.QueryEscape(token), "", nil)
	}
	if n := fortuneCount(t, db); n != count {
		t.Fatalf("refused posts changed the fortune count from %d to %d", count, n)
	}

	accepted := []struct {
		name    string
		headers []string
	}{
		{"no fetch metadata (a non-browser client)", nil},
		{"same-origin browser", []string{"Sec-Fetch-Site", "same-origin", "Origin", own}},
		{"user navigation", []string{"Sec-Fetch-Site", "none"}},
		{"Referer only", []string{"Referer", own + "/fortunes/new"}},
		{"trusted origin", []string{"Sec-Fetch-Site", "same-site", "Origin", "https://partner.example"}},
	}
	for _, c := range accepted {
		resp, body := victim.post("accepted: "+c.name, victim.token(), c.headers...)
		if resp.StatusCode != 303 || resp.Header.Get("Location") != "/fortunes" {
			t.Errorf("form post %s: %d %q %s, want 303 to /fortunes", c.name, resp.StatusCode, resp.Header.Get("Location"), body)
		}
		count++
	}
	// The token is bound to the cookie, not to one page: an older token of
	// the same client stays valid.
	if resp, body := victim.post("accepted: an earlier token", token); resp.StatusCode != 303 {
		t.Errorf("earlier token of the same cookie: %d %s", resp.StatusCode, body)
	}
	count++
	if n := fortuneCount(t, db); n != count {
		t.Errorf("fortune count %d after the accepted posts, want %d", n, count)
	}
}

func TestFormValidation(t *testing.T) {
	p := startProc(t)
	defer p.stop(t)
	db := openDirect(t, "sqlite", dbPath(t, p))
	count := fortuneCount(t, db)
	c := newFormClient(t, p.app)
	for _, v := range []struct {
		name, message string
	}{
		{"empty", ""},
		{"too long", strings.Repeat("x", 501)},
		{"control character", "bell\x07"},
		{"lone carriage return", "a\rb"},
		{"escaped payload", `</textarea><script>window.__xss=1</script>` + strings.Repeat("y", 500)},
	} {
		resp, body := c.post(v.message, c.token())
		if resp.StatusCode != 422 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Errorf("%s: %d %q, want a 422 page", v.name, resp.StatusCode, resp.Header.Get("Content-Type"))
			continue
		}
		expectHTMLHeaders(t, "422 form", resp)
		if !strings.Contains(body, `<ul id="errors"><li>message: `) || !tokenField.MatchString(body) {
			t.Errorf("%s: the 422 page lacks the error or a fresh token:\n%s", v.name, body)
		}
		if got := textarea(body); got != v.message {
			t.Errorf("%s: the form shows %q, want the message back", v.name, got)
		}
		if strings.Contains(body, "<script>") {
			t.Errorf("%s: the 422 page holds a raw script tag", v.name)
		}
	}
	if n := fortuneCount(t, db); n != count {
		t.Errorf("invalid posts changed the fortune count from %d to %d", count, n)
	}
	// Browsers send a textarea's line breaks as CRLF: stored as LF.
	if resp, body := c.post("line one\r\nline two", c.token()); resp.StatusCode != 303 {
		t.Fatalf("multi-line message: %d %s", resp.StatusCode, body)
	}
	fs, err := db.Fortunes(t.Context(), nil)
	if err != nil || fs[len(fs)-1].Message != "line one\nline two" {
		t.Errorf("stored %q (%v), want CRLF turned into LF", fs[len(fs)-1].Message, err)
	}
}

var textareaRe = regexp.MustCompile(`(?s)<textarea[^>]*>(.*?)</textarea>`)

func textarea(body string) string {
	m := textareaRe.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func TestFormSecretIsSharedByReplicas(t *testing.T) {
	secret := "--security.csrf_secret=" + strings.Repeat("s3cret-", 6)
	a := startProc(t, secret)
	defer a.stop(t)
	b := startProc(t, secret)
	defer b.stop(t)
	c := startProc(t, "--security.csrf_secret="+strings.Repeat("other-", 6))
	defer c.stop(t)

	client := newFormClient(t, a.app)
	token := client.token()
	cookie := client.cookie()
	post := func(p *proc) int {
		resp, _ := newFormClient(t, p.app).do("POST", "/fortunes", url.Values{"message": {"replica"}, "csrf_token": {token}}.Encode(),
			[]string{"Content-Type", "application/x-www-form-urlencoded", "Cookie", "hotpath_csrf=" + cookie})
		return resp.StatusCode
	}
	if got := post(b); got != 303 {
		t.Errorf("a replica with the same security.csrf_secret refused the token: %d", got)
	}
	if got := post(c); got != 403 {
		t.Errorf("a server with another security.csrf_secret: %d, want 403", got)
	}
	if !strings.Contains(startProc(t).stderr.String(), "security.csrf_secret is empty") {
		t.Error("no warning logged when security.csrf_secret is empty")
	}
}

// dbPath returns the SQLite file of a process started by startProc.
func dbPath(t *testing.T, p *proc) string {
	t.Helper()
	for _, a := range p.cmd.Args {
		if v, ok := strings.CutPrefix(a, "--db.dsn="); ok {
			return v
		}
	}
	t.Fatal("process has no --db.dsn")
	return ""
}

// TestFormTokensWorkAcrossPreforkChildren: without security.csrf_secret
// the prefork children must still share one key, or a form served by one
// child would be refused by its sibling.
func TestFormTokensWorkAcrossPreforkChildren(t *testing.T) {
	app, adm := freePort(t), freePort(t)
	p := startProcNoWait(t, "--server.prefork=true",
		fmt.Sprintf("--server.addr=127.0.0.1:%d", app), fmt.Sprintf("--admin.addr=127.0.0.1:%d", adm))
	p.app = fmt.Sprintf("http://127.0.0.1:%d", app)
	deadline := time.Now().Add(20 * time.Second)
	for len(childrenOf(t, p.cmd.Process.Pid)) < 2 || !answers(p.app+"/plaintext") {
		if time.Now().After(deadline) {
			t.Fatalf("prefork did not start 2 serving children in 20s:\n%s", p.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	c := newFormClient(t, p.app)
	// A new connection per request, so both children answer.
	c.http.Transport = &http.Transport{DisableKeepAlives: true}
	token := c.token()
	children := map[string]bool{}
	for i := range 20 {
		resp, body := c.post(fmt.Sprintf("prefork %d", i), token)
		if resp.StatusCode != 303 {
			t.Errorf("post %d: %d %s", i, resp.StatusCode, body)
		}
		children[strings.SplitN(resp.Header.Get("X-Request-Id"), "-", 2)[0]] = true
	}
	if len(children) < 2 {
		t.Errorf("20 posts were answered by %d process, want both children", len(children))
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("master exit status %d after SIGTERM, want 0", code)
	}
}
