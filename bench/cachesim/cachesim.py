#!/usr/bin/env python3
"""Trace-driven cache simulator: which eviction policy should kvs offer beside Redis's?

Pure Python 3.11, standard library only. See README.md for how to run it and for the results.

The workload is a read-through cache: every request is a GET of one key; on a miss the client
SETs the key with its value, which inserts it (evicting until it fits). Hit ratio = hits / GETs,
counted from an empty cache.

Everything about the traces is deterministic and defined here precisely enough for the Rust load
generator to reproduce them bit for bit (see `zipf_ids`, `build_trace` and README.md). The
policies' own random choices (sampling, Redis's LFU coin) use Python's `random.Random` with fixed
seeds, so every run of this file prints the same numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from array import array
from bisect import bisect_left
from collections import OrderedDict, deque

HERE = os.path.dirname(os.path.abspath(__file__))
TRACE_DIR = os.path.join(HERE, "traces")  # generated traces are cached here (git-ignored)
RESULTS = os.path.join(HERE, "results.jsonl")  # one JSON line per (trace, policy) run

# --------------------------------------------------------------------------------------------
# Deterministic primitives shared with the Rust load generator
# --------------------------------------------------------------------------------------------

MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment


def mix64(z: int) -> int:
    """SplitMix64's output function (Steele, Lea & Flood 2014; Vigna's constants)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def splitmix64(x: int) -> int:
    """The first output of a SplitMix64 generator seeded with x: mix64(x + GAMMA)."""
    return mix64((x + GAMMA) & MASK64)


N_KEYS = 1_000_000
# Rank r (1-based, 1 = most popular) is key id (r - 1) * PERM_MUL mod N_KEYS. PERM_MUL is odd and
# not a multiple of 5, so it is coprime with 10^6 and the map is a bijection on [0, N_KEYS).
PERM_MUL = 2654435761
PER_KEY_OVERHEAD = 64  # bytes charged per key besides its key and value
REQ_PER_SEC = 100_000  # request j happens at time j / REQ_PER_SEC seconds (t = 0 at request 0)
CAPACITY_FRACTION = 10  # capacity = total working-set bytes // 10
SCAN_FACTOR = 5  # trace (c) scans 5x the cache's capacity in keys


def value_size(i: int) -> int:
    """Bytes of key i's value: uniform in 100..=1000."""
    return 100 + splitmix64(i) % 901


def key_name(i: int) -> str:
    return f"key:{i}"


def charged_size(i: int) -> int:
    """What key i costs the cache: value + key name + a fixed per-key overhead."""
    return value_size(i) + len(key_name(i)) + PER_KEY_OVERHEAD


def rank_to_id(r: int) -> int:
    return ((r - 1) * PERM_MUL) % N_KEYS


def key_hash(i: int) -> int:
    """A 64-bit hash of key i standing in for the server's key hash (shard choice, sketch rows).
    Deliberately different from the value-size hash."""
    return splitmix64(i ^ 0xD6E8FEB86659FD93)


class Workload:
    """Key sizes and the cache capacity derived from them."""

    def __init__(self) -> None:
        self.n = N_KEYS
        self.sizes = [charged_size(i) for i in range(N_KEYS)]
        self.total_bytes = sum(self.sizes)
        self.capacity = self.total_bytes // CAPACITY_FRACTION
        # Capacity in keys of mean charged size, and the scan length of trace (c).
        self.capacity_keys = self.capacity * N_KEYS // self.total_bytes
        self.scan_len = SCAN_FACTOR * self.capacity * N_KEYS // self.total_bytes
        self._hashes: list[int] | None = None

    def hashes(self) -> list[int]:
        if self._hashes is None:
            self._hashes = [key_hash(i) for i in range(N_KEYS)]
        return self._hashes

    def shard_of(self, shards: int) -> array:
        """Shard of each key: the top bits of its hash (shards must be a power of two)."""
        bits = shards.bit_length() - 1
        return array("B", (h >> (64 - bits) if bits else 0 for h in self.hashes()))


# --------------------------------------------------------------------------------------------
# Traces
# --------------------------------------------------------------------------------------------

_CDF_CACHE: dict[float, list[float]] = {}


def zipf_cdf(alpha: float) -> list[float]:
    """Unnormalised cumulative Zipf weights: cdf[r-1] = sum of k**-alpha for k = 1..r, summed in
    order in IEEE double precision (Rust: `acc += (k as f64).powf(-alpha)`)."""
    if alpha not in _CDF_CACHE:
        cdf = []
        acc = 0.0
        for k in range(1, N_KEYS + 1):
            acc += k ** -alpha
            cdf.append(acc)
        _CDF_CACHE[alpha] = cdf
    return _CDF_CACHE[alpha]


def zipf_ids(alpha: float, seed: int, first: int, count: int, shift: int = 0) -> array:
    """Draws number first .. first+count-1 of the Zipf stream with this seed, as key ids.

    Draw n (0-based) uses u = (mix64(seed + (n+1)*GAMMA mod 2^64) >> 11) * 2^-53, i.e. output n
    of a SplitMix64 generator seeded with `seed`, as a double in [0, 1). Its rank is the smallest
    r with cdf[r-1] >= u * cdf[N-1] (inverse-CDF sampling, found by binary search), and its key
    id is rank_to_id(r), or with a popularity `shift`, rank_to_id(((r - 1 + shift) mod N) + 1).
    """
    cdf = zipf_cdf(alpha)
    total = cdf[-1]
    out = array("i")
    append = out.append
    state = (seed + first * GAMMA) & MASK64
    scale = 2.0 ** -53
    for _ in range(count):
        state = (state + GAMMA) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        z ^= z >> 31
        r = bisect_left(cdf, (z >> 11) * scale * total) + 1
        append((((r - 1 + shift) % N_KEYS) * PERM_MUL) % N_KEYS)
    return out


