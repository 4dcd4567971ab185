#!/usr/bin/env bash
# HTTP load against a running kvs: wrk GET and PUT on /kvs/{key} over random keys, 64-byte values.
# Prints requests/s and requests per server CPU-second (the fair figure on a small machine, where
# wrk and the server share the cores), the median of RUNS runs each.
#
# Usage: bench/http.sh            (env: DURATION=10s CONNECTIONS=50 THREADS=1 KEYS=10000 RUNS=3)
# Needs: wrk, curl, python3. Builds kvs in release mode; stops everything it starts.
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-1}
KEYS=${KEYS:-10000}
RUNS=${RUNS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q -p kvs --manifest-path "$root/Cargo.toml"
kvs="$root/target/release/kvs"

RUST_LOG=warn,kvs_server=info "$kvs" serve --in-memory --http 127.0.0.1:0 --resp 127.0.0.1:0 --line 127.0.0.1:0 >/dev/null 2>"$work/log" &
server_pid=$!
for _ in $(seq 1 200); do
  port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$work/log" | grep -o '[0-9]*$' || true)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "kvs did not start: $(cat "$work/log")" >&2; exit 1; }
base="http://127.0.0.1:$port"

# Preload every key so GETs hit, over one keep-alive connection.
python3 - "$port" "$KEYS" <<'PY'
import http.client, sys
port, keys = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
value = b"v" * 64
for i in range(keys):
    c.request("PUT", f"/kvs/bench/{i}", body=value)
    r = c.getresponse(); r.read()
    assert r.status in (200, 201), r.status
PY

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
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }

# Converts wrk's latency ("512.00us", "1.23ms", "1.01s") to milliseconds.
to_ms() {
  awk '{ v = $1 + 0; if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /ms$/) v += 0; else if ($1 ~ /s$/) v *= 1000; printf "%.3f", v }'
}

# run NAME SCRIPT: one wrk run; prints "rps cpu_seconds p50_ms p99_ms".
run() {
  local before after out rps p50 p99
  before=$(cpu_ticks)
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$2" "$base")
  after=$(cpu_ticks)
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out" | to_ms)
  p99=$(awk '$1=="99%" {print $2}' <<<"$out" | to_ms)
  if grep -q 'Non-2xx' <<<"$out"; then
    echo "non-2xx responses in $1: $out" >&2
    exit 1
  fi
  echo "$rps $(awk -v a="$after" -v b="$before" -v t="$ticks" 'BEGIN {printf "%.2f", (a - b) / t}') $p50 $p99"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

echo "kvs HTTP, $CONNECTIONS connections, $THREADS wrk thread(s), $DURATION x $RUNS runs, $KEYS keys, 64 B values"
echo
echo "| workload | requests/s (median) | server CPU-s per run | requests per server CPU-second | p50 | p99 |"
echo "|---|---|---|---|---|---|"
for name in GET PUT; do
  script="$work/$(tr '[:upper:]' '[:lower:]' <<<"$name").lua"
  : >"$work/$name.runs"
  for _ in $(seq 1 "$RUNS"); do
    run "$name" "$script" >>"$work/$name.runs"
  done
  rps=$(awk '{print $1}' "$work/$name.runs" | median)
  cpu=$(awk '{print $2}' "$work/$name.runs" | median)
  eff=$(awk '{ if ($2 > 0) print $1 * substr("'"$DURATION"'", 1, length("'"$DURATION"'") - 1) / $2 }' "$work/$name.runs" | median)
  p50=$(awk '{print $3}' "$work/$name.runs" | median)
  p99=$(awk '{print $4}' "$work/$name.runs" | median)
  printf '| %s /kvs/{key} | %.0f | %s | %.0f | %s ms | %s ms |\n' "$name" "$rps" "$cpu" "$eff" "$p50" "$p99"
done
