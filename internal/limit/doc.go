// Package limit adapts the cap on requests handled at once to the latency
// the handlers show, the way Envoy's adaptive concurrency filter does: it
// learns the latency of an unloaded server (minRTT) by now and then pinning
// the cap low for one window, then each window scales the cap by how far the
// window's mean latency has drifted above that baseline.
//
//	gradient = clamp((minRTT + minRTT*Tolerance) / windowRTT, 0.5, 2)
//	limit    = limit*gradient + sqrt(limit*gradient)
//
// Latency above the baseline means requests queue for a shared resource
// (CPU, database pool), so fewer are let in; latency at the baseline lets the
// cap grow, but only while the cap is actually being used.
//
// # What an operator sees
//
// server.max_inflight = "auto" replaces a hand-tuned number with this cap.
// Every 10 s the cap is pinned to 4 for one 100 ms window to measure the
// unloaded latency (minRTT); every other window it moves by the gradient
// clamp(1.5 * minRTT / window mean latency, 0.5, 2) plus sqrt(cap) of
// headroom, between 4 and 4096. A new process starts with that measuring
// window (cap 4 until 20 requests have finished and 100 ms have passed), then
// opens at 64: a burst that meets a fresh process is partly shed with 503 and
// Retry-After for that first window, the price of a baseline not taken under
// load. A probe counts only requests admitted under its low cap, so requests
// still finishing from before it do not inflate the baseline. The current
// value is the http_inflight_limit gauge.
//
// It is one cap for all routes, so a mix of microsecond and millisecond
// routes is judged by its mean. Use a static number when you know your
// capacity; use "auto" when capacity changes (database speed, neighbours,
// instance size).
package limit
