#!/usr/bin/env bash
# Does cost grow with the tables? The same login and GET /me runs against a
# MariaDB database holding 10,000 and then 1,000,000 users with as many
# sessions, bulk-inserted with SQL, and the query plans of the hot queries.
#
# Usage: bench/growth.sh   (needs wrk and the local MariaDB, root without a
# password; uses and drops the database gatehouse_growth). GET /me is
# measured twice: from memory (SESSION_CACHE_MS=1000) and asking the
# database every time (SESSION_CACHE_MS=0), which is where table size would
# show. Sends traffic to 127.0.0.1 only, for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${DURATION:-10s}
port=18093
db=gatehouse_growth
url=mysql://root@127.0.0.1:3306/$db
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; mariadb -uroot -e "DROP DATABASE IF EXISTS '$db'"' EXIT
sql() { mariadb -uroot "$db" "$@"; }

cargo build --release --quiet
password='measure me twice, cut once'
json='Content-Type: application/json'

start() {
  DATABASE_URL=$url BIND_ADDR=127.0.0.1:$port RUST_LOG=warn RATE_LIMIT_PER_MINUTE=0 \
    SESSION_CACHE_MS=$1 ./target/release/gatehouse &
  server=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health/live" >/dev/null && break; sleep 0.1; done
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; server=; }

cat > "$work/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"bench","password":"$password"}'
LUA

# "<2xx per second> <p50 ms> <p99 ms>" of one wrk run.
measure() { wrk --latency "$@" | python3 bench/wrk-summary.py; }

results=()
for size in 10000 1000000; do
  mariadb -uroot -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db"
  DATABASE_URL=$url RUST_LOG=warn ./target/release/gatehouse migrate >/dev/null
  start 1000
  base=http://127.0.0.1:$port
  curl -sf "$base/auth/register" -H "$json" -d "{\"username\":\"bench\",\"password\":\"$password\"}" >/dev/null
  stop
  hash=$(sql -N -e "SELECT password_hash FROM gatehouse_users WHERE username_key = 'bench'")
  now=$(date +%s)
  echo "inserting $size users and $size sessions"
  # Ids that sort like UUIDv7s and never collide with the bench account's.
  sql -e "INSERT INTO gatehouse_users (id, username, username_key, email, email_key, name, password_hash,
            role, disabled, created_at, updated_at, last_login_at)
          SELECT CONCAT(LPAD(HEX(seq), 8, '0'), '-0000-7000-8000-000000000000'),
                 CONCAT('user', seq), CONCAT('user', seq),
                 CONCAT('user', seq, '@example.com'), CONCAT('user', seq, '@example.com'),
                 NULL, '$hash', 'user', FALSE, $now, $now, NULL
          FROM seq_1_to_$size"
  sql -e "INSERT INTO gatehouse_sessions (id, user_id, refresh_hash, previous_hash, rotated_at, created_at,
            last_used_at, expires_at, user_agent, ip)
          SELECT CONCAT(LPAD(HEX(seq), 8, '0'), '-0000-7000-9000-000000000000'),
                 CONCAT(LPAD(HEX(seq), 8, '0'), '-0000-7000-8000-000000000000'),
                 SHA2(seq, 256), NULL, $now, $now, $now, $now + 86400, 'bench', '127.0.0.1'
          FROM seq_1_to_$size"
  sql -e "ANALYZE TABLE gatehouse_users, sessions" >/dev/null

  for cache in 1000 0; do
    start $cache
    token=$(curl -sf "$base/auth/login" -H "$json" -d "{\"username\":\"bench\",\"password\":\"$password\"}" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    read -r merps me50 me99 < <(measure -t2 -c32 -d"$duration" -H "Authorization: Bearer $token" "$base/me")
    if [ "$cache" = 1000 ]; then
      read -r inrps in50 in99 < <(measure -t2 -c32 -d"$duration" -s "$work/login.lua" "$base/auth/login")
      results+=("$size login $in50 $in99 $inrps")
      results+=("$size me-memory $me50 $me99 $merps")
    else
      results+=("$size me-database $me50 $me99 $merps")
    fi
    stop
  done

  if [ "$size" = 1000000 ]; then
    echo "== query plans at $size users"
    sid=$(sql -N -e "SELECT id FROM gatehouse_sessions LIMIT 1")
    uid=$(sql -N -e "SELECT user_id FROM gatehouse_sessions LIMIT 1")
    for query in \
      "SELECT id, password_hash FROM gatehouse_users WHERE username_key = 'user500000'" \
      "SELECT id, password_hash FROM gatehouse_users WHERE email_key = 'user500000@example.com'" \
      "SELECT u.id FROM gatehouse_sessions s JOIN gatehouse_users u ON u.id = s.user_id WHERE s.id = '$sid' AND s.user_id = '$uid' AND s.expires_at > 0 AND s.last_used_at > 0" \
      "SELECT id FROM gatehouse_sessions WHERE refresh_hash = SHA2(77, 256)" \
      "SELECT id FROM gatehouse_sessions WHERE user_id = '$uid' ORDER BY created_at DESC" \
      "SELECT seq, user_id FROM gatehouse_session_changes WHERE seq > 0 ORDER BY seq LIMIT 1000" \
      "SELECT failures FROM gatehouse_login_attempts WHERE account_key = 'x'" \
      "SELECT id FROM gatehouse_users WHERE id > '0' ORDER BY id LIMIT 51" \
      "DELETE FROM gatehouse_sessions WHERE expires_at <= 0 OR last_used_at <= 0"; do
      echo "-- $query"
      sql -t -e "EXPLAIN $query" | cut -c1-200
    done
  fi
done

python3 - "${results[@]}" <<'PY'
import sys
rows = [arg.split() for arg in sys.argv[1:]]
by = {(size, what): (float(p50), float(p99), rps) for size, what, p50, p99, rps in rows}
print("| request | 10k p50 / p99 | 1M p50 / p99 | 1M ÷ 10k (p50, p99) |")
print("|---|---|---|---|")
for what, label in [("login", "POST /auth/login"), ("me-memory", "GET /me, from memory"),
                    ("me-database", "GET /me, SESSION_CACHE_MS=0")]:
    a, b = by[("10000", what)], by[("1000000", what)]
    print(f"| {label} | {a[0]:.2f} / {a[1]:.2f} ms | {b[0]:.2f} / {b[1]:.2f} ms "
          f"| {b[0] / a[0]:.2f}, {b[1] / a[1]:.2f} |")
PY
