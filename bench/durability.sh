#!/usr/bin/env bash
# kvs against redis-server on durability workloads, in one run, interleaved, medians of RUNS:
#  1. write throughput: redis-benchmark SET (-c CLIENTS -d VALUE_BYTES -r 100000) with every write
#     fsynced (kvs --fsync always, redis appendfsync always) and fsynced once a second (everysec);
#     ops/s and ops per server CPU-second (the fair figure when redis-benchmark shares the cores).
#  2. recovery: KEYS keys with VALUE_BYTES-byte values are loaded with redis-cli --pipe into kvs
#     (--fsync everysec) and redis (AOF, everysec, aof-use-rdb-preamble no, so redis replays its log
#     as kvs does), both are stopped, and each is restarted on its directory, timing until it
#     answers PING with DBSIZE == KEYS; also the time each logs for its own load. With PREAMBLE=1,
#     a copy of redis's directory rewritten with BGREWRITEAOF (RDB preamble, redis's default) too.
#  3. snapshot: BGSAVE on the restarted servers, timed until INFO persistence says it is done;
#     snapshot size (kvs: newest DIR/snapshot-*.kvs, redis: DIR/dump.rdb) and time.
# Values are random (base64), so redis's LZF compression of RDB strings gains nothing. Logs are
# read back from the page cache: recovery measures replay, not the disk. Each server gets its own
# fresh data directory under $TMPDIR (or /tmp): put it on the disk you mean to measure.
#
# Usage: bench/durability.sh
#   env: RUNS=3 REQUESTS=100000 (everysec) ALWAYS_REQUESTS=20000 (always) CLIENTS=50
#        KEYS=1000000 VALUE_BYTES=64 DEADLINE=120 (seconds, for every wait)
#        PARTS="write recovery snapshot" (any of them; snapshot alone still loads the keys)
#        ONLY=kvs|redis (run one server only; ratios then n/a) PREAMBLE=1 (0: skip the preamble row)
#        KVS=path (a kvs binary to run instead of building target/release/kvs)
# Needs: redis-server and redis-tools (Debian), python3, timeout. Builds kvs in release mode
# (unless ONLY=redis). Stops everything it starts.
set -euo pipefail

RUNS=${RUNS:-3}
REQUESTS=${REQUESTS:-100000}
ALWAYS_REQUESTS=${ALWAYS_REQUESTS:-20000}
CLIENTS=${CLIENTS:-50}
KEYS=${KEYS:-1000000}
VALUE_BYTES=${VALUE_BYTES:-64}
DEADLINE=${DEADLINE:-120}
PARTS=${PARTS:-write recovery snapshot}
ONLY=${ONLY:-}
PREAMBLE=${PREAMBLE:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()

alive() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $1}') || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}
cleanup() {
  local p _
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 1 200); do
    local any=
    for p in "${pids[@]}"; do alive "$p" && any=1; done
    [ -z "$any" ] && break
    sleep 0.05
  done
  for p in "${pids[@]}"; do alive "$p" && kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() { echo "durability.sh: $*" >&2; exit 1; }
want() { [[ " $PARTS " == *" $1 "* ]]; }

case $ONLY in
  '') servers=(kvs redis) ;;
  kvs | redis) servers=("$ONLY") ;;
  *) die "ONLY must be kvs, redis or unset, not '$ONLY'" ;;
esac
for part in $PARTS; do
  case $part in write | recovery | snapshot) ;; *) die "unknown part '$part' in PARTS" ;; esac
done
for tool in redis-server redis-benchmark redis-cli python3 timeout; do
  command -v "$tool" >/dev/null || die "$tool is required (apt-get install redis-server redis-tools)"
done
kvs=${KVS:-$root/target/release/kvs}
if [ "$ONLY" != redis ] && [ -z "${KVS:-}" ]; then
  cargo build --release -q -p kvs --manifest-path "$root/Cargo.toml"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ticks=$(getconf CLK_TCK)
