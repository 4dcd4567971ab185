#!/usr/bin/env bash
# The cost of permission checks: the same workloads run as the default user (which kvs and Redis
# let through without looking) and as a user with `~* +@all` (whose every command is checked),
# against kvs and redis-server in one run, interleaved, RUNS runs each, medians. Prints ops per
# server CPU-second for each, and user ÷ default for each server: what one ACL check costs there.
#
# Usage: bench/acl.sh            (kvs --in-memory against redis with persistence off)
# env: REQUESTS=200000 CLIENTS=50 RUNS=3 KEYSPACE=100000 ONLY=regex KVS=path
# Needs: redis-server, redis-tools (Debian). Stops everything it starts.
set -euo pipefail

REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
RUNS=${RUNS:-3}
KEYSPACE=${KEYSPACE:-100000}
ONLY=${ONLY:-.}
# shellcheck source=bench/servers.sh
source "$(dirname "$0")/servers.sh"

for tool in redis-server redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null || { echo "$tool is required (apt-get install redis-server redis-tools)" >&2; exit 1; }
done
kvs_binary

kvs_port=$(free_port)
"$KVS" serve --in-memory --http 127.0.0.1:0 --resp "127.0.0.1:$kvs_port" --line 127.0.0.1:0 >/dev/null 2>"$work/kvs.log" &
kvs_pid=$!
pids+=("$kvs_pid")
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --logfile "$work/redis.log" &
redis_pid=$!
pids+=("$redis_pid")
wait_ready "$kvs_port"
wait_ready "$redis_port"
for port in "$kvs_port" "$redis_port"; do
  redis-cli -p "$port" ACL SETUSER bench on '>bench-password' '~*' '+@all' >/dev/null
done
ticks=$(getconf CLK_TCK)
now() { date +%s.%N; }

# one PID PORT TEST:SIZE:PIPELINE AS: prints "ops_per_cpu_s"; AS is default or user.
one() {
  local pid=$1 port=$2 workload=$3 as=$4 before after n auth=()
  IFS=: read -r test size pipeline <<<"$workload"
  n=$REQUESTS
  [ "$pipeline" -gt 1 ] && n=$((REQUESTS * 5))
  [ "$as" = user ] && auth=(--user bench -a bench-password)
  before=$(cpu_ticks "$pid")
  redis-benchmark -h 127.0.0.1 -p "$port" "${auth[@]}" -n "$n" -c "$CLIENTS" -P "$pipeline" \
    -d "$size" -r "$KEYSPACE" -t "$test" -q >/dev/null 2>&1
  after=$(cpu_ticks "$pid")
  awk -v n="$n" -v a="$after" -v b="$before" -v t="$ticks" 'BEGIN {printf "%.0f\n", (a > b) ? n / ((a - b) / t) : 0}'
}

echo "ACL check cost: $CLIENTS clients, keys random over $KEYSPACE, $RUNS interleaved runs, medians of ops per server CPU-second"
echo "redis-server $(redis-server --version | awk '{print $3}' | sed 's/v=//'), kvs $("$KVS" --version | awk '{print $2}'), $(nproc) cores"
echo
echo "| workload | kvs default | kvs ~* +@all | kvs user ÷ default | redis default | redis ~* +@all | redis user ÷ default |"
echo "|---|---|---|---|---|---|---|"
for workload in set:64:1 get:64:1 set:64:16 get:64:16; do
  grep -Eq "$ONLY" <<<"$workload" || continue
  for f in kd ku rd ru; do : >"$work/$f"; done
  for _ in $(seq 1 "$RUNS"); do
    one "$kvs_pid" "$kvs_port" "$workload" default >>"$work/kd"
    one "$kvs_pid" "$kvs_port" "$workload" user >>"$work/ku"
    one "$redis_pid" "$redis_port" "$workload" default >>"$work/rd"
    one "$redis_pid" "$redis_port" "$workload" user >>"$work/ru"
  done
  kd=$(median <"$work/kd"); ku=$(median <"$work/ku"); rd=$(median <"$work/rd"); ru=$(median <"$work/ru")
  IFS=: read -r test size pipeline <<<"$workload"
  printf '| %s %s B, -P %s | %s | %s | %.2f | %s | %s | %.2f |\n' "${test^^}" "$size" "$pipeline" \
    "$kd" "$ku" "$(awk -v a="$ku" -v b="$kd" 'BEGIN {print (b > 0) ? a / b : 0}')" \
    "$rd" "$ru" "$(awk -v a="$ru" -v b="$rd" 'BEGIN {print (b > 0) ? a / b : 0}')"
done
