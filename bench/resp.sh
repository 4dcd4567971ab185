#!/usr/bin/env bash
# RESP side by side: kvs and redis-server started by this script, the same workloads against each,
# interleaved (kvs, redis, kvs, redis, ...), RUNS runs each, medians. Prints one table row per
# workload: requests/s, p50/p99 latency, server CPU %, requests per server CPU-second, and the
# ratio kvs ÷ redis of that last figure (the fair one when the load generator shares the machine).
#
# Workloads: SET and GET of 64-byte values unpipelined and with -P 16, SET of 4 KiB values
# (redis-benchmark, 50 clients, random keys over KEYSPACE), and a 50/50 GET/SET mix over KEYSPACE
# random keys (`kvs bench`, which speaks RESP to both servers). Then the rest of
# redis-benchmark's default tests, the collection ones (LPUSH, RPUSH, LPOP, RPOP, SADD, HSET,
# SPOP, ZADD, LRANGE of the first 100 and 600 elements of a 600-element list) and MSET of 10
# keys, unpipelined and with -P 16. A pop is measured on a collection filled beforehand (not
# measured), and LRANGE as a plain command on a list filled beforehand, so each figure is its own
# command's alone.
#
# Usage: bench/resp.sh [memory|everysec|always]
#   memory    (default) kvs --in-memory against redis with persistence off
#   everysec  kvs --fsync everysec against redis --appendonly yes --appendfsync everysec
#   always    kvs --fsync always   against redis --appendonly yes --appendfsync always
# env: REQUESTS=200000 CLIENTS=50 RUNS=3 KEYSPACE=100000 MIX_SECONDS=5 ONLY=regex KVS=path
# Needs: redis-server, redis-tools (Debian), python3. Stops everything it starts.
set -euo pipefail

MODE=${1:-memory}
REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
RUNS=${RUNS:-3}
KEYSPACE=${KEYSPACE:-100000}
MIX_SECONDS=${MIX_SECONDS:-5}
ONLY=${ONLY:-.}
# shellcheck source=bench/servers.sh
source "$(dirname "$0")/servers.sh"

for tool in redis-server redis-benchmark redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "$tool is required (apt-get install redis-server redis-tools python3)" >&2; exit 1; }
done
kvs_binary
case "$MODE" in
  memory)
    kvs_args=(--in-memory)
    redis_args=(--save '' --appendonly no) ;;
  everysec | always)
    mkdir -p "$work/kvs-data" "$work/redis-data"
    kvs_args=(--data-dir "$work/kvs-data" --fsync "$MODE")
    redis_args=(--save '' --appendonly yes --appendfsync "$MODE" --dir "$work/redis-data") ;;
  *) echo "unknown mode $MODE (memory, everysec or always)" >&2; exit 2 ;;
esac


kvs_port=$(free_port)
"$KVS" serve "${kvs_args[@]}" --http 127.0.0.1:0 --resp "127.0.0.1:$kvs_port" --line 127.0.0.1:0 >/dev/null 2>"$work/kvs.log" &
kvs_pid=$!
pids+=("$kvs_pid")
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 "${redis_args[@]}" --daemonize no --logfile "$work/redis.log" &
redis_pid=$!
pids+=("$redis_pid")
wait_ready "$kvs_port"
wait_ready "$redis_port"

ticks=$(getconf CLK_TCK)
now() { date +%s.%N; }

# one PID PORT WORKLOAD: runs it once; prints "ops seconds cpu_seconds p50_ms p99_ms".
one() {
  local pid=$1 port=$2 workload=$3 before after t0 t1 out n
  before=$(cpu_ticks "$pid")
  t0=$(now)
  case "$workload" in
    mix)
      out=$("$KVS" bench --protocol resp --port "$port" -c "$CLIENTS" -d 64 -r "$KEYSPACE" \
        --read-ratio 0.5 --duration "${MIX_SECONDS}s" --json)
      t1=$(now)
      after=$(cpu_ticks "$pid")
      python3 -c '
