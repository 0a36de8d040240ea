// Package csrf defends the HTML form against cross-site request forgery in
// two independent layers:
//
//  1. Origin checks in the manner of net/http.CrossOriginProtection: a
//     browser's Sec-Fetch-Site must not be cross-site or same-site, and the
//     Origin header (else the Referer) must name this server or a trusted
//     origin.
//  2. A synchronizer token: a random value in an HttpOnly, SameSite=Strict
//     cookie, and in the form an HMAC-SHA256 of that value under a server
//     secret. A page on another origin can neither read the cookie nor
//     compute the HMAC. A sibling domain can still plant a cookie together
//     with a token it fetched for it itself (cookie tossing); layer 1
//     refuses that post, and the __Host- cookie of secure mode cannot be
//     planted at all.
package csrf

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// FieldName is the name of the hidden form field that carries the token.
const FieldName = "csrf_token"

// Cookie names. Browsers accept a __Host- cookie only with Secure, Path=/
// and no Domain, which pins it to this exact host; without TLS the plain
// name is used.
const (
	cookieName       = "hotpath_csrf"
	secureCookieName = "__Host-hotpath_csrf"
)

const (
	nonceLen = 32             // random bytes in the cookie
	macLen   = sha256.Size    // bytes of the HMAC
	maxAge   = 12 * time.Hour // cookie lifetime; a stale form just needs a reload
	// macLabel separates this HMAC from any other use of the same secret.
	macLabel = "hotpath csrf v1\x00"
)

var (
	// ErrCrossOrigin reports a request that a browser marked, or whose
	// Origin or Referer shows it, as coming from another origin.
	ErrCrossOrigin = errors.New("csrf: cross-origin request")
	// ErrNoCookie reports a request without the CSRF cookie: cookies are
	// disabled, it expired, or the request did not come from our page.
	ErrNoCookie = errors.New("csrf: no CSRF cookie")
	// ErrBadToken reports a form token that is missing or does not match
	// the cookie.
	ErrBadToken = errors.New("csrf: missing or wrong CSRF token")
)

// Protector issues and checks CSRF tokens. It is safe for concurrent use.
type Protector struct {
	secret []byte
	// trusted is swapped whole by SetTrusted (a configuration reload).
	trusted atomic.Pointer[Origins]
	secure  bool
}

// Origins is a set of trusted origins, normalised by ParseOrigins.
type Origins map[string]bool

// ParseOrigins checks and normalises trusted origins
// (scheme://host[:port]).
func ParseOrigins(origins []string) (Origins, error) {
	set := Origins{}
	for _, o := range origins {
		norm, err := ParseOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("csrf: trusted origin: %w", err)
		}
		set[norm] = true
	}
	return set, nil
}

// New returns a Protector keyed by secret (at least 32 bytes; see
// RandomSecret) that also accepts form posts from the trusted origins
// (scheme://host[:port]). secure marks the cookie Secure and makes https
// this server's own scheme, for a server behind a TLS-terminating proxy.
func New(secret []byte, trusted []string, secure bool) (*Protector, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("csrf: secret of %d bytes is too short: want at least 32", len(secret))
	}
	set, err := ParseOrigins(trusted)
	if err != nil {
		return nil, err
	}
	p := &Protector{secret: secret, secure: secure}
	p.SetTrusted(set)
	return p, nil
}

// SetTrusted replaces the trusted origins for the checks that start from
// now on.
func (p *Protector) SetTrusted(set Origins) { p.trusted.Store(&set) }

// RandomSecret returns a fresh 32-byte secret, for a process without a
// configured one. Tokens it signs are valid only in this process.
func RandomSecret() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return b
}

// Token returns the token to put in the form's hidden field, setting the
// cookie on the response when the request has no usable one. Each call
// masks the token afresh, so a page never repeats it byte for byte (which
// defeats compression oracles such as BREACH).
func (p *Protector) Token(ctx *fasthttp.RequestCtx) string {
	nonce, ok := decodeNonce(ctx.Request.Header.Cookie(p.cookieName()))
	if !ok {
		nonce = make([]byte, nonceLen)
		_, _ = rand.Read(nonce) // crypto/rand.Read never returns an error
		p.setCookie(ctx, nonce)
	}
	return p.mask(p.mac(nonce))
}

// Check reports why a state-changing request must be refused, or nil. It
// reads the form field FieldName, so the body must already be parsed as a
// form (ctx.PostArgs).
func (p *Protector) Check(ctx *fasthttp.RequestCtx) error {
	h := &ctx.Request.Header
	if err := p.CheckOrigin(string(h.Peek("Sec-Fetch-Site")), string(h.Peek("Origin")),
		string(h.Peek("Referer")), p.ownOrigin(ctx)); err != nil {
		return err
	}
	return p.Verify(h.Cookie(p.cookieName()), ctx.PostArgs().Peek(FieldName))
}

