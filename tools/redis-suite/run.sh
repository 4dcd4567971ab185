#!/usr/bin/env bash
# Runs units of Redis 7.0's own test suite against kvs: fetches Debian's redis source package
# (the tests of the redis-server we compare with), puts kvs in place of src/redis-server (see
# redis-server in this directory: it reads port, dir, requirepass, aclfile and `user` lines from
# the config file the suite writes), and runs each unit with --singledb (kvs has one database).
#
# Usage: tools/redis-suite/run.sh unit/auth [unit/acl ...]
# env: KVS=path (default: builds target/release/kvs); SUITE_ARGS=extra runtest arguments, e.g.
# "--tags -needs:debug" to leave out the tests that need DEBUG. A unit's `<name>.skip` file here, if any,
# names tests that need commands kvs does not have yet (the suite stops a unit at the first such
# error, so they must be skipped to reach the rest); say so when quoting results. A `<name>.sed`
# file adapts a copy of the unit first (see below).
# Needs: apt-get (deb-src access), tclsh, redis-tools. Not part of CI: it downloads the source.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${REDIS_SUITE_DIR:-/tmp/kvs-redis-suite}
if [ -z "${KVS:-}" ]; then
  cargo build --release -q -p kvs --manifest-path "$root/Cargo.toml"
  KVS="$root/target/release/kvs"
fi
export KVS
if [ ! -d "$work/redis-7.0.15" ]; then
  mkdir -p "$work"
  src=/etc/apt/sources.list.d/kvs-redis-suite-src.sources
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >"$src"
  apt-get update -qq
  (cd "$work" && apt-get source --download-only redis >/dev/null 2>&1)
  rm -f "$src"
  tar -C "$work" -xzf "$work"/redis_7.0.15.orig.tar.gz
fi
suite="$work/redis-7.0.15"
mkdir -p "$suite/src"
cp "$here/redis-server" "$suite/src/redis-server"
for tool in redis-cli redis-benchmark; do ln -sf "$(command -v "$tool")" "$suite/src/$tool"; done
for unit in "$@"; do
  skip=("--skipfile" /dev/null)
  [ -f "$here/$(basename "$unit").skip" ] && skip=(--skipfile "$here/$(basename "$unit").skip")
  # shellcheck disable=SC2086 # extra arguments split on purpose, e.g. "--tags -needs:debug"
  # A unit's `<name>.sed` here, if any, adapts a copy of it first, which then runs as `<unit>-kvs`.
  run="$unit"
  if [ -f "$here/$(basename "$unit").sed" ]; then
    run="$unit-kvs"
    sed -f "$here/$(basename "$unit").sed" "$suite/tests/$unit.tcl" >"$suite/tests/$run.tcl"
  fi
  (cd "$suite" && ./runtest --single "$run" --clients 1 --timeout 60 --singledb "${skip[@]}" ${SUITE_ARGS:-} 2>&1) \
    | sed 's/\x1b\[[0-9;]*m//g' | grep -E '^\[(ok|err|skip|exception)\]|^Expected' || true
done
