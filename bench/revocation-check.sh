#!/usr/bin/env bash
# Measures what the per-request session check costs when it asks the
# database every time (SESSION_CACHE_MS=0): GET /me (JWT verification + one
# primary-key lookup of the session joined to its user) against
# GET /health/live (no authentication, no database). bench/load.sh measures
# the default, where sessions are answered from memory.
#
# Usage: bench/revocation-check.sh [sqlite|mysql]   (needs wrk; mysql needs
# the local MariaDB, root without a password). Sends traffic to 127.0.0.1
# only, for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."

backend=${1:-sqlite}
port=18090
duration=${DURATION:-10s}
connections=${CONNECTIONS:-32}
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

case "$backend" in
  sqlite) export DATABASE_URL="sqlite://$work/bench.db" ;;
  mysql)
    mariadb -uroot -e 'DROP DATABASE IF EXISTS gatehouse_bench; CREATE DATABASE gatehouse_bench'
    export DATABASE_URL=mysql://root@127.0.0.1:3306/gatehouse_bench ;;
  *) echo "usage: $0 [sqlite|mysql]" >&2; exit 2 ;;
esac

cargo build --release --quiet
BIND_ADDR=127.0.0.1:$port RUST_LOG=warn RATE_LIMIT_PER_MINUTE=0 SESSION_CACHE_MS=0 ./target/release/gatehouse &
server=$!
base=http://127.0.0.1:$port
for _ in $(seq 50); do curl -sf "$base/health/live" >/dev/null && break; sleep 0.1; done

json='Content-Type: application/json'
curl -sf "$base/auth/register" -H "$json" -d '{"username":"bench","password":"measure me twice, cut once"}' >/dev/null
token=$(curl -sf "$base/auth/login" -H "$json" -d '{"username":"bench","password":"measure me twice, cut once"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

run() {
  echo "== $1"
  shift
  wrk -t2 -c"$connections" -d"$duration" --latency "$@" | grep -E 'Requests/sec|Latency|50%|99%|Non-2xx'
}
echo "backend: $backend, $connections connections, $duration each, $(nproc) cores"
run "GET /health/live (baseline)" "$base/health/live"
run "GET /me (token + session check)" -H "Authorization: Bearer $token" "$base/me"
