# syntax=docker/dockerfile:1
#
# gatehouse in a small image: built in a Rust image, run in Debian slim as an
# unprivileged user, with the binary's own health check.
#
#   docker build -t gatehouse .
#   docker run -p 127.0.0.1:8080:8080 -v gatehouse-data:/var/lib/gatehouse gatehouse
#
# or, with MySQL 8.4, `docker compose up` (see docker-compose.yml).

FROM rust:1.95-slim-trixie AS build
WORKDIR /src

# Dependencies first, in a layer of their own: it is rebuilt only when
# Cargo.toml or Cargo.lock change, not on every edit to the code. The empty
# crate stands in for the real one while they compile.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

COPY migrations migrations
COPY src src
# The stand-in's build is newer than the copied sources; make sure cargo
# rebuilds the crate itself.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && strip target/release/gatehouse

FROM debian:trixie-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/gatehouse --create-home gatehouse
COPY --from=build /src/target/release/gatehouse /usr/local/bin/gatehouse

USER gatehouse
WORKDIR /var/lib/gatehouse
# Listen on every interface of the container; without a DATABASE_URL the
# SQLite file lives in the volume below.
ENV BIND_ADDR=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///var/lib/gatehouse/gatehouse.db
VOLUME ["/var/lib/gatehouse"]
EXPOSE 8080

# `gatehouse health` asks the server's own GET /health/ready; the image needs
# no curl.
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
    CMD ["gatehouse", "health"]

ENTRYPOINT ["gatehouse"]
CMD ["serve"]
