"""A reliable job queue on kvs with the Python redis client, as applications build one:
producers LPUSH jobs; consumers BLMOVE each job from the queue to a processing list, do it, and
in one MULTI record it done and drop it from the processing list. The test that runs this kills
the server with SIGKILL in the middle and starts it again on the same port; every client here
reconnects and carries on. At the end, every job must have been done exactly once.

Usage: job_queue.py PORT JOBS_PER_PRODUCER
Prints "JOBS OK <n>" and exits 0 when every job was done exactly once.
"""

import sys
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

PORT = int(sys.argv[1])
JOBS = int(sys.argv[2])
PRODUCERS = 4
CONSUMERS = 4
DEADLINE = time.monotonic() + 150


def client():
    # No automatic retries: redis-py re-sends a command whose answer was lost (since 6.0, by
    # default), which would push a job twice or run a MULTI twice. This queue decides itself
    # what to do after an error.
    return redis.Redis(
        host="127.0.0.1",
        port=PORT,
        socket_timeout=10,
        socket_connect_timeout=2,
        retry=Retry(NoBackoff(), 0),
    )


def retry(what):
    """Runs `what(client)` until the server answers it, reconnecting through a restart."""
    while True:
        if time.monotonic() > DEADLINE:
            raise SystemExit("gave up waiting for the server")
        try:
            return what(client())
        except (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError):
            time.sleep(0.05)


def where(r, job):
    """Where a job is, read atomically: queued, being processed, done, or nowhere."""
    pipe = r.pipeline(transaction=True)
    pipe.lpos("queue", job)
    pipe.lpos("processing", job)
    pipe.hexists("done", job)
    queued, processing, done = pipe.execute()
    return queued is not None or processing is not None or done


def produce(p):
    r = client()
    for i in range(JOBS):
        job = f"job:{p}:{i}"
        while True:
            try:
                r.lpush("queue", job)
                break
            except (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError):
                # The push may or may not have been made durable before the server died: look,
                # once it is back, and push again only if the job is nowhere.
                r = client()
                if retry(lambda c: where(c, job)):
                    break
                repushed.append(job)


stop = threading.Event()
repushed = []
errors = []


def consume():
    r = client()
    while True:
        try:
            job = r.blmove("queue", "processing", 0.2, "RIGHT", "LEFT")
            if job is None:
                if stop.is_set():
                    return
                continue
            pipe = r.pipeline(transaction=True)
            pipe.hincrby("done", job, 1)
            pipe.lrem("processing", 1, job)
            pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError):
            # A job taken but not recorded stays in "processing" for the recovery below.
            time.sleep(0.05)
            r = client()
        except Exception as e:  # anything else is a failure of the test
            errors.append(repr(e))
            return


def run_consumers():
    stop.clear()
    threads = [threading.Thread(target=consume) for _ in range(CONSUMERS)]
    for t in threads:
        t.start()
    return threads


consumers = run_consumers()
producers = [threading.Thread(target=produce, args=(p,)) for p in range(PRODUCERS)]
for t in producers:
    t.start()
for t in producers:
    t.join()

# Drain what is queued, then stop the consumers and put back what a consumer took and never
# recorded (it was cut off by the kill), and drain again.
while retry(lambda r: r.llen("queue")) > 0:
    time.sleep(0.05)
stop.set()
for t in consumers:
    t.join()
orphans = retry(lambda r: r.lrange("processing", 0, -1))
for _ in orphans:
    retry(lambda r: r.lmove("processing", "queue", "RIGHT", "LEFT"))
consumers = run_consumers()
while retry(lambda r: r.llen("queue")) > 0:
    time.sleep(0.05)
stop.set()
for t in consumers:
    t.join()

if errors:
    raise SystemExit(f"consumer errors: {errors}")
r = client()
done = r.hgetall("done")
want = {f"job:{p}:{i}".encode() for p in range(PRODUCERS) for i in range(JOBS)}
missing = want - set(done)
twice = {j: c for j, c in done.items() if c != b"1"}
extra = set(done) - want
print(f"pushes retried after the kill: {len(repushed)}", flush=True)
assert not missing, f"{len(missing)} jobs never done, e.g. {sorted(missing)[:5]}"
assert not twice, f"{len(twice)} jobs done more than once, e.g. {list(twice.items())[:5]}"
assert not extra, f"unknown jobs {sorted(extra)[:5]}"
assert r.llen("queue") == 0 and r.llen("processing") == 0
print(f"JOBS OK {len(done)} ({len(orphans)} put back after the kill)")
