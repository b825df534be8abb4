#!/usr/bin/env python3
"""The cost of one Prometheus scrape of junction-agent (GET /metrics), and whether scraping
holds the agent up. Run INSIDE the agent's network namespace (metrics-scrape.sh does).

  metrics_scrape.py --metrics HOST:PORT --socket PATH --pid PID --scrapes K

Prints one JSON object: the first scrape's time and the next K scrapes' times (ms), the agent's CPU time per scrape (ms, from
/proc/PID/stat utime+stime over the K scrapes), the body size, and GET /v1/healthz times
(ms) on the API socket with the agent idle and while another thread scrapes back to back.
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import threading
import time

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ms(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / TICKS


def scrape(host: str, port: int) -> tuple[float, int]:
    start = time.perf_counter_ns()
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/metrics")
    answer = conn.getresponse()
    body = answer.read()
    conn.close()
    if answer.status != 200:
        raise SystemExit(f"metrics_scrape: /metrics answered {answer.status}")
    return (time.perf_counter_ns() - start) / 1e6, len(body)


def healthz(sock: str) -> float:
    start = time.perf_counter_ns()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(sock)
    conn.sendall(b"GET /v1/healthz HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n")
    while conn.recv(65536):
        pass
    conn.close()
    return (time.perf_counter_ns() - start) / 1e6


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--scrapes", type=int, default=20)
    args = parser.parse_args()
    host, port = args.metrics.rsplit(":", 1)
    port = int(port)

    # The first scrape after the Services were applied: it creates the series and counts
    # the Services and backends (later ones reuse that count until the maps change).
    first, _ = scrape(host, port)
    before = cpu_ms(args.pid)
    times, size = [], 0
    for _ in range(args.scrapes):
        elapsed, size = scrape(host, port)
        times.append(elapsed)
    cpu = (cpu_ms(args.pid) - before) / args.scrapes

    idle = [healthz(args.socket) for _ in range(200)]
    stop = threading.Event()

    def scraper() -> None:
        while not stop.is_set():
            scrape(host, port)

    thread = threading.Thread(target=scraper)
    thread.start()
    busy = [healthz(args.socket) for _ in range(200)]
    stop.set()
    thread.join()

    print(json.dumps({
        "first_scrape_ms": first,
        "scrape_ms": {"median": statistics.median(times), "p99": percentile(times, 0.99),
                      "max": max(times)},
        "cpu_ms_per_scrape": cpu,
        "bytes": size,
        "healthz_idle_ms": {"median": statistics.median(idle), "p99": percentile(idle, 0.99)},
        "healthz_scraping_ms": {"median": statistics.median(busy), "p99": percentile(busy, 0.99)},
    }))


if __name__ == "__main__":
    main()
