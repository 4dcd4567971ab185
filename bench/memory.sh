#!/usr/bin/env bash
# Memory per key: loads KEYS keys (key:000000000001 ..., 16 bytes) with VALUE-byte values over
# RESP into kvs (in memory) and into redis-server (persistence off), the same bytes through
# `redis-cli --pipe` for both, and prints the growth of each server's resident set per key.
#
# Usage: bench/memory.sh      (env: KEYS=1000000 VALUE=64 KVS=path/to/kvs)
# Needs: redis-server and redis-tools (Debian), python3. Stops everything it starts.
set -euo pipefail

KEYS=${KEYS:-1000000}
VALUE=${VALUE:-64}
# shellcheck source=bench/servers.sh
source "$(dirname "$0")/servers.sh"

for tool in redis-server redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "$tool is required (apt-get install redis-server redis-tools python3)" >&2; exit 1; }
done
kvs_binary

rss() { awk '/^VmRSS/ {print $2 * 1024}' "/proc/$1/status"; }

# The load, written once: SET commands in RESP, the same bytes for both servers.
python3 - "$KEYS" "$VALUE" "$work/load.resp" <<'PY'
import sys
keys, size, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
value = (b"0123456789abcdef" * (size // 16 + 1))[:size]
with open(path, "wb") as f:
    for i in range(keys):
        key = b"key:%012d" % i
        f.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, size, value))
PY

# measure NAME PID PORT: loads the keys and prints "NAME rss_before rss_after keys".
measure() {
  local before after n
  wait_ready "$3"
  sleep 0.5
  before=$(rss "$2")
  redis-cli -p "$3" --pipe <"$work/load.resp" >"$work/$1.pipe" 2>&1 || { cat "$work/$1.pipe" >&2; exit 1; }
  n=$(redis-cli -p "$3" dbsize)
  [ "$n" = "$KEYS" ] || { echo "$1 holds $n keys, expected $KEYS" >&2; exit 1; }
  sleep 1
  after=$(rss "$2")
  echo "$1 $before $after $n"
}

kvs_port=$(free_port)
"$KVS" serve --in-memory --http 127.0.0.1:0 --resp "127.0.0.1:$kvs_port" --line 127.0.0.1:0 >/dev/null 2>"$work/kvs.log" &
pids+=($!)
kvs_line=$(measure kvs "$!" "$kvs_port")
kill "${pids[-1]}"

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --logfile "$work/redis.log" &
pids+=($!)
redis_line=$(measure redis "$!" "$redis_port")
redis_info=$(redis-cli -p "$redis_port" info memory | tr -d '\r' | awk -F: '/^used_memory:/ {print $2}')

per_key() { awk -v b="$2" -v a="$3" -v n="$4" 'BEGIN {printf "%.1f", (a - b) / n}'; }
echo "memory per key: $KEYS keys of 16 bytes with $VALUE-byte values, loaded with redis-cli --pipe"
echo "redis-server $(redis-server --version | awk '{print $3}'), persistence off; redis used_memory after load: $redis_info bytes"
echo
echo "| server | RSS before (MiB) | RSS after (MiB) | RSS bytes per key |"
echo "|---|---|---|---|"
for line in "$kvs_line" "$redis_line"; do
  # shellcheck disable=SC2086
  set -- $line
  printf '| %s | %.1f | %.1f | %s |\n' "$1" "$(awk -v x="$2" 'BEGIN {print x / 1048576}')" \
    "$(awk -v x="$3" 'BEGIN {print x / 1048576}')" "$(per_key "$@")"
done
# shellcheck disable=SC2086
set -- $kvs_line
k=$(per_key "$@")
# shellcheck disable=SC2086
set -- $redis_line
r=$(per_key "$@")
echo
echo "kvs ÷ redis bytes per key: $(awk -v a="$k" -v b="$r" 'BEGIN {printf "%.2f", a / b}')"
