package web

import (
	"testing"

	"github.com/valyala/fasthttp"
)

func TestHTMLSetsSecurityHeaders(t *testing.T) {
	var ctx fasthttp.RequestCtx
	called := false
	HTML(func(ctx *fasthttp.RequestCtx) { called = true })(&ctx)
	if !called {
		t.Fatal("HTML did not call the wrapped handler")
	}
	for k, want := range map[string]string{
		"Content-Security-Policy": ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
	} {
		if got := string(ctx.Response.Header.Peek(k)); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// The TFB /fortunes page goes through HTML, so the headers must cost no
// allocation once the response's header buffers are warm.
func TestHTMLHeadersAllocateNothing(t *testing.T) {
	var ctx fasthttp.RequestCtx
	h := HTML(func(*fasthttp.RequestCtx) {})
	h(&ctx)
	if n := testing.AllocsPerRun(1000, func() {
		ctx.Response.Header.Reset()
		h(&ctx)
	}); n != 0 {
		t.Errorf("HTML allocates %.1f times per request, want 0", n)
	}
}
