#!/usr/bin/env bash
# redis-benchmark against kvs and redis-server side by side, interleaved, in one run: SET, GET,
# INCR, MSET, unpipelined and with -P 16. Prints requests/s and requests per server CPU-second
# (the fair figure when redis-benchmark and the server share a small machine), medians of RUNS.
#
# Usage: bench/resp.sh      (env: REQUESTS=200000 CLIENTS=50 RUNS=3)
# Needs: redis-server and redis-tools (Debian). Stops everything it starts.
set -euo pipefail

REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
RUNS=${RUNS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for tool in redis-server redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null || { echo "$tool is required (apt-get install redis-server redis-tools)" >&2; exit 1; }
done
cargo build --release -q -p kvs --manifest-path "$root/Cargo.toml"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

kvs_port=$(free_port)
"$root/target/release/kvs" serve --in-memory --http 127.0.0.1:0 --resp "127.0.0.1:$kvs_port" --line 127.0.0.1:0 >/dev/null 2>"$work/kvs.log" &
kvs_pid=$!
pids+=("$kvs_pid")
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --logfile "$work/redis.log" &
redis_pid=$!
pids+=("$redis_pid")
for port in "$kvs_port" "$redis_port"; do
  for _ in $(seq 1 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.05
  done
done

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# one PID PORT TEST PIPELINE: prints "rps cpu_seconds".
one() {
  local before after out rps
  before=$(cpu "$1")
  out=$(redis-benchmark -h 127.0.0.1 -p "$2" -n "$REQUESTS" -c "$CLIENTS" -P "$4" -r 100000 -q -t "$3" 2>&1)
  after=$(cpu "$1")
  rps=$(grep -o '[0-9.]* requests per second' <<<"$out" | head -1 | awk '{print $1}')
  [ -n "$rps" ] || { echo "redis-benchmark failed: $out" >&2; exit 1; }
  echo "$rps $(awk -v a="$after" -v b="$before" -v t="$ticks" 'BEGIN {printf "%.3f", (a - b) / t}')"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

echo "redis-benchmark, $REQUESTS requests, $CLIENTS clients, random keys (-r 100000), $RUNS interleaved runs, medians"
echo "redis-server: $(redis-server --version | awk '{print $3}'), persistence off"
echo
echo "| test | pipeline | kvs req/s | redis req/s | kvs req per CPU-s | redis req per CPU-s | kvs ÷ redis (per CPU-s) |"
echo "|---|---|---|---|---|---|---|"
for pipeline in 1 16; do
  for test in set get incr mset; do
    : >"$work/kvs"; : >"$work/redis"
    for _ in $(seq 1 "$RUNS"); do
      one "$kvs_pid" "$kvs_port" "$test" "$pipeline" >>"$work/kvs"
      one "$redis_pid" "$redis_port" "$test" "$pipeline" >>"$work/redis"
    done
    k_rps=$(awk '{print $1}' "$work/kvs" | median)
    r_rps=$(awk '{print $1}' "$work/redis" | median)
    k_eff=$(awk -v n="$REQUESTS" '{ if ($2 > 0) print n / $2 }' "$work/kvs" | median)
    r_eff=$(awk -v n="$REQUESTS" '{ if ($2 > 0) print n / $2 }' "$work/redis" | median)
    printf '| %s | %s | %.0f | %.0f | %.0f | %.0f | %.2f |\n' "${test^^}" "$pipeline" "$k_rps" "$r_rps" "$k_eff" "$r_eff" \
      "$(awk -v a="$k_eff" -v b="$r_eff" 'BEGIN {print (b > 0) ? a / b : 0}')"
  done
done
