#!/usr/bin/env python3
"""Sequential DNS queries over UDP, one outstanding, each timed: the latency a pod's
resolver sees for one lookup. Standard library only; runs inside the client pod's netns.

    dns_latency.py SERVER NAME COUNT WARMUP

Prints one JSON object: count, timeouts, and the sorted samples' p50, p90, p99, min, max in
microseconds (nearest rank). Every answer is checked: same id, QR set, RCODE 0, at least
one answer record; anything else aborts with a message.
"""
import json
import os
import socket
import struct
import sys
import time


def query(name, ident):
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)  # RD, one question
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    return header + labels + b"\0" + struct.pack("!HH", 1, 1)  # A, IN


def check(reply, ident):
    if len(reply) < 12:
        raise SystemExit("dns_latency: short reply")
    rid, flags, _, ancount = struct.unpack("!HHHH", reply[:8])
    if rid != ident or not flags & 0x8000 or flags & 0xF or ancount < 1:
        raise SystemExit(f"dns_latency: bad reply id={rid} flags={flags:#x} answers={ancount}")


def main():
    server, name, count, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1.0)
    sock.connect((server, 53))
    samples, timeouts = [], 0
    ident = int.from_bytes(os.urandom(2), "big")
    for i in range(warmup + count):
        ident = (ident + 1) & 0xFFFF
        packet = query(name, ident)
        start = time.perf_counter_ns()
        sock.send(packet)
        try:
            while True:
                reply = sock.recv(512)
                if reply[:2] == packet[:2]:
                    break
        except socket.timeout:
            timeouts += 1
            continue
        elapsed = time.perf_counter_ns() - start
        check(reply, ident)
        if i >= warmup:
            samples.append(elapsed / 1000.0)
    samples.sort()

    def rank(p):
        return samples[max(0, min(len(samples) - 1, -(-p * len(samples) // 100) - 1))]

    print(json.dumps({"count": len(samples), "timeouts": timeouts, "p50": rank(50),
                      "p90": rank(90), "p99": rank(99), "min": samples[0], "max": samples[-1]}))


if __name__ == "__main__":
    main()
