// Package auth decides who a request comes from: bearer tokens checked
// against auth.tokens and auth.tokens_file, in constant time.
package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/problem"
)

// Tokens checks bearer tokens against auth.tokens and auth.tokens_file.
//
// Tokens are compared as SHA-256 digests, every configured token every
// time, with subtle.ConstantTimeCompare: the time taken tells an attacker
// neither how much of a guess was right nor which token it came close to.
//
// The token set is swapped whole by SetTokens (a configuration reload):
// each check reads it once, so it sees the old set or the new one.
type Tokens struct {
	digests atomic.Pointer[[][sha256.Size]byte]
	// disabled answers every request while no token is configured; it
	// names the environment variable in the service's own prefix.
	disabled *problem.Error
}

// NewTokens returns a checker for tokens; with none, every request is
// refused with a 401 that says how to configure them (envPrefix is the
// service's: "HOTPATH_").
func NewTokens(tokens []string, envPrefix string) *Tokens {
	a := &Tokens{disabled: problem.New(fasthttp.StatusUnauthorized,
		"writes are disabled: no bearer tokens are configured; set auth.tokens ("+envPrefix+"AUTH__TOKENS) or auth.tokens_file")}
	a.SetTokens(tokens)
	return a
}

// SetTokens replaces the accepted tokens for every check that starts from
// now on.
func (a *Tokens) SetTokens(tokens []string) {
	digests := make([][sha256.Size]byte, 0, len(tokens))
	for _, t := range tokens {
		digests = append(digests, sha256.Sum256([]byte(t)))
	}
	a.digests.Store(&digests)
}

var (
	errNoToken = problem.New(fasthttp.StatusUnauthorized,
		"this request needs the header Authorization: Bearer <token>, with a token from auth.tokens")
	errBadToken = problem.New(fasthttp.StatusUnauthorized, "the bearer token is not valid")
)

// Caller identifies the holder of a bearer token without the token: the
// first 8 bytes of the token's SHA-256 digest. It is the same in every
// replica and across restarts, so it can key state kept per caller (rate
// limits, stored answers), and it is safe to log or store: the tokens are
// random (16 characters or more), so it cannot be turned back into one.
type Caller [8]byte

// String is the caller as 16 hexadecimal digits.
func (c Caller) String() string { return hex.EncodeToString(c[:]) }

// Check returns the caller when the request carries a configured bearer
// token, else a 401 problem (problem.Write adds WWW-Authenticate: Bearer).
func (a *Tokens) Check(ctx *fasthttp.RequestCtx) (Caller, error) {
	digests := *a.digests.Load()
	if len(digests) == 0 {
		return Caller{}, a.disabled
	}
	token, ok := bearer(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization))
	if !ok {
		return Caller{}, errNoToken
	}
	got := sha256.Sum256(token)
	match := 0
	for i := range digests {
		match |= subtle.ConstantTimeCompare(got[:], digests[i][:])
	}
	if match != 1 {
		return Caller{}, errBadToken
	}
	return Caller(got[:8]), nil
}

// bearer extracts the token of an "Authorization: Bearer <token>" value;
// the scheme name is case-insensitive (RFC 9110 §11.1).
func bearer(v []byte) ([]byte, bool) {
	const scheme = "bearer "
	if len(v) <= len(scheme) || !bytes.EqualFold(v[:len(scheme)], []byte(scheme)) {
		return nil, false
	}
	t := bytes.TrimLeft(v[len(scheme):], " ")
	return t, len(t) > 0
}
