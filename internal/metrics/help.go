package metrics

import (
	"bytes"
	"io"
)

// help is the HELP text of every metric family on /metrics: what it counts,
// in words, with its unit. VictoriaMetrics/metrics writes "# HELP name" with
// no text; WritePrometheus fills in the text from here.
//
// The framework's packages that register a family (internal/upstream,
// internal/webhook, internal/router, ...) add its line here, in name order;
// a service describes its own families when it registers them
// (Registry.Describe). TestEveryMetricFamilyHasHelp (cmd/hotpath) scrapes a live server
// with every optional component on and fails for a family without one.
// A text is one line without backslashes (the text format would need them
// escaped).
var help = map[string]string{
	// hotpath's own families.
	"access_log_dropped_total":          "Access-log lines dropped because the log writer fell behind (log.access_buffer was full); a request never waits for the log.",
	"go_gomemlimit_bytes":               "Soft memory limit of the Go runtime (GOMEMLIMIT), in bytes; 0 when no limit is set.",
	"hotpath_build_info":                "Always 1; the labels name the running hotpath version and the Go version it was built with.",
	"http_compressed_responses_total":   "Answers compressed for clients that accept it, by content coding (zstd, br, gzip); answers under server.compress_min_size are not counted.",
	"http_inflight_limit":               "Current adaptive cap on requests handled at once (server.max_inflight = \"auto\"), in requests.",
	"http_overload_rejections_total":    "Requests refused with 503 at once because the in-flight cap (server.max_inflight, a number or the adaptive cap) was reached.",
	"http_panics_recovered_total":       "Handler panics recovered and answered with 500.",
	"http_rate_limit_buckets":           "Clients whose rate-limit bucket is not full, which the table must remember, by class (anonymous_writes, token_writes, reads); at most 65536 per class.",
	"http_rate_limit_evictions_total":   "Rate-limit buckets dropped before they were full to make room for a new client in a full table, by class; their clients start afresh.",
	"http_rate_limited_total":           "Requests refused with 429 because their client was over its rate limit, by class (limits.anonymous_writes, limits.token_writes, limits.reads).",
	"http_refused_total":                "Answers given before a request reached the router, by status code: connection caps (503, 429) and requests that could not be read (400, 408, 413, 431).",
	"http_request_duration_seconds":     "Time to handle a request, from routing to the answer being ready (reading and writing its bytes excluded), in seconds, by route template and method.",
	"http_requests_in_flight":           "Requests being handled now, in requests.",
	"http_requests_total":               "Requests answered by the router, by route template (unmatched for 404, 405, OPTIONS and framing refusals), method and status code.",
	"idempotency_keys_pruned_total":     "Stored Idempotency-Key answers deleted after api.idempotency_ttl expired.",
	"idempotency_prune_errors_total":    "Runs of the Idempotency-Key pruner that failed on a database error (the next run retries).",
	"upstream_breaker_rejections_total": "Calls to an upstream failed at once, without an attempt, because its circuit breaker was open, by upstream.",
	"upstream_breaker_state":            "State of an upstream's circuit breaker: 0 closed, 1 open, 2 half-open (one probe call allowed), by upstream.",
	"upstream_errors_total":             "Attempts to call an upstream that ended in a connection error, a timeout or a 5xx answer, by upstream.",
	"upstream_request_duration_seconds": "Time of one attempt to call an upstream, connecting included, in seconds, by upstream.",
	"upstream_requests_total":           "Attempts to call an upstream (each retry counts), by upstream.",
	"upstream_retries_total":            "Repeated attempts of idempotent upstream calls after a connection error or a 502, 503 or 504, by upstream.",
	"webhook_deliveries_total":          "Webhook delivery attempts, by result: delivered (a 2xx answer) or failed (to be retried or given up).",
	"webhook_events_given_up_total":     "Webhook events abandoned after webhooks.max_attempts failed deliveries.",
	"webhook_outbox_backlog":            "Webhook deliveries waiting in the outbox (one per event and receiver URL), counted in the shared database every second; every replica reports the same number.",
	"webhook_outbox_errors_total":       "Database errors while claiming, recording, counting or pruning webhook outbox rows.",

	// Tracing (internal/tracing).
	"tracing_spans_dropped_total":  "Finished trace spans lost before reaching the collector (tracing.endpoint), by reason: queue_full (tracing.queue spans already waiting) or export_failed (the export was refused, failed or timed out).",
	"tracing_spans_exported_total": "Finished trace spans the collector (tracing.endpoint) accepted.",

	// Configuration reloads (internal/reload).
	"config_last_reload_successful":                "1 when the last configuration reload (or the start-up load) was applied, 0 after one failed and changed nothing.",
	"config_last_reload_success_timestamp_seconds": "Unix time of the last configuration load that was applied: start-up or a successful reload, in seconds.",
	"config_reloads_total":                         "Configuration reloads (SIGHUP or a watched file changing), by result: success (applied; keys that need a restart keep their running values) or error (nothing changed).",
	"hotpath_config_info":                          "Always 1; the hash label identifies the configuration the process runs now (it changes with each applied reload, and replicas with the same settings show the same).",

	// Go runtime families written by VictoriaMetrics/metrics.
	"go_cgo_calls_count":                  "Calls from Go to C made by the process.",
	"go_cpu_count":                        "Logical CPUs usable by the process.",
	"go_gc_cpu_seconds_total":             "CPU time spent in the garbage collector, in seconds.",
	"go_gc_duration_seconds":              "Stop-the-world pauses of the garbage collector, in seconds.",
	"go_gc_forced_count":                  "Garbage collections forced by the application (runtime.GC) rather than started by the runtime.",
	"go_gc_mark_assist_cpu_seconds_total": "CPU time goroutines spent helping the garbage collector mark because they allocated quickly, in seconds.",
	"go_gc_pauses_seconds":                "Distribution of stop-the-world garbage collector pauses, in seconds.",
	"go_gomaxprocs":                       "GOMAXPROCS: the most OS threads that run Go code at once.",
	"go_goroutines":                       "Goroutines that exist now.",
	"go_info":                             "Always 1; the version label names the Go version.",
	"go_info_ext":                         "Always 1; the labels name the compiler, GOARCH, GOOS and GOROOT of the build.",
	"go_memlimit_bytes":                   "Soft memory limit of the Go runtime as the runtime reports it, in bytes (the largest int64 when none is set; see go_gomemlimit_bytes).",
	"go_memstats_alloc_bytes":             "Bytes of allocated heap objects.",
	"go_memstats_alloc_bytes_total":       "Bytes allocated for heap objects since the process started.",
	"go_memstats_buck_hash_sys_bytes":     "Bytes of memory in profiling bucket hash tables.",
	"go_memstats_frees_total":             "Heap objects freed since the process started.",
	"go_memstats_gc_cpu_fraction":         "Fraction of the process's CPU time used by the garbage collector since it started (0 to 1).",
	"go_memstats_gc_sys_bytes":            "Bytes of memory in garbage collection metadata.",
	"go_memstats_heap_alloc_bytes":        "Bytes of allocated heap objects.",
	"go_memstats_heap_idle_bytes":         "Bytes in idle (unused) heap spans.",
	"go_memstats_heap_inuse_bytes":        "Bytes in in-use heap spans.",
	"go_memstats_heap_objects":            "Allocated heap objects.",
	"go_memstats_heap_released_bytes":     "Bytes of physical memory returned to the OS.",
	"go_memstats_heap_sys_bytes":          "Bytes of heap memory obtained from the OS.",
	"go_memstats_last_gc_time_seconds":    "When the last garbage collection finished, in seconds since the Unix epoch.",
	"go_memstats_lookups_total":           "Pointer lookups performed by the runtime.",
	"go_memstats_mallocs_total":           "Heap objects allocated since the process started.",
	"go_memstats_mcache_inuse_bytes":      "Bytes of allocated mcache structures.",
	"go_memstats_mcache_sys_bytes":        "Bytes of memory obtained from the OS for mcache structures.",
	"go_memstats_mspan_inuse_bytes":       "Bytes of allocated mspan structures.",
	"go_memstats_mspan_sys_bytes":         "Bytes of memory obtained from the OS for mspan structures.",
	"go_memstats_next_gc_bytes":           "Heap size, in bytes, at which the next garbage collection starts.",
	"go_memstats_other_sys_bytes":         "Bytes of memory in miscellaneous runtime allocations.",
	"go_memstats_stack_inuse_bytes":       "Bytes in stack spans.",
	"go_memstats_stack_sys_bytes":         "Bytes of stack memory obtained from the OS.",
	"go_memstats_sys_bytes":               "Total bytes of memory obtained from the OS by the Go runtime.",
	"go_mutex_wait_seconds_total":         "Time goroutines spent blocked on a sync.Mutex or sync.RWMutex, in seconds.",
	"go_scavenge_cpu_seconds_total":       "CPU time spent returning unused memory to the OS, in seconds.",
	"go_sched_latencies_seconds":          "Distribution of the time goroutines waited to run after becoming runnable, in seconds.",
	"go_threads":                          "OS threads created by the process.",

	// Process families written by VictoriaMetrics/metrics (Linux; the
	// pressure and cgroup ones only where the kernel offers them).
	"process_cgroup_cpu_throttled_seconds_total":    "Time the process's cgroup was throttled by its CPU limit, in seconds.",
	"process_cpu_seconds_system_total":              "CPU time spent in the kernel on behalf of the process, in seconds.",
	"process_cpu_seconds_total":                     "CPU time used by the process, user and kernel, in seconds.",
	"process_cpu_seconds_user_total":                "CPU time spent in user space by the process, in seconds.",
	"process_io_read_bytes_total":                   "Bytes the process read through read-like system calls.",
	"process_io_read_syscalls_total":                "Read-like system calls made by the process.",
	"process_io_storage_read_bytes_total":           "Bytes the process caused to be read from storage.",
	"process_io_storage_written_bytes_total":        "Bytes the process caused to be written to storage.",
	"process_io_write_syscalls_total":               "Write-like system calls made by the process.",
	"process_io_written_bytes_total":                "Bytes the process wrote through write-like system calls.",
	"process_major_pagefaults_total":                "Page faults of the process that needed a read from disk.",
	"process_max_fds":                               "Most file descriptors the process may open.",
	"process_minor_pagefaults_total":                "Page faults of the process served without a read from disk.",
	"process_num_threads":                           "OS threads of the process.",
	"process_open_fds":                              "File descriptors the process has open.",
	"process_pressure_cpu_stalled_seconds_total":    "Time all non-idle tasks of the process's cgroup waited for a CPU at once, in seconds (pressure stall information).",
	"process_pressure_cpu_waiting_seconds_total":    "Time some task of the process's cgroup waited for a CPU, in seconds (pressure stall information).",
	"process_pressure_io_stalled_seconds_total":     "Time all non-idle tasks of the process's cgroup waited for I/O at once, in seconds (pressure stall information).",
	"process_pressure_io_waiting_seconds_total":     "Time some task of the process's cgroup waited for I/O, in seconds (pressure stall information).",
	"process_pressure_memory_stalled_seconds_total": "Time all non-idle tasks of the process's cgroup waited for memory at once, in seconds (pressure stall information).",
	"process_pressure_memory_waiting_seconds_total": "Time some task of the process's cgroup waited for memory, in seconds (pressure stall information).",
	"process_resident_memory_anon_bytes":            "Bytes of anonymous memory (heap, stacks) resident in RAM.",
	"process_resident_memory_bytes":                 "Bytes of the process's memory resident in RAM.",
	"process_resident_memory_file_bytes":            "Bytes of file-backed memory resident in RAM.",
	"process_resident_memory_peak_bytes":            "Highest resident memory of the process since it started, in bytes.",
	"process_resident_memory_shared_bytes":          "Bytes of shared memory resident in RAM.",
	"process_start_time_seconds":                    "When the process started, in seconds since the Unix epoch.",
	"process_virtual_memory_bytes":                  "Bytes of virtual memory of the process.",
	"process_virtual_memory_peak_bytes":             "Highest virtual memory of the process since it started, in bytes.",
}

// helpPrefix starts a metadata line as the library writes it.
var helpPrefix = []byte("# HELP ")

// writeWithHelp copies the exposition in src to w, giving each "# HELP name"
// line that has no text its text from help. A family missing from help keeps
// its empty line, which TestEveryMetricFamilyHasHelp reports.
func writeWithHelp(w io.Writer, src []byte, more map[string]string) error {
	out := make([]byte, 0, len(src)+len(src)/4)
	for len(src) > 0 {
		line, rest, _ := bytes.Cut(src, []byte{'\n'})
		src = rest
		out = append(out, line...)
		if name, ok := bytes.CutPrefix(line, helpPrefix); ok && bytes.IndexByte(name, ' ') < 0 {
			text, ok := help[string(name)]
			if !ok {
				text, ok = more[string(name)]
			}
			if ok {
				out = append(out, ' ')
				out = append(out, text...)
			}
		}
		out = append(out, '\n')
	}
	_, err := w.Write(out)
	return err
}
