package csrf

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func newTest(t testing.TB, trusted ...string) *Protector {
	t.Helper()
	p, err := New(testSecret, trusted, false)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// issue runs Token on a fresh GET and returns the cookie value and token.
func issue(t testing.TB, p *Protector) (cookie []byte, token string) {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI("/fortunes/new")
	ctx.Request.Header.SetHost("127.0.0.1:8080")
	token = p.Token(&ctx)
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(p.cookieName())
	if !ctx.Response.Header.Cookie(c) {
		t.Fatalf("Token set no %s cookie: %s", p.cookieName(), ctx.Response.Header.String())
	}
	return append([]byte(nil), c.Value()...), token
}

func TestNewRefusesShortSecretAndBadOrigins(t *testing.T) {
	if _, err := New([]byte("short"), nil, false); err == nil {
		t.Error("New accepted a 5-byte secret")
	}
	for _, o := range []string{"example.com", "ftp://example.com", "https://example.com/path", "https://", "https://u@example.com"} {
		if _, err := New(testSecret, []string{o}, false); err == nil {
			t.Errorf("New accepted trusted origin %q", o)
		}
	}
}

func TestTokenSetsAHardenedCookie(t *testing.T) {
	for _, secure := range []bool{false, true} {
		p, err := New(testSecret, nil, secure)
		if err != nil {
			t.Fatal(err)
		}
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetHost("127.0.0.1")
		p.Token(&ctx)
		set := string(ctx.Response.Header.Peek("Set-Cookie"))
		want := []string{"HttpOnly", "SameSite=Strict", "path=/"}
		name := "hotpath_csrf="
		if secure {
			want = append(want, "secure")
			name = "__Host-hotpath_csrf="
		}
		if !strings.HasPrefix(set, name) {
			t.Errorf("secure=%v: cookie %q does not start with %q", secure, set, name)
		}
		for _, w := range want {
			if !strings.Contains(strings.ToLower(set), strings.ToLower(w)) {
				t.Errorf("secure=%v: cookie %q lacks %s", secure, set, w)
			}
		}
		if strings.Contains(strings.ToLower(set), "domain=") || (!secure && strings.Contains(strings.ToLower(set), "secure")) {
			t.Errorf("secure=%v: cookie %q has an unexpected attribute", secure, set)
		}
	}
}

func TestTokenReusesAValidCookieAndMasksEachTime(t *testing.T) {
	p := newTest(t)
	cookie, first := issue(t, p)
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetCookie(p.cookieName(), string(cookie))
	second := p.Token(&ctx)
	if len(ctx.Response.Header.Peek("Set-Cookie")) != 0 {
		t.Error("Token replaced a valid cookie")
	}
	if first == second {
		t.Error("two tokens for one cookie are identical: the mask is not fresh")
	}
	for _, tok := range []string{first, second} {
		if err := p.Verify(cookie, []byte(tok)); err != nil {
			t.Errorf("Verify(own cookie, %q) = %v", tok, err)
		}
	}
}

func TestVerifyRefuses(t *testing.T) {
	p := newTest(t)
	cookieA, tokenA := issue(t, p)
	cookieB, tokenB := issue(t, p)
	other, err := New([]byte("another secret of at least 32 bytes!"), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	_, foreignToken := issue(t, other)
	flipped := []byte(tokenA)
	flipped[len(flipped)-1] ^= 1
	cases := []struct {
		name          string
		cookie, token []byte
		want          error
	}{
		{"no cookie", nil, []byte(tokenA), ErrNoCookie},
		{"short cookie", []byte("abc"), []byte(tokenA), ErrNoCookie},
		{"cookie not base64", bytes.Repeat([]byte("*"), 43), []byte(tokenA), ErrNoCookie},
		{"no token", cookieA, nil, ErrBadToken},
		{"token not base64", cookieA, bytes.Repeat([]byte("*"), 86), ErrBadToken},
		{"token of another cookie", cookieA, []byte(tokenB), ErrBadToken},
		{"cookie of another token", cookieB, []byte(tokenA), ErrBadToken},
		{"token under another secret", cookieA, []byte(foreignToken), ErrBadToken},
		{"one bit flipped", cookieA, flipped, ErrBadToken},
		{"cookie value as token (naive double submit)", cookieA, cookieA, ErrBadToken},
		{"token truncated", cookieA, []byte(tokenA[:len(tokenA)-2]), ErrBadToken},
	}
	for _, c := range cases {
		if err := p.Verify(c.cookie, c.token); !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestCheckOrigin(t *testing.T) {
	p := newTest(t, "https://Partner.example")
	own := "http://127.0.0.1:8080"
	cases := []struct {
		site, origin, referer string
		ok                    bool
	}{
		{"", "", "", true}, // a non-browser client: the token decides
		{"same-origin", "", "", true},
		{"none", "", "", true},
		{"same-origin", own, "", true},
		{"", own, "", true},
		{"", "HTTP://127.0.0.1:8080", "", true},
		{"", "", own + "/fortunes/new", true},
		{"", "", own + "/fortunes/new?x=1#f", true},
		{"cross-site", "", "", false},
		{"same-site", "", "", false},
		{"cross-site", own, "", false},
		{"future-value", "", "", false},
		{"", "https://evil.example", "", false},
		{"", "http://127.0.0.1:8080.evil.example", "", false},
		{"", "http://127.0.0.1:8081", "", false},
		{"", "https://127.0.0.1:8080", "", false},
		{"", "null", "", false},
		{"", "null", own + "/", false},
		{"", "not a url", "", false},
		{"same-origin", "https://evil.example", "", false},
		{"", "", "https://evil.example/page", false},
		{"", "", "javascript:alert(1)", false},
		{"", "https://evil.example", own + "/", false}, // Origin wins over Referer
		{"cross-site", "https://partner.example", "", true},
		{"same-site", "https://partner.example", "", true},
		{"", "https://partner.example", "", true},
		{"cross-site", "", "https://partner.example/x", true},
		{"cross-site", "https://partner.example.evil", "", false},
	}
	for _, c := range cases {
		err := p.CheckOrigin(c.site, c.origin, c.referer, own)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrCrossOrigin)) {
			t.Errorf("CheckOrigin(site=%q, origin=%q, referer=%q) = %v, want ok=%v", c.site, c.origin, c.referer, err, c.ok)
		}
	}
}

func TestCheckReadsTheRequest(t *testing.T) {
	p := newTest(t)
	cookie, token := issue(t, p)
	post := func(site, origin, formToken string, withCookie bool) error {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/fortunes")
		ctx.Request.Header.SetHost("127.0.0.1:8080")
		ctx.Request.Header.SetContentType("application/x-www-form-urlencoded")
		if site != "" {
			ctx.Request.Header.Set("Sec-Fetch-Site", site)
		}
		if origin != "" {
			ctx.Request.Header.Set("Origin", origin)
		}
		if withCookie {
			ctx.Request.Header.SetCookie(p.cookieName(), string(cookie))
		}
		ctx.Request.SetBodyString("message=hi&" + FieldName + "=" + formToken)
		return p.Check(&ctx)
	}
	if err := post("same-origin", "http://127.0.0.1:8080", token, true); err != nil {
		t.Errorf("a same-origin post with cookie and token: %v", err)
	}
	if err := post("cross-site", "https://evil.example", token, true); !errors.Is(err, ErrCrossOrigin) {
		t.Errorf("a cross-site post: %v, want ErrCrossOrigin", err)
	}
	if err := post("same-origin", "", token, false); !errors.Is(err, ErrNoCookie) {
		t.Errorf("a post without cookie: %v, want ErrNoCookie", err)
	}
	if err := post("same-origin", "", "", true); !errors.Is(err, ErrBadToken) {
		t.Errorf("a post without token: %v, want ErrBadToken", err)
	}
}
