#!/usr/bin/env bash
# Pub/sub side by side: kvs and redis-server started by this script, the same workloads against
# each, interleaved (kvs, redis, kvs, redis, ...), RUNS runs each, medians. One table row per
# workload: deliveries per second, p50/p99 publish-to-receive latency, server CPU %, deliveries
# per server CPU-second, and kvs ÷ redis of that last figure (the fair one: the load generator,
# `kvs bench --pubsub`, shares the machine's cores with the server).
#
# Workloads (issue 13): 1 publisher to 100 subscribers on one channel, and 100 publishers to 100
# channels with 1 subscriber each; 64 B and 1 KiB messages. Then kvs's HTTP watch: events per
# second to WATCHERS watchers of one prefix while RESP writers SET keys under it.
#
# Usage: bench/pubsub.sh
# env: SECONDS_PER_RUN=5 RUNS=3 WATCHERS=100 ONLY=regex KVS=path
# Needs: redis-server, redis-tools (Debian), python3. Stops everything it starts.
set -euo pipefail

SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
RUNS=${RUNS:-3}
WATCHERS=${WATCHERS:-100}
ONLY=${ONLY:-.}
# shellcheck source=bench/servers.sh
source "$(dirname "$0")/servers.sh"

for tool in redis-server redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "$tool is required (apt-get install redis-server redis-tools python3)" >&2; exit 1; }
done
kvs_binary

kvs_port=$(free_port)
kvs_http=$(free_port)
"$KVS" serve --in-memory --http "127.0.0.1:$kvs_http" --resp "127.0.0.1:$kvs_port" --line 127.0.0.1:0 >/dev/null 2>"$work/kvs.log" &
kvs_pid=$!
pids+=("$kvs_pid")
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --logfile "$work/redis.log" &
redis_pid=$!
pids+=("$redis_pid")
wait_ready "$kvs_port"
wait_ready "$redis_port"

ticks=$(getconf CLK_TCK)
now() { date +%s.%N; }

# one PID PORT ARGS...: one run of `kvs bench` with ARGS; prints
# "deliveries seconds cpu_seconds p50_ms p99_ms".
one() {
  local pid=$1 port=$2 before after t0 t1 out
  shift 2
  before=$(cpu_ticks "$pid")
  t0=$(now)
  out=$("$KVS" bench --port "$port" --duration "${SECONDS_PER_RUN}s" "$@")
  t1=$(now)
  after=$(cpu_ticks "$pid")
  python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print(r["delivered"], "%.3f" % r["latency_ms"]["p50"], "%.3f" % r["latency_ms"]["p99"])' "$out" | {
    read -r delivered p50 p99
    echo "$delivered $(awk -v a="$t1" -v b="$t0" 'BEGIN {print a - b}') $(awk -v a="$after" -v b="$before" -v t="$ticks" 'BEGIN {print (a - b) / t}') $p50 $p99"
  }
}

col() { awk -v c="$1" '{print $c}' "$2" | median; }

# derive FILE: deliveries/s, CPU %, deliveries per CPU-second, per run.
derive() {
  awk '{printf "%.0f %.1f %.0f\n", $1 / $2, 100 * $3 / $2, ($3 > 0) ? $1 / $3 : 0}' "$1" >"$1.derived"
}

echo "Pub/sub: $SECONDS_PER_RUN s per run, $RUNS interleaved runs per server, medians"
echo "redis-server $(redis-server --version | awk '{print $3}' | sed 's/v=//'), kvs $("$KVS" --version | awk '{print $2}'), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo
echo "| workload | kvs deliveries/s | redis deliveries/s | kvs p50/p99 ms | redis p50/p99 ms | kvs CPU % | redis CPU % | kvs per CPU-s | redis per CPU-s | kvs ÷ redis per CPU-s |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for workload in "1x100:64" "1x100:1024" "100x100:64" "100x100:1024"; do
  grep -Eq "$ONLY" <<<"$workload" || continue
  IFS=: read -r shape size <<<"$workload"
  case "$shape" in
    1x100) args=(--pubsub --publishers 1 --subscribers 100 --channels 1 -P 8); name="1 publisher → 100 subscribers, 1 channel" ;;
    100x100) args=(--pubsub --publishers 100 --subscribers 100 --channels 100 -P 1); name="100 publishers → 100 channels × 1 subscriber" ;;
  esac
  args+=(-d "$size")
  : >"$work/kvs.runs"
  : >"$work/redis.runs"
  for _ in $(seq 1 "$RUNS"); do
    one "$kvs_pid" "$kvs_port" "${args[@]}" >>"$work/kvs.runs"
    one "$redis_pid" "$redis_port" "${args[@]}" >>"$work/redis.runs"
  done
  for s in kvs redis; do
    derive "$work/$s.runs"
    f="$work/$s.runs"
    declare "${s}_rate=$(col 1 "$f.derived")" "${s}_cpu=$(col 2 "$f.derived")" "${s}_eff=$(col 3 "$f.derived")"
    declare "${s}_p50=$(col 4 "$f")" "${s}_p99=$(col 5 "$f")"
  done
  # shellcheck disable=SC2154
  printf '| %s, %s B | %s | %s | %s / %s | %s / %s | %s | %s | %s | %s | %.2f |\n' "$name" "$size" \
    "$kvs_rate" "$redis_rate" "$kvs_p50" "$kvs_p99" "$redis_p50" "$redis_p99" "$kvs_cpu" "$redis_cpu" \
    "$kvs_eff" "$redis_eff" "$(awk -v a="$kvs_eff" -v b="$redis_eff" 'BEGIN {print (b > 0) ? a / b : 0}')"
done

if grep -Eq "$ONLY" <<<"watch"; then
  echo
  echo "kvs HTTP watch: $WATCHERS watchers of one prefix, 2 RESP writers (-P 16) setting 64 B values under it"
  echo
  echo "| events delivered/s | p50/p99 write-to-event ms | kvs CPU % | events per CPU-s |"
  echo "|---|---|---|---|"
  : >"$work/watch.runs"
  for _ in $(seq 1 "$RUNS"); do
    one "$kvs_pid" "$kvs_port" --watch "$WATCHERS" --http-port "$kvs_http" -c 2 -P 16 -d 64 >>"$work/watch.runs"
  done
  derive "$work/watch.runs"
  printf '| %s | %s / %s | %s | %s |\n' "$(col 1 "$work/watch.runs.derived")" \
    "$(col 4 "$work/watch.runs")" "$(col 5 "$work/watch.runs")" \
    "$(col 2 "$work/watch.runs.derived")" "$(col 3 "$work/watch.runs.derived")"
fi
