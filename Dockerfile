# syntax=docker/dockerfile:1
#
# hybridflow cloud worker (and the operator CLI) as a static binary on a
# distroless, non-root base: no shell, no package manager, nothing to patch
# but the binaries. Both bases are pinned: the Go toolchain by exact
# version (go.mod's go directive), the runtime by digest (refresh with
# `crane digest gcr.io/distroless/static-debian12:nonroot`).
#
#   docker build -t hybridflow-worker:$(git describe --always) .
ARG GO_IMAGE=golang:1.26.8-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639

FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/hybridflow-worker ./worker && \
    go build -trimpath -ldflags="-s -w" -o /out/hybridflow ./starter

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/hybridflow-worker /out/hybridflow /usr/local/bin/
# The compose worker's config (references only, no secrets) and the
# simulated worlds for HYBRIDFLOW_SIMULATE_WORLD.
COPY configs/worker.compose.yaml /etc/hybridflow/worker.yaml
COPY configs/sim/ /etc/hybridflow/sim/
USER nonroot:nonroot
ENV HYBRIDFLOW_CONFIG=/etc/hybridflow/worker.yaml HYBRIDFLOW_METRICS_ADDRESS=0.0.0.0:9464
EXPOSE 9464
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=6 \
    CMD ["/usr/local/bin/hybridflow-worker", "healthcheck", "--url", "http://127.0.0.1:9464/readyz"]
ENTRYPOINT ["/usr/local/bin/hybridflow-worker"]
