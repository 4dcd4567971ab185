#!/usr/bin/env bash
# Two kvs binaries side by side: the same RESP workload against each, alternating (A, B, A, B,
# ...), ROUNDS rounds; prints each round and the medians of ops/s and ops per server CPU-second.
# For "did this change cost anything": both servers run in one session, so the machine's drift
# affects both alike.
#
# Usage: bench/ab.sh OLD_BINARY NEW_BINARY
# env: MODE=always|everysec|memory (default always), WORKLOAD=mix|set (default mix: `kvs bench`
#      50/50 GET/SET for MIX_SECONDS=5; set: redis-benchmark SET, REQUESTS=200000), ROUNDS=4,
#      CLIENTS=50
# Needs: redis-tools (Debian), python3.
set -euo pipefail
[ $# -eq 2 ] || { sed -n 2,11p "$0" >&2; exit 2; }
A=$1
B=$2
MODE=${MODE:-always}
WORKLOAD=${WORKLOAD:-mix}
ROUNDS=${ROUNDS:-4}
CLIENTS=${CLIENTS:-50}
MIX_SECONDS=${MIX_SECONDS:-5}
REQUESTS=${REQUESTS:-200000}
# shellcheck source=bench/servers.sh
source "$(dirname "$0")/servers.sh"

start() { # BINARY NAME: starts it, prints "PID PORT"
  local port args
  port=$(free_port)
  if [ "$MODE" = memory ]; then
    args=(--in-memory)
  else
    mkdir -p "$work/$2"
    args=(--data-dir "$work/$2" --fsync "$MODE")
  fi
  "$1" serve "${args[@]}" --http 127.0.0.1:0 --resp "127.0.0.1:$port" --line 127.0.0.1:0 \
    >/dev/null 2>"$work/$2.log" &
  echo "$! $port"
}
read -r pid_a port_a < <(start "$A" a)
pids+=("$pid_a")
read -r pid_b port_b < <(start "$B" b)
pids+=("$pid_b")
wait_ready "$port_a"
wait_ready "$port_b"
ticks=$(getconf CLK_TCK)

one() { # PID PORT: prints "ops_per_s ops_per_cpu_s"
  local before after t0 t1 ops
  before=$(cpu_ticks "$1")
  t0=$(date +%s.%N)
  case "$WORKLOAD" in
    mix)
      ops=$("$A" bench --protocol resp --port "$2" -c "$CLIENTS" -d 64 -r 100000 \
        --read-ratio 0.5 --duration "${MIX_SECONDS}s" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ops"])') ;;
    set)
      redis-benchmark -p "$2" -t set -c "$CLIENTS" -n "$REQUESTS" -r 100000 -d 64 -q >/dev/null
      ops=$REQUESTS ;;
    *) echo "unknown WORKLOAD $WORKLOAD (mix or set)" >&2; exit 2 ;;
  esac
  t1=$(date +%s.%N)
  after=$(cpu_ticks "$1")
  awk -v o="$ops" -v a="$t0" -v b="$t1" -v c=$((after - before)) -v t="$ticks" \
    'BEGIN {printf "%.0f %.0f\n", o / (b - a), (c > 0 ? o / (c / t) : 0)}'
}

: >"$work/a.txt"
: >"$work/b.txt"
for r in $(seq "$ROUNDS"); do
  one "$pid_a" "$port_a" | tee -a "$work/a.txt" | sed "s/^/round $r A: /"
  one "$pid_b" "$port_b" | tee -a "$work/b.txt" | sed "s/^/round $r B: /"
done
for side in a b; do
  printf '%s (%s): median %s ops/s, %s ops per server CPU-s\n' "${side^^}" \
    "$([ "$side" = a ] && echo "$A" || echo "$B")" \
    "$(cut -d' ' -f1 "$work/$side.txt" | median)" "$(cut -d' ' -f2 "$work/$side.txt" | median)"
done
