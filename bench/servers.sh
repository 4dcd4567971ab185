# Sourced by the bench scripts: a scratch directory and the servers a script starts, both removed
# when it exits, plus the helpers they share. Sets `root` (the repository) and `work` (scratch);
# append the PID of every process you start to `pids`.
# shellcheck shell=bash

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Builds kvs in release mode unless KVS names a binary; sets KVS.
kvs_binary() {
  if [ -z "${KVS:-}" ]; then
    cargo build --release -q -p kvs --manifest-path "$root/Cargo.toml"
    KVS="$root/target/release/kvs"
  fi
}

# A TCP port free on 127.0.0.1 right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits until a Redis-protocol server answers PING on PORT (10 s at most).
wait_ready() {
  for _ in $(seq 1 200); do
    redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "server on port $1 did not start" >&2
  exit 1
}

# User plus system CPU time of PID, in clock ticks (getconf CLK_TCK per second).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# The median of the numbers on standard input, one per line.
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
