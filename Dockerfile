# framerr-backup in a container beside Framerr (see docs/DEPLOY.md).
# Not built in CI: the build machines have no Docker engine.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p backup-cli --bin framerr-backup

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/framerr-backup /usr/local/bin/framerr-backup
# Framerr's Docker layout: the database in DATA_DIR, backups and uploads in /config.
ENV DATA_DIR=/config PORT=3001
EXPOSE 3001
ENTRYPOINT ["framerr-backup"]
CMD ["serve"]
