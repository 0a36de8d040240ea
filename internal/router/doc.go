// Package router maps requests to handlers and runs the chain every request
// of the application listener goes through: request id, drain, a guard
// against ambiguous framing, the in-flight cap (static or adaptive), panic
// recovery, metrics and the access log (and limits.reads for the requests
// no route takes; each route applies its own rate-limit class, see package
// endpoint).
//
// The public package registers each route with Handle; the route template
// becomes the metric and log label, resolved at registration.
//
// # Requests hotpath refuses although fasthttp would serve them
//
// fasthttp is strict about framing, with a few gaps that RFC 9112 lets a
// server close. A guard in front of the router (guard.go; about 60 ns per
// request, no allocation) answers, and closes the connection:
//
//   - 505 for any protocol other than HTTP/1.0 and HTTP/1.1 (fasthttp serves
//     HTTP/1.2, HTTP/2.0 and HTTP/9.9 request lines as HTTP/1.0);
//   - 400 for Content-Length together with Transfer-Encoding (fasthttp lets
//     chunked win; a proxy in front may have framed by length, which is
//     request smuggling);
//   - 400 for a Transfer-Encoding other than chunked alone (fasthttp reads
//     identity, say, as no body, so the body would be parsed as the next
//     request);
//   - 400 for a header line that ends in a bare LF instead of CRLF (fasthttp
//     ends the line there; a proxy in front may not, and see a different
//     Content-Length);
//   - 400 for obs-fold continuation lines and for white space inside a header
//     name.
package router
