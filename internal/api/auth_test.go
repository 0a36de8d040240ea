package api

import (
	"errors"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/problem"
)

func TestAuthCheck(t *testing.T) {
	a := NewAuth([]string{"first-token-0123456789", "second-token-0123456789"})
	none := NewAuth(nil)
	cases := []struct {
		auth   *Auth
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
		err := c.auth.Check(&ctx)
		if (err == nil) != c.ok {
			t.Errorf("Authorization %q (tokens configured: %v): %v, want ok=%v", c.header, len(c.auth.digests), err, c.ok)
		}
		var pe *problem.Error
		if err != nil && (!errors.As(err, &pe) || pe.Status != 401) {
			t.Errorf("Authorization %q: %v, want a 401 problem", c.header, err)
		}
	}
	if err := none.Check(&fasthttp.RequestCtx{}); err != errWritesDisabled {
		t.Errorf("no tokens configured: %v, want the detail that names auth.tokens", err)
	}
}
