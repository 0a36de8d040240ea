# Load-test targets; the root Makefile includes this file, so paths are
# relative to the repository root. Every knob can be set on the command line:
#   make bench BENCH_SERVERS=hotpath,fasthttp BENCH_DURATION=15s
# Each target builds hotpath first and runs the bench module's own runner
# (bench/cmd/bench), which keeps Gin, Fiber, gnet and vegeta out of the
# server's module.

GO                ?= go
BENCH_SERVERS     ?= hotpath,fiber-full,fiber-full-discard,gin-full,gin-full-discard,nethttp-full,nethttp-full-discard,fasthttp,fasthttp-timeouts,fasthttp-headers,nethttp,gin,fiber,gnet
BENCH_ENDPOINTS   ?= plaintext,plaintext-single,json,db,queries,fortunes,updates
BENCH_DURATION    ?= 10s
BENCH_WARMUP      ?= 3s
BENCH_CONNECTIONS ?= 64
BENCH_THREADS     ?= 1
BENCH_ROUNDS      ?= 3
BENCH_PIPELINE    ?= 16
BENCH_QUERIES     ?= 20
BENCH_DRIVER      ?= postgres
BENCH_DSN         ?= postgres://postgres@127.0.0.1:5432/hotpath_bench?sslmode=disable
# BENCH_OUT empty means bench/results/<date>-<host>.
BENCH_OUT         ?=
BENCH_FLAGS       ?=
CAPACITY_SERVERS  ?= hotpath
CAPACITY_ENDPOINT ?= json
CAPACITY_P99      ?= 10ms
CAPACITY_STEP     ?= 3s
CAPACITY_START    ?= 1000
CAPACITY_MAX      ?= 200000
BENCH_SMOKE_OUT   ?= $(or $(TMPDIR),/tmp)/hotpath-bench-smoke
LATENCY_SERVERS   ?= hotpath,fiber-full,gin-full,nethttp-full
LATENCY_ENDPOINTS ?= json,db
LATENCY_STEP      ?= 10s
LATENCY_RATES     ?= 1000,5000
LATENCY_REFERENCE ?= fiber-full
CURVE_SERVERS     ?= hotpath,fiber-full,gin-full,nethttp-full
CURVE_DURATION    ?= 5s
CURVE_IDLE        ?= 1000,10000,30000
# BENCH_NOTE is a sentence for the report's header (other work on the machine).
BENCH_NOTE        ?=

BENCH_RUNNER = cd bench && $(GO) run ./cmd/bench \
	-hotpath $(CURDIR)/bin/hotpath -config $(CURDIR)/config.toml \
	-driver $(BENCH_DRIVER) -dsn '$(BENCH_DSN)' $(if $(BENCH_OUT),-out $(abspath $(BENCH_OUT)))

.PHONY: bench bench-full bench-smoke bench-capacity bench-check

## bench: full comparison of hotpath and its peers with wrk; report in bench/results/
bench: build
	$(BENCH_RUNNER) -servers $(BENCH_SERVERS) -endpoints $(BENCH_ENDPOINTS) \
		-duration $(BENCH_DURATION) -warmup $(BENCH_WARMUP) -connections $(BENCH_CONNECTIONS) \
		-threads $(BENCH_THREADS) -rounds $(BENCH_ROUNDS) -pipeline $(BENCH_PIPELINE) \
		-queries $(BENCH_QUERIES) $(BENCH_FLAGS)

## bench-full: the whole comparison in one report: throughput of every server
## (BENCH_*), latency at given rates (LATENCY_*), cost curves (CURVE_*), and
## hotpath's compression in each coding (BENCH_DURATION, BENCH_ROUNDS); about 80 minutes
bench-full: build
	$(BENCH_RUNNER) -parts throughput,latency,curves,compression -servers $(BENCH_SERVERS) -endpoints $(BENCH_ENDPOINTS) \
		-duration $(BENCH_DURATION) -warmup $(BENCH_WARMUP) -connections $(BENCH_CONNECTIONS) \
		-threads $(BENCH_THREADS) -rounds $(BENCH_ROUNDS) -pipeline $(BENCH_PIPELINE) -queries $(BENCH_QUERIES) \
		-latency-servers $(LATENCY_SERVERS) -latency-endpoints $(LATENCY_ENDPOINTS) -latency-step $(LATENCY_STEP) \
		-latency-rates '$(LATENCY_RATES)' \
		-reference $(LATENCY_REFERENCE) -curve-servers $(CURVE_SERVERS) -curve-duration $(CURVE_DURATION) \
		-curve-idle '$(CURVE_IDLE)' $(if $(BENCH_NOTE),-note '$(BENCH_NOTE)') $(BENCH_FLAGS)

## bench-smoke: seconds end to end (hotpath, bare fasthttp and the full-featured
## peers, one round); fails on any error
# It leaves nothing behind: the report folder goes, and so does the database
# when the run created it. Without wrk it skips, noting why for make test,
# except under CI=true.
bench-smoke: build
	@if ! command -v wrk >/dev/null 2>&1 && [ "$$CI" != true ]; then \
		echo "bench-smoke: skipped: wrk is not installed (apt-get install wrk)"; \
		[ -z "$$HOTPATH_TEST_SKIPS" ] || printf 'bench smoke run\twrk is not installed\n' >> "$$HOTPATH_TEST_SKIPS"; \
		exit 0; \
	fi; \
	trap 'rm -rf $(BENCH_SMOKE_OUT)' EXIT; set -x; \
	cd bench && $(GO) run ./cmd/bench \
		-hotpath $(CURDIR)/bin/hotpath -config $(CURDIR)/config.toml \
		-driver $(BENCH_DRIVER) -dsn '$(BENCH_DSN)' -out $(BENCH_SMOKE_OUT) -drop-db \
		-servers hotpath,fasthttp,fiber-full,gin-full,nethttp-full -endpoints plaintext,json,db,queries,fortunes,updates \
		-rounds 1 -duration 1s -warmup 0s -connections 16 -queries 5 $(BENCH_FLAGS)

## bench-capacity: highest open-loop rate meeting CAPACITY_P99 on CAPACITY_ENDPOINT
bench-capacity: build
	$(BENCH_RUNNER) -capacity -servers $(CAPACITY_SERVERS) -endpoint $(CAPACITY_ENDPOINT) \
		-p99 $(CAPACITY_P99) -step $(CAPACITY_STEP) -start-rate $(CAPACITY_START) \
		-max-rate $(CAPACITY_MAX) $(BENCH_FLAGS)

## bench-check: the bench module's tests and a syntax check of the k6 scripts
bench-check:
	cd bench && $(GO) vet ./... && $(GO) test -count=1 -timeout 5m ./...
	@set -e; dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; \
	for f in bench/k6/*.js; do \
		cp "$$f" "$$dir/$$(basename "$$f" .js).mjs"; \
		node --check "$$dir/$$(basename "$$f" .js).mjs"; \
		echo "node --check $$f: ok"; \
	done
