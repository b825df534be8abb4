#!/usr/bin/env python3
"""The report of bench/northsouth.sh: its wrk samples as markdown tables.

Samples, one line per wrk run:
  TARGET MODE ROUND northsouth requests=N duration_us=N p50_us=N p99_us=N errors=N packets=N
      syn_retransmits=N
TARGET is direct, iptables, snat, dsr or hybrid; MODE keepalive or close.
Bulk samples (--bulk-samples), one line per transfer: TARGET get|put ROUND SECONDS.
"""

import argparse
import statistics
import sys

LABELS = {
    "direct": "straight to the pod's IP (no load balancer: the floor)",
    "iptables": "kube-proxy iptables rules on the ingress node (reference)",
    "snat": "Junction, `--lb-mode snat`",
    "dsr": "Junction, `--lb-mode dsr`",
    "hybrid": "Junction, `--lb-mode hybrid`",
}
MODES = {
    "keepalive": "Keep-alive (each wrk connection reused for every request)",
    "close": "A new connection per request (`Connection: close`: wrk closes after each answer and reconnects)",
}
REFERENCE = "iptables"


def parse(path):
    samples = {}
    for line in open(path):
        fields = line.split()
        if not fields:
            continue
        target, mode, round_ = fields[0], fields[1], int(fields[2])
        values = dict(field.split("=", 1) for field in fields[4:])
        values = {key: int(value) for key, value in values.items()}
        values["rps"] = values["requests"] / (values["duration_us"] / 1e6)
        samples[(target, mode, round_)] = values
    return samples


def ratio(value, reference):
    return f"{value / reference:.2f}" if reference else "—"


def table(samples, targets, mode, rounds):
    print(f"### {MODES[mode]}")
    print()
    print(
        "| path | requests/s (median) | requests/s, min–max over rounds | ÷ iptables (medians) "
        "| ÷ iptables, same round: median [min, max] | p50 (µs) | p50 ÷ iptables | p99 (µs) "
        "| p99 min–max (µs) | p99 ÷ iptables | ingress node's packets per request | errors | SYN retransmits |"
    )
    print("|---|---:|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|")
    have_reference = REFERENCE in targets
    medians = {}
    for target in targets:
        runs = [samples[(target, mode, r)] for r in range(1, rounds + 1)]
        medians[target] = {
            key: statistics.median(run[key] for run in runs) for key in ("rps", "p50_us", "p99_us")
        }
    for target in targets:
        runs = [samples[(target, mode, r)] for r in range(1, rounds + 1)]
        median = medians[target]
        rps = [run["rps"] for run in runs]
        p99 = [run["p99_us"] for run in runs]
        reference = medians.get(REFERENCE) if have_reference else None
        paired = "—"
        if have_reference:
            per_round = [
                samples[(target, mode, r)]["rps"] / samples[(REFERENCE, mode, r)]["rps"]
                for r in range(1, rounds + 1)
            ]
            paired = f"{statistics.median(per_round):.2f} [{min(per_round):.2f}, {max(per_round):.2f}]"
        requests = sum(run["requests"] for run in runs)
        packets = sum(run["packets"] for run in runs)
        per_request = f"{packets / requests:.2f}" if target != "direct" and requests else "—"
        errors = sum(run["errors"] for run in runs)
        syn_retransmits = sum(run["syn_retransmits"] for run in runs)
        name = LABELS[target]
        print(
            f"| {name} | {median['rps']:,.0f} | {min(rps):,.0f}–{max(rps):,.0f} "
            f"| {ratio(median['rps'], reference['rps']) if reference else '—'} | {paired} "
            f"| {median['p50_us']:,.0f} | {ratio(median['p50_us'], reference['p50_us']) if reference else '—'} "
            f"| {median['p99_us']:,.0f} | {min(p99):,}–{max(p99):,} "
            f"| {ratio(median['p99_us'], reference['p99_us']) if reference else '—'} "
            f"| {per_request} | {errors} | {syn_retransmits} |"
        )
    print()


