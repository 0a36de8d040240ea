# hotpath container image: a static binary on distroless, run as a numeric
# non-root user. Build with `make image` (VERSION stamps the binary).

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so editing code does not re-download them.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# Pure Go (modernc.org/sqlite needs no cgo), so the binary is static and runs
# on an image without libc; -trimpath keeps build paths out of it.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/hotpath ./cmd/hotpath \
 && mkdir -p /out/var/lib/hotpath/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/hotpath /hotpath
# The default db.dsn (data/hotpath.db) is relative to the working directory,
# so a plain `docker run` keeps SQLite in a directory the user owns.
COPY --from=build --chown=65532:65532 /out/var/lib/hotpath /var/lib/hotpath
COPY config.toml /etc/hotpath/config.toml
WORKDIR /var/lib/hotpath
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/hotpath", "-config", "/etc/hotpath/config.toml"]