# CPU ticks of a process and of its reaped children (redis's BGSAVE and BGREWRITEAOF forks).
cpu() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13 + $14 + $15}'; }
cpu_s() { awk -v a="$2" -v b="$1" -v t="$ticks" 'BEGIN {printf "%.3f", (a - b) / t}'; }
now_ns() { date +%s%N; }
secs_since() { awk -v a="$(now_ns)" -v b="$1" 'BEGIN {printf "%.3f", (a - b) / 1e9}'; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR + 1) / 2)]; else print "n/a"}'; }
col() { awk -v c="$1" '{print $c}' "$2" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else printf "n/a"}'; }
mb() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
dir_bytes() { du -sb "$1" | cut -f1; }
rcli() { timeout 10 redis-cli -h 127.0.0.1 -p "$1" "${@:2}" 2>/dev/null | tr -d '\r'; }
info_field() { rcli "$1" info persistence | awk -F: -v k="$2" '$1 == k {print $2}'; }
log_tail() { echo "--- last lines of $1:"; tail -n 20 "$1" 2>/dev/null || true; }

# Server handles: name -> pid, port, dir, log (one log per start, so each can be parsed alone).
declare -A pid port dir log
starts=0

# start NAME KIND DIR FSYNC [redis args...]: KIND is kvs or redis; sets pid/port/dir/log[NAME].
start() {
  local name=$1 kind=$2 d=$3 fsync=$4
  shift 4
  starts=$((starts + 1))
  port[$name]=$(free_port)
  dir[$name]=$d
  log[$name]="$work/logs/$starts-$name.log"
  mkdir -p "$d" "$work/logs"
  if [ "$kind" = kvs ]; then
    RUST_LOG=info "$kvs" serve --http 127.0.0.1:0 --resp "127.0.0.1:${port[$name]}" --line 127.0.0.1:0 \
      --data-dir "$d" --fsync "$fsync" >/dev/null 2>"${log[$name]}" &
  else
    redis-server --port "${port[$name]}" --bind 127.0.0.1 --dir "$d" --daemonize no --save '' \
      --appendonly yes --appendfsync "$fsync" --logfile "${log[$name]}" "$@" &
  fi
  pid[$name]=$!
  pids+=("${pid[$name]}")
}

# ready NAME KEYS: true once the server answers PING and DBSIZE is KEYS (one connection per poll).
ready() {
  [ "$(printf 'PING\nDBSIZE\n' | timeout 10 redis-cli -h 127.0.0.1 -p "${port[$1]}" 2>/dev/null | tr -d '\r')" \
    = "$(printf 'PONG\n%s' "$2")" ]
}

# wait_ready NAME KEYS: polls every 20 ms; fails if the server exits or DEADLINE passes.
wait_ready() {
  local end=$(($(date +%s) + DEADLINE))
  until ready "$1" "$2"; do
    alive "${pid[$1]}" || { log_tail "${log[$1]}" >&2; die "$1 exited before it was ready"; }
    if [ "$(date +%s)" -ge "$end" ]; then
      log_tail "${log[$1]}" >&2
      die "$1 did not answer PING with DBSIZE $2 within ${DEADLINE}s (DBSIZE: $(rcli "${port[$1]}" dbsize || true))"
    fi
    sleep 0.02
  done
}

# stop NAME: redis by SHUTDOWN (AOF only, so nothing more is saved), kvs by SIGTERM; waits for exit.
stop() {
  local name=$1 p=${pid[$1]} end=$(($(date +%s) + DEADLINE)) rc=0 keep=() q
  if [[ $name == redis* ]]; then rcli "${port[$name]}" shutdown >/dev/null || true; else kill -TERM "$p" 2>/dev/null || true; fi
  while alive "$p"; do
    [ "$(date +%s)" -lt "$end" ] || { log_tail "${log[$name]}" >&2; die "$name did not exit within ${DEADLINE}s of being stopped"; }
    sleep 0.02
  done
  wait "$p" 2>/dev/null || rc=$?
  [ "$rc" = 0 ] || echo "warning: $name exited with status $rc" >&2
  for q in "${pids[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
  pids=("${keep[@]}")
}