def percentile(values, p):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def sequential_table(path, targets, rounds, count):
    times = {}
    for line in open(path):
        fields = line.split()
        if len(fields) != 4:
            continue
        target, round_ = fields[0], int(fields[1])
        connect, total = float(fields[2]) * 1e6, float(fields[3]) * 1e6
        times.setdefault(target, []).append((round_, connect, total))
    for target in targets:
        if len(times.get(target, [])) != rounds * count:
            sys.exit(f"northsouth.py: {target}: {len(times.get(target, []))} sequential samples, expected {rounds * count}")
    print("### One request at a time, a new connection each (curl, no concurrency)")
    print()
    print(
        f"{count} requests per path per round, {rounds * count} in all, by one curl process "
        f"(`Connection: close`): its `time_connect` (SYN to SYN-ACK, as the client sees it) and "
        f"`time_total` (the whole request, the handshake included). Nearest-rank percentiles over "
        f"all of a path's requests; the per-round medians show the spread."
    )
    print()
    print(
        "| path | connect p50 (µs) | connect p99 (µs) | request p50 (µs) | request p99 (µs) "
        "| request p50, per-round medians min–max (µs) | p50 ÷ iptables | p99 ÷ iptables |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    summary = {}
    for target in targets:
        connects = [c for _, c, _ in times[target]]
        totals = [t for _, _, t in times[target]]
        per_round = [
            statistics.median(t for r, _, t in times[target] if r == round_) for round_ in range(1, rounds + 1)
        ]
        summary[target] = (
            percentile(connects, 50),
            percentile(connects, 99),
            percentile(totals, 50),
            percentile(totals, 99),
            min(per_round),
            max(per_round),
        )
    reference = summary.get(REFERENCE)
    for target in targets:
        c50, c99, t50, t99, low, high = summary[target]
        print(
            f"| {LABELS[target]} | {c50:,.0f} | {c99:,.0f} | {t50:,.0f} | {t99:,.0f} | {low:,.0f}–{high:,.0f} "
            f"| {ratio(t50, reference[2]) if reference else '—'} | {ratio(t99, reference[3]) if reference else '—'} |"
        )
    print()


def bulk_table(path, targets, rounds, size):
    seconds = {}
    for line in open(path):
        fields = line.split()
        if len(fields) == 4:
            seconds.setdefault((fields[0], fields[1]), []).append(float(fields[3]))
    for target in targets:
        for verb in ("get", "put"):
            if len(seconds.get((target, verb), [])) != rounds:
                sys.exit(f"northsouth.py: {target} {verb}: {len(seconds.get((target, verb), []))} bulk samples, expected {rounds}")
    print("### Bulk transfer (one TCP connection, MB/s)")
    print()
    print(
        f"{size / 2**20:g} MiB each way per path per round, {rounds} rounds, the order rotating as above: "
        f"`bench/nsbulk.py` in the pod (in place of nshttp, on the same port) and in the client, "
        f"download (`get`: the pod sends) and upload (`put`: the client sends), timed from connect "
        f"to the last byte (or the pod's acknowledgement of it). MB = 10^6 bytes; median over the "
        f"rounds, min–max beside it. Through a node device the packets arrive coalesced (the lab's "
        f"veths hand TSO bursts over whole), which is what issue 19 was about."
    )
    print()
    print(
        "| path | download MB/s (median) | download min–max | download ÷ iptables "
        "| upload MB/s (median) | upload min–max | upload ÷ iptables |"
    )
    print("|---|---:|---|---:|---:|---|---:|")
    rates = {
        key: [size / 1e6 / value for value in values] for key, values in seconds.items()
    }
    for target in targets:
        cells = []
        for verb in ("get", "put"):
            median = statistics.median(rates[(target, verb)])
            reference = rates.get((REFERENCE, verb))
            cells.append(f"{median:,.1f}")
            cells.append(f"{min(rates[(target, verb)]):,.1f}–{max(rates[(target, verb)]):,.1f}")
            cells.append(ratio(median, statistics.median(reference)) if reference else "—")
        print(f"| {LABELS[target]} | " + " | ".join(cells) + " |")
    print()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", required=True)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--duration", type=int, required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--targets", nargs="+", required=True)
    parser.add_argument("--sequential-samples", required=True)
    parser.add_argument("--sequential", type=int, required=True)
    parser.add_argument("--bulk-samples")
    parser.add_argument("--bulk-bytes", type=int)
    args = parser.parse_args()
    samples = parse(args.samples)
    missing = [
        (t, m, r)
        for t in args.targets
        for m in MODES
        for r in range(1, args.rounds + 1)
        if (t, m, r) not in samples
    ]
    if missing:
        sys.exit(f"northsouth.py: missing samples {missing[:3]}...")
    print(
        f"Method: one lab (`install/lab up --nodes 2`) per path, all up at once, each with the same "
        f"backend pod on node2 and the client outside the cluster sending to node1's address "
        f"(172.30.0.11:30080), so every request crosses the ingress node to the other node. "
        f"`wrk -t1 -c{args.connections} -d{args.duration}s --latency` in the client's namespace, "
        f"{args.rounds} rounds; in every round each path gets one keep-alive and one "
        f"connection-per-request run, the order of the paths rotating by one each round so the "
        f"machine's drift hits them alike. Medians over the rounds; p50 and p99 are wrk's, per "
        f"run (from writing a request to the end of its answer: in the connection-per-request "
        f"runs the handshake itself is not in the latency but is in the requests/s). Ratios: the "
        f"path's median ÷ the reference's median from the same run (requests/s: higher is better; "
        f"latency: lower is better); \"same round\" pairs each round's runs. Packets per request: "
        f"rx + tx on node1's eth0 during the run ÷ requests answered (without DSR every answer "
        f"comes back through node1). Errors: wrk's (connect, read, write, status, timeout), all runs; "
        f"SYN retransmits: the client's `TcpExtTCPSynRetrans` during the runs (each is a SYN "
        f"lost on the path and a 1 s wait for that connection, invisible in wrk's latency)."
    )
    print()
    for mode in MODES:
        table(samples, args.targets, mode, args.rounds)
    sequential_table(args.sequential_samples, args.targets, args.rounds, args.sequential)
    if args.bulk_samples:
        bulk_table(args.bulk_samples, args.targets, args.rounds, args.bulk_bytes)


if __name__ == "__main__":
    main()
