#!/usr/bin/env python3
"""bench/id-window.py: what sessions' remembered message ids cost in memory.

    bench/id-window.py CHATSERVER [SESSIONS]

Starts CHATSERVER (--store memory, --rate 0) on 127.0.0.1 port 0, twice:
with the default --id-window and with --id-window 1. Each time SESSIONS
sessions (default 400), twenty at a time, join #big, send 1,024 messages
with ids of 64 characters (the longest), read their echoes and
disconnect, leaving their sessions waiting to be resumed. Prints the
server's resident memory grown by each run (VmRSS, once it has stood
still for a second) and the difference per session. Stops each server by
its handle. See BENCHMARKS.md, "Remembered message ids".
"""
import json
import socket
import struct
import subprocess
import sys
import threading
import time

BIN = sys.argv[1]
SESSIONS = int(sys.argv[2]) if len(sys.argv) > 2 else 400
IDS = 1024


def frame(obj):
    body = json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def start(extra):
    p = subprocess.Popen(
        [BIN, "--listen", "127.0.0.1:0", "--store", "memory", "--rate", "0"] + extra,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 10
    for line in p.stdout:
        if line.startswith("listening on "):
            port = int(line.rsplit(":", 1)[1])
            break
        if time.monotonic() > deadline:
            p.kill()
            raise RuntimeError("the server did not say where it listens")
    # The rest of its output, read so that it never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
    return p, port


def session(port, i):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(frame({"type": "join", "nick": f"u{i}", "rooms": ["big"]}))
    msgs = (
        frame({"type": "msg", "room": "big", "text": "", "id": f"{i}-{k}-".ljust(64, "x")})
        for k in range(IDS)
    )
    s.sendall(b"".join(msgs))
    s.settimeout(5)
    echoed = 0
    try:
        while echoed < IDS:
            data = s.recv(1 << 20)
            if not data:
                break
            echoed += data.count(b'"id":"')
    except socket.timeout:
        pass
    s.close()


def settled(pid):
    """VmRSS once three reads a half second apart agree (10 s at most)."""
    last, same = rss_kib(pid), 0
    deadline = time.monotonic() + 10
    while same < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        now = rss_kib(pid)
        same = same + 1 if now == last else 0
        last = now
    return last


def run(extra):
    p, port = start(extra)
    try:
        before = settled(p.pid)
        for b in range(0, SESSIONS, 20):
            threads = [
                threading.Thread(target=session, args=(port, i))
                for i in range(b, min(b + 20, SESSIONS))
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        return settled(p.pid) - before
    finally:
        p.terminate()
        p.wait(timeout=10)


full = run([])
one = run(["--id-window", "1"])
print(f"{SESSIONS} sessions waiting to resume, default --id-window: +{full} KiB")
print(f"{SESSIONS} sessions waiting to resume, --id-window 1:       +{one} KiB")
print(f"per session, the ids: {(full - one) / SESSIONS:.1f} KiB")
