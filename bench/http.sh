#!/usr/bin/env bash
# HTTP side by side: kvs and a minimal hyper server (crates/server/examples/bare_http.rs, the floor
# for any Rust HTTP front door: a sharded map, GET and PUT, nothing else), both started here, the
# same wrk GET and PUT load on /kvs/{key} over KEYS random keys with 64-byte values, interleaved,
# RUNS runs each, medians. Prints requests/s, p50/p99, server CPU %, requests per server
# CPU-second, and the ratio kvs ÷ hyper of that last figure (wrk shares the machine, so the
# per-CPU figure is the fair one).
#
# Usage: bench/http.sh            (env: DURATION=10s CONNECTIONS=50 THREADS=1 KEYS=10000 RUNS=3 KVS=path)
# Needs: wrk, python3. Builds both in release mode; stops everything it starts.
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-1}
KEYS=${KEYS:-10000}
RUNS=${RUNS:-3}
# shellcheck source=bench/servers.sh
source "$(dirname "$0")/servers.sh"

command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q -p kvs-server --example bare_http --manifest-path "$root/Cargo.toml"
kvs_binary

# start NAME COMMAND...: starts a server that logs "listening on http://ADDR"; sets NAME_pid, NAME_port.
start() {
  local name=$1 port=
  shift
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  declare -g "${name}_pid=$!"
  for _ in $(seq 1 200); do
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$work/$name.log" | head -1 | grep -o '[0-9]*$' || true)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "$name did not start: $(cat "$work/$name.log")" >&2; exit 1; }
  declare -g "${name}_port=$port"
}
kvs_pid='' kvs_port='' hyper_pid='' hyper_port=''
RUST_LOG=warn,kvs_server=info start kvs "$KVS" serve --in-memory --http 127.0.0.1:0 --resp 127.0.0.1:0 --line 127.0.0.1:0
start hyper "$root/target/release/examples/bare_http" 127.0.0.1:0

# Preload every key in both so GETs hit, over one keep-alive connection each.
for port in "$kvs_port" "$hyper_port"; do
  python3 - "$port" "$KEYS" <<'PY'
import http.client, sys
port, keys = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
value = b"v" * 64
for i in range(keys):
    c.request("PUT", f"/kvs/bench/{i}", body=value)
    r = c.getresponse(); r.read()
    assert r.status in (200, 201, 204), r.status
PY
done

cat > "$work/get.lua" <<LUA
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/kvs/bench/" .. math.random(0, $KEYS - 1))
end
LUA
cat > "$work/put.lua" <<LUA
math.randomseed(os.time() + 1)
local body = string.rep("w", 64)
request = function()
  return wrk.format("PUT", "/kvs/bench/" .. math.random(0, $KEYS - 1), {["Content-Type"] = "text/plain"}, body)
end
LUA

ticks=$(getconf CLK_TCK)

# Converts wrk's latency ("512.00us", "1.23ms", "1.01s") to milliseconds.
to_ms() {
  awk '{ v = $1 + 0; if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /ms$/) v += 0; else if ($1 ~ /s$/) v *= 1000; printf "%.3f", v }'
}

# run PID PORT SCRIPT: one wrk run; prints "rps cpu_percent ops_per_cpu_s p50_ms p99_ms".
run() {
  local before after out rps p50 p99 secs cpu
  before=$(cpu_ticks "$1")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$3" "http://127.0.0.1:$2")
  after=$(cpu_ticks "$1")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out" | to_ms)
  p99=$(awk '$1=="99%" {print $2}' <<<"$out" | to_ms)
  if grep -q 'Non-2xx' <<<"$out"; then
    echo "non-2xx responses: $out" >&2
    exit 1
  fi
  secs=${DURATION%s}
  cpu=$(awk -v a="$after" -v b="$before" -v t="$ticks" 'BEGIN {print (a - b) / t}')
  awk -v r="$rps" -v c="$cpu" -v s="$secs" -v p50="$p50" -v p99="$p99" \
    'BEGIN {printf "%.0f %.1f %.0f %s %s\n", r, 100 * c / s, (c > 0) ? r * s / c : 0, p50, p99}'
}

col() { awk -v c="$1" '{print $c}' "$2" | median; }

echo "HTTP: $CONNECTIONS connections, $THREADS wrk thread(s), $DURATION x $RUNS interleaved runs per server, $KEYS keys, 64 B values, medians"
echo "$(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo
echo "| workload | kvs req/s | hyper req/s | kvs p50/p99 ms | hyper p50/p99 ms | kvs CPU % | hyper CPU % | kvs req per CPU-s | hyper req per CPU-s | kvs ÷ hyper per CPU-s |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for name in GET PUT; do
  script="$work/$(tr '[:upper:]' '[:lower:]' <<<"$name").lua"
  : >"$work/kvs.runs"
  : >"$work/hyper.runs"
  for _ in $(seq 1 "$RUNS"); do
    run "$kvs_pid" "$kvs_port" "$script" >>"$work/kvs.runs"
    run "$hyper_pid" "$hyper_port" "$script" >>"$work/hyper.runs"
  done
  k_eff=$(col 3 "$work/kvs.runs")
  h_eff=$(col 3 "$work/hyper.runs")
  printf '| %s /kvs/{key} | %s | %s | %s / %s | %s / %s | %s | %s | %s | %s | %.2f |\n' "$name" \
    "$(col 1 "$work/kvs.runs")" "$(col 1 "$work/hyper.runs")" \
    "$(col 4 "$work/kvs.runs")" "$(col 5 "$work/kvs.runs")" "$(col 4 "$work/hyper.runs")" "$(col 5 "$work/hyper.runs")" \
    "$(col 2 "$work/kvs.runs")" "$(col 2 "$work/hyper.runs")" "$k_eff" "$h_eff" \
    "$(awk -v a="$k_eff" -v b="$h_eff" 'BEGIN {print (b > 0) ? a / b : 0}')"
done