# poll NAME DESC CMD...: runs CMD every 20 ms until it succeeds; fails after DEADLINE seconds.
poll() {
  local name=$1 desc=$2 end=$(($(date +%s) + DEADLINE))
  shift 2
  until "$@"; do
    alive "${pid[$name]}" || { log_tail "${log[$name]}" >&2; die "$name exited while waiting for $desc"; }
    [ "$(date +%s)" -lt "$end" ] || { log_tail "${log[$name]}" >&2; die "$name: timed out after ${DEADLINE}s waiting for $desc"; }
    sleep 0.02
  done
}

fs=$(df --output=fstype "$work" | tail -1)
echo "# kvs vs redis-server: durability"
echo
echo "redis-server $(redis-server --version | awk '{print $3}' | sed 's/v=//'); kvs $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?');" \
  "$(nproc) cores; data directories on $fs ($work); $RUNS interleaved runs, medians"
[ "$fs" = tmpfs ] && echo "**warning: tmpfs ignores fsync; set TMPDIR to a directory on a real disk**"
[ "$ONLY" = "" ] || echo "ONLY=$ONLY: the other server is not run"
started=$(now_ns)

# ---------------------------------------------------------------------------------------------
# 1. Write throughput.

# bench NAME N: one redis-benchmark SET run; appends "ops/s cpu_s ops_per_cpu_s" to $work/w-NAME.
bench() {
  local before after out rps c
  before=$(cpu "${pid[$1]}")
  out=$(timeout "$DEADLINE" redis-benchmark -h 127.0.0.1 -p "${port[$1]}" -n "$2" -c "$CLIENTS" \
    -d "$VALUE_BYTES" -r 100000 -q -t set 2>&1) || die "redis-benchmark against $1 failed or took over ${DEADLINE}s: $out"
  after=$(cpu "${pid[$1]}")
  rps=$(grep -o '[0-9.]* requests per second' <<<"$out" | tail -1 | awk '{print $1}')
  [ -n "$rps" ] || die "redis-benchmark against $1 printed no result: $out"
  c=$(cpu_s "$before" "$after")
  echo "$rps $c $(awk -v n="$2" -v c="$c" 'BEGIN {print (c > 0) ? n / c : 0}')" >>"$work/w-$1.txt"
}

if want write; then
  echo
  echo "## 1. Write throughput: redis-benchmark -t set -c $CLIENTS -d $VALUE_BYTES -r 100000"
  echo
  echo "| mode | server | requests | ops/s | server CPU-s | ops per server CPU-s | data dir MB | kvs ÷ redis ops/s | kvs ÷ redis ops per CPU-s |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for mode in always everysec; do
    n=$REQUESTS
    [ "$mode" = always ] && n=$ALWAYS_REQUESTS
    for s in "${servers[@]}"; do
      : >"$work/w-$s.txt"
      if [ "$s" = kvs ]; then start kvs kvs "$work/w-$mode-kvs" "$mode"; else
        start redis redis "$work/w-$mode-redis" "$mode" --aof-use-rdb-preamble no; fi
      wait_ready "$s" 0
    done
    for _ in $(seq 1 "$RUNS"); do
      for s in "${servers[@]}"; do bench "$s" "$n"; done
    done
    declare -A rps=() eff=()
    for s in "${servers[@]}"; do
      stop "$s"
      rps[$s]=$(col 1 "$work/w-$s.txt")
      eff[$s]=$(col 3 "$work/w-$s.txt")
      bytes=$(dir_bytes "${dir[$s]}")
      [ "$s" = kvs ] && [ "$bytes" -lt $((n * VALUE_BYTES / 2)) ] &&
        echo "warning: kvs --fsync $mode left only $bytes bytes in its data directory" >&2
      if [ "$s" = redis ] && [ -n "${rps[kvs]:-}" ]; then
        r1=$(ratio "${rps[kvs]}" "${rps[redis]}") r2=$(ratio "${eff[kvs]}" "${eff[redis]}")
      elif [ "$s" = redis ]; then r1=n/a r2=n/a; else r1=— r2=—; fi
      printf '| %s | %s | %s | %.0f | %.2f | %.0f | %s | %s | %s |\n' "$mode" "$s" "$n" "${rps[$s]}" \
        "$(col 2 "$work/w-$s.txt")" "${eff[$s]}" "$(mb "$bytes")" "$r1" "$r2"
    done
    rm -rf "$work/w-$mode-"*
  done