import json, sys
r = json.loads(sys.argv[1])
a = r["latency_ms"]["all"]
print(r["ops"], "%.3f" % a["p50"], "%.3f" % a["p99"])' "$out" | {
        read -r ops p50 p99
        echo "$ops $(awk -v a="$t1" -v b="$t0" 'BEGIN {print a - b}') $(awk -v a="$after" -v b="$before" -v t="$ticks" 'BEGIN {print (a - b) / t}') $p50 $p99"
      }
      return ;;
    *)
      # workload = TEST:VALUE_SIZE:PIPELINE
      IFS=: read -r test size pipeline <<<"$workload"
      # Pipelined runs are fast: more requests keep the CPU-time sample (10 ms ticks) precise.
      n=$REQUESTS
      [ "$pipeline" -gt 1 ] && n=$((REQUESTS * 5))
      # What the test reads or pops is put there first, outside the measurement.
      local fill="" command=()
      case "$test" in
        lpop | rpop) fill=rpush ;;
        spop) fill=sadd ;;
        lrange_*) command=(LRANGE mylist 0 $((${test#lrange_} - 1))) ;;
      esac
      if [ -n "$fill" ]; then
        redis-benchmark -h 127.0.0.1 -p "$port" -n "$n" -c "$CLIENTS" -P 16 -d "$size" \
          -r "$KEYSPACE" -t "$fill" -q >/dev/null 2>&1
      fi
      if [ "${#command[@]}" -gt 0 ]; then
        redis-cli -h 127.0.0.1 -p "$port" del mylist >/dev/null
        redis-benchmark -h 127.0.0.1 -p "$port" -n 600 -c 1 -d "$size" -t lpush -q >/dev/null 2>&1
      fi
      before=$(cpu_ticks "$pid")
      t0=$(now)
      if [ "${#command[@]}" -gt 0 ]; then
        out=$(redis-benchmark -h 127.0.0.1 -p "$port" -n "$n" -c "$CLIENTS" -P "$pipeline" \
          --csv "${command[@]}" 2>&1)
      else
        out=$(redis-benchmark -h 127.0.0.1 -p "$port" -n "$n" -c "$CLIENTS" -P "$pipeline" \
          -d "$size" -r "$KEYSPACE" -t "$test" --csv 2>&1)
      fi
      t1=$(now)
      after=$(cpu_ticks "$pid") ;;
  esac
  # --csv: "test","rps","avg","min","p50","p95","p99","max"
  awk -F'"' -v n="$n" -v t0="$t0" -v t1="$t1" -v a="$after" -v b="$before" -v t="$ticks" \
    'NR == 2 {print n, t1 - t0, (a - b) / t, $10, $14}' <<<"$out" | grep . \
    || { echo "redis-benchmark failed: $out" >&2; exit 1; }
}

col() { awk -v c="$1" '{print $c}' "$2" | median; }

echo "RESP, mode $MODE: $CLIENTS clients, keys random over $KEYSPACE, $RUNS interleaved runs per server, medians"
echo "redis-server $(redis-server --version | awk '{print $3}' | sed 's/v=//'), kvs $("$KVS" --version | awk '{print $2}'), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo
echo "| workload | kvs ops/s | redis ops/s | kvs p50/p99 ms | redis p50/p99 ms | kvs CPU % | redis CPU % | kvs ops per CPU-s | redis ops per CPU-s | kvs ÷ redis per CPU-s |"
echo "|---|---|---|---|---|---|---|---|---|---|"
collections=""
for test in lpush rpush lpop rpop sadd hset spop zadd lrange_100 lrange_600 mset; do
  collections+=" $test:64:1 $test:64:16"
done
for workload in set:64:1 get:64:1 set:64:16 get:64:16 set:4096:1 mix $collections; do
  grep -Eq "$ONLY" <<<"$workload" || continue
  : >"$work/kvs.runs"
  : >"$work/redis.runs"
  for _ in $(seq 1 "$RUNS"); do
    one "$kvs_pid" "$kvs_port" "$workload" >>"$work/kvs.runs"
    one "$redis_pid" "$redis_port" "$workload" >>"$work/redis.runs"
  done
  for s in kvs redis; do
    f="$work/$s.runs"
    awk '{printf "%.0f %.1f %.0f\n", $1 / $2, 100 * $3 / $2, ($3 > 0) ? $1 / $3 : 0}' "$f" >"$f.derived"
    declare "${s}_rps=$(col 1 "$f.derived")" "${s}_cpu=$(col 2 "$f.derived")" "${s}_eff=$(col 3 "$f.derived")"
    declare "${s}_p50=$(col 4 "$f")" "${s}_p99=$(col 5 "$f")"
  done
  case "$workload" in
    mix) name="GET/SET 50/50 64 B (kvs bench)" ;;
    *) IFS=: read -r test size pipeline <<<"$workload"; name="${test^^} $size B, -P $pipeline" ;;
  esac
  # shellcheck disable=SC2154
  printf '| %s | %s | %s | %s / %s | %s / %s | %s | %s | %s | %s | %.2f |\n' "$name" \
    "$kvs_rps" "$redis_rps" "$kvs_p50" "$kvs_p99" "$redis_p50" "$redis_p99" "$kvs_cpu" "$redis_cpu" \
    "$kvs_eff" "$redis_eff" "$(awk -v a="$kvs_eff" -v b="$redis_eff" 'BEGIN {print (b > 0) ? a / b : 0}')"
done
