#!/usr/bin/env bash
# kvs and redis-server as read-through caches at the same maxmemory, side by side: for each trace
# (a: Zipf 0.99, b: Zipf 0.7, c: Zipf 0.99 interrupted by a scan of cold keys; 1,000,000 keys of
# 100-1000 bytes, defined in bench/cachesim and `kvs bench --trace`) and each policy, a fresh
# server, `kvs bench --trace` against it, and one table row: hit ratio (and after the scan, for
# c), requests per second, requests per server CPU-second, p99.
#
#   bench/eviction.sh                                  # 64mb, 2M draws per trace, 8 connections
#   LENGTH=5000000 TRACES="a c" bench/eviction.sh
#   KVS_POLICIES="allkeys-lru" REDIS_POLICIES="allkeys-lru allkeys-lfu" bench/eviction.sh
#
# MAXMEMORY defaults to 64mb, about a tenth of the working set (624 MB of values, keys and
# 64 bytes of overhead each). THREADS is kvs's --threads (default 1: on a 2-core machine shared
# with the load generator, the same one core redis-server uses). JSON=file also writes each run's
# summary, one JSON object per line.
set -euo pipefail
# shellcheck source=bench/servers.sh
source "$(dirname "$0")/servers.sh"

MAXMEMORY=${MAXMEMORY:-64mb}
LENGTH=${LENGTH:-2000000}
TRACES=${TRACES:-"a b c"}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=${THREADS:-1}
KVS_POLICIES=${KVS_POLICIES:-"allkeys-lru allkeys-lfu allkeys-random"}
REDIS_POLICIES=${REDIS_POLICIES:-"allkeys-lru allkeys-lfu allkeys-random"}
JSON=${JSON:-}

kvs_binary
command -v redis-server >/dev/null || { echo "redis-server is needed (apt install redis-server)" >&2; exit 1; }
tck=$(getconf CLK_TCK)

# Starts SERVER (kvs or redis) with POLICY on a free port; sets port and pid.
start() {
  port=$(free_port)
  if [ "$1" = kvs ]; then
    "$KVS" serve --in-memory --threads "$THREADS" --resp "127.0.0.1:$port" \
      --http 127.0.0.1:0 --line 127.0.0.1:0 \
      --maxmemory "$MAXMEMORY" --maxmemory-policy "$2" 2>"$work/kvs.log" &
  else
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
      --maxmemory "$MAXMEMORY" --maxmemory-policy "$2" --dir "$work" >/dev/null &
  fi
  pid=$!
  pids+=("$pid")
  wait_ready "$port"
}

printf '%-6s %-6s %-16s %9s %11s %10s %12s %8s %9s\n' \
  trace server policy "hit %" "after scan" "req/s" "req/CPU-s" "p99 µs" "evicted"
for trace in $TRACES; do
  for server in kvs redis; do
    if [ "$server" = kvs ]; then policies=$KVS_POLICIES; else policies=$REDIS_POLICIES; fi
    for policy in $policies; do
      start "$server" "$policy"
      before=$(cpu_ticks "$pid")
      summary=$("$KVS" bench --port "$port" -c "$CONNECTIONS" --trace "$trace" --trace-length "$LENGTH")
      after=$(cpu_ticks "$pid")
      evicted=$(redis-cli -p "$port" info stats | tr -d '\r' | awk -F: '$1=="evicted_keys"{print $2}')
      kill "$pid"
      wait "$pid" 2>/dev/null || true
      [ -n "$JSON" ] && echo "{\"server\":\"$server\",\"policy\":\"$policy\",\"maxmemory\":\"$MAXMEMORY\",\"cpu_ticks\":$(( after - before )),\"clk_tck\":$tck,\"evicted\":$evicted,\"run\":$summary}" >>"$JSON"
      python3 - "$summary" "$server" "$policy" "$(( after - before ))" "$tck" "$evicted" <<'EOF'
import json, sys
s = json.loads(sys.argv[1])
server, policy, ticks, tck, evicted = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
ops = s["gets"] + s["sets"]
cpu = max(ticks / tck, 1e-9)
after = s["hit_ratio_after_scan"]
print("%-6s %-6s %-16s %8.2f%% %11s %10.0f %12.0f %8d %9s" % (
    s["trace"], server, policy, 100 * s["hit_ratio"],
    "-" if after is None else "%.2f%%" % (100 * after),
    s["ops_per_s"], ops / cpu, s["p99_us"], evicted))
if s["errors"]:
    print("  %d requests failed" % s["errors"], file=sys.stderr)
EOF
    done
  done
done
