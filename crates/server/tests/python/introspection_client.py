"""CLIENT, MONITOR, SLOWLOG and INFO through the Python `redis` package, as operators' tools use them.

Usage: introspection_client.py PORT   (the RESP port of a running server; passes against
redis-server 7.0 too). Every wait is bounded; an alarm stops the script if anything hangs.
"""
import signal
import socket
import sys
import threading
import time

import redis

port = int(sys.argv[1])
signal.signal(signal.SIGALRM, lambda *_: sys.exit("FAIL: the run took longer than 30 s"))
signal.alarm(30)


def check(ok, what):
    if not ok:
        sys.exit(f"FAIL {what}")


r = redis.Redis(port=port, decode_responses=True)
r.flushall()

# CLIENT LIST and CLIENT INFO in Redis's field format, parsed by redis-py.
r.client_setname("ops")
me = r.client_info()
for field in ["id", "addr", "laddr", "fd", "name", "age", "idle", "flags", "db", "sub", "psub",
              "ssub", "multi", "qbuf", "qbuf-free", "argv-mem", "multi-mem", "obl", "oll",
              "omem", "tot-mem", "events", "cmd", "user", "redir", "resp"]:
    check(field in me, f"CLIENT INFO has {field}: {me}")
check(me["name"] == "ops" and me["cmd"] == "client|info" and me["flags"] == "N", f"CLIENT INFO {me}")
other = redis.Redis(port=port, decode_responses=True)
other.client_setname("victim")
names = {c["name"] for c in r.client_list()}
check({"ops", "victim"} <= names, f"CLIENT LIST names {names}")
check([c["name"] for c in r.client_list(client_id=[me["id"]])] == ["ops"], "CLIENT LIST ID")
check(all(c["name"] != "ops" for c in r.client_list(_type="pubsub")), "CLIENT LIST TYPE pubsub")
try:
    r.execute_command("CLIENT", "LIST", "TYPE", "nosuch")
    sys.exit("FAIL an unknown client type was accepted")
except redis.ResponseError as e:
    check("Unknown client type 'nosuch'" in str(e), f"unknown type error: {e}")

# MULTI shows in the flags and the count of queued commands.
victim_id = other.client_id()
raw = socket.create_connection(("127.0.0.1", port), timeout=5)
raw.sendall(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n")
got = b""
while got.count(b"\r\n") < 2:
    got += raw.recv(100)
check(got == b"+OK\r\n+QUEUED\r\n", f"MULTI and a queued SET: {got!r}")
inside = [c for c in r.client_list() if c["multi"] == "1"]
check(len(inside) == 1 and "x" in inside[0]["flags"], f"a client in MULTI: {inside}")
raw.close()

# CLIENT KILL by id, user and address.
check(r.client_kill_filter(_id=victim_id) == 1, "CLIENT KILL ID")
try:
    other.ping()
except redis.ConnectionError:
    pass
check(r.client_kill_filter(_id=victim_id) == 0, "CLIENT KILL ID of a closed client")
try:
    r.client_kill_filter(user="nosuchuser")
    sys.exit("FAIL killing an unknown user's clients was accepted")
except redis.ResponseError as e:
    check("No such user 'nosuchuser'" in str(e), f"unknown user error: {e}")
try:
    r.client_kill("1.2.3.4:5")
    sys.exit("FAIL killing an unknown address was accepted")
except redis.ResponseError as e:
    check("No such client" in str(e), f"unknown address error: {e}")

# CLIENT PAUSE WRITE holds writes back and lets reads through; UNPAUSE releases them.
writer = redis.Redis(port=port)
r.client_pause(400, all=False)
start = time.monotonic()
r.get("x")
check(time.monotonic() - start < 0.3, "a read during CLIENT PAUSE WRITE went on")
done = {}
t = threading.Thread(target=lambda: done.setdefault("at", (writer.set("p", 1), time.monotonic())[1]))
t.start()
time.sleep(0.15)
check("at" not in done, "a write waited during CLIENT PAUSE WRITE")
r.client_unpause()
t.join(5)
check("at" in done and done["at"] - start < 0.35, "UNPAUSE released the write before the timeout")

# MONITOR: every command, quoted as Redis quotes it.
seen = []
ready = threading.Event()


def watch():
    with redis.Redis(port=port).monitor() as m:
        ready.set()
        for event in m.listen():
            seen.append(event)
            if event["command"].startswith("SET watched"):
                return


mon = threading.Thread(target=watch)
mon.start()
ready.wait(5)
time.sleep(0.2)
r.set("watched", "a b")
mon.join(5)
check(any(e["command"] == "SET watched a b" for e in seen), f"MONITOR saw the SET: {seen}")
check(all(isinstance(e["time"], float) and e["db"] == 0 for e in seen), f"MONITOR lines: {seen}")

# SLOWLOG through redis-py's parser.
r.config_set("slowlog-log-slower-than", 0)
r.slowlog_reset()
r.set("slow", "1")
entries = r.slowlog_get(2)
check(any(e["command"] in ("SET slow 1", b"SET slow 1") for e in entries), f"SLOWLOG GET {entries}")
check(all("duration" in e and "id" in e and "start_time" in e for e in entries), "SLOWLOG fields")
r.config_set("slowlog-log-slower-than", 10000)

# INFO sections parsed by redis-py.
info = r.info("everything")
for key in ["redis_version", "connected_clients", "used_memory", "total_commands_processed",
            "role", "used_cpu_sys", "cmdstat_set", "errorstat_ERR", "db0"]:
    if key == "errorstat_ERR" and key not in info:
        continue  # only once an ERR was answered
    check(key in info, f"INFO everything has {key}")
check(info["cmdstat_set"]["calls"] >= 3, f"cmdstat_set {info['cmdstat_set']}")
print("python introspection: all passed")
