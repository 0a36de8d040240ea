package endpoint

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/problem"
	"github.com/hotpath/hotpath/internal/store"
)

// TestCheckRefusesWhatCannotBeServedSafely: a route's registration must
// say who may call it when it changes something, and options must not
// contradict each other; the refusal is one line naming the route.
func TestCheckRefusesWhatCannotBeServedSafely(t *testing.T) {
	cases := []struct {
		spec Spec
		want string // "" when the route is fine
	}{
		{Spec{Method: "GET", Path: "/a"}, ""},
		{Spec{Method: "HEAD", Path: "/a"}, ""},
		{Spec{Method: "POST", Path: "/a", Access: Public}, ""},
		{Spec{Method: "DELETE", Path: "/a/{id}", Access: Bearer, Idempotent: true}, ""},
		{Spec{Method: "POST", Path: "/a"}, "route POST /a: a POST route must say who may call it"},
		{Spec{Method: "PUT", Path: "/a"}, "route PUT /a: a PUT route must say who may call it"},
		{Spec{Method: "PATCH", Path: "/a"}, "route PATCH /a: a PATCH route must say who may call it"},
		{Spec{Method: "DELETE", Path: "/a"}, "route DELETE /a: a DELETE route must say who may call it"},
		{Spec{Method: "GET", Path: "/a", Idempotent: true}, "route GET /a: hotpath.Idempotent() is for routes that change something"},
		{Spec{Method: "POST", Path: "/a", Access: Public, Idempotent: true}, "needs hotpath.Auth()"},
		{Spec{Method: "POST", Path: "/a", Access: Public, Class: TokenWrites}, "token_writes limit counts per token"},
		{Spec{Method: "POST", Path: "/a", Access: Bearer, CSRF: true}, "needs no CSRF token"},
		{Spec{Method: "POST", Path: "/a", Access: Public, MaxBody: -1}, "must be positive"},
	}
	for _, c := range cases {
		err := c.spec.Check()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s %s: %v, want no error", c.spec.Method, c.spec.Path, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n")):
			t.Errorf("%s %s: %v, want one line containing %q", c.spec.Method, c.spec.Path, err, c.want)
		}
	}
	s := Spec{Method: "GET", Path: "/b"}
	s.Fail("option %d went wrong", 7)
	if err := s.Check(); err == nil || err.Error() != "route GET /b: option 7 went wrong" {
		t.Errorf("a recorded option mistake: %v", err)
	}
}

func TestDefaultClassFollowsTheRoute(t *testing.T) {
	for _, c := range []struct {
		spec Spec
		want Class
	}{
		{Spec{Method: "GET"}, Reads},
		{Spec{Method: "GET", Access: Bearer}, Reads},
		{Spec{Method: "POST", Access: Public}, AnonymousWrites},
		{Spec{Method: "POST", Access: Bearer}, TokenWrites},
		{Spec{Method: "POST", Access: Bearer, Class: Reads}, Reads},
	} {
		if got := c.spec.class(); got != c.want {
			t.Errorf("%+v: class %d, want %d", c.spec, got, c.want)
		}
	}
}

// TestProblemMapsEveryStoreError: the one mapping from an error to its
// answer.
func TestProblemMapsEveryStoreError(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
	}{
		{fmt.Errorf("select: %w", store.ErrNotFound), 404},
		{fmt.Errorf("insert: %w", store.ErrConflict), 409},
		{fmt.Errorf("insert: %w", store.ErrInvalid), 422},
		{fmt.Errorf("select: %w", store.ErrUnavailable), 503},
		{context.DeadlineExceeded, 503},
		{store.ErrKeyInFlight, 409},
		{store.ErrKeyReused, 422},
		{ErrPrecondition, 412},
		{problem.New(418, "teapot"), 418},
		{errors.New("boom"), 500},
	} {
		pe := Problem(c.err)
		if pe.Status != c.status {
			t.Errorf("%v: %d, want %d", c.err, pe.Status, c.status)
		}
		if c.status == 500 && strings.Contains(pe.Detail, "boom") {
			t.Errorf("a 500 shows its cause to the client: %q", pe.Detail)
		}
	}
	if pe := Problem(store.ErrUnavailable); pe.RetryAfter == 0 {
		t.Error("503 without Retry-After")
	}
}

func TestHTMLRoutesGetTheSecurityHeaders(t *testing.T) {
	r := Bind(&Spec{Method: "GET", Path: "/page", HTML: true}, &Deps{})
	h := r.Wrap(func(rc *fasthttp.RequestCtx) { rc.SetBodyString("<p>hi</p>") })
	var rc fasthttp.RequestCtx
	h(&rc)
	for k, want := range map[string]string{
		"Content-Security-Policy": ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
	} {
		if got := string(rc.Response.Header.Peek(k)); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { rc.Response.Reset(); h(&rc) }); n != 0 {
		t.Errorf("the HTML headers cost %v allocations per answer, want 0", n)
	}
}

func TestOperationIDNamesMethodAndPath(t *testing.T) {
	for path, want := range map[string]string{
		"/v1/notes":              "getV1Notes",
		"/v1/notes/{id}":         "getV1NotesById",
		"/api/v1/fortunes/{id}":  "getApiV1FortunesById",
		"/cached-queries":        "getCachedQueries",
		"/v1/users/{user}/items": "getV1UsersByUserItems",
	} {
		if got := operationID("GET", path); got != want {
			t.Errorf("GET %s: %q, want %q", path, got, want)
		}
	}
}
