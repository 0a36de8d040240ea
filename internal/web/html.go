// Package web serves hotpath's HTML: the CSRF-protected form that adds a
// fortune, and the security headers every HTML answer carries.
//
// Every page is rendered by html/template, which escapes each value for
// the context it lands in (text, attribute, URL), so stored text is never
// trusted to be markup. The Content-Security-Policy is a second wall: it
// allows no script at all, so even a missed escape could not run one.
package web

import (
	"github.com/valyala/fasthttp"
)

// ContentSecurityPolicy is sent with every HTML answer. The pages need no
// script, no inline style and no third party: anything else is refused.
const ContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// HTML wraps a handler whose answers are HTML pages with the security
// headers they need: CSP, nosniff and a same-origin Referrer-Policy (which
// also keeps the Referer on our own form posts, the CSRF check's fallback
// for Origin).
func HTML(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		setHTMLHeaders(ctx)
		h(ctx)
	}
}

func setHTMLHeaders(ctx *fasthttp.RequestCtx) {
	hdr := &ctx.Response.Header
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "same-origin")
}
