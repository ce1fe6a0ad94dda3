# framerr-backup's image: a FROM-scratch runtime holding the binary, the C
# runtime it links, CA certificates, zoneinfo and a passwd/group entry.
# Build it on amd64 or arm64:  docker build -t framerr-backup .
# (or podman). See docs/DEPLOY.md and compose.yaml.
#
# CI builds the same runtime stage (everything after the "runtime" line)
# around a binary compiled on the build machine: `cargo xtask image`.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --profile dist -p backup-cli --bin framerr-backup \
    && mkdir -p /rootfs/usr/local/bin \
    && cp target/dist/framerr-backup /rootfs/usr/local/bin/framerr-backup

FROM debian:bookworm-slim AS rootfs
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /rootfs/ /rootfs/
COPY container/rootfs.sh /rootfs.sh
RUN sh /rootfs.sh /rootfs

# runtime
FROM scratch
COPY --from=rootfs /rootfs/ /
# Framerr's conventions: /config, PUID/PGID (0:0 as Framerr's, Unraid uses
# 99:100), TZ; the port is not Framerr's 3001.
ENV DATA_DIR=/config PORT=3002 PUID=0 PGID=0 TZ=UTC
VOLUME ["/config"]
EXPOSE 3002
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 CMD ["framerr-backup", "health", "--quiet"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["framerr-backup"]
CMD ["serve"]
