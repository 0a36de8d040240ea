// Package server runs the application listener: a fasthttp.Server built
// from config, its listener (with SO_REUSEPORT when asked) and the stop
// sequence that lets in-flight requests finish.
//
// The limits the listener enforces, and what the server answers when one is
// hit, are listed in README.md in this folder.
//
// # Timeouts without a clock read per request
//
// server.read_timeout, server.write_timeout and server.idle_timeout are
// enforced by the listener, not by fasthttp: fasthttp with timeouts reads the
// clock and moves a socket deadline three times per request, which cost about
// a third of the throughput on pipelined traffic (perf showed clock_gettime
// alone at 14 % of the CPU on pipelined /plaintext). Instead each connection
// stamps, from a coarse clock that one watchdog goroutine advances every tick,
// when its blocked read or write must end, and the watchdog expires the
// sockets past their stamp (timeouts.go). The tick is a sixteenth of the
// shortest timeout, between 1 ms and 100 ms, so a timeout ends between its
// value and that plus two ticks (the defaults: within 5.2 s and 60.2 s). A
// sweep over 10,000 open connections takes about 0.1 ms
// (go test -run '^$' -bench Sweep ./internal/server), ten times a second with
// the defaults.
//
// The read timeout runs from a request's first byte, also across
// 100 Continue; the idle timeout from the last response to the next
// request's first byte; the write timeout from each response's first byte,
// pipelined responses included. One leniency: a request whose head arrived in
// the same read as earlier pipelined requests, and whose rest is still
// missing once their answers are flushed, waits under the idle timeout until
// its next byte arrives, then under the read timeout.
//
// # Requests fasthttp could not read
//
// Everything fasthttp rejects while parsing is answered by hotpath's own
// error handler (errors.go): 413 for an oversized body (fasthttp says 400),
// 408 for any read deadline (fasthttp says 400 for a partial header), 431 for
// an oversized header block, 400 for the rest. The parse error itself is
// never echoed. These answers, like the connection caps' 503 and 429, are
// given before the router, so they are counted in http_refused_total{code}
// rather than http_requests_total.
package server
