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

latency() {
  wrk -t1 -c4 -d"$duration" --latency "$base/health/live" | awk '
    / 50% / { p50 = $2 } / 99% / { p99 = $2 } /Requests\/sec/ { rps = $2 }
    END { printf "p50 %s, p99 %s, %s req/s\n", p50, p99, rps }'
}

echo "== GET /health/live alone, 4 connections, $duration"
alone=$(latency)
echo "$alone"
echo "== GET /health/live during 40 connections of slow-password registrations"
wrk -t1 -c40 -d"$duration" -s "$work/register.lua" "$base/auth/register" > "$work/flood.txt" &
flood=$!
sleep 1
during=$(latency)
wait "$flood"
echo "$during"
grep -E 'Requests/sec|Non-2xx' "$work/flood.txt" | sed 's/^/flood: /'
python3 - "$alone" "$during" <<'PY'
import re, sys
def ms(text, key):
    value = re.search(key + r" ([0-9.]+)(us|ms|s)", text)
    number, unit = float(value.group(1)), value.group(2)
    return number * {"us": 1e-3, "ms": 1, "s": 1e3}[unit]
alone, during = sys.argv[1], sys.argv[2]
for key in ("p50", "p99"):
    print(f"/health/live {key} during the flood ÷ alone: {ms(during, key) / ms(alone, key):.2f}")
PY
