# hotpath's front door. `make run` and `make test` are all a newcomer needs.

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
GO      ?= go
PKGS    := ./...

.PHONY: all build run test test-race bench-micro fuzz fuzz-short generate lint vet fmt check clean

all: build

## build: compile bin/hotpath (static, version stamped)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/hotpath ./cmd/hotpath

## run: build and start with ./config.toml on the embedded SQLite database
run: build
	./bin/hotpath -config config.toml

## test: the whole test suite: the server module, a few seconds of every fuzz
## target, the bench module and an end-to-end bench smoke run, then the
## Kubernetes manifests
test:
	$(GO) test -count=1 -timeout 20m $(PKGS)
	$(MAKE) fuzz-short bench-check bench-smoke k8s-check

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

## fuzz-short: every fuzz target for a few thousand inputs, as part of the
## tests. A count, not a duration: a time limit that expires while the fuzzer
## is minimizing a new input is reported as a failure ("context deadline
## exceeded") on a loaded machine.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=10000x

## generate: regenerate the compiled quicktemplate pages (internal/handler/*.qtpl)
generate:
	$(GO) run github.com/valyala/quicktemplate/qtc@v1.8.0 -dir internal/handler

## lint: go vet plus staticcheck
lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w cmd internal

## check: formatting, vet and lint
check: lint
	@test -z "$$(gofmt -l cmd internal)" || (gofmt -l cmd internal; exit 1)

clean:
	rm -rf bin data

include bench/bench.mk
include k8s/k8s.mk
