package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/problem"
)

func TestAuthCheck(t *testing.T) {
	a := NewTokens([]string{"first-token-0123456789", "second-token-0123456789"}, "HOTPATH_")
	none := NewTokens(nil, "HOTPATH_")
	cases := []struct {
		auth   *Tokens
		header string
		ok     bool
	}{
		{a, "Bearer first-token-0123456789", true},
		{a, "Bearer second-token-0123456789", true},
		{a, "bearer second-token-0123456789", true},
		{a, "BEARER  first-token-0123456789", true},
		{a, "", false},
		{a, "Bearer", false},
		{a, "Bearer ", false},
		{a, "Bearer first-token-012345678", false},
		{a, "Bearer first-token-01234567890", false},
		{a, "Bearer first-token-0123456789 ", false},
		{a, "Basic first-token-0123456789", false},
		{a, "first-token-0123456789", false},
		{a, "Bearerfirst-token-0123456789", false},
		{none, "Bearer first-token-0123456789", false},
		{none, "", false},
	}
	for _, c := range cases {
		var ctx fasthttp.RequestCtx
		if c.header != "" {
			ctx.Request.Header.Set("Authorization", c.header)
		}
		caller, err := c.auth.Check(&ctx)
		if (err == nil) != c.ok {
			t.Errorf("Authorization %q (tokens configured: %v): %v, want ok=%v", c.header, len(*c.auth.digests.Load()), err, c.ok)
		}
		if err == nil {
			token := c.header[strings.LastIndexByte(c.header, ' ')+1:]
			digest := sha256.Sum256([]byte(token))
			if want := hex.EncodeToString(digest[:8]); caller.String() != want {
				t.Errorf("Authorization %q: caller %s, want %s (the digest's first 8 bytes)", c.header, caller, want)
			}
			if strings.Contains(caller.String(), token) {
				t.Errorf("caller %s holds the token", caller)
			}
		} else if caller != (Caller{}) {
			t.Errorf("Authorization %q refused, yet caller %s", c.header, caller)
		}
		var pe *problem.Error
		if err != nil && (!errors.As(err, &pe) || pe.Status != 401) {
			t.Errorf("Authorization %q: %v, want a 401 problem", c.header, err)
		}
	}
	if _, err := none.Check(&fasthttp.RequestCtx{}); err != none.disabled {
		t.Errorf("no tokens configured: %v, want the detail that names auth.tokens", err)
	}
}

func TestCallersDiffer(t *testing.T) {
	a := NewTokens([]string{"first-token-0123456789", "second-token-0123456789"}, "HOTPATH_")
	ids := map[Caller]bool{}
	for _, tok := range []string{"first-token-0123456789", "second-token-0123456789"} {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.Set("Authorization", "Bearer "+tok)
		c, err := a.Check(&ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids[c] = true
	}
	if len(ids) != 2 {
		t.Errorf("two tokens gave %d callers, want 2", len(ids))
	}
}

func TestSetTokensSwapsTheWholeSet(t *testing.T) {
	const old, added = "old-token-0123456789", "new-token-0123456789"
	a := NewTokens([]string{old}, "HOTPATH_")
	check := func(token string, want bool) {
		t.Helper()
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.Set("Authorization", "Bearer "+token)
		if _, err := a.Check(&ctx); (err == nil) != want {
			t.Errorf("token %s accepted %v, want %v", token, err == nil, want)
		}
	}
	a.SetTokens([]string{old, added})
	check(old, true)
	check(added, true)
	a.SetTokens([]string{added})
	check(old, false)
	check(added, true)
	a.SetTokens(nil)
	if _, err := a.Check(&fasthttp.RequestCtx{}); err != a.disabled {
		t.Errorf("after SetTokens(nil): %v, want writes disabled", err)
	}
}
