"""Pub/sub and keyspace notifications through the Python `redis` package, as an application uses them.

Usage: pubsub_client.py PORT   (the RESP port of a running server; passes against redis-server too)

Runs everything in RESP2 and in RESP3 (redis-py >= 5 takes `protocol=`; PubSub.ssubscribe and
get_sharded_message exist there too). Every wait is bounded: a message that does not come within
WAIT seconds fails the run, and an alarm stops the whole script if anything else hangs.
"""
import signal
import sys
import threading
import time

import redis

port = int(sys.argv[1])
WAIT = 5.0
signal.signal(signal.SIGALRM, lambda *_: sys.exit("FAIL: the run took longer than 30 s"))
signal.alarm(30)


def eq(got, want, what):
    if got != want:
        sys.exit(f"FAIL [{tag}] {what}: expected {want!r}, got {got!r}")


def msg(p, what):
    """The next message on PubSub `p`, waiting at most WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while (left := deadline - time.monotonic()) > 0:
        m = p.get_message(timeout=left)
        if m is not None:
            return m
    sys.exit(f"FAIL [{tag}] {what}: no message within {WAIT} s")


def m(type_, channel, data, pattern=None):
    return {"type": type_, "pattern": pattern, "channel": channel, "data": data}


def flags():
    """CONFIG GET notify-keyspace-events (redis-py decodes it in RESP2, not in RESP3)."""
    (value,) = r.config_get("notify-keyspace-events").values()
    return value.decode() if isinstance(value, bytes) else value


def eventually(fn, want, what):
    deadline = time.monotonic() + WAIT
    while (got := fn()) != want and time.monotonic() < deadline:
        time.sleep(0.01)
    eq(got, want, what)


for protocol in (2, 3):
    tag = f"RESP{protocol}"
    r = redis.Redis(host="127.0.0.1", port=port, protocol=protocol)
    r.flushall()
    r.config_set("notify-keyspace-events", "")

    # Channels: confirmations count up, PUBLISH answers how many received it, messages arrive in order.
    p = r.pubsub()
    p.subscribe("chan:a", "chan:b")
    eq(msg(p, "subscribe a"), m("subscribe", b"chan:a", 1), "first confirmation")
    eq(msg(p, "subscribe b"), m("subscribe", b"chan:b", 2), "second confirmation")
    assert p.subscribed
    eq(r.publish("chan:a", "hello"), 1, "PUBLISH chan:a")
    eq(msg(p, "message"), m("message", b"chan:a", b"hello"), "message on chan:a")
    big = "\u00e9t\u00e9 \u2713 " * 20000
    eq(r.publish("chan:b", big), 1, "PUBLISH a large payload")
    eq(msg(p, "large message"), m("message", b"chan:b", big.encode()), "large message on chan:b")
    eq(r.publish("chan:b", b"\x00\xff\r\n"), 1, "PUBLISH binary")
    eq(msg(p, "binary"), m("message", b"chan:b", b"\x00\xff\r\n"), "binary payload")
    eq(r.publish("nobody", "x"), 0, "PUBLISH to a channel without subscribers")
    eq(r.pubsub_numsub("chan:a", "chan:b", "nobody"), [(b"chan:a", 1), (b"chan:b", 1), (b"nobody", 0)], "NUMSUB")
    eq(r.pubsub_numsub(), [], "NUMSUB without channels")
    eq(sorted(r.pubsub_channels()), [b"chan:a", b"chan:b"], "PUBSUB CHANNELS")
    eq(r.pubsub_channels("chan:[a]"), [b"chan:a"], "PUBSUB CHANNELS chan:[a]")
    p.ping()
    eq(msg(p, "pong"), m("pong", None, b""), "PING while subscribed")
    p.unsubscribe("chan:a")
    eq(msg(p, "unsubscribe a"), m("unsubscribe", b"chan:a", 1), "UNSUBSCRIBE chan:a")
    eq(r.publish("chan:a", "gone"), 0, "PUBLISH after UNSUBSCRIBE")
    p.subscribe("chan:c", "chan:d")
    eq([msg(p, "subscribe")["data"] for _ in range(2)], [2, 3], "counts after re-subscribing")
    p.unsubscribe()  # all of them, in whatever order the server keeps them
    gone = [msg(p, "unsubscribe all") for _ in range(3)]
    eq({x["type"] for x in gone}, {"unsubscribe"}, "UNSUBSCRIBE without arguments: types")
    eq(sorted(x["channel"] for x in gone), [b"chan:b", b"chan:c", b"chan:d"], "UNSUBSCRIBE all: channels")
    eq([x["data"] for x in gone], [2, 1, 0], "UNSUBSCRIBE all: counts")
    eq(p.subscribed, False, "PubSub.subscribed after unsubscribing all")
    eq(r.pubsub_channels(), [], "PUBSUB CHANNELS after unsubscribing all")
    p.close()

    # Patterns, and a channel subscription matching the same message.
    p = r.pubsub()
    p.psubscribe("news.*", "h?llo", "h[ae]llo")
    for i, pat in enumerate([b"news.*", b"h?llo", b"h[ae]llo"], 1):
        eq(msg(p, "psubscribe"), m("psubscribe", pat, i), f"PSUBSCRIBE confirmation {i}")
    p.subscribe("news.tech")
    eq(msg(p, "subscribe"), m("subscribe", b"news.tech", 4), "SUBSCRIBE counts patterns too")
    eq(r.publish("news.tech", "t1"), 2, "PUBLISH to a channel matched by a channel and a pattern")
    eq(msg(p, "message"), m("message", b"news.tech", b"t1"), "channel subscriber first")
    eq(msg(p, "pmessage"), m("pmessage", b"news.tech", b"t1", b"news.*"), "then the pattern")
    eq(r.publish("hello", "x"), 2, "PUBLISH hello (h?llo and h[ae]llo)")
    two = sorted([msg(p, "pmessage"), msg(p, "pmessage")], key=lambda x: x["pattern"])
    eq(two, [m("pmessage", b"hello", b"x", b"h?llo"), m("pmessage", b"hello", b"x", b"h[ae]llo")], "hello")
    eq(r.publish("hillo", "y"), 1, "PUBLISH hillo (h?llo only)")
    eq(msg(p, "pmessage"), m("pmessage", b"hillo", b"y", b"h?llo"), "hillo")
    for miss in ("hllo", "heello", "news", "xnews.a"):
        eq(r.publish(miss, "z"), 0, f"PUBLISH {miss} (no pattern matches)")
    eq(r.pubsub_numpat(), 3, "NUMPAT")
    q = r.pubsub()
    q.psubscribe("news.*")
    eq(msg(q, "psubscribe"), m("psubscribe", b"news.*", 1), "second client's PSUBSCRIBE")
    eq(r.pubsub_numpat(), 3, "NUMPAT counts a pattern two clients share once")
    eq(r.publish("news.sport", "s"), 2, "PUBLISH news.sport to two pattern subscribers")
    eq(msg(q, "pmessage"), m("pmessage", b"news.sport", b"s", b"news.*"), "second client's pmessage")
    eq(msg(p, "pmessage"), m("pmessage", b"news.sport", b"s", b"news.*"), "first client's pmessage")
    eq(r.pubsub_channels(), [b"news.tech"], "PUBSUB CHANNELS lists channels, not patterns")
    p.punsubscribe("news.*")
    eq(msg(p, "punsubscribe"), m("punsubscribe", b"news.*", 3), "PUNSUBSCRIBE news.*")
    eq(r.publish("news.sport", "s2"), 1, "PUBLISH after one client's PUNSUBSCRIBE")
    eq(msg(q, "pmessage"), m("pmessage", b"news.sport", b"s2", b"news.*"), "the other still gets it")
    q.close()  # a disconnect drops the subscriptions
    eventually(r.pubsub_numpat, 2, "NUMPAT after the second client disconnected")
    p.punsubscribe()
    eq(sorted(msg(p, "punsubscribe")["data"] for _ in range(2)), [1, 2], "PUNSUBSCRIBE all: counts")
    eq(r.pubsub_numpat(), 0, "NUMPAT after PUNSUBSCRIBE")
    p.close()
    eventually(r.pubsub_channels, [], "PUBSUB CHANNELS after the subscriber disconnected")

    # Sharded channels: their own namespace and their own subscription count.
    p = r.pubsub()
    p.ssubscribe("shard:1", "shard:2")
    eq(msg(p, "ssubscribe"), m("ssubscribe", b"shard:1", 1), "SSUBSCRIBE confirmation 1")
    eq(msg(p, "ssubscribe"), m("ssubscribe", b"shard:2", 2), "SSUBSCRIBE confirmation 2")
    eq(r.spublish("shard:1", "s1"), 1, "SPUBLISH shard:1")
    eq(p.get_sharded_message(timeout=WAIT), m("smessage", b"shard:1", b"s1"), "smessage")
    eq(r.publish("shard:1", "plain"), 0, "PUBLISH does not reach shard subscribers")
    eq(r.spublish("shard:9", "x"), 0, "SPUBLISH without subscribers")
    eq(sorted(r.pubsub_shardchannels()), [b"shard:1", b"shard:2"], "PUBSUB SHARDCHANNELS")
    eq(r.pubsub_shardchannels("*:2"), [b"shard:2"], "PUBSUB SHARDCHANNELS *:2")
    eq(r.pubsub_shardnumsub("shard:1", "shard:9"), [(b"shard:1", 1), (b"shard:9", 0)], "SHARDNUMSUB")
    eq(r.pubsub_channels(), [], "PUBSUB CHANNELS leaves shard channels out")
    eq(r.pubsub_numsub("shard:1"), [(b"shard:1", 0)], "NUMSUB leaves shard channels out")
    p.subscribe("plain")
    eq(msg(p, "subscribe"), m("subscribe", b"plain", 1), "SUBSCRIBE does not count shard channels")
    eq(r.spublish("plain", "x"), 0, "SPUBLISH does not reach channel subscribers")
    p.sunsubscribe("shard:1")
    eq(msg(p, "sunsubscribe"), m("sunsubscribe", b"shard:1", 1), "SUNSUBSCRIBE shard:1")
    eq(r.spublish("shard:1", "x"), 0, "SPUBLISH after SUNSUBSCRIBE")
    eq(r.spublish("shard:2", "s2"), 1, "SPUBLISH shard:2")
    eq(msg(p, "smessage"), m("smessage", b"shard:2", b"s2"), "smessage on shard:2")
    p.close()

    # A subscribed connection: RESP2 allows only the pub/sub commands, RESP3 allows everything.
    r.set("ctx:key", "v")
    p = r.pubsub()
    p.subscribe("ctx")
    eq(msg(p, "subscribe"), m("subscribe", b"ctx", 1), "SUBSCRIBE ctx")
    p.connection.send_command("GET", "ctx:key")
    if protocol == 2:
        try:
            got = p.connection.read_response()
            sys.exit(f"FAIL [{tag}] GET on a subscribed RESP2 connection answered {got!r}, not an error")
        except redis.ResponseError as e:
            allowed = "only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            if allowed not in str(e):
                sys.exit(f"FAIL [{tag}] GET on a subscribed connection: unexpected error {e}")
    else:
        eq(p.connection.read_response(), b"v", "GET on a subscribed RESP3 connection")
    eq(r.publish("ctx", "still"), 1, "the connection is still subscribed")
    eq(msg(p, "message"), m("message", b"ctx", b"still"), "message after the command")
    p.close()

    # Handlers run by run_in_thread(), stopped cleanly; listen() until the last unsubscribe.
    got, done = [], threading.Event()

    def handler(message):
        got.append((message["type"], message["channel"], message["data"]))
        if len(got) == 40:
            done.set()

    p = r.pubsub()
    p.subscribe(jobs=handler)
    p.psubscribe(**{"jobs.*": handler})
    eq([msg(p, "confirmation")["type"] for _ in range(2)], ["subscribe", "psubscribe"], "handler subscriptions")
    worker = p.run_in_thread(sleep_time=0.01, daemon=True)
    for i in range(20):
        eq(r.publish("jobs", i), 1, "PUBLISH jobs")
        eq(r.publish("jobs.x", i), 1, "PUBLISH jobs.x")
    if not done.wait(WAIT):
        sys.exit(f"FAIL [{tag}] run_in_thread: {len(got)} of 40 messages within {WAIT} s")
    worker.stop()
    worker.join(WAIT)
    eq(worker.is_alive(), False, "the worker thread stopped")
    want = []
    for i in range(20):
        want += [("message", b"jobs", str(i).encode()), ("pmessage", b"jobs.x", str(i).encode())]
    eq(got, want, "messages seen by the handlers")
    p.close()

    p = r.pubsub()
    p.subscribe("feed")
    eq(msg(p, "subscribe"), m("subscribe", b"feed", 1), "SUBSCRIBE feed")
    for word in ("a", "b", "c"):
        r.publish("feed", word)
    p.unsubscribe("feed")
    heard = [x for x in p.listen()]  # ends once the last subscription is gone
    eq(heard, [m("message", b"feed", w) for w in (b"a", b"b", b"c")] + [m("unsubscribe", b"feed", 0)], "listen()")
    p.close()

    # Keyspace notifications.
    p = r.pubsub()
    try:
        eq(r.config_set("notify-keyspace-events", "KEA"), True, "CONFIG SET notify-keyspace-events KEA")
        eq(flags(), "AKE", "CONFIG GET notify-keyspace-events after KEA")
        p.psubscribe("__key*__:*")
        eq(msg(p, "psubscribe"), m("psubscribe", b"__key*__:*", 1), "PSUBSCRIBE __key*__:*")
        r.set("k", "v")
        r.incr("n")
        r.append("k", "w")
        r.expire("k", 100)
        r.rename("k", "k2")
        r.delete("k2")
        r.set("t", "v", px=100)
        events = [("k", "set"), ("n", "incrby"), ("k", "append"), ("k", "expire"), ("k", "rename_from"),
                  ("k2", "rename_to"), ("k2", "del"), ("t", "set"), ("t", "expire"), ("t", "expired")]
        want = []
        for key, event in events:
            want += [(b"__keyspace@0__:" + key.encode(), event.encode()),
                     (b"__keyevent@0__:" + event.encode(), key.encode())]
        seen = []
        for _ in want:
            x = msg(p, f"keyspace event {len(seen) + 1} of {len(want)} (seen {seen})")
            eq((x["type"], x["pattern"]), ("pmessage", b"__key*__:*"), "keyspace notification type")
            seen.append((x["channel"], x["data"]))
        eq(seen, want, "keyspace and keyevent notifications, in order")

        # 'n': a key's creation, only the first time; 'K' with 'g': generic commands on the key channel.
        r.config_set("notify-keyspace-events", "En")
        eq(flags(), "nE", "CONFIG GET notify-keyspace-events after En")
        r.set("fresh", "1")
        r.set("fresh", "2")  # exists already: no event
        r.delete("n")  # 'g' is off: no event
        r.set("fresh2", "1")
        r.config_set("notify-keyspace-events", "Kg")
        r.set("fresh", "3")  # '$' is off: no event
        r.delete("fresh")
        r.config_set("notify-keyspace-events", "")
        r.set("quiet", "1")  # notifications off: no event
        eq(r.publish("__keyspace@0__:sentinel", "end"), 1, "PUBLISH to a channel the pattern matches")
        seen = [(x["channel"], x["data"]) for x in (msg(p, "event") for _ in range(4))]
        eq(seen, [(b"__keyevent@0__:new", b"fresh"), (b"__keyevent@0__:new", b"fresh2"),
                  (b"__keyspace@0__:fresh", b"del"), (b"__keyspace@0__:sentinel", b"end")], "filtered events")
    finally:
        r.config_set("notify-keyspace-events", "")
    eq(flags(), "", "notify-keyspace-events restored")
    p.close()
    r.flushall()
    r.close()

print("python pubsub: all passed")
