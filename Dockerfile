# gregor in a container: a multi-stage build (the Rust toolchain stays in the first stage).
# Not exercised by CI (no Docker engine there); see docker-compose.yml for a 3-broker cluster.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin gregor

FROM debian:bookworm-slim
COPY --from=build /src/target/release/gregor /usr/local/bin/gregor
RUN mkdir -p /var/lib/gregor
VOLUME /var/lib/gregor
EXPOSE 9092
# Configure with a mounted server.properties or with --override key=value arguments.
ENTRYPOINT ["gregor", "--override", "log.dirs=/var/lib/gregor"]
CMD ["--override", "listeners=PLAINTEXT://0.0.0.0:9092"]
