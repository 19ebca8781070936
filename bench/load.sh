#!/usr/bin/env bash
# gatehouse under load: every ratio of BENCHMARKS.md's targets, each measured
# in one run so the machine's noise cancels out.
#
#   login rate ÷ (MAX_CONCURRENT_HASHES ÷ one hash's time)        ≥ 0.9
#   peak RSS during a login flood, 32 and 256 connections         ≤ 150 MB
#   GET /protected ÷ GET /health/live throughput                  ≥ 0.8
#   GET /me ÷ GET /health/live throughput                         ≥ 0.5
#   GET /me p99 during a login flood ÷ GET /me p99 alone          ≤ 3
#
# Logins count only 200s (a 429 or 503 is not throughput), on one account
# and on one account per connection.
#
# Usage: bench/load.sh [sqlite|mysql|URL]   (default sqlite)
#   sqlite, mysql  build the release binary and start it (mysql: a fresh
#                  database `gatehouse_bench` on the local MariaDB, root
#                  without a password)
#   URL            a running gatehouse; RSS is then not measured
# Environment: ALGORITHM=HS256|EdDSA (default HS256), DURATION (default 10s).
# Needs wrk (apt-get install wrk). Sends traffic to the given server only,
# for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:-sqlite}
duration=${DURATION:-10s}
algorithm=${ALGORITHM:-HS256}
port=18092
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT

case "$target" in
  sqlite | mysql)
    if [ "$target" = mysql ]; then
      mariadb -uroot -e 'DROP DATABASE IF EXISTS gatehouse_bench; CREATE DATABASE gatehouse_bench'
      database=mysql://root@127.0.0.1:3306/gatehouse_bench
    else
      database="sqlite://$work/bench.db"
    fi
    cargo build --release --quiet
    DATABASE_URL=$database BIND_ADDR=127.0.0.1:$port RUST_LOG=warn RATE_LIMIT_PER_MINUTE=0 \
      JWT_ALGORITHM=$algorithm ./target/release/gatehouse &
    server=$!
    base=http://127.0.0.1:$port
    ;;
  http://* | https://*) base=${target%/} ;;
  *) echo "usage: $0 [sqlite|mysql|URL]" >&2; exit 2 ;;
esac
for _ in $(seq 100); do curl -sf "$base/health/live" >/dev/null && break; sleep 0.1; done

json='Content-Type: application/json'
password='measure me twice, cut once'
accounts=256
echo "registering $accounts accounts"
for i in $(seq 0 $((accounts - 1))); do
  curl -sf "$base/auth/register" -H "$json" \
    -d "{\"username\":\"bench$i\",\"password\":\"$password\"}" >/dev/null || true
done
token=$(curl -sf "$base/auth/login" -H "$json" -d "{\"username\":\"bench0\",\"password\":\"$password\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

cat > "$work/one-account.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"bench0","password":"$password"}'
LUA
# wrk gives each thread its own Lua state: each thread walks its own slice
# of the accounts, so the connections use many accounts, not one.
cat > "$work/many-accounts.lua" <<LUA
local threads = 0
function setup(thread) thread:set("first", threads * 128); threads = threads + 1 end
function init() counter = 0 end
function request()
  counter = counter + 1
  local name = "bench" .. ((first + counter) % $accounts)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"},
    '{"username":"' .. name .. '","password":"$password"}')
end
LUA

# "<2xx per second> <p50 ms> <p99 ms>" of one wrk run.
measure() { wrk --latency "$@" | python3 bench/wrk-summary.py; }

peak_rss_mb() {
  [ -n "$server" ] && awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$server/status" || echo "-"
}

# One hash's time: the fastest of a few single logins (hashing dominates).
single=$(for _ in $(seq 8); do
  curl -s -o /dev/null -w '%{time_total}\n' "$base/auth/login" -H "$json" \
    -d "{\"username\":\"bench1\",\"password\":\"$password\"}"
done | sort -n | head -1)
hashes=$(nproc)

echo "== $target, $algorithm, $duration per run, $(nproc) cores"
read -r live _ _ < <(measure -t2 -c32 -d"$duration" "$base/health/live")
read -r protected _ _ < <(measure -t2 -c32 -d"$duration" -H "Authorization: Bearer $token" "$base/protected")
read -r me me_p50 me_p99 < <(measure -t2 -c32 -d"$duration" -H "Authorization: Bearer $token" "$base/me")
read -r one _ _ < <(measure -t2 -c32 -d"$duration" -s "$work/one-account.lua" "$base/auth/login")
rss32=$(peak_rss_mb)
read -r many _ _ < <(measure -t2 -c32 -d"$duration" -s "$work/many-accounts.lua" "$base/auth/login")
# /me while logins flood, on separate connections.
measure -t1 -c32 -d"$duration" -s "$work/many-accounts.lua" "$base/auth/login" >/dev/null &
flood=$!
sleep 1
read -r _ flood_p50 flood_p99 < <(measure -t1 -c4 -d"$duration" -H "Authorization: Bearer $token" "$base/me")
wait "$flood"
read -r wide _ _ < <(measure -t2 -c256 -d"$duration" -s "$work/many-accounts.lua" "$base/auth/login")
rss256=$(peak_rss_mb)

python3 - "$live" "$protected" "$me" "$me_p99" "$one" "$many" "$wide" "$single" "$hashes" \
  "$rss32" "$rss256" "$flood_p99" <<'PY'
import sys
live, protected, me, me_p99, one, many, wide, single, hashes = map(float, sys.argv[1:10])
rss32, rss256, flood_p99 = sys.argv[10], sys.argv[11], float(sys.argv[12])
ceiling = hashes / single
rows = [
    ("GET /health/live", f"{live:,.0f} req/s", "", ""),
    ("login rate ÷ hash ceiling, one account", f"{one:.1f} ÷ {ceiling:.1f}/s", f"{one / ceiling:.2f}", "≥ 0.9"),
    ("login rate ÷ hash ceiling, many accounts", f"{many:.1f} ÷ {ceiling:.1f}/s", f"{many / ceiling:.2f}", "≥ 0.9"),
    ("login rate ÷ hash ceiling, 256 connections", f"{wide:.1f} ÷ {ceiling:.1f}/s", f"{wide / ceiling:.2f}", "≥ 0.9"),
    ("peak RSS, 32-connection login flood", f"{rss32} MB", "", "≤ 150 MB"),
    ("peak RSS, after 256 connections too", f"{rss256} MB", "", "≤ 150 MB"),
    ("GET /protected ÷ GET /health/live", f"{protected:,.0f} req/s", f"{protected / live:.2f}", "≥ 0.8"),
    ("GET /me ÷ GET /health/live", f"{me:,.0f} req/s", f"{me / live:.2f}", "≥ 0.5"),
    ("GET /me p99 during logins ÷ alone", f"{flood_p99:.2f} ms ÷ {me_p99:.2f} ms", f"{flood_p99 / me_p99:.2f}", "≤ 3"),
]
print(f"one login alone: {single * 1000:.0f} ms; hashing ceiling {hashes:.0f} ÷ that")
print("| figure | measured | ratio | target |")
print("|---|---|---|---|")
for row in rows:
    print("| " + " | ".join(row) + " |")
PY
