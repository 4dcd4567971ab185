#!/usr/bin/env bash
# Idle cost: starts kvs (in memory, and durable with --fsync everysec) and redis-server, lets them
# sit with no clients for SECONDS, and prints each one's CPU time and thread wake-ups per second
# over that window (from /proc: utime+stime, and context switches summed over all threads).
# A server that spins shows CPU time; one that polls shows wake-ups.
#
# Usage: bench/idle.sh      (env: SECONDS_IDLE=20 KVS=path)
# Needs: redis-server, python3. Stops everything it starts.
set -euo pipefail

SECONDS_IDLE=${SECONDS_IDLE:-20}
# shellcheck source=bench/servers.sh
source "$(dirname "$0")/servers.sh"

kvs_binary

ticks=$(getconf CLK_TCK)
switches() {
  cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}'
}

"$KVS" serve --in-memory --http 127.0.0.1:0 --resp 127.0.0.1:0 --line 127.0.0.1:0 >/dev/null 2>&1 &
pids+=($!)
mem_pid=$!
"$KVS" serve --data-dir "$work/data" --fsync everysec --http 127.0.0.1:0 --resp 127.0.0.1:0 --line 127.0.0.1:0 >/dev/null 2>&1 &
pids+=($!)
durable_pid=$!
redis-server --port 0 --unixsocket "$work/redis.sock" --save '' --appendonly no --daemonize no --logfile "$work/redis.log" &
pids+=($!)
redis_pid=$!
sleep 2

declare -A t0 s0
for p in "$mem_pid" "$durable_pid" "$redis_pid"; do
  t0[$p]=$(cpu_ticks "$p")
  s0[$p]=$(switches "$p")
done
sleep "$SECONDS_IDLE"
echo "idle for $SECONDS_IDLE s with no clients"
echo
echo "| server | CPU % | CPU ms | thread wake-ups per second | threads |"
echo "|---|---|---|---|---|"
for entry in "kvs --in-memory:$mem_pid" "kvs --fsync everysec:$durable_pid" "redis-server (hz 10):$redis_pid"; do
  name=${entry%:*}
  p=${entry##*:}
  t1=$(cpu_ticks "$p")
  s1=$(switches "$p")
  awk -v n="$name" -v a="${t0[$p]}" -v b="$t1" -v t="$ticks" -v s="$SECONDS_IDLE" -v c0="${s0[$p]}" -v c1="$s1" \
    -v th="$(find /proc/"$p"/task -mindepth 1 -maxdepth 1 | wc -l)" \
    'BEGIN {printf "| %s | %.2f | %d | %.1f | %d |\n", n, 100 * (b - a) / t / s, 1000 * (b - a) / t, (c1 - c0) / s, th}'
done
