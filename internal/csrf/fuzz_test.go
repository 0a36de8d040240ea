package csrf

import (
	"errors"
	"testing"
)

// FuzzVerify feeds arbitrary cookie and token bytes: Verify must never
// panic and must accept only a token made for that very cookie.
func FuzzVerify(f *testing.F) {
	p := newTest(f)
	cookie, token := issue(f, p)
	f.Add(cookie, []byte(token))
	f.Add([]byte(""), []byte(""))
	f.Add(cookie, cookie)
	f.Add([]byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), []byte(token))
	f.Add(cookie, []byte(token+"=="))
	f.Fuzz(func(t *testing.T, c, tok []byte) {
		err := p.Verify(c, tok)
		if err != nil {
			if !errors.Is(err, ErrNoCookie) && !errors.Is(err, ErrBadToken) {
				t.Fatalf("Verify returned an unexpected error kind: %v", err)
			}
			return
		}
		nonce, ok := decodeNonce(c)
		mac, ok2 := unmask(tok)
		if !ok || !ok2 || string(mac) != string(p.mac(nonce)) {
			t.Fatalf("Verify accepted cookie %q with token %q that does not match", c, tok)
		}
	})
}

// FuzzCheckOrigin feeds arbitrary header values: CheckOrigin must never
// panic, and whenever it accepts a request that names an origin, that
// origin is the server's own or the trusted one.
func FuzzCheckOrigin(f *testing.F) {
	const own = "http://127.0.0.1:8080"
	p := newTest(f, "https://partner.example")
	for _, s := range [][3]string{
		{"", "", ""}, {"same-origin", own, ""}, {"cross-site", "https://evil.example", ""},
		{"", "null", ""}, {"", "", own + "/x"}, {"same-site", "https://partner.example", ""},
		{"", "http://127.0.0.1:8080@evil.example", ""}, {"", "http://[::1", ""}, {"", "", "//evil.example/"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, site, origin, referer string) {
		err := p.CheckOrigin(site, origin, referer, own)
		if err != nil {
			if !errors.Is(err, ErrCrossOrigin) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		from, ferr := requestOrigin(origin, referer)
		if ferr != nil {
			t.Fatalf("accepted although the origin is unreadable: %v", ferr)
		}
		if from != "" && from != own && from != "https://partner.example" {
			t.Fatalf("accepted origin %q (Origin %q, Referer %q)", from, origin, referer)
		}
		switch site {
		case "", "same-origin", "none":
		default:
			if from != "https://partner.example" {
				t.Fatalf("accepted Sec-Fetch-Site %q from %q", site, from)
			}
		}
	})
}
