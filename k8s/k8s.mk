# Container image and Kubernetes targets, included by the root Makefile.
#
#   make image                 build hotpath:$(VERSION) (needs a running Docker engine)
#   make k8s-config            copy config.toml into k8s/base (kustomize reads no file outside it)
#   make k8s-check             render every overlay and check it, offline
#   make k8s-render OVERLAY=prod   print the manifests an overlay applies

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE ?= hotpath
DOCKER ?= docker
OVERLAY ?= dev
KUSTOMIZE ?= kubectl kustomize

.PHONY: image k8s-config k8s-check k8s-render

## image: build the container image hotpath:$(VERSION) (needs a running Docker engine)
image:
	@$(DOCKER) info >/dev/null 2>&1 || { \
		echo "make image: no container engine answers to '$(DOCKER) info'; start Docker (or set DOCKER=podman) and retry" >&2; \
		exit 1; }
	$(DOCKER) build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .

## k8s-config: copy config.toml into k8s/base, where kustomize reads it
k8s-config:
	cp config.toml k8s/base/config.toml

# Does not copy first: a stale k8s/base/config.toml must fail here (and in
# CI) rather than be fixed silently in one checkout.
## k8s-check: render every overlay and check it offline (no cluster needed)
k8s-check:
	cd k8s/check && go test -count=1 ./...

## k8s-render: print the manifests an overlay applies (OVERLAY=dev or prod)
k8s-render: k8s-config
	$(KUSTOMIZE) k8s/overlays/$(OVERLAY)
