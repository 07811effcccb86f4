#!/usr/bin/env python3
"""perf/buffers.py — memory held by connection buffers and the parse arena (issue 17,
items 1, 3, 4), for one server binary (Darter or redis-server).

Scenarios, each on a fresh server (`--proactor_threads $THREADS`, default 2, for Darter):
  prealloc  4 connections each send the 34-byte header of a 512 MB SET
            (`*3 $3 SET $3 big $536870912`) and 4 KiB of payload, then wait: growth
            of VmRSS and used_memory 2 s later (item 1).
  arena     with `--maxmemory 15mb`: used_memory before and after one unknown command
            with 1,000,000 arguments, and whether a SET then succeeds (item 3).
  idle      3 connections each SET a 100 MB value, then stay idle: VmRSS,
            used_memory and the connections' CLIENT LIST qbuf/qbuf-free/tot-mem
            right after and 5 s later (item 4).
  bigset    wall time and server CPU time of a 100 MB SET and a GET of it back
            (byte-exact), five times on one connection.

Usage: [SERVER_CPU=1] perf/buffers.py BINARY [LABEL [SCENARIO...]]
(BINARY may be a redis-server; SERVER_CPU pins the server with taskset)
Prints one Markdown table row per figure.
"""
import os
import socket
import subprocess
import sys
import time

BIN = sys.argv[1]
LABEL = sys.argv[2] if len(sys.argv) > 2 else os.path.basename(BIN)
IS_REDIS = "redis-server" in os.path.basename(BIN)
PORT = int(os.environ.get("PORT", "16391"))


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n" % len(a))
        out.append(a)
        out.append(b"\r\n")
    return b"".join(out)


class Conn:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", PORT))
        self.s.settimeout(120)
        self.buf = bytearray()

    def read_reply(self):
        while True:
            r = self._parse(0)
            if r is not None:
                val, end = r
                del self.buf[:end]
                return val
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def _parse(self, p):
        nl = self.buf.find(b"\r\n", p)
        if nl < 0:
            return None
        t, line = self.buf[p:p + 1], self.buf[p + 1:nl]
        if t in b"+-:":
            return bytes(line), nl + 2
        if t in b"$=":
            n = int(line)
            if n < 0:
                return None, nl + 2
            if len(self.buf) < nl + 2 + n + 2:
                return None
            return bytes(self.buf[nl + 2:nl + 2 + n]), nl + 4 + n
        raise ValueError(self.buf[p:p + 40])

    def cmd(self, *args):
        self.s.sendall(encode(*args))
        return self.read_reply()


def start(extra):
    if IS_REDIS:
        args = [BIN, "--port", str(PORT), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"] + extra
    else:
        threads = os.environ.get("THREADS", "2")
        args = [BIN, "--port", str(PORT), "--bind", "127.0.0.1", "--proactor_threads", threads] + extra
    if os.environ.get("SERVER_CPU"):
        args = ["taskset", "-c", os.environ["SERVER_CPU"]] + args
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        try:
            c = Conn()
            c.cmd("PING")
            return p, c
        except (ConnectionRefusedError, EOFError, ConnectionResetError):
            time.sleep(0.02)
    p.kill()
    raise RuntimeError("server did not start")


def rss_mb(p):
    with open(f"/proc/{p.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def info_field(c, name):
    text = c.cmd("INFO", "all").decode()
    for line in text.split("\r\n"):
        if line.startswith(name + ":"):
            return line.split(":", 1)[1]
    return "?"


def used_mb(c):
    return int(info_field(c, "used_memory")) / 1e6


def row(scenario, what, value):
    print(f"| {LABEL} | {scenario} | {what} | {value} |", flush=True)


def stop(p):
    p.kill()
    p.wait()


def prealloc():
    p, c = start([])
    rss0, used0 = rss_mb(p), used_mb(c)
    conns = []
    for _ in range(4):
        k = Conn()
        k.s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$536870912\r\n" + b"x" * 4096)
        conns.append(k)
    time.sleep(2)
    row("prealloc", "VmRSS growth, 4 × 512 MB header + 4 KiB (MB)", f"{rss_mb(p) - rss0:.1f}")
    row("prealloc", "used_memory growth (MB)", f"{used_mb(c) - used0:.1f}")
    stop(p)


def arena():
    p, c = start(["--maxmemory", "15mb"])
    used0 = used_mb(c)
    args = ["NOSUCHCOMMAND"] + [f"k{i}" for i in range(1000000)]
    t = time.time()
    reply = c.cmd(*args)
    row("arena", "1M-argument command (s)", f"{time.time() - t:.2f}")
    time.sleep(1)
    row("arena", "used_memory before → 1 s after (MB)", f"{used0:.2f} → {used_mb(c):.2f}")
    row("arena", "SET after it, maxmemory 15mb", c.cmd("SET", "k", "v").decode())
    assert reply.startswith(b"ERR unknown command"), reply[:80]
    stop(p)


def client_fields(c, names):
    text = c.cmd("CLIENT", "LIST").decode()
    out = []
    for line in text.strip().split("\n"):
        f = dict(kv.split("=", 1) for kv in line.split(" ") if "=" in kv)
        if f.get("name") in names:
            out.append(f"{f['name']}: qbuf={f['qbuf']} qbuf-free={f['qbuf-free']} tot-mem={f['tot-mem']}")
    return "; ".join(out)


def idle():
    p, c = start([])
    rss0, used0 = rss_mb(p), used_mb(c)
    value = b"v" * (100 * 1000 * 1000)
    conns = []
    for i in range(3):
        k = Conn()
        k.cmd("CLIENT", "SETNAME", f"big{i}")
        assert k.cmd("SET", f"big{i}", value) == b"OK"
        conns.append(k)
    c.cmd("DEL", "big0", "big1", "big2")
    time.sleep(0.2)
    row("idle", "after 3 × SET 100 MB (then DEL): VmRSS / used_memory growth (MB)",
        f"{rss_mb(p) - rss0:.1f} / {used_mb(c) - used0:.1f}")
    row("idle", "CLIENT LIST right after", client_fields(c, {"big0", "big1", "big2"}))
    time.sleep(5)
    row("idle", "5 s idle: VmRSS / used_memory growth (MB)", f"{rss_mb(p) - rss0:.1f} / {used_mb(c) - used0:.1f}")
    row("idle", "CLIENT LIST 5 s later", client_fields(c, {"big0", "big1", "big2"}))
    row("idle", "client_recent_max_input_buffer", info_field(c, "client_recent_max_input_buffer"))
    stop(p)


def cpu_secs(p):
    """utime + stime of the server process (and its threads), in seconds."""
    with open(f"/proc/{p.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bigset():
    p, c = start([])
    value = bytes(range(256)) * (100 * 1000 * 1000 // 256)
    for _ in range(5):
        cpu, t = cpu_secs(p), time.time()
        assert c.cmd("SET", "big", value) == b"OK"
        t_set, cpu_set = time.time() - t, cpu_secs(p) - cpu
        cpu, t = cpu_secs(p), time.time()
        got = c.cmd("GET", "big")
        t_get, cpu_get = time.time() - t, cpu_secs(p) - cpu
        assert got == value
        row("bigset", "SET / GET of 100 MB: wall s (server CPU s)",
            f"{t_set:.2f} ({cpu_set:.2f}) / {t_get:.2f} ({cpu_get:.2f})")
        time.sleep(1)
    stop(p)


print(f"| server | scenario | figure | value |\n|---|---|---|---|")
for f in sys.argv[3:] or ["prealloc", "arena", "idle", "bigset"]:
    globals()[f]()
