#!/usr/bin/env bash
# TLS throughput: RESP over TLS against redis-server's --tls-port, and the HTTP door over TLS
# against itself in plain text, in one run, interleaved, RUNS runs each, medians. Certificates
# are made with openssl for the run. Prints ops/s and ops per server CPU-second, and the ratios.
#
# Usage: bench/tls.sh
# env: REQUESTS=200000 CLIENTS=50 RUNS=3 DURATION=5s KVS=path
# Needs: redis-server, redis-tools (built with TLS, as Debian's are), wrk, openssl.
set -euo pipefail
REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
RUNS=${RUNS:-3}
DURATION=${DURATION:-5s}
# shellcheck source=bench/servers.sh
source "$(dirname "$0")/servers.sh"
for tool in redis-server redis-benchmark redis-cli wrk openssl; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
kvs_binary

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

kvs_resp=$(free_port); kvs_tls=$(free_port); kvs_http=$(free_port); kvs_https=$(free_port)
"$KVS" serve --in-memory --http "127.0.0.1:$kvs_http" --resp "127.0.0.1:$kvs_resp" --line 127.0.0.1:0 \
  --tls-resp "127.0.0.1:$kvs_tls" --tls-http "127.0.0.1:$kvs_https" \
  --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" >/dev/null 2>"$work/kvs.log" &
kvs_pid=$!
pids+=("$kvs_pid")
redis_port=$(free_port); redis_tls=$(free_port)
redis-server --port "$redis_port" --tls-port "$redis_tls" --bind 127.0.0.1 --save '' --appendonly no \
  --tls-cert-file "$work/cert.pem" --tls-key-file "$work/key.pem" --tls-ca-cert-file "$work/cert.pem" \
  --tls-auth-clients no --daemonize no --logfile "$work/redis.log" &
redis_pid=$!
pids+=("$redis_pid")
wait_ready "$kvs_resp"
wait_ready "$redis_port"
ticks=$(getconf CLK_TCK)
now() { date +%s.%N; }

# resp PID PORT TEST PIPELINE: "ops_per_s ops_per_cpu_s" over TLS.
resp() {
  local before after t0 t1 n=$REQUESTS
  [ "$4" -gt 1 ] && n=$((REQUESTS * 5))
  before=$(cpu_ticks "$1"); t0=$(now)
  redis-benchmark --tls --cacert "$work/cert.pem" -h 127.0.0.1 -p "$2" -n "$n" -c "$CLIENTS" \
    -P "$4" -d 64 -r 100000 -t "$3" -q >/dev/null 2>&1
  t1=$(now); after=$(cpu_ticks "$1")
  awk -v n="$n" -v a="$t0" -v b="$t1" -v c=$((after - before)) -v t="$ticks" \
    'BEGIN {printf "%.0f %.0f\n", n / (b - a), (c > 0) ? n / (c / t) : 0}'
}

# http PID URL: "requests_per_s requests_per_cpu_s" with wrk GET.
http() {
  local before after out rps
  before=$(cpu_ticks "$1")
  out=$(wrk -t1 -c "$CLIENTS" -d "$DURATION" "$2" 2>&1)
  after=$(cpu_ticks "$1")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  awk -v r="$rps" -v d="${DURATION%s}" -v c=$((after - before)) -v t="$ticks" \
    'BEGIN {printf "%.0f %.0f\n", r, (c > 0) ? r * d / (c / t) : 0}'
}

curl -s -X PUT --data-binary "$(head -c 64 /dev/zero | tr '\0' x)" "http://127.0.0.1:$kvs_http/kvs/bench" >/dev/null
echo "TLS: $CLIENTS clients, $RUNS interleaved runs, medians; kvs $("$KVS" --version | awk '{print $2}'), redis-server $(redis-server --version | awk '{print $3}' | sed 's/v=//'), $(nproc) cores"
echo
echo "| workload | kvs ops/s | other ops/s | kvs per CPU-s | other per CPU-s | kvs ÷ other per CPU-s |"
echo "|---|---|---|---|---|---|"
row() { # NAME KVS_FILE OTHER_FILE
  local kr ke or oe
  kr=$(cut -d' ' -f1 "$2" | median); ke=$(cut -d' ' -f2 "$2" | median)
  or=$(cut -d' ' -f1 "$3" | median); oe=$(cut -d' ' -f2 "$3" | median)
  printf '| %s | %s | %s | %s | %s | %.2f |\n' "$1" "$kr" "$or" "$ke" "$oe" \
    "$(awk -v a="$ke" -v b="$oe" 'BEGIN {print (b > 0) ? a / b : 0}')"
}
for w in "set 1" "get 1" "set 16" "get 16"; do
  read -r test pipeline <<<"$w"
  : >"$work/k"; : >"$work/r"
  for _ in $(seq 1 "$RUNS"); do
    resp "$kvs_pid" "$kvs_tls" "$test" "$pipeline" >>"$work/k"
    resp "$redis_pid" "$redis_tls" "$test" "$pipeline" >>"$work/r"
  done
  row "RESP over TLS, ${test^^} 64 B -P $pipeline (other: redis-server --tls-port)" "$work/k" "$work/r"
done
: >"$work/k"; : >"$work/r"
for _ in $(seq 1 "$RUNS"); do
  http "$kvs_pid" "https://127.0.0.1:$kvs_https/kvs/bench" >>"$work/k"
  http "$kvs_pid" "http://127.0.0.1:$kvs_http/kvs/bench" >>"$work/r"
done
row "HTTPS GET /kvs/{key} (other: kvs over plain HTTP)" "$work/k" "$work/r"
