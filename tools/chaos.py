#!/usr/bin/env python3
"""Chaos client: many connections sending random valid/invalid commands, garbage bytes,
half-sent commands and abrupt disconnects to a running server, then checks the server
still answers PING. Usage: tools/chaos.py PORT [SECONDS]"""
import random, socket, sys, threading, time

PORT = int(sys.argv[1])
SECS = float(sys.argv[2]) if len(sys.argv) > 2 else 10
CMDS = [b"SET", b"GET", b"MGET", b"MSET", b"DEL", b"EXISTS", b"INCR", b"INCRBYFLOAT", b"APPEND",
        b"RENAME", b"COPY", b"MSETNX", b"LCS", b"SCAN", b"KEYS", b"EXPIRE", b"PEXPIRE", b"TTL",
        b"GETRANGE", b"SETRANGE", b"CLIENT", b"INFO", b"CONFIG", b"COMMAND", b"HELLO", b"OBJECT",
        b"DBSIZE", b"FLUSHDB", b"SELECT", b"SWAPDB", b"MOVE", b"TYPE", b"GETEX", b"RANDOMKEY", b"PING"]
ARGS = [b"a", b"b", b"{t}c", b"{t}d", b"1", b"-1", b"1.5", b"9223372036854775807", b"", b"\x00\xff",
        b"EX", b"PX", b"NX", b"XX", b"GET", b"KEEPTTL", b"100", b"0", b"LIST", b"KILL", b"*", b"MATCH",
        b"COUNT", b"IDX", b"LEN", b"x" * 1000, b"SET", b"GET", b"maxmemory", b"3", b"2"]

def resp(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out

def worker(seed, stop):
    r = random.Random(seed)
    while not stop.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", PORT), timeout=2)
            for _ in range(r.randint(1, 50)):
                k = r.random()
                if k < 0.8:
                    args = [r.choice(CMDS)] + [r.choice(ARGS) for _ in range(r.randint(0, 6))]
                    data = resp(args)
                elif k < 0.9:
                    data = bytes(r.getrandbits(8) for _ in range(r.randint(1, 64)))
                else:
                    data = resp([r.choice(CMDS), r.choice(ARGS)])[: r.randint(1, 10)]
                s.sendall(data)
                if r.random() < 0.5:
                    try:
                        s.recv(65536)
                    except socket.timeout:
                        pass
            if r.random() < 0.5:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        except OSError:
            pass

stop = threading.Event()
ts = [threading.Thread(target=worker, args=(i, stop)) for i in range(16)]
for t in ts: t.start()
time.sleep(SECS)
stop.set()
for t in ts: t.join()
s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
s.sendall(b"*1\r\n$4\r\nPING\r\n")
reply = s.recv(100)
print("after chaos:", reply)
sys.exit(0 if reply == b"+PONG\r\n" else 1)
