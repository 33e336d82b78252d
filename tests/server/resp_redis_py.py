#!/usr/bin/env python3
"""Drives bufpool-server's RESP front end with Debian's python3-redis (redis-py), a client we
did not write. Usage: resp_redis_py.py PORT [SEED] [--proxy]. Prints "ok" and exits 0 when every
check holds; a failed check raises (exit 1) with what differed. --proxy: PORT is twemproxy
(nutcracker) in front of the server, so only the data commands that it forwards are used, and
the server-wide ones (DBSIZE, INFO, CLIENT, ECHO) are left out."""
import random
import sys

import redis


def check(what, got, want):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def main():
    args = [a for a in sys.argv[1:] if a != "--proxy"]
    proxy = "--proxy" in sys.argv
    port = int(args[0])
    seed = int(args[1]) if len(args) > 1 else 12345
    print(f"seed {seed}")
    rng = random.Random(seed)
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)

    check("ping", r.ping(), True)
    if not proxy:
        check("echo", r.echo(b"hi there"), b"hi there")
    every_byte = bytes(range(256)) * 17
    check("set", r.set("py:bin", every_byte), True)
    check("get bytes", r.get("py:bin"), every_byte)
    check("strlen", r.strlen("py:bin"), len(every_byte))
    check("getrange", r.getrange("py:bin", 250, 260), every_byte[250:261])
    check("getrange negative", r.getrange("py:bin", -3, -1), every_byte[-3:])
    check("get missing", r.get("py:none"), None)
    check("set nx on existing", r.set("py:bin", b"x", nx=True), None)
    check("set xx on missing", r.set("py:none", b"x", xx=True), None)
    check("set get", r.set("py:bin", b"new", get=True), every_byte)
    check("after set get", r.get("py:bin"), b"new")
    check("exists", r.exists("py:bin"), 1)
    check("exists missing", r.exists("py:none"), 0)
    if not proxy:
        check("exists counts each name", r.exists("py:bin", "py:bin", "py:none"), 2)

    # Values of random sizes and bytes, through a pipeline (one write, replies in order).
    values = {f"py:k{i}": rng.randbytes(rng.randint(0, 70000)) for i in range(40)}
    pipe = r.pipeline(transaction=False)
    for k, v in values.items():
        pipe.set(k, v)
    check("pipelined sets", pipe.execute(), [True] * len(values))
    keys = list(values)
    check("mget", r.mget(keys + ["py:none"]), [values[k] for k in keys] + [None])
    check("mset", r.mset({"py:m1": b"one", "py:m2": b"two"}), True)
    check("mget after mset", r.mget(["py:m1", "py:m2"]), [b"one", b"two"])
    if not proxy:
        server_wide(r, len(values) + 3)
    check("delete", r.delete(*keys, "py:bin", "py:m1", "py:m2", "py:none"), len(keys) + 3)
    for k in keys:
        check(f"get {k} after delete", r.get(k), None)
    if not proxy:
        check("dbsize after delete", r.dbsize(), 0)
        check("used_memory after delete", r.info("memory")["used_memory"], 0)
    print("ok")


def server_wide(r, keys):
    """The commands about the server rather than keys."""
    check("dbsize", r.dbsize(), keys)
    info = r.info()
    check("info redis_version", info["redis_version"], "7.0.0")
    check("info keyspace", info["db0"]["keys"], keys)
    memory = r.info("memory")
    if memory["used_memory"] <= 0:
        raise AssertionError(f"used_memory {memory['used_memory']} with values stored")

    check("client setname", r.client_setname("py-test"), True)
    check("client getname", r.client_getname(), "py-test")

    try:
        r.execute_command("FLUSHALL")
        raise AssertionError("FLUSHALL did not fail")
    except redis.ResponseError as e:
        check("unknown command text", str(e),
              "unknown command 'FLUSHALL', with args beginning with: ")
    try:
        r.set("py:x", "v", ex=10)
        raise AssertionError("SET EX did not fail")
    except redis.ResponseError as e:
        if "expire" not in str(e):
            raise AssertionError(f"SET EX error: {e}")
    try:
        r.execute_command("GET")
        raise AssertionError("GET without a key did not fail")
    except redis.ResponseError as e:
        check("arity text", str(e), "wrong number of arguments for 'get' command")


if __name__ == "__main__":
    main()
