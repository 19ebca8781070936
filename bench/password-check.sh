#!/usr/bin/env bash
# What the password rules cost on the worst inputs, and whether a flood of
# such registrations slows the rest of the server.
#
# 1. In process: `examples/password_check_cost.rs` times the rules on the
#    slowest known inputs and on 20,000 random l33t-heavy passwords, beside
#    zxcvbn given the same passwords whole (what the check did before).
# 2. Over HTTP: GET /health/live latency alone, then during a flood of
#    registrations with a slow-to-estimate password and an invalid role (so
#    nothing is stored or hashed), from 40 connections; the ratio of the two
#    is the figure, measured in one run so the machine's noise cancels out.
#
# Usage: bench/password-check.sh   (needs wrk: apt-get install wrk). Sends
# traffic to 127.0.0.1 only, for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."

port=18091
duration=${DURATION:-10s}
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build --release --quiet --example password_check_cost
echo "== the rules in process (best of three per input)"
./target/release/examples/password_check_cost

cargo build --release --quiet
DATABASE_URL="sqlite://$work/bench.db" BIND_ADDR=127.0.0.1:$port RUST_LOG=warn \
  RATE_LIMIT_PER_MINUTE=0 ./target/release/gatehouse &
server=$!
base=http://127.0.0.1:$port
for _ in $(seq 50); do curl -sf "$base/health/live" >/dev/null && break; sleep 0.1; done

# 128 characters cycling through ten l33t symbols: zxcvbn on the whole of
# it took about 80 ms; an invalid role keeps it from being stored.
cat > "$work/register.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local slow = string.sub(string.rep("@4$5!1|0+7", 13), 1, 128)
wrk.body = '{"username":"flood","password":"' .. slow .. '","role":"superuser"}'
LUA

# "<req/s> <p50 ms> <p99 ms>" of GET /health/live on 4 connections.
latency() { wrk -t1 -c4 -d"$duration" --latency "$base/health/live" | python3 bench/wrk-summary.py; }

echo "== GET /health/live alone, 4 connections, $duration"
read -r alone_rps alone_p50 alone_p99 < <(latency)
echo "p50 $alone_p50 ms, p99 $alone_p99 ms, $alone_rps req/s"
echo "== GET /health/live during 40 connections of slow-password registrations"
wrk -t1 -c40 -d"$duration" -s "$work/register.lua" "$base/auth/register" > "$work/flood.txt" &
flood=$!
sleep 1
read -r during_rps during_p50 during_p99 < <(latency)
wait "$flood"
echo "p50 $during_p50 ms, p99 $during_p99 ms, $during_rps req/s"
grep -E 'Requests/sec|Non-2xx' "$work/flood.txt" | sed 's/^/flood: /'
python3 -c "
print('/health/live p50 during the flood ÷ alone: %.2f' % ($during_p50 / $alone_p50))
print('/health/live p99 during the flood ÷ alone: %.2f' % ($during_p99 / $alone_p99))"
