# The csi-migrate image: the one binary, which deploy/webhook/30-deployment.yaml runs as
# `csi-migrate webhook ...` (image csi-migrate:0.1.0).
#
#   docker build -t csi-migrate:0.1.0 .
#
# Not built by this repository's CI: its machines have no container engine, so this file is
# not exercised there. What is tested is that the Deployment's container args are accepted
# by the real binary and that it then serves /healthz and /readyz (crates/cli/tests/e2e.rs,
# `deployment_args_start_the_webhook`).

# --- build: a static-enough release binary (glibc; TLS is rustls + ring, no OpenSSL) ---
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p csi-migrate \
    && install -D -m 0755 target/release/csi-migrate /out/csi-migrate

# --- run: distroless with glibc, no shell, non-root (uid 65532, as the Deployment expects) ---
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/csi-migrate /usr/local/bin/csi-migrate
USER 65532:65532
EXPOSE 8443 9090
ENTRYPOINT ["/usr/local/bin/csi-migrate"]
