# hotpath's front door. `make run` and `make test` are all a newcomer needs.

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
GO      ?= go
PKGS    := ./...

.PHONY: all help build run test examples-check openapi-check test-race bench-micro fuzz fuzz-short generate lint vet fmt check clean

## all: the default target, same as build
all: build

## help: list every target with what it does
help:
	@awk '/^## [a-z0-9-]+: / { if (n) printf "  %-15s %s\n", n, d; n = $$2; sub(/:$$/, "", n); d = substr($$0, length($$2) + 5); next } \
		/^## / && n { d = d " " substr($$0, 4); next } \
		{ if (n) printf "  %-15s %s\n", n, d; n = "" }' $(MAKEFILE_LIST)

## build: compile bin/hotpath (static, version stamped)
build:
	@test -e bin/hotpath || echo "make build: first build: Go downloads the modules hotpath needs and compiles them, which can take a few minutes"
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/hotpath ./cmd/hotpath

## run: build and start with ./config.toml on the embedded SQLite database
run: build
	./bin/hotpath -config config.toml

## test: the whole suite: server module, fuzz seeds, the example service and the OpenAPI
## checks (modules of their own), bench module, bench smoke, k8s checks
# Outside CI, a test that cannot run here (no PostgreSQL variable, no
# chromium, no wrk, no node) skips and notes why in $$HOTPATH_TEST_SKIPS;
# the run ends with one line summing those notes up. Under CI=true such
# tests fail instead. Without the PostgreSQL variable the bench smoke run
# uses SQLite, and says so.
test:
	@skips=$$(mktemp "$${TMPDIR:-/tmp}/hotpath-test-skips.XXXXXX") && trap 'rm -f "$$skips"' EXIT; \
	export HOTPATH_TEST_SKIPS="$$skips"; smoke=; \
	if [ -z "$$HOTPATH_TEST_POSTGRES_DSN" ] && [ "$$CI" != true ]; then \
		smoke=BENCH_DRIVER=sqlite; \
		printf 'bench smoke run on PostgreSQL\tHOTPATH_TEST_POSTGRES_DSN is not set, so it ran on SQLite\n' >> "$$skips"; \
	fi; \
	echo "$(GO) test -count=1 -timeout 20m $(PKGS)"; \
	$(GO) test -count=1 -timeout 20m $(PKGS) && \
	$(MAKE) --no-print-directory fuzz-short examples-check openapi-check bench-check bench-smoke k8s-check $$smoke; \
	status=$$?; $(SKIP_SUMMARY) "$$skips"; exit $$status

# SKIP_SUMMARY prints the notes of a test run (suite<TAB>reason lines) as one
# line, each suite with how many of its tests skipped.
SKIP_SUMMARY = awk -F'\t' '{ k = $$1 "\t" $$2; if (!(k in n)) o[++m] = k; n[k]++ } \
	END { if (!m) { print "make test: every suite ran; nothing was skipped"; exit } \
		s = "make test: skipped, so not tested here:"; \
		for (i = 1; i <= m; i++) { split(o[i], p, "\t"); s = s (i > 1 ? ";" : "") " " p[1] " (" n[o[i]] "): " p[2] } \
		print s }'

## examples-check: the example services' own tests (each its own module, built on the public package)
examples-check:
	cd examples/notes && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...

## openapi-check: generated OpenAPI documents and the reference service's API traffic
## validated with a maintained OpenAPI 3.1 validator (a module of its own)
openapi-check:
	cd internal/openapi/check && $(GO) vet ./... && $(GO) test -count=1 -timeout 15m ./...

## test-race: the server module's tests under the race detector
test-race:
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

## bench-micro: every Go benchmark, among them each endpoint's handler chain (benchstat-friendly)
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 $(PKGS)

## fuzz: every native Go fuzz target under cmd/ and internal/, $(FUZZTIME) each
FUZZTIME ?= 30s
fuzz:
	@set -e; for file in $$(grep -rlE '^func Fuzz' --include='*_test.go' cmd internal | sort); do \
		for target in $$(grep -oE '^func Fuzz[A-Za-z0-9_]+' $$file | cut -d' ' -f2); do \
			echo "fuzz $$target ($$(dirname $$file), $(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) ./$$(dirname $$file); \
		done; \
	done

## fuzz-short: every fuzz target for a few thousand inputs (part of make test)
# A count, not a duration: a time limit that expires while the fuzzer is
# minimizing a new input is reported as a failure ("context deadline
# exceeded") on a loaded machine.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=10000x

## generate: regenerate the compiled quicktemplate pages (cmd/hotpath/*.qtpl)
# qtc names the package after the directory; the reference service is main.
generate:
	$(GO) run github.com/valyala/quicktemplate/qtc@v1.8.0 -dir cmd/hotpath
	sed -i 's/^package hotpath$$/package main/' cmd/hotpath/*.qtpl.go

## lint: go vet plus staticcheck
lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

## vet: go vet over the server module
vet:
	$(GO) vet $(PKGS)

## fmt: gofmt every Go file of the server module and the examples
fmt:
	gofmt -w *.go cmd internal examples

## check: formatting, vet and lint
check: lint
	@test -z "$$(gofmt -l *.go cmd internal examples)" || (gofmt -l *.go cmd internal examples; exit 1)

## clean: delete bin/ and data/, so the next run starts on a freshly seeded database
clean:
	rm -rf bin data

include bench/bench.mk
include k8s/k8s.mk
