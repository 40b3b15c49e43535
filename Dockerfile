# gregor in a container. The image copies a broker built on the host, so build that first:
#
#   cargo build --release                  # makes target/release/gregor
#   docker build -t gregor .
#   docker run -d -p 9092:9092 gregor      # clients bootstrap with localhost:9092
#
# Another port: map it to the same port inside and listen there, since the broker advertises
# the port it listens on (a listener on 0.0.0.0 is advertised as 127.0.0.1):
#   docker run -d -p 19092:19092 gregor --override listeners=PLAINTEXT://0.0.0.0:19092
#
# Why a host build rather than a multi-stage `FROM rust`: no Rust image to pull, and no
# minutes-long release build inside Docker. The binary links against the host's glibc, so
# build it on Debian 12 (bookworm, glibc 2.36) or a system with an older glibc.
# docker-compose.yml runs three of these on ZooKeeper; tests/docker_test.py tests both.
FROM debian:bookworm-slim
COPY target/release/gregor /usr/local/bin/gregor
RUN mkdir -p /var/lib/gregor
VOLUME /var/lib/gregor
EXPOSE 9092
# gregor is PID 1 and handles SIGTERM itself (a controlled shutdown), so `docker stop` is clean.
# Configure with --override key=value arguments (they replace CMD) or a mounted
# server.properties given as the first argument.
ENTRYPOINT ["gregor", "--override", "log.dirs=/var/lib/gregor"]
CMD ["--override", "listeners=PLAINTEXT://0.0.0.0:9092"]