# name -> (alpha, seed, kind)
TRACES = {
    "a": (0.99, 1, "zipf"),
    "b": (0.7, 2, "zipf"),
    "c": (0.99, 3, "scan"),
    "d": (0.99, 4, "shift"),  # extra: the popular set changes halfway
}
SHIFT = N_KEYS // 2


def checksum(ids: array) -> int:
    """FNV-1a over 32-bit words: h = (h ^ id) * 0x100000001b3 mod 2^64 from h = 0xcbf29ce484222325."""
    h = 0xCBF29CE484222325
    for k in ids:
        h = ((h ^ k) * 0x100000001B3) & MASK64
    return h


def build_trace(name: str, length: int, wl: Workload) -> tuple[array, list[tuple[str, int, int]]]:
    """The trace's key ids and its segments (label, first index, end index).

    (a), (b): `length` Zipf draws. (c): draws 0 .. length/2-1, then a scan of the scan_len least
    popular keys (ranks N, N-1, ..., N-scan_len+1, in that order), then draws length/2 ..
    length-1 of the same stream. (d): draws 0 .. length/2-1, then draws length/2 .. length-1
    with ranks shifted by N/2 (the keys that were ranks 500001.. become ranks 1..).
    """
    alpha, seed, kind = TRACES[name]
    path = os.path.join(TRACE_DIR, f"{name}-{length}.bin")
    half = length // 2
    if kind == "scan":
        segments = [
            ("pre", 0, half),
            ("scan", half, half + wl.scan_len),
            ("post", half + wl.scan_len, length + wl.scan_len),
        ]
    elif kind == "shift":
        segments = [("pre", 0, half), ("post", half, length)]
    else:
        segments = [("all", 0, length)]
    total = segments[-1][2]
    if os.path.exists(path) and os.path.getsize(path) == 4 * total:
        ids = array("i")
        with open(path, "rb") as f:
            ids.fromfile(f, total)
        return ids, segments
    t0 = time.time()
    if kind == "scan":
        ids = zipf_ids(alpha, seed, 0, half)
        ids.extend(rank_to_id(r) for r in range(N_KEYS, N_KEYS - wl.scan_len, -1))
        ids.extend(zipf_ids(alpha, seed, half, length - half))
    elif kind == "shift":
        ids = zipf_ids(alpha, seed, 0, half)
        ids.extend(zipf_ids(alpha, seed, half, length - half, shift=SHIFT))
    else:
        ids = zipf_ids(alpha, seed, 0, length)
    os.makedirs(TRACE_DIR, exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        ids.tofile(f)
    os.replace(path + ".tmp", path)
    print(
        f"trace {name}: {total} requests generated in {time.time() - t0:.1f}s, "
        f"first ids {list(ids[:8])}, checksum {checksum(ids):#018x}",
        file=sys.stderr,
    )
    return ids, segments


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


class KeySet:
    """A set of key ids with O(1) add, remove and uniform random sampling: a dense list plus each
    key's index in it (-1 when absent). Several KeySets may share one `pos` array as long as a key
    is in at most one of them."""

    __slots__ = ("keys", "pos")

    def __init__(self, pos: list[int]) -> None:
        self.keys: list[int] = []
        self.pos = pos

    def add(self, k: int) -> None:
        self.pos[k] = len(self.keys)
        self.keys.append(k)

    def remove(self, k: int) -> None:
        keys, pos = self.keys, self.pos
        i = pos[k]
        last = keys.pop()
        if last != k:
            keys[i] = last
            pos[last] = i
        pos[k] = -1


class EvictionPool:
    """Redis's eviction pool (evict.c, EVPOOL_SIZE = 16): candidates sorted by ascending score
    ("idle"), kept across evictions. Inserting follows evictionPoolPopulate exactly: a candidate
    goes before the first entry whose score is >= its own; when the pool is full it is dropped if
    it would go first, else the lowest-scored entry is discarded. Scores are not refreshed and a
    key may be in the pool twice, as in Redis."""

    __slots__ = ("scores", "keys", "size")

    def __init__(self, size: int = 16) -> None:
        self.scores: list[int] = []
        self.keys: list[int] = []
        self.size = size

    def offer(self, key: int, score: int) -> None:
        scores = self.scores
        i = bisect_left(scores, score)
        if len(scores) == self.size:
            if i == 0:
                return
            del scores[0]
            del self.keys[0]
            i -= 1
        scores.insert(i, score)
        self.keys.insert(i, key)


class Ghost:
    """A FIFO of recently evicted key ids (S3-FIFO's ghost queue), at most `limit()` ids long.
    `take(k)` answers whether k is in it and removes it."""

    def __init__(self) -> None:
        self.fifo: deque[tuple[int, int]] = deque()
        self.live: dict[int, int] = {}  # id -> token of its live FIFO slot
        self.token = 0

    def add(self, k: int, limit: int) -> None:
        self.token += 1
        self.live[k] = self.token
        self.fifo.append((k, self.token))
        live, fifo = self.live, self.fifo
        while len(live) > limit:
            old, tok = fifo.popleft()
            if live.get(old) == tok:
                del live[old]

    def take(self, k: int) -> bool:
        return self.live.pop(k, None) is not None


class CountMinSketch:
    """Caffeine-style frequency sketch: 4 rows of `width` 4-bit counters (saturating at 15), all
    four incremented per access, estimate = minimum. After `sample_size` counted additions (an
    addition counts when at least one counter grew, as in Caffeine) every counter is halved
    (aging) and the addition count halved. Row indices come from the 64-bit key hash h and
    h2 = mix64(h): rows 0..3 use h, h >> 32, h2, h2 >> 32, each masked to width - 1."""

    HALVE = bytes(i >> 1 for i in range(256))

    def __init__(self, wl: Workload, width: int, sample_size: int) -> None:
        assert width & (width - 1) == 0
        self.width = width
        self.sample_size = sample_size
        self.table = bytearray(4 * width)
        self.additions = 0
        self.resets = 0
        mask = width - 1
        idx = array("I")
        for h in wl.hashes():
            h2 = mix64(h)
            idx.extend(
                (
                    h & mask,
                    width + ((h >> 32) & mask),
                    2 * width + (h2 & mask),
                    3 * width + ((h2 >> 32) & mask),
                )
            )
        self.idx = idx

    def add(self, k: int) -> None:
        t, idx = self.table, self.idx
        b = 4 * k
        added = False
        for i in (idx[b], idx[b + 1], idx[b + 2], idx[b + 3]):
            if t[i] < 15:
                t[i] += 1
                added = True
        if added:
            self.additions += 1
            if self.additions >= self.sample_size:
                t[:] = t.translate(self.HALVE)
                self.additions //= 2
                self.resets += 1

    def estimate(self, k: int) -> int:
        t, idx = self.table, self.idx
        b = 4 * k
        return min(t[idx[b]], t[idx[b + 1]], t[idx[b + 2]], t[idx[b + 3]])


def sketch_for(wl: Workload, widen: int = 1) -> CountMinSketch:
    """Width = capacity in keys rounded up to a power of two (times `widen`); halve after 10x
    capacity additions. (Caffeine's own sketch has 16 counters per capacity key in all, i.e. rows
    4x wider than this: widen=4.)"""
    width = widen << (wl.capacity_keys - 1).bit_length()
    return CountMinSketch(wl, width, 10 * wl.capacity_keys)


# --------------------------------------------------------------------------------------------
# Policies. Each has run(trace, lo, hi) -> hits over requests lo..hi-1 (j is the request's global
# index, used for time: request j happens at j / REQ_PER_SEC seconds).
# --------------------------------------------------------------------------------------------


class ExactLRU:
    """1. Exact LRU over bytes (reference)."""

    def __init__(self, wl: Workload, seed: int) -> None:
        self.size, self.cap = wl.sizes, wl.capacity
        self.used = 0
        self.od: OrderedDict[int, int] = OrderedDict()

    def run(self, trace: array, lo: int, hi: int) -> int:
        od, size, cap, used = self.od, self.size, self.cap, self.used
        move, pop = od.move_to_end, od.popitem
        hits = 0
        for j in range(lo, hi):
            k = trace[j]
            if k in od:
                move(k)
                hits += 1
                continue
            s = size[k]
            while used + s > cap:
                used -= pop(False)[1]
            od[k] = s
            used += s
        self.used = used
        return hits


class StaticTop:
    """0. A ceiling, not a policy: a fixed set of keys chosen knowing the popularity is cached from
    each key's first request on and nothing else ever is. by_density=False: the most popular keys
    that fit (a perfect-knowledge static LFU, the best a size-blind policy can do on these
    independent requests). by_density=True: the keys with the highest popularity per byte, filled
    greedily (roughly the best a size-aware policy could do)."""

    def __init__(self, wl: Workload, seed: int, alpha: float, by_density: bool = False) -> None:
        self.keep = bytearray(wl.n)
        ranks = range(1, wl.n + 1)
        if by_density:
            ranks = sorted(ranks, key=lambda r: r ** -alpha / wl.sizes[rank_to_id(r)], reverse=True)
        used = 0
        for r in ranks:
            k = rank_to_id(r)
            if used + wl.sizes[k] > wl.capacity:
                if by_density:
                    continue
                break
            used += wl.sizes[k]
            self.keep[k] = 1
        self.held = bytearray(wl.n)

    def run(self, trace: array, lo: int, hi: int) -> int:
        keep, held = self.keep, self.held
        hits = 0
        for j in range(lo, hi):
            k = trace[j]
            if held[k]:
                hits += 1
            elif keep[k]:
                held[k] = 1
        return hits


class RedisLRU:
    """2./3. Redis 7 allkeys-lru: each eviction samples `samples` random keys into the 16-entry
    pool (score = idle time in clock ticks) and evicts the highest-scored pool entry that still
    exists. Reads stamp the key with the current clock; the clock ticks every `tick` requests
    (100000 = Redis's 1 s LRU_CLOCK_RESOLUTION at 100k req/s; 1000 = 10 ms)."""

    def __init__(self, wl: Workload, seed: int, tick: int = REQ_PER_SEC, samples: int = 5) -> None:
        self.size, self.cap, self.tick, self.samples = wl.sizes, wl.capacity, tick, samples
        self.used = 0
        self.pos = [-1] * wl.n
        self.keys = KeySet(self.pos)
        self.stamp = [0] * wl.n
        self.pool = EvictionPool()
        self.rnd = random.Random(seed).random

    def _evict_one(self, now: int) -> int:
        keys, pos, stamp, pool, rnd = self.keys, self.pos, self.stamp, self.pool, self.rnd
        while True:
            live = keys.keys
            n = len(live)
            for _ in range(self.samples):
                c = live[int(rnd() * n)]
                pool.offer(c, now - stamp[c])
            while pool.keys:
                pool.scores.pop()
                c = pool.keys.pop()
                if pos[c] >= 0:  # still there (dictFind), even if touched since it was scored
                    keys.remove(c)
                    return self.size[c]

    def run(self, trace: array, lo: int, hi: int) -> int:
        size, cap, used, tick = self.size, self.cap, self.used, self.tick
        pos, stamp, add = self.pos, self.stamp, self.keys.add
        hits = 0
        for j in range(lo, hi):
            k = trace[j]
            now = j // tick
            if pos[k] >= 0:
                stamp[k] = now
                hits += 1
                continue
            s = size[k]
            while used + s > cap:
                used -= self._evict_one(now)
            add(k)
            stamp[k] = now
            used += s
        self.used = used
        return hits


class RedisLFU:
    """4. Redis 7 allkeys-lfu: 8-bit logarithmic counter (lfu-log-factor 10, LFU_INIT_VAL 5 for
    new keys), decremented by one per lfu-decay-time (1 minute) elapsed since the key's last
    access minute, when read; every hit does LFUDecrAndReturn then LFULogIncr (increment with
    probability 1/((counter-5)*10+1), always when counter <= 5). Eviction is RedisLRU's sampling
    and pool with score 255 - decayed counter. (A 5M-request trace lasts 50 s at 100k req/s, so
    with t = 0 at the first request no minute boundary is crossed and decay never fires.)"""

    LOG_FACTOR = 10
    INIT = 5
    REQ_PER_MINUTE = 60 * REQ_PER_SEC

    def __init__(self, wl: Workload, seed: int, samples: int = 5) -> None:
        self.size, self.cap, self.samples = wl.sizes, wl.capacity, samples
        self.used = 0
        self.pos = [-1] * wl.n
        self.keys = KeySet(self.pos)
        self.counter = [0] * wl.n
        self.minute = [0] * wl.n  # Redis's ldt: minute of the last access (16 bits; no wrap here)
        self.pool = EvictionPool()
        rng = random.Random(seed)
        self.rnd = rng.random
        self.coin = random.Random(seed + 1).random

    def _evict_one(self, now_min: int) -> int:
        keys, pos, counter, minute, pool, rnd = (
            self.keys, self.pos, self.counter, self.minute, self.pool, self.rnd)
        while True:
            live = keys.keys
            n = len(live)
            for _ in range(self.samples):
                c = live[int(rnd() * n)]
                cnt = counter[c] - (now_min - minute[c])  # LFUDecrAndReturn, decay time 1 minute
                pool.offer(c, 255 - (cnt if cnt > 0 else 0))
            while pool.keys:
                pool.scores.pop()
                c = pool.keys.pop()
                if pos[c] >= 0:
                    keys.remove(c)
                    return self.size[c]

    def run(self, trace: array, lo: int, hi: int) -> int:
        size, cap, used = self.size, self.cap, self.used
        pos, counter, minute, add, coin = self.pos, self.counter, self.minute, self.keys.add, self.coin
        per_min, factor, init = self.REQ_PER_MINUTE, self.LOG_FACTOR, self.INIT
        hits = 0
        for j in range(lo, hi):
            k = trace[j]
            now_min = j // per_min
            if pos[k] >= 0:
                hits += 1
                c = counter[k] - (now_min - minute[k])
                if c < 0:
                    c = 0
                if c < 255:
                    base = c - init
                    if base <= 0 or coin() < 1.0 / (base * factor + 1):
                        c += 1
                counter[k] = c
                minute[k] = now_min
                continue
            s = size[k]
            while used + s > cap:
                used -= self._evict_one(now_min)
            add(k)
            counter[k] = init
            minute[k] = now_min
            used += s
        self.used = used
        return hits


class _S3Queues:
    """One S3-FIFO cache, following libCacheSim's S3FIFO.c (2024):

    - small FIFO = 10% of the budget, main FIFO = the rest, ghost FIFO of as many ids as main
      holds keys; per-key freq, incremented per hit and saturating at 3.
    - miss: an id found in the ghost is removed from it and inserted into main, otherwise into
      small (into main while nothing has been evicted yet and small is full); freq = 0.
    - eviction step (repeated until the new key fits): from main if main is over its share or
      small is empty, else from small.
    - small eviction: pop the oldest; if freq >= 2 (move-to-main-threshold = 2, i.e. freq > 1)
      append it to main with freq 0 and continue, else drop it into the ghost and stop.
    - main eviction: pop the oldest; if freq >= 1 append it again with freq - 1 and continue,
      else drop it and stop.
    """

    def __init__(self, budget: int, sizes: list[int], where: bytearray, freq: bytearray,
                 threshold: int = 2, ghost_ratio: float = 1.0) -> None:
        self.threshold = threshold
        self.ghost_ratio = ghost_ratio
        self.small_cap = budget // 10
        self.main_cap = budget - self.small_cap
        self.budget = budget
        self.sizes, self.where, self.freq = sizes, where, freq  # where: 0 absent, 1 small, 2 main
        self.small: deque[int] = deque()
        self.main: deque[int] = deque()
        self.ghost = Ghost()
        self.small_bytes = self.main_bytes = 0
        self.has_evicted = False

    def bytes(self) -> int:
        return self.small_bytes + self.main_bytes

    def insert(self, k: int, to_main: bool) -> None:
        s = self.sizes[k]
        if to_main or (not self.has_evicted and self.small_bytes >= self.small_cap):
            self.main.append(k)
            self.main_bytes += s
            self.where[k] = 2
        else:
            self.small.append(k)
            self.small_bytes += s
            self.where[k] = 1
        self.freq[k] = 0

    def evict_step(self) -> int:
        """One eviction; returns the bytes freed (0 when small only moved keys to main)."""
        self.has_evicted = True
        before = self.small_bytes + self.main_bytes
        if self.main_bytes > self.main_cap or not self.small:
            self._evict_main()
        else:
            self._evict_small()
        return before - self.small_bytes - self.main_bytes

    def _evict_small(self) -> None:
        small, freq, sizes, where = self.small, self.freq, self.sizes, self.where
        while small:
            c = small.popleft()
            s = sizes[c]
            self.small_bytes -= s
            if freq[c] >= self.threshold:
                self.main.append(c)
                self.main_bytes += s
                where[c] = 2
                freq[c] = 0
            else:
                where[c] = 0
                self.ghost.add(c, int(len(self.main) * self.ghost_ratio))
                return

    def _evict_main(self) -> None:
        main, freq, where = self.main, self.freq, self.where
        while main:
            c = main.popleft()
            f = freq[c]
            if f >= 1:
                main.append(c)
                freq[c] = f - 1
            else:
                where[c] = 0
                self.main_bytes -= self.sizes[c]
                return


class S3FIFO:
    """5. S3-FIFO (exact: shards = 1) and 7b. sharded S3-FIFO: `shards` S3-FIFO instances, a key
    living in the one its hash picks, each with its own small/main/ghost queues (what kvs gets
    with per-shard FIFO queues of key hashes touched only under the shard's write lock).

    budget = "shard": each shard is a separate cache of capacity/shards bytes and evicts only
    its own keys. budget = "global": one limit for all; each eviction step runs in the shard that
    currently holds the most bytes (its 10%/90% split taken of capacity/shards)."""

    def __init__(self, wl: Workload, seed: int, shards: int = 1, budget: str = "shard",
                 threshold: int = 2, ghost_ratio: float = 1.0) -> None:
        self.size, self.cap = wl.sizes, wl.capacity
        self.where = bytearray(wl.n)
        self.freq = bytearray(wl.n)
        self.shard_of = wl.shard_of(shards)
        self.shards = [
            _S3Queues(wl.capacity // shards, wl.sizes, self.where, self.freq, threshold, ghost_ratio)
            for _ in range(shards)
        ]
        self.global_budget = budget == "global"
        self.used = 0

    def _miss(self, k: int) -> None:
        shard = self.shards[self.shard_of[k]]
        to_main = shard.ghost.take(k)
        s = self.size[k]
        if self.global_budget:
            while self.used + s > self.cap:
                self.used -= max(self.shards, key=_S3Queues.bytes).evict_step()
            self.used += s
        else:
            while shard.bytes() + s > shard.budget:
                shard.evict_step()
        shard.insert(k, to_main)

    def run(self, trace: array, lo: int, hi: int) -> int:
        where, freq, miss = self.where, self.freq, self._miss
        hits = 0
        for j in range(lo, hi):
            k = trace[j]
            if where[k]:
                hits += 1
                if freq[k] < 3:
                    freq[k] += 1
            else:
                miss(k)
        return hits


class WTinyLFU:
    """6. W-TinyLFU (Caffeine's design, fixed window): window LRU of 1% of the bytes, main SLRU of
    the rest (protected <= 80% of main, probation the remainder), a count-min sketch of 4-bit
    counters (width = capacity in keys rounded up to a power of two, halved every 10x capacity
    additions, no doorkeeper) counting every GET. A key missing is inserted at the window's MRU
    end; keys overflowing the window are candidates for main: while main lacks room, the
    candidate is compared with main's victim (probation's LRU, else protected's LRU) and admitted
    only if its estimate is strictly greater, in which case the victim goes; otherwise the
    candidate goes. A hit in probation promotes to protected (demoting protected's LRU to
    probation's MRU end when protected overflows)."""

    def __init__(self, wl: Workload, seed: int, window: float = 0.01, protected: float = 0.8,
                 widen: int = 1) -> None:
        self.size = wl.sizes
        self.win_cap = int(wl.capacity * window)
        self.main_cap = wl.capacity - self.win_cap
        self.prot_cap = int(self.main_cap * protected)
        self.window: OrderedDict[int, None] = OrderedDict()
        self.probation: OrderedDict[int, None] = OrderedDict()
        self.protected: OrderedDict[int, None] = OrderedDict()
        self.where = bytearray(wl.n)  # 0 absent, 1 window, 2 probation, 3 protected
        self.win_bytes = self.main_bytes = self.prot_bytes = 0
        self.sketch = sketch_for(wl, widen)

    def _admit(self, cand: int) -> None:
        size, where, est = self.size, self.where, self.sketch.estimate
        probation, protected = self.probation, self.protected
        cs = size[cand]
        while self.main_bytes + cs > self.main_cap:
            if probation:
                victim = next(iter(probation))
                q = probation
            else:
                victim = next(iter(protected))
                q = protected
            if est(cand) > est(victim):
                del q[victim]
                where[victim] = 0
                self.main_bytes -= size[victim]
                if q is protected:
                    self.prot_bytes -= size[victim]
            else:
                where[cand] = 0
                return
        probation[cand] = None
        where[cand] = 2
        self.main_bytes += cs

    def run(self, trace: array, lo: int, hi: int) -> int:
        size, where, add = self.size, self.where, self.sketch.add
        window, probation, protected = self.window, self.probation, self.protected
        hits = 0
        for j in range(lo, hi):
            k = trace[j]
            add(k)
            w = where[k]
            if w == 1:
                window.move_to_end(k)
                hits += 1
            elif w == 3:
                protected.move_to_end(k)
                hits += 1
            elif w == 2:
                hits += 1
                del probation[k]
                protected[k] = None
                where[k] = 3
                self.prot_bytes += size[k]
                while self.prot_bytes > self.prot_cap:
                    d, _ = protected.popitem(False)
                    self.prot_bytes -= size[d]
                    probation[d] = None
                    where[d] = 2
            else:
                window[k] = None
                where[k] = 1
                self.win_bytes += size[k]
                while self.win_bytes > self.win_cap:
                    cand, _ = window.popitem(False)
                    self.win_bytes -= size[cand]
                    self._admit(cand)
        return hits


class SampledS3FIFO:
    """7a. Sampled S3-FIFO: S3-FIFO without queues. Per key: its queue (small|main), freq 0..3 and
    a FIFO stamp (a global sequence number taken at insertion, at the move to main and at each
    reinsertion in main). Reads only bump freq. One eviction step samples `samples` keys of the
    population to evict from (main if main is over 90% of the bytes or small is empty, else
    small), takes the one with the oldest stamp and applies S3-FIFO's rule to it: small: freq >= 2
    -> move to main (freq 0, new stamp) and repeat, else evict into the ghost; main: freq >= 1 ->
    freq - 1, new stamp, repeat, else evict. Ghost: a FIFO of ids as long as main has keys.

    The simulation samples uniformly from each population directly; kvs would sample random
    entries and keep those of the wanted queue (about 10 probes per small-queue sample)."""

    def __init__(self, wl: Workload, seed: int, samples: int = 5) -> None:
        self.size, self.cap, self.samples = wl.sizes, wl.capacity, samples
        self.small_cap = wl.capacity // 10
        self.main_cap = wl.capacity - self.small_cap
        self.pos = [-1] * wl.n
        self.small = KeySet(self.pos)
        self.main = KeySet(self.pos)
        self.where = bytearray(wl.n)  # 0 absent, 1 small, 2 main
        self.freq = bytearray(wl.n)
        self.stamp = [0] * wl.n
        self.seq = 0
        self.small_bytes = self.main_bytes = 0
        self.ghost = Ghost()
        self.has_evicted = False
        self.rnd = random.Random(seed).random

    def _oldest(self, pop: KeySet) -> int:
        live, stamp, rnd = pop.keys, self.stamp, self.rnd
        n = len(live)
        best = live[int(rnd() * n)]
        bs = stamp[best]
        for _ in range(self.samples - 1):
            c = live[int(rnd() * n)]
            if stamp[c] < bs:
                best, bs = c, stamp[c]
        return best

    def _evict(self) -> None:
        size, freq, where, stamp = self.size, self.freq, self.where, self.stamp
        if self.main_bytes > self.main_cap or not self.small.keys:
            while True:
                c = self._oldest(self.main)
                f = freq[c]
                self.seq += 1
                if f >= 1:
                    freq[c] = f - 1
                    stamp[c] = self.seq
                else:
                    self.main.remove(c)
                    where[c] = 0
                    self.main_bytes -= size[c]
                    return
        else:
            while self.small.keys:
                c = self._oldest(self.small)
                s = size[c]
                self.small.remove(c)
                self.small_bytes -= s
                self.seq += 1
                if freq[c] >= 2:
                    self.main.add(c)
                    self.main_bytes += s
                    where[c] = 2
                    freq[c] = 0
                    stamp[c] = self.seq
                else:
                    where[c] = 0
                    self.ghost.add(c, len(self.main.keys))
                    return

    def run(self, trace: array, lo: int, hi: int) -> int:
        size, cap, where, freq, stamp = self.size, self.cap, self.where, self.freq, self.stamp
        hits = 0
        for j in range(lo, hi):
            k = trace[j]
            if where[k]:
                hits += 1
                if freq[k] < 3:
                    freq[k] += 1
                continue
            s = size[k]
            to_main = self.ghost.take(k)
            while self.small_bytes + self.main_bytes + s > cap:
                self.has_evicted = True
                self._evict()
            self.seq += 1
            stamp[k] = self.seq
            freq[k] = 0
            if to_main or (not self.has_evicted and self.small_bytes >= self.small_cap):
                self.main.add(k)
                self.main_bytes += s
                where[k] = 2
            else:
                self.small.add(k)
                self.small_bytes += s
                where[k] = 1
        return hits


class SampledTinyLFU:
    """7c. Sampled TinyLFU: a global count-min sketch (as in WTinyLFU) counts every GET; per key
    only its last access time (10 ms ticks). One eviction step samples `samples` keys and picks
    the one with the lowest sketch estimate (ties: oldest access). With `admission`, a missing
    key about to be inserted must beat each victim it would displace (estimate strictly
    greater); if it does not, it is not kept (kvs: inserted and evicted at once) and the victim
    stays. With `window` > 0 there is no admission at insert: new keys enter a FIFO window of that
    fraction of the bytes (kvs: a per-shard queue of key hashes) and the key leaving the window
    is the candidate that must beat sampled victims of the main part to stay (W-TinyLFU with a
    sampled main)."""

    TICK = REQ_PER_SEC // 100  # 10 ms

    def __init__(self, wl: Workload, seed: int, samples: int = 5, admission: bool = True,
                 window: float = 0.0, widen: int = 1) -> None:
        self.size, self.cap, self.samples, self.admission = wl.sizes, wl.capacity, samples, admission
        self.win_cap = int(wl.capacity * window)
        self.main_cap = wl.capacity - self.win_cap
        self.pos = [-1] * wl.n
        self.main = KeySet(self.pos)
        self.where = bytearray(wl.n)  # 0 absent, 1 window, 2 main
        self.window: deque[int] = deque()
        self.win_bytes = self.main_bytes = 0
        self.access = [0] * wl.n
        self.sketch = sketch_for(wl, widen)
        self.rnd = random.Random(seed).random

    def _victim(self) -> tuple[int, int]:
        """The sampled main key with the lowest (estimate, last access), and its estimate."""
        live, access, rnd = self.main.keys, self.access, self.rnd
        t, idx = self.sketch.table, self.sketch.idx
        n = len(live)
        best, be, ba = -1, 99, 0
        for _ in range(self.samples):
            c = live[int(rnd() * n)]
            b = 4 * c
            e = min(t[idx[b]], t[idx[b + 1]], t[idx[b + 2]], t[idx[b + 3]])
            if e < be or (e == be and access[c] < ba):
                best, be, ba = c, e, access[c]
        return best, be

    def _drop(self, c: int) -> None:
        self.main.remove(c)
        self.where[c] = 0
        self.main_bytes -= self.size[c]

    def _to_main(self, k: int) -> None:
        """Makes room in main for k, testing k against each victim when admission is on."""
        s = self.size[k]
        fk = self.sketch.estimate(k) if self.admission else 0
        while self.main_bytes + s > self.main_cap:
            victim, ev = self._victim()
            if self.admission and fk <= ev:
                self.where[k] = 0
                return
            self._drop(victim)
        self.main.add(k)
        self.where[k] = 2
        self.main_bytes += s

    def run(self, trace: array, lo: int, hi: int) -> int:
        size, where, access, add, tick = self.size, self.where, self.access, self.sketch.add, self.TICK
        window, win_cap = self.window, self.win_cap
        hits = 0
        for j in range(lo, hi):
            k = trace[j]
            add(k)
            if where[k]:
                hits += 1
                access[k] = j // tick
                continue
            access[k] = j // tick
            if win_cap:
                window.append(k)
                where[k] = 1
                self.win_bytes += size[k]
                while self.win_bytes > win_cap:
                    c = window.popleft()
                    self.win_bytes -= size[c]
                    self._to_main(c)
            else:
                self._to_main(k)
        return hits


def with_metadata(wl: Workload, per_key: int = 0, fixed: int = 0) -> Workload:
    """The workload as seen by a policy whose own bookkeeping is charged to the cache: `per_key`
    more bytes per key, and `fixed` bytes taken off the capacity."""
    import copy

    charged = copy.copy(wl)
    charged.sizes = [s + per_key for s in wl.sizes]
    charged.capacity = wl.capacity - fixed
    return charged


# name -> (description, factory(wl, seed))
POLICIES = {
    # ceilings (know the popularity; not policies)
    "static-top": ("ceiling: the most popular keys that fit, static",
                   lambda wl, s, alpha: StaticTop(wl, s, alpha)),
    "static-density": ("ceiling: the keys most popular per byte that fit, static",
                       lambda wl, s, alpha: StaticTop(wl, s, alpha, by_density=True)),
    # Redis's policies and exact LRU
    "lru": ("exact LRU", lambda wl, s: ExactLRU(wl, s)),
    "redis-lru": ("Redis allkeys-lru, 5 samples, pool 16, 1 s clock",
                  lambda wl, s: RedisLRU(wl, s, tick=REQ_PER_SEC)),
    "redis-lru-10ms": ("sampled LRU, 5 samples, pool 16, 10 ms clock",
                       lambda wl, s: RedisLRU(wl, s, tick=REQ_PER_SEC // 100)),
    "redis-lfu": ("Redis allkeys-lfu, 5 samples, pool 16", lambda wl, s: RedisLFU(wl, s)),
    # the published algorithms
    "s3fifo": ("S3-FIFO (libCacheSim rules)", lambda wl, s: S3FIFO(wl, s, shards=1)),
    "s3fifo-t1": ("S3-FIFO, small->main when freq >= 1",
                  lambda wl, s: S3FIFO(wl, s, shards=1, threshold=1)),
    "s3fifo-ghost0.5": ("S3-FIFO, ghost of half main's key count",
                        lambda wl, s: S3FIFO(wl, s, ghost_ratio=0.5)),
    "s3fifo-ghost0": ("S3-FIFO without a ghost", lambda wl, s: S3FIFO(wl, s, ghost_ratio=0.0)),
    "wtinylfu": ("W-TinyLFU (1% window LRU, SLRU 80%)", lambda wl, s: WTinyLFU(wl, s)),
    "wtinylfu-wide": ("W-TinyLFU, sketch rows 4x wider (Caffeine's size)",
                      lambda wl, s: WTinyLFU(wl, s, widen=4)),
    # approximations that fit kvs
    "s3fifo-sharded64": ("S3-FIFO per shard, 64 shards, budget capacity/64 each",
                         lambda wl, s: S3FIFO(wl, s, shards=64)),
    "s3fifo-sharded64g": ("S3-FIFO per shard, 64 shards, global budget, evict from fullest shard",
                          lambda wl, s: S3FIFO(wl, s, shards=64, budget="global")),
    "s3fifo-sharded64-meta": ("as s3fifo-sharded64, charging 40 B/key for queue slot + ghost",
                              lambda wl, s: S3FIFO(with_metadata(wl, per_key=40), s, shards=64)),
    "s3fifo-sampled5": ("sampled S3-FIFO, 5 samples", lambda wl, s: SampledS3FIFO(wl, s, 5)),
    "s3fifo-sampled16": ("sampled S3-FIFO, 16 samples", lambda wl, s: SampledS3FIFO(wl, s, 16)),
    "tinylfu-sampled5": ("sampled TinyLFU + admission, 5 samples",
                         lambda wl, s: SampledTinyLFU(wl, s, 5)),
    "tinylfu-sampled16": ("sampled TinyLFU + admission, 16 samples",
                          lambda wl, s: SampledTinyLFU(wl, s, 16)),
    "wtinylfu-sampled5": ("1% FIFO window + sampled TinyLFU main, 5 samples",
                          lambda wl, s: SampledTinyLFU(wl, s, 5, window=0.01)),
    "wtinylfu-sampled16": ("1% FIFO window + sampled TinyLFU main, 16 samples",
                           lambda wl, s: SampledTinyLFU(wl, s, 16, window=0.01)),
    "tinylfu-sampled5-wide": ("sampled TinyLFU + admission, 5 samples, sketch rows 4x wider",
                              lambda wl, s: SampledTinyLFU(wl, s, 5, widen=4)),
    "tinylfu-sampled5-wide-meta": ("as tinylfu-sampled5-wide, charging its 1 MiB sketch",
                                   lambda wl, s: SampledTinyLFU(with_metadata(wl, fixed=1 << 20),
                                                                s, 5, widen=4)),
    "tinylfu-sampled16-wide": ("sampled TinyLFU + admission, 16 samples, sketch rows 4x wider",
                               lambda wl, s: SampledTinyLFU(wl, s, 16, widen=4)),
    "wtinylfu-sampled5-wide": ("1% FIFO window + sampled TinyLFU main, 5 samples, rows 4x wider",
                               lambda wl, s: SampledTinyLFU(wl, s, 5, window=0.01, widen=4)),
    "wtinylfu-sampled16-wide": ("1% FIFO window + sampled TinyLFU main, 16 samples, rows 4x wider",
                                lambda wl, s: SampledTinyLFU(wl, s, 16, window=0.01, widen=4)),
}


_WORKLOAD: Workload | None = None


def workload() -> Workload:
    global _WORKLOAD
    if _WORKLOAD is None:
        _WORKLOAD = Workload()
    return _WORKLOAD


def simulate(trace_name: str, policy: str, length: int, seed: int = 42) -> dict:
    wl = workload()
    ids, segments = build_trace(trace_name, length, wl)
    factory = POLICIES[policy][1]
    if policy.startswith("static-"):  # the ceilings know the popularity
        cache = factory(wl, seed, TRACES[trace_name][0])
    else:
        cache = factory(wl, seed)
    t0 = time.time()
    seg = {}
    for label, lo, hi in segments:
        seg[label] = {"gets": hi - lo, "hits": cache.run(ids, lo, hi)}
    elapsed = time.time() - t0
    gets = sum(v["gets"] for v in seg.values())
    hits = sum(v["hits"] for v in seg.values())
    result = {
        "trace": trace_name,
        "policy": policy,
        "zipf_requests": length,
        "requests": gets,
        "hit_ratio": hits / gets,
        "segments": seg,
        "sim_seconds": round(elapsed, 1),
        "capacity_bytes": wl.capacity,
        "capacity_keys": wl.capacity_keys,
    }
    if "post" in seg:
        result["hit_ratio_post"] = seg["post"]["hits"] / seg["post"]["gets"]
    return result


def table(path: str = RESULTS) -> str:
    """The latest result per (trace, policy) as a Markdown table."""
    latest: dict[tuple[str, str], dict] = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            latest[(r["trace"], r["policy"])] = r
    lengths = sorted({r["zipf_requests"] for r in latest.values()})
    columns = [("a", "hit_ratio"), ("b", "hit_ratio"), ("c", "hit_ratio"), ("c", "hit_ratio_post"),
               ("d", "hit_ratio"), ("d", "hit_ratio_post")]
    rows = ["| policy | (a) zipf 0.99 | (b) zipf 0.7 | (c) overall | (c) after scan "
            "| (d) overall | (d) after shift | sim time a/b/c/d (s) |",
            "|---|---|---|---|---|---|---|---|"]
    for p, (desc, _) in POLICIES.items():
        cells = []
        for t, key in columns:
            r = latest.get((t, p))
            cells.append(f"{100 * r[key]:.2f}%" if r else "–")
        times = [f"{latest[(t, p)]['sim_seconds']:.0f}" if (t, p) in latest else "–" for t in "abcd"]
        rows.append(f"| `{p}` ({desc}) | " + " | ".join(cells) + f" | {'/'.join(times)} |")
    rows.append("")
    rows.append(f"Zipf requests per trace: {', '.join(map(str, lengths))}")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen", help="generate (and cache) the traces, printing their checksums")
    g.add_argument("--length", type=int, default=5_000_000, help="Zipf requests per trace")
    g.add_argument("--traces", default="abcd")
    r = sub.add_parser("run", help="simulate one or more policies on one or more traces")
    r.add_argument("--length", type=int, default=5_000_000, help="Zipf requests per trace")
    r.add_argument("--traces", default="abc")
    r.add_argument("--policies", default=",".join(POLICIES), help="comma-separated names")
    r.add_argument("--no-save", action="store_true", help=f"do not append to {RESULTS}")
    sub.add_parser("table", help=f"print the results table from {RESULTS}")
    sub.add_parser("info", help="print the workload's derived constants")
    args = ap.parse_args()

    if args.cmd == "info":
        wl = workload()
        print(json.dumps({"keys": wl.n, "total_bytes": wl.total_bytes, "capacity_bytes": wl.capacity,
                          "capacity_keys": wl.capacity_keys, "scan_len": wl.scan_len,
                          "mean_charged": wl.total_bytes / wl.n}, indent=1))
    elif args.cmd == "gen":
        wl = workload()
        for t in args.traces:
            ids, segments = build_trace(t, args.length, wl)
            print(f"trace {t}: {len(ids)} requests, segments {segments}, first ids {list(ids[:8])}, "
                  f"checksum {checksum(ids):#018x}")
    elif args.cmd == "run":
        for t in args.traces:
            for p in args.policies.split(","):
                res = simulate(t, p, args.length)
                line = json.dumps(res)
                print(line, flush=True)
                if not args.no_save:
                    with open(RESULTS, "a") as f:
                        f.write(line + "\n")
    elif args.cmd == "table":
        print(table())


if __name__ == "__main__":
    main()
