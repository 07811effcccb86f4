#!/usr/bin/env python3
"""perf/multikey_client.py — times single multi-key commands (DEL, MGET, MSET, ...)
with many keys against one server. Used by perf/bench_multikey.sh.

    multikey_client.py PORT N [REPS] [TIMEOUT_S]

For each of REPS rounds it runs, in this order (so that every command has work to do):

    MSET  k1 v1 ... kN vN      all keys new the first round, overwritten after
    MGET  k1 ... kN            every key present
    EXISTS k1 ... kN
    TOUCH  k1 ... kN
    DEL    k1 ... kN           deletes all N
    MSETNX k1 v1 ... kN vN     all keys absent: sets all N
    UNLINK k1 ... kN           deletes all N

How one command is timed: its whole RESP request is built before the clock starts
(the generator is never the bottleneck), followed in the same write by
`ECHO <marker>`; the clock runs from the first byte sent until the reply ends with the
marker's reply. The replies are checked afterwards, untimed (MGET's values in order,
DEL's count...). Keys are `mk:<i>` (spread over the shards by hash), values `v<i>`.

Prints one line per command and round: `CMD N seconds`. A command that does not
answer within TIMEOUT_S (default 120) prints `CMD N timeout` and the rest of the
round is skipped (the server is still busy with it).
"""
import socket
import sys
import time

MARKER = b"multikey-bench-end-7f3a9c"
ECHO = b"*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n" % (len(MARKER), MARKER)
ECHO_REPLY = b"$%d\r\n%s\r\n" % (len(MARKER), MARKER)


def resp(args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        parts.append(b"$%d\r\n" % len(a))
        parts.append(a)
        parts.append(b"\r\n")
    return b"".join(parts)


def timed(sock, req, timeout_s):
    """Sends req + ECHO, returns (seconds, reply bytes without the ECHO reply) or None."""
    data = req + ECHO
    chunks = []
    tail = b""
    sock.settimeout(timeout_s)
    t0 = time.perf_counter()
    sock.sendall(data)
    try:
        while True:
            b = sock.recv(1 << 20)
            if not b:
                raise SystemExit("server closed the connection")
            chunks.append(b)
            tail = (tail + b)[-len(ECHO_REPLY):]
            if tail == ECHO_REPLY:
                break
    except socket.timeout:
        return None
    dt = time.perf_counter() - t0
    reply = b"".join(chunks)[: -len(ECHO_REPLY)]
    return dt, reply


def check(name, reply, n, keys_vals):
    if name in ("DEL", "UNLINK", "EXISTS", "TOUCH"):
        assert reply == b":%d\r\n" % n, (name, reply[:80])
    elif name == "MSET":
        assert reply == b"+OK\r\n", (name, reply[:80])
    elif name == "MSETNX":
        assert reply == b":1\r\n", (name, reply[:80])
    elif name == "MGET":
        expect = [b"*%d\r\n" % n]
        for _, v in keys_vals:
            expect.append(b"$%d\r\n%s\r\n" % (len(v), v))
        assert reply == b"".join(expect), (name, "values out of order or missing")


def main():
    port = int(sys.argv[1])
    n = int(sys.argv[2])
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    timeout_s = float(sys.argv[4]) if len(sys.argv) > 4 else 120.0
    keys = [b"mk:%d" % i for i in range(n)]
    kv = [(k, b"v%d" % i) for i, k in enumerate(keys)]
    flat_kv = [x for pair in kv for x in pair]
    reqs = [
        ("MSET", resp([b"MSET"] + flat_kv)),
        ("MGET", resp([b"MGET"] + keys)),
        ("EXISTS", resp([b"EXISTS"] + keys)),
        ("TOUCH", resp([b"TOUCH"] + keys)),
        ("DEL", resp([b"DEL"] + keys)),
        ("MSETNX", resp([b"MSETNX"] + flat_kv)),
        ("UNLINK", resp([b"UNLINK"] + keys)),
    ]
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    # Start from an empty keyspace (untimed).
    r = timed(sock, resp([b"FLUSHALL"]), timeout_s)
    assert r is not None and r[1] == b"+OK\r\n", r
    for _ in range(reps):
        for name, req in reqs:
            r = timed(sock, req, timeout_s)
            if r is None:
                print(f"{name} {n} timeout", flush=True)
                return
            check(name, r[1], n, kv)
            print(f"{name} {n} {r[0]:.4f}", flush=True)


if __name__ == "__main__":
    main()