// CheckOrigin applies the origin layer to the header values of an unsafe
// request; own is this server's origin as the browser sees it. A request
// with none of the headers passes (a non-browser client or an old
// browser); the token layer still applies to it.
func (p *Protector) CheckOrigin(fetchSite, origin, referer, own string) error {
	from, err := requestOrigin(origin, referer)
	if err != nil {
		return err
	}
	trusted := from != "" && (*p.trusted.Load())[from]
	switch fetchSite {
	case "", "same-origin", "none":
	default: // cross-site, same-site, or a value from the future: refuse unless trusted
		if !trusted {
			return fmt.Errorf("%w: Sec-Fetch-Site is %q", ErrCrossOrigin, fetchSite)
		}
	}
	if from != "" && from != own && !trusted {
		return fmt.Errorf("%w: from %q, not %q or security.trusted_origins", ErrCrossOrigin, from, own)
	}
	return nil
}

// Verify checks a cookie value against a masked form token in constant
// time.
func (p *Protector) Verify(cookie, token []byte) error {
	nonce, ok := decodeNonce(cookie)
	if !ok {
		return ErrNoCookie
	}
	mac, ok := unmask(token)
	if !ok || !hmac.Equal(mac, p.mac(nonce)) {
		return ErrBadToken
	}
	return nil
}

// requestOrigin returns the normalised origin a request names: Origin, or
// when absent the origin of Referer; "" when neither is sent.
func requestOrigin(origin, referer string) (string, error) {
	switch {
	case origin == "null":
		// Sandboxed frames, data: URLs and privacy redirects send "null":
		// its real origin is hidden, so it cannot be trusted.
		return "", fmt.Errorf("%w: Origin is null", ErrCrossOrigin)
	case origin != "":
		o, err := ParseOrigin(origin)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrCrossOrigin, err)
		}
		return o, nil
	case referer != "":
		u, err := url.Parse(referer)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return "", fmt.Errorf("%w: unreadable Referer", ErrCrossOrigin)
		}
		return u.Scheme + "://" + strings.ToLower(u.Host), nil
	}
	return "", nil
}

// ParseOrigin checks that s is a serialised origin, scheme://host[:port]
// with http or https, and returns it with scheme and host in lower case.
func ParseOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("invalid origin %q: want scheme://host[:port]", s)
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host), nil
}

// ownOrigin is the origin the browser sees for this server. Host comes
// from the request; an absolute-form request target can change it, but a
// browser never sends one to an origin server.
func (p *Protector) ownOrigin(ctx *fasthttp.RequestCtx) string {
	scheme := "http://"
	if p.secure || ctx.IsTLS() {
		scheme = "https://"
	}
	return scheme + strings.ToLower(string(ctx.Host()))
}

func (p *Protector) cookieName() string {
	if p.secure {
		return secureCookieName
	}
	return cookieName
}

func (p *Protector) setCookie(ctx *fasthttp.RequestCtx, nonce []byte) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(p.cookieName())
	c.SetValue(base64.RawURLEncoding.EncodeToString(nonce))
	c.SetPath("/")
	c.SetMaxAge(int(maxAge / time.Second))
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	c.SetSecure(p.secure || ctx.IsTLS())
	ctx.Response.Header.SetCookie(c)
}

func (p *Protector) mac(nonce []byte) []byte {
	m := hmac.New(sha256.New, p.secret)
	m.Write([]byte(macLabel))
	m.Write(nonce)
	return m.Sum(nil)
}

// mask returns base64url(pad || pad XOR mac) with a fresh random pad.
func (p *Protector) mask(mac []byte) string {
	b := make([]byte, 2*macLen)
	_, _ = rand.Read(b[:macLen]) // crypto/rand.Read never returns an error
	subtle.XORBytes(b[macLen:], b[:macLen], mac)
	return base64.RawURLEncoding.EncodeToString(b)
}

// unmask reverses mask; ok is false for anything mask could not produce.
func unmask(token []byte) ([]byte, bool) {
	if base64.RawURLEncoding.DecodedLen(len(token)) != 2*macLen {
		return nil, false
	}
	b := make([]byte, 2*macLen)
	if n, err := base64.RawURLEncoding.Decode(b, token); err != nil || n != 2*macLen {
		return nil, false
	}
	subtle.XORBytes(b[macLen:], b[:macLen], b[macLen:])
	return b[macLen:], true
}

// decodeNonce reads a cookie value; ok is false unless it holds exactly
// nonceLen bytes, so a malformed cookie is replaced rather than trusted.
func decodeNonce(v []byte) ([]byte, bool) {
	if base64.RawURLEncoding.DecodedLen(len(v)) != nonceLen {
		return nil, false
	}
	b := make([]byte, nonceLen)
	if n, err := base64.RawURLEncoding.Decode(b, v); err != nil || n != nonceLen {
		return nil, false
	}
	return b, true
}
