#!/usr/bin/env bash
# Memory per element of collections: loads the same bytes over RESP (`redis-cli --pipe`) into kvs
# (in memory) and into redis-server (persistence off), each on a fresh server, and prints the
# growth of each server's resident set per element, with redis's own used_memory growth beside:
#
#   hash     one hash of N fields (12-byte fields, 16-byte values)
#   set      one set of N members (12 bytes)
#   zset     one sorted set of N members (12 bytes) with distinct scores
#   hashes   N/10 hashes of 10 fields each (small: packed in both servers)
#
# Usage: bench/collections_memory.sh   (env: N=1000000 ONLY=regex KVS=path/to/kvs)
# Needs: redis-server and redis-tools (Debian), python3. Stops everything it starts.
set -euo pipefail

N=${N:-1000000}
ONLY=${ONLY:-.}
# shellcheck source=bench/servers.sh
source "$(dirname "$0")/servers.sh"

for tool in redis-server redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "$tool is required (apt-get install redis-server redis-tools python3)" >&2; exit 1; }
done
kvs_binary

rss() { awk '/^VmRSS/ {print $2 * 1024}' "/proc/$1/status"; }
used() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: '/^used_memory:/ {print $2}'; }

# The loads, written once: the same bytes for both servers, 100 elements per command.
python3 - "$N" "$work" <<'PY'
import sys
n, work = int(sys.argv[1]), sys.argv[2]

def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out

def write(name, commands):
    with open(f"{work}/{name}.resp", "wb") as f:
        for c in commands:
            f.write(c)

def batches(make, key, count):
    for start in range(0, count, 100):
        args = [key]
        for i in range(start, min(start + 100, count)):
            args.extend(make(i))
        yield args

write("hash", (cmd(b"HSET", *a) for a in batches(lambda i: [b"f:%010d" % i, b"v:%014d" % i], b"hash", n)))
write("set", (cmd(b"SADD", *a) for a in batches(lambda i: [b"m:%010d" % i], b"set", n)))
write("zset", (cmd(b"ZADD", *a) for a in batches(lambda i: [b"%d" % i, b"m:%010d" % i], b"zset", n)))
write("hashes", (
    cmd(b"HSET", b"h:%08d" % k, *[x for f in range(10) for x in (b"field%d" % f, b"value:%02d" % f)])
    for k in range(n // 10)
))
PY

# measure SERVER LOAD: a fresh server, the load, and "rss_before rss_after used_before used_after".
measure() {
  local server=$1 load=$2 port pid before after ub ua
  port=$(free_port)
  if [ "$server" = kvs ]; then
    "$KVS" serve --in-memory --http 127.0.0.1:0 --resp "127.0.0.1:$port" --line 127.0.0.1:0 >/dev/null 2>"$work/kvs.log" &
  else
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
      --logfile "$work/redis.log" &
  fi
  pid=$!
  pids+=("$pid")
  wait_ready "$port"
  sleep 0.5
  before=$(rss "$pid")
  ub=$(used "$port")
  redis-cli -p "$port" --pipe <"$work/$load.resp" >"$work/pipe.out" 2>&1 || { cat "$work/pipe.out" >&2; exit 1; }
  sleep 1
  after=$(rss "$pid")
  ua=$(used "$port")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  echo "$before $after $ub $ua"
}

per() { awk -v b="$1" -v a="$2" -v n="$3" 'BEGIN {printf "%.1f", (a - b) / n}'; }

echo "memory per element: N=$N, loaded with redis-cli --pipe, each on a fresh server"
echo "redis-server $(redis-server --version | awk '{print $3}' | sed 's/v=//'), persistence off; kvs in memory"
echo
echo "| load | elements | kvs RSS B/element | redis RSS B/element | kvs ÷ redis (RSS) | kvs used_memory B/element | redis used_memory B/element |"
echo "|---|---|---|---|---|---|---|"
for load in hash set zset hashes; do
  grep -Eq "$ONLY" <<<"$load" || continue
  read -r kb ka kub kua <<<"$(measure kvs "$load")"
  read -r rb ra rub rua <<<"$(measure redis "$load")"
  k=$(per "$kb" "$ka" "$N")
  r=$(per "$rb" "$ra" "$N")
  printf '| %s | %s | %s | %s | %.2f | %s | %s |\n' "$load" "$N" "$k" "$r" \
    "$(awk -v a="$k" -v b="$r" 'BEGIN {print (b > 0) ? a / b : 0}')" \
    "$(per "$kub" "$kua" "$N")" "$(per "$rub" "$rua" "$N")"
done
