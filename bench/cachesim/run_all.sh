#!/bin/sh
# Runs every (trace, policy) pair as its own low-priority process, one at a time, appending to
# results.jsonl; then prints the table. About 45 minutes in all on one core.
# Usage: sh run_all.sh [zipf-requests-per-trace]
set -e
cd "$(dirname "$0")"
LEN=${1:-5000000}
POLICIES=$(python3 -c 'import cachesim; print(" ".join(cachesim.POLICIES))')
for t in a b c d; do
  for p in $POLICIES; do
    nice -n 19 python3 cachesim.py run --length "$LEN" --traces "$t" --policies "$p" >/dev/null
    echo "done $t $p" >&2
  done
done
python3 cachesim.py table
