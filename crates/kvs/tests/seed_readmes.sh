#!/usr/bin/env bash
# Runs every curl command of both seed READMEs, as written, against a real kvs binary.
# The only change is the address: each server listens on a free port instead of 9000/8080.
# Usage: seed_readmes.sh PATH_TO_KVS_BINARY
set -euo pipefail

kvs=${1:?usage: seed_readmes.sh PATH_TO_KVS}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# Starts kvs on a free port and sets $port to it.
start() {
  local log=$1
  "$kvs" serve --in-memory --http 127.0.0.1:0 --resp 127.0.0.1:0 --line 127.0.0.1:0 >/dev/null 2>"$log" &
  pids+=($!)
  for _ in $(seq 1 200); do
    if port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | grep -o '[0-9]*$'); then
      return
    fi
    sleep 0.05
  done
  fail "kvs did not start: $(cat "$log")"
}

# expect STATUS BODYFILE CURL-ARGS...: runs curl and checks the status code.
expect() {
  local want=$1 out=$2
  shift 2
  local got
  got=$(curl -sS -o "$out" -w '%{http_code}' "$@")
  [ "$got" = "$want" ] || fail "curl $* answered $got, expected $want: $(cat "$out")"
}

# --- seed B (go-kvstore), README port 9000 ---------------------------------
start "$work/b.log"
base="http://localhost:$port"

# "Get by key" before anything is stored: a missing key is 404 (the seed answered 400).
expect 404 "$work/out" --location --request GET "$base/kvs/k0"
grep -q '"not_found"' "$work/out" || fail "404 body is not a JSON error"

# "Create record on kvs"
expect 201 "$work/out" --location --request POST "$base/kvs/k0_" \
--header 'Content-Type: application/json' \
--data-raw '{
    "fullname": "fullname5",
    "firstname": "firstname5",
    "middlename": "middlename5",
    "lastname": "lastname5",
    "email": "test9@test.com",
    "age": "55",
    "phone": "555555555",
    "addresses": [
        {
            "id": 1,
            "addressline1": "line1",
            "addressline2": "line2",
            "postcode": "HG1 1AA",
            "city": "Harrogate",
            "county": "York",
            "country": "UK"
        }
    ]
}'
expect 200 "$work/out" --location --request GET "$base/kvs/k0_"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["addresses"][0]["city"]=="Harrogate", d' "$work/out" \
  || fail "stored JSON came back changed"

# "Post image": a real PNG, byte-identical on the way back, served as image/png.
python3 - "$work/image.png" <<'PY'
import struct, sys, zlib
w, h = 64, 48
raw = b"".join(b"\x00" + bytes((x * 4 + y * 3 + i) % 256 for x in range(w) for i in range(3)) for y in range(h))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
expect 200 "$work/out" --location --request POST "$base/kvs/k0_" \
--header 'Content-Type: image/png' \
--data-binary "@$work/image.png"
headers=$(curl -sS -D - -o "$work/back.png" "$base/kvs/k0_")
cmp -s "$work/image.png" "$work/back.png" || fail "the PNG came back different"
grep -qi '^content-type: image/png' <<<"$headers" || fail "PNG served without image/png: $headers"

# "Update key record on kvs" (PUT is an upsert: k0 did not exist yet)
expect 201 "$work/out" --location --request PUT "$base/kvs/k0" \
--header 'Content-Type: application/json' \
--data-raw '{
	"KUpdated": "Updated"
}'
expect 200 "$work/out" --location --request PUT "$base/kvs/k0" \
--header 'Content-Type: application/json' \
--data-raw '{
	"KUpdated": "Updated"
}'
expect 200 "$work/out" --location --request GET "$base/kvs/k0"
grep -q '"KUpdated": "Updated"' "$work/out" || fail "updated record not returned"

# "Delete record by key on kvs"
expect 204 "$work/out" --location --request DELETE "$base/kvs/k0_"
expect 404 "$work/out" --location --request GET "$base/kvs/k0_"

# --- seed A (person API), README port 8080 ---------------------------------
start "$work/a.log"
base="http://localhost:$port"
expect 200 "$work/out" --location --request PUT "$base/person/update" \
--header 'Content-Type: application/json' \
--data '{
    "id": 100,
    "name": "mob"
}'
grep -q '"Name":"mob"' "$work/out" || fail "update did not answer the person: $(cat "$work/out")"
expect 200 "$work/out" --location --request GET "$base/person/get" \
--header 'Content-Type: application/json' \
--data '{
    "id": 100
}'
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["Name"]=="mob" and d["UpdatedAt"], d' "$work/out" \
  || fail "get did not answer the person: $(cat "$work/out")"
expect 404 "$work/out" --location --request GET "$base/person/get" \
--header 'Content-Type: application/json' \
--data '{
    "id": 101
}'

echo "seed README commands: all passed"
