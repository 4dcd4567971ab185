"""The Python `redis` package's script users against kvs, unmodified: Lock (built on Lua
scripts), register_script and Script objects, across a SCRIPT FLUSH.

Usage: scripting_client.py PORT   (run by tests/scripting.rs against a real server)
"""
import sys
import threading
import time

import redis
from redis.exceptions import LockError, LockNotOwnedError

port = int(sys.argv[1])

for protocol in (2, 3):
    r = redis.Redis(host="127.0.0.1", port=port, protocol=protocol)
    r.flushall()

    # Script objects: EVALSHA, and after SCRIPT FLUSH a transparent reload through EVAL.
    capped = r.register_script(
        """
        local n = redis.call('incr', KEYS[1])
        if n > tonumber(ARGV[1]) then
          redis.call('decr', KEYS[1])
          return redis.error_reply('CAPPED at ' .. ARGV[1])
        end
        return n
        """
    )
    assert capped(keys=["counter"], args=[3]) == 1
    assert capped(keys=["counter"], args=[3]) == 2
    r.script_flush()
    assert capped(keys=["counter"], args=[3]) == 3
    try:
        capped(keys=["counter"], args=[3])
        raise AssertionError("the cap was not enforced")
    except redis.ResponseError as e:
        assert str(e) == "CAPPED at 3", str(e)
    assert r.get("counter") == b"3"
    assert r.script_exists(capped.sha) == [True]
    assert r.eval("return {KEYS[1], ARGV[1]}", 1, "k", "v") == [b"k", b"v"]

    # A pipeline of script calls loads the script first, as redis-py does.
    pipe = r.pipeline()
    for _ in range(3):
        capped(keys=["other"], args=[10], client=pipe)
    assert pipe.execute() == [1, 2, 3]

    # Lock: acquire, ownership, extend, release, and a second owner that must wait.
    lock = r.lock("resource", timeout=5, blocking_timeout=1)
    assert lock.acquire() is True
    assert lock.owned() is True
    assert lock.locked() is True
    other = r.lock("resource", timeout=5, blocking_timeout=0.3)
    started = time.monotonic()
    assert other.acquire() is False
    waited = time.monotonic() - started
    assert 0.2 <= waited < 3, waited
    assert lock.extend(10) is True
    assert 9000 <= r.pttl("resource") <= 15000
    assert lock.reacquire() is True
    lock.release()
    assert r.get("resource") is None
    try:
        lock.release()
        raise AssertionError("released twice")
    except LockError:
        pass

    # A lock that expired and was taken by someone else is not released by its old owner.
    brief = r.lock("brief", timeout=0.2)
    assert brief.acquire(blocking=False)
    time.sleep(0.35)
    thief = r.lock("brief", timeout=5)
    assert thief.acquire(blocking=False)
    try:
        brief.release()
        raise AssertionError("released a lock it no longer owned")
    except LockNotOwnedError:
        pass
    assert thief.owned()
    thief.release()

    # Several threads take turns with a blocking lock: the critical sections never overlap.
    inside = []
    errors = []

    def worker(n):
        c = redis.Redis(host="127.0.0.1", port=port, protocol=protocol)
        for _ in range(5):
            with c.lock("shared", timeout=5, blocking_timeout=10, sleep=0.01):
                inside.append(n)
                if len(inside) > 1:
                    errors.append("two holders at once")
                time.sleep(0.005)
                inside.remove(n)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors

print("scripting ok")
