#!/usr/bin/env bash
# Lua scripts side by side: kvs and redis-server started by this script, persistence off.
#
# 1. EVALSHA of a small script (a GET and an INCR) from redis-benchmark, 50 clients, unpipelined:
#    calls/s and calls per server CPU-second, interleaved runs, medians.
# 2. What a script call costs beside the same two commands in MULTI/EXEC: N of each sent through
#    one pipelined connection (`redis-cli --pipe`), server CPU microseconds per call/transaction.
#
# Usage: bench/scripting.sh     env: REQUESTS=100000 RUNS=3 KVS=path
# Needs: redis-server, redis-tools (Debian), python3. Stops everything it starts.
set -euo pipefail
REQUESTS=${REQUESTS:-100000}
RUNS=${RUNS:-3}
# shellcheck source=bench/servers.sh
source "$(dirname "$0")/servers.sh"
kvs_binary
ticks=$(getconf CLK_TCK)

kvs_port=$(free_port)
"$KVS" serve --in-memory --http 127.0.0.1:0 --resp "127.0.0.1:$kvs_port" --line 127.0.0.1:0 \
  >/dev/null 2>"$work/kvs.log" &
kvs_pid=$!
pids+=("$kvs_pid")
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
redis_pid=$!
pids+=("$redis_pid")
wait_ready "$kvs_port"
wait_ready "$redis_port"

script="redis.call('get', KEYS[1]) return redis.call('incr', KEYS[2])"
for port in "$kvs_port" "$redis_port"; do
  sha=$(redis-cli -p "$port" script load "$script")
done

# The pipelined inputs: N EVALSHA calls, and N MULTI/GET/INCR/EXEC blocks, in RESP.
python3 - "$REQUESTS" "$sha" "$work" <<'EOF'
import sys
n, sha, work = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def req(*words):
    out = f"*{len(words)}\r\n"
    for w in words:
        out += f"${len(w)}\r\n{w}\r\n"
    return out
with open(f"{work}/evalsha.resp", "w") as f:
    f.write(req("EVALSHA", sha, "2", "k", "n") * n)
with open(f"{work}/multi.resp", "w") as f:
    f.write((req("MULTI") + req("GET", "k") + req("INCR", "n") + req("EXEC")) * n)
EOF

# bench PID PORT: prints "calls/s calls_per_cpu_s" for one redis-benchmark run.
bench() {
  local before after t0 t1 out
  before=$(cpu_ticks "$1")
  t0=$(date +%s.%N)
  out=$(redis-benchmark -p "$2" -n "$REQUESTS" -c 50 --csv EVALSHA "$sha" 2 k n 2>&1)
  t1=$(date +%s.%N)
  after=$(cpu_ticks "$1")
  awk -F'"' -v n="$REQUESTS" -v t0="$t0" -v t1="$t1" -v a="$after" -v b="$before" -v t="$ticks" \
    'NR == 2 {cpu = (a - b) / t; printf "%.0f %.0f\n", n / (t1 - t0), (cpu > 0 ? n / cpu : 0)}' <<<"$out"
}

# piped PID PORT FILE: server CPU microseconds per call of FILE's N calls.
piped() {
  local before after
  before=$(cpu_ticks "$1")
  redis-cli -p "$2" --pipe <"$3" >/dev/null
  after=$(cpu_ticks "$1")
  awk -v n="$REQUESTS" -v a="$after" -v b="$before" -v t="$ticks" \
    'BEGIN {printf "%.2f\n", (a - b) / t * 1e6 / n}'
}

for _ in $(seq 1 "$RUNS"); do
  bench "$kvs_pid" "$kvs_port" >>"$work/kvs-bench"
  bench "$redis_pid" "$redis_port" >>"$work/redis-bench"
  piped "$kvs_pid" "$kvs_port" "$work/evalsha.resp" >>"$work/kvs-evalsha"
  piped "$redis_pid" "$redis_port" "$work/evalsha.resp" >>"$work/redis-evalsha"
  piped "$kvs_pid" "$kvs_port" "$work/multi.resp" >>"$work/kvs-multi"
  piped "$redis_pid" "$redis_port" "$work/multi.resp" >>"$work/redis-multi"
done
col() { awk -v c="$1" '{print $c}' "$2" | median; }
kvs_cpu=$(col 2 "$work/kvs-bench")
redis_cpu=$(col 2 "$work/redis-bench")
echo "EVALSHA (GET + INCR), $REQUESTS calls, 50 clients, $RUNS interleaved runs, medians"
echo "redis-server $(redis-server --version | awk '{print $3}' | sed 's/v=//'), $(nproc) cores"
echo
echo "| | kvs | redis | kvs ÷ redis |"
echo "|---|---|---|---|"
echo "| EVALSHA calls/s, unpipelined | $(col 1 "$work/kvs-bench") | $(col 1 "$work/redis-bench") | |"
echo "| EVALSHA calls per server CPU-s | $kvs_cpu | $redis_cpu | $(awk -v a="$kvs_cpu" -v b="$redis_cpu" 'BEGIN {if (b > 0) printf "%.2f", a / b; else printf "n/a"}') |"
echo "| server CPU µs per EVALSHA, pipelined | $(col 1 "$work/kvs-evalsha") | $(col 1 "$work/redis-evalsha") | |"
echo "| server CPU µs per MULTI GET INCR EXEC, pipelined | $(col 1 "$work/kvs-multi") | $(col 1 "$work/redis-multi") | |"