fi

# ---------------------------------------------------------------------------------------------
# 2. Recovery, and 3. snapshot, of KEYS keys.

if want recovery || want snapshot; then
  gen=$(now_ns)
  python3 - "$KEYS" "$VALUE_BYTES" "$work/set.resp" <<'PY'
import base64, random, sys
n, size, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
width = max(7, len(str(n - 1)))
head = b"*3\r\n$3\r\nSET\r\n$%d\r\n" % (4 + width)
tail = b"\r\n$%d\r\n" % size
raw = (size * 3 + 3) // 4
rng = random.Random(1)
with open(path, "wb") as f:
    chunk = []
    for i in range(n):
        chunk.append(b"%skey:%0*d%s%s\r\n" % (head, width, i, tail, base64.b64encode(rng.randbytes(raw))[:size]))
        if len(chunk) == 100000:
            f.write(b"".join(chunk))
            chunk.clear()
    f.write(b"".join(chunk))
PY
  echo
  echo "($KEYS SET commands, $(mb "$(stat -c %s "$work/set.resp")") MB of RESP, generated in $(secs_since "$gen") s)"

  recover=("${servers[@]}")
  [ "$PREAMBLE" = 1 ] && [ "$ONLY" != kvs ] && want recovery && recover+=(redis-preamble)
  declare -A load_s disk
  for s in "${servers[@]}"; do
    if [ "$s" = kvs ]; then start kvs kvs "$work/r-kvs" everysec; else
      start redis redis "$work/r-redis" everysec --aof-use-rdb-preamble no; fi
    wait_ready "$s" 0
    t=$(now_ns)
    out=$(timeout "$DEADLINE" redis-cli -h 127.0.0.1 -p "${port[$s]}" --pipe <"$work/set.resp" 2>&1) ||
      die "redis-cli --pipe into $s failed or took over ${DEADLINE}s: $out"
    load_s[$s]=$(secs_since "$t")
    grep -q 'errors: 0, replies: '"$KEYS" <<<"$out" || die "redis-cli --pipe into $s: $out"
    [ "$(rcli "${port[$s]}" dbsize)" = "$KEYS" ] || die "$s holds $(rcli "${port[$s]}" dbsize) keys after loading $KEYS"
    stop "$s"
    disk[$s]=$(dir_bytes "${dir[$s]}")
  done

  if [[ " ${recover[*]} " == *" redis-preamble "* ]]; then
    # The same log, rewritten by BGREWRITEAOF into an RDB base, as redis does by default.
    cp -a "$work/r-redis" "$work/r-redis-preamble"
    start redis-preamble redis "$work/r-redis-preamble" everysec --aof-use-rdb-preamble yes
    wait_ready redis-preamble "$KEYS"
    rewritten() {
      [ "$(info_field "${port[redis-preamble]}" aof_rewrite_in_progress)" = 0 ] &&
        [ "$(info_field "${port[redis-preamble]}" aof_rewrite_scheduled)" = 0 ] &&
        grep -qs 'base\.rdb' "$work/r-redis-preamble"/appendonlydir/*.manifest
    }
    rcli "${port[redis-preamble]}" bgrewriteaof >/dev/null
    poll redis-preamble "BGREWRITEAOF" rewritten
    [ "$(info_field "${port[redis-preamble]}" aof_last_bgrewrite_status)" = ok ] || die "redis BGREWRITEAOF failed"
    stop redis-preamble
    disk[redis-preamble]=$(dir_bytes "${dir[redis-preamble]}")
  fi

  if want recovery; then
    # Restart each server on its directory, one at a time, RUNS times, interleaved.
    for s in "${recover[@]}"; do : >"$work/rec-$s.txt"; done
    for _ in $(seq 1 "$RUNS"); do
      for s in "${recover[@]}"; do
        t=$(now_ns)
        if [ "$s" = kvs ]; then start kvs kvs "${dir[kvs]}" everysec; else
          start "$s" redis "${dir[$s]}" everysec --aof-use-rdb-preamble "$([ "$s" = redis ] && echo no || echo yes)"; fi
        wait_ready "$s" "$KEYS"
        wall=$(secs_since "$t")
        c=$(cpu_s 0 "$(cpu "${pid[$s]}")")
        if [ "$s" = kvs ]; then
          line=$(grep -o 'recovered [0-9]* keys in [0-9]* ms' "${log[$s]}" | tail -1 || true)
          [ -n "$line" ] || echo "warning: no 'recovered N keys in M ms' line in kvs's log" >&2
          [ -z "$line" ] || [ "$(awk '{print $2}' <<<"$line")" = "$KEYS" ] || echo "warning: kvs logged: $line" >&2
          logged=$(awk '{printf "%.3f", $5 / 1000}' <<<"${line:-x 0 x x 0}")
        else
          logged=$(grep -o 'DB loaded from append only file: [0-9.]* seconds' "${log[$s]}" | tail -1 | awk '{print $7}' || true)
          [ -n "$logged" ] || { echo "warning: no 'DB loaded from append only file' line in $s's log" >&2; logged=0; }
        fi
        echo "$wall $c $logged" >>"$work/rec-$s.txt"
        stop "$s"
      done
    done

    echo
    echo "## 2. Recovery of $KEYS keys with $VALUE_BYTES-byte values (fsync everysec), restart until PING and DBSIZE == $KEYS"
    echo
    echo "| server | on disk MB | load by redis-cli --pipe, s | ready after restart, s | keys/s | load time it logs, s | CPU-s to ready | kvs ÷ this, keys/s |"
    echo "|---|---|---|---|---|---|---|---|"
    declare -A kps
    for s in "${recover[@]}"; do
      wall=$(col 1 "$work/rec-$s.txt")
      kps[$s]=$(awk -v n="$KEYS" -v w="$wall" 'BEGIN {printf "%.0f", (w > 0) ? n / w : 0}')
      case $s in
        kvs) label="kvs (log)" r=— ;;
        redis) label="redis (AOF, no RDB preamble)" r=$(ratio "${kps[kvs]:-}" "${kps[$s]}") ;;
        *) label="redis (AOF rewritten with RDB preamble)" r=$(ratio "${kps[kvs]:-}" "${kps[$s]}") ;;
      esac
      printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$(mb "${disk[$s]}")" "${load_s[$s]:-—}" "$wall" \
        "${kps[$s]}" "$(col 3 "$work/rec-$s.txt")" "$(col 2 "$work/rec-$s.txt")" "$r"
    done
  fi
fi

# ---------------------------------------------------------------------------------------------
# 3. Snapshot of the KEYS keys, on servers restarted on their directories.

after_second() { [ "$(date +%s)" -gt "$1" ]; }
# saved NAME LASTSAVE_BEFORE: no snapshot in progress, and one completed after the one before.
saved() {
  local last
  [ "$(info_field "${port[$1]}" rdb_bgsave_in_progress)" = 0 ] || return 1
  last=$(rcli "${port[$1]}" lastsave)
  [[ $last =~ ^[0-9]+$ ]] && [ "$last" -gt "$2" ]
}

# idle NAME: no snapshot or log rewrite running (redis rewrites its AOF on its own after a load).
idle() {
  [ "$(info_field "${port[$1]}" rdb_bgsave_in_progress)" = 0 ] &&
    [ "$(info_field "${port[$1]}" aof_rewrite_in_progress)" = 0 ]
}

if want snapshot; then
  for s in "${servers[@]}"; do
    if [ "$s" = kvs ]; then start kvs kvs "${dir[kvs]}" everysec; else
      start redis redis "${dir[redis]}" everysec --aof-use-rdb-preamble no; fi
    wait_ready "$s" "$KEYS"
    : >"$work/s-$s.txt"
  done
  declare -A snap_file
  for _ in $(seq 1 "$RUNS"); do
    for s in "${servers[@]}"; do
      # LASTSAVE has whole seconds: start in a later second than the last save, so a change shows.
      l0=$(rcli "${port[$s]}" lastsave)
      [[ $l0 =~ ^[0-9]+$ ]] || die "$s: LASTSAVE answered '$l0'"
      poll "$s" "the clock to pass LASTSAVE ($l0)" after_second "$l0"
      poll "$s" "background work to finish" idle "$s"
      before=$(cpu "${pid[$s]}")
      t=$(now_ns)
      reply=$(rcli "${port[$s]}" bgsave)
      [ "$reply" = "Background saving started" ] || die "$s: BGSAVE answered '$reply'"
      poll "$s" "BGSAVE to finish" saved "$s" "$l0"
      wall=$(secs_since "$t")
      c=$(cpu_s "$before" "$(cpu "${pid[$s]}")")
      status=$(info_field "${port[$s]}" rdb_last_bgsave_status)
      [ "$status" = ok ] || die "$s: rdb_last_bgsave_status is '$status' after BGSAVE"
      if [ "$s" = kvs ]; then
        file=$(find "${dir[kvs]}" -maxdepth 1 -name 'snapshot-*.kvs' -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
        [ -n "$file" ] || die "kvs: BGSAVE finished but there is no ${dir[kvs]}/snapshot-*.kvs"
        reported=$(awk -v ms="$(info_field "${port[kvs]}" kvs_last_snapshot_ms)" 'BEGIN {printf "%.3f", ms / 1000}')
        said=$(info_field "${port[kvs]}" kvs_snapshot_bytes)
        [ "$said" = "$(stat -c %s "$file")" ] ||
          echo "warning: kvs_snapshot_bytes is '$said' but $file has $(stat -c %s "$file") bytes" >&2
      else
        file=${dir[redis]}/dump.rdb
        [ -f "$file" ] || die "redis: BGSAVE finished but there is no $file"
        reported=$(info_field "${port[redis]}" rdb_last_bgsave_time_sec)
      fi
      snap_file[$s]=$(basename "$file")
      echo "$wall $c $reported $(stat -c %s "$file")" >>"$work/s-$s.txt"
    done
  done
  for s in "${servers[@]}"; do stop "$s"; done

  echo
  echo "## 3. Snapshot (BGSAVE) of $KEYS keys, until INFO persistence shows rdb_bgsave_in_progress:0"
  echo
  echo "| server | file | size MB | bytes per key | BGSAVE until done, s | time it reports, s | CPU-s (incl. fork) | kvs ÷ redis size | kvs ÷ redis time |"
  echo "|---|---|---|---|---|---|---|---|---|"
  declare -A size wall_of
  for s in "${servers[@]}"; do
    size[$s]=$(col 4 "$work/s-$s.txt")
    wall_of[$s]=$(col 1 "$work/s-$s.txt")
    if [ "$s" = redis ]; then
      r1=$(ratio "${size[kvs]:-}" "${size[redis]}") r2=$(ratio "${wall_of[kvs]:-}" "${wall_of[redis]}")
    else r1=— r2=—; fi
    printf '| %s | %s | %s | %.1f | %s | %s | %s | %s | %s |\n' "$s" "${snap_file[$s]}" "$(mb "${size[$s]}")" \
      "$(awk -v b="${size[$s]}" -v n="$KEYS" 'BEGIN {print b / n}')" "${wall_of[$s]}" "$(col 3 "$work/s-$s.txt")" \
      "$(col 2 "$work/s-$s.txt")" "$r1" "$r2"
  done
  echo
  echo "(redis reports rdb_last_bgsave_time_sec in whole seconds; kvs reports kvs_last_snapshot_ms)"
fi

echo
echo "total: $(secs_since "$started") s"
