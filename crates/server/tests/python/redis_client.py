"""The Python `redis` package against kvs, as an application would use it.

Usage: redis_client.py PORT   (run by tests/resp_clients.rs against a real server)
"""
import sys
import threading

import redis

port = int(sys.argv[1])

for protocol in (2, 3):
    r = redis.Redis(host="127.0.0.1", port=port, protocol=protocol)
    r.flushall()
    assert r.ping() is True
    assert r.set("name", "kvs") is True
    assert r.get("name") == b"kvs"
    assert r.get("missing") is None
    assert r.set("name", "other", nx=True) is None
    assert r.set("name", "new", xx=True, get=True) == b"kvs"
    assert r.incr("count") == 1 and r.incrby("count", 41) == 42 and r.decr("count") == 41
    assert r.incrbyfloat("f", 1.5) == 1.5
    assert r.mset({"a": "1", "b": "2"}) is True
    assert r.mget("a", "b", "zz") == [b"1", b"2", None]
    assert r.append("a", "23") == 3
    assert r.strlen("a") == 3 and r.getrange("a", 0, 1) == b"12"
    assert r.setex("tmp", 100, "x") is True and 99 <= r.ttl("tmp") <= 100
    assert r.expire("tmp", 50) is True and r.ttl("tmp") <= 50
    assert r.persist("tmp") is True and r.ttl("tmp") == -1
    assert r.exists("a", "b", "nope") == 2
    assert r.type("a") in (b"string", "string"), r.type("a")
    assert r.delete("a", "b", "nope") == 2
    assert r.getdel("name") == b"new" and r.get("name") is None
    r.set("user:1", "a")
    r.set("user:2", "b")
    assert sorted(r.keys("user:*")) == [b"user:1", b"user:2"]
    assert r.rename("user:1", "user:9") is True and r.get("user:9") == b"a"
    assert r.renamenx("user:9", "user:2") is False
    assert r.copy("user:9", "user:copy") is True and r.get("user:copy") == b"a"
    assert r.randomkey() is not None
    assert r.object("encoding", "count") in (b"int", "int")
    assert r.delete("user:9", "user:2", "user:copy") == 3
    assert r.dbsize() == 3, r.dbsize()
    try:
        r.incr("f")
        raise AssertionError("INCR on a float must fail")
    except redis.ResponseError as e:
        assert "not an integer" in str(e)

    # Pipelines, with and without MULTI wrapping disabled.
    p = r.pipeline(transaction=False)
    for i in range(100):
        p.set(f"p{i}", i)
    for i in range(100):
        p.get(f"p{i}")
    results = p.execute()
    assert results[:100] == [True] * 100
    assert results[100:] == [str(i).encode() for i in range(100)]

    # A transaction, as redis-py sends it by default (MULTI ... EXEC), and WATCH.
    with r.pipeline() as tx:
        tx.set("tx:a", 1).incr("tx:a").get("tx:a")
        assert tx.execute() == [True, 2, b"2"]
    with r.pipeline() as tx:
        tx.watch("tx:a")
        other = redis.Redis(host="127.0.0.1", port=port, protocol=protocol)
        other.set("tx:a", 100)
        other.close()
        tx.multi()
        tx.incr("tx:a")
        try:
            tx.execute()
            raise AssertionError("a watched key changed: EXEC must abort")
        except redis.WatchError:
            pass
    assert r.get("tx:a") == b"100"
    r.delete("tx:a")

    # Many threads sharing a connection pool.
    errors = []

    def work(t):
        try:
            for i in range(50):
                r.incr("shared")
                assert r.set(f"t{t}:{i}", i)
                assert r.get(f"t{t}:{i}") == str(i).encode()
        except Exception as e:  # noqa: BLE001 - report any failure to the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert r.get("shared") == b"400"
    info = r.info()
    assert info["redis_version"] and info["connected_clients"] >= 1
    r.close()

print("python redis client: all passed")
