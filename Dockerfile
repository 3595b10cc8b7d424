# clickmatch: one binary, one image. Used by docker-compose.yml (ingest, join, migrate) and
# deploy/k8s/. Build: docker build -t clickmatch .
#
# Stages: chef (toolchain + cargo-chef) -> planner (dependency recipe) -> builder (dependencies
# cached in their own layer, then the workspace) -> runtime (debian slim, binary only).
# Works with the classic builder and BuildKit alike (no RUN --mount).

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS chef
# rdkafka builds its bundled librdkafka: C toolchain, cmake, pkg-config, zlib, python3.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config zlib1g-dev python3 \
 && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only (librdkafka included): rebuilt when Cargo.toml/Cargo.lock change, not on
# every source edit.
RUN cargo chef cook --release --locked --package clickmatch-cli --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --package clickmatch-cli \
 && install -D -m 0755 target/release/clickmatch /out/clickmatch

FROM ${RUNTIME_IMAGE} AS runtime
# ca-certificates for https:// ClickHouse or Kafka endpoints; zlib1g is already in the base.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 clickmatch \
 && useradd --system --uid 10001 --gid clickmatch --home-dir /var/lib/clickmatch --shell /usr/sbin/nologin clickmatch \
 && install -d -o clickmatch -g clickmatch -m 0750 /var/lib/clickmatch /etc/clickmatch
COPY --from=builder /out/clickmatch /usr/local/bin/clickmatch
# The joiner keeps its per-partition state under the working directory (mount a volume here);
# ingest spools clicks here while Kafka is unavailable.
WORKDIR /var/lib/clickmatch
USER 10001:10001
ENV CLICKMATCH_CONFIG=/etc/clickmatch/clickmatch.toml \
    CLICKMATCH_LOG=info
# 8080: ingest HTTP (clicks, postbacks, /metrics, /healthz, /readyz); 9091: joiner /metrics.
EXPOSE 8080 9091
ENTRYPOINT ["/usr/local/bin/clickmatch"]
CMD ["--help"]
