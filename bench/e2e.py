#!/usr/bin/env python3
"""Reports of bench/connection-cost.sh and bench/throughput.sh (stdlib only).

  e2e.py conncost --samples FILE --sizes 100,1000,10000 ... --loads NAME=MS ...
      FILE has one line per timed connection, "LABEL ROUND NANOSECONDS", LABEL "floor" or
      MECH/SIZE/vip|direct (bench/conncost.c). Prints the Markdown tables. With --socket-lb
      MECH junction-sock too (a pod in Junction's socket path; "junction" is then the pod
      opted out, per packet) and the verdict on issue 17's goal (socket path <= 1 µs above
      the floor).
  e2e.py conncost6 --samples FILE --sizes 100,1000,10000 ... --loads NAME=MS ...
      The same from bench/ipv6.sh: LABEL "floor4", "floor6" or MECH{4|6}/SIZE/vip|direct.
      Prints the IPv6-against-IPv4 tables and the verdict on issue 15's connection goal.
  e2e.py iperf --results DIR ...
      DIR holds one iperf3 JSON per run, named LABEL.STREAMS.ROUND.json. Prints the tables.
"""

import argparse
import glob
import json
import math
import os
import statistics
from collections import defaultdict

MECHS = ["junction", "iptables", "nft"]
NAMES = {
    "junction": "Junction (eBPF, tc on the pod's veth)",
    "iptables": "kube-proxy iptables mode (iptables-legacy)",
    "nft": "kube-proxy nftables mode",
}
SOCKET_NAMES = {
    "junction-sock": "Junction socket LB (cgroup connect4, pod in the agent's cgroup hierarchy)",
    "junction": "Junction per packet (same agent, pod opted out: JUNCTION_SOCKET_LB=false)",
}


def pct(values: list[float], p: float) -> float:
    """Nearest rank, as bench/timer.py."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(min(rank, len(ordered))) - 1]


def median_ci(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median: order statistics k and n-k+1,
    k the largest with P(Binomial(n, 1/2) <= k-1) <= (1 - confidence) / 2."""
    ordered = sorted(values)
    n = len(ordered)
    alpha = (1 - confidence) / 2
    k, cumulative = 0, 0.0
    while k < n:
        cumulative += math.comb(n, k) / 2**n
        if cumulative > alpha:
            break
        k += 1
    if k == 0:
        return ordered[0], ordered[-1]
    return ordered[k - 1], ordered[n - k]


def read_samples(path: str) -> tuple[dict[str, list[float]], dict[str, dict[int, list[float]]]]:
    """conncost's "LABEL ROUND NANOSECONDS" lines: µs per label, and per label and round."""
    samples: dict[str, list[float]] = defaultdict(list)
    per_round: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    with open(path) as f:
        for line in f:
            label, rnd, ns = line.split()
            us = int(ns) / 1000
            samples[label].append(us)
            per_round[label][int(rnd)].append(us)
    return samples, per_round


def paired_rounds(per_round: dict[str, dict[int, list[float]]], label: str, base: str) -> list[float]:
    """Per round: this label's p50 minus the base's p50 of the same round (paired, so a slow
    round on the shared machine cancels out)."""
    return [pct(per_round[label][r], 50) - pct(per_round[base][r], 50) for r in sorted(per_round[base])]


def paired_text(values: list[float]) -> str:
    low, high = median_ci(values)
    return f"{statistics.median(values):+.1f} [{low:+.1f}, {high:+.1f}]"


def conncost(args: argparse.Namespace) -> None:
    samples, per_round = read_samples(args.samples)
    sizes = [int(s) for s in args.sizes.split(",")]
    loads = dict(item.split("=", 1) for item in args.loads)
    floor = samples["floor"]
    f50, fmean = pct(floor, 50), statistics.fmean(floor)
    rounds = sorted(per_round["floor"])

    def paired(label: str, base: str = "floor") -> list[float]:
        return paired_rounds(per_round, label, base)

    mechs = (["junction-sock"] if args.socket_lb else []) + MECHS
    names = {**NAMES, **(SOCKET_NAMES if args.socket_lb else {})}

    paired_cell = paired_text

    print(
        f"Method: every target gets {args.rounds} rounds of {args.count} timed connections "
        f"({args.warmup} untimed warm-up connections before each round's batch), "
        f"{args.rounds * args.count} per target; within a round every target has its batch, the "
        "order rotating by one every round, so drift hits them alike and each round's batches are "
        "close in time (paired differences per round cancel the machine's slow and fast moments). One connection = socket(), blocking connect() to IP:port (returns "
        "when the SYN-ACK is in), close(); timed with CLOCK_MONOTONIC by a C client "
        "(bench/conncost.c, gcc -O2) that enters each client pod's netns itself (setns), so "
        "no `ip netns exec` is in any sample. The backend pod accepts and closes.\n"
    )
    print(
        f"**Floor** (plain ptp pods, no service rules, straight to the backend pod's IP): "
        f"p50 {f50:.1f} µs, mean {fmean:.1f} µs, p90 {pct(floor, 90):.1f} µs, "
        f"p99 {pct(floor, 99):.1f} µs over {len(floor)} connections. Round-to-round spread of "
        f"the floor's p50: {min(pct(per_round['floor'][r], 50) for r in rounds):.1f}–"
        f"{max(pct(per_round['floor'][r], 50) for r in rounds):.1f} µs.\n"
    )
    print("### Through the ClusterIP: overhead above the floor\n")
    print(
        "| services | mechanism | p50 (µs) | mean (µs) | p90 (µs) | overhead p50 (µs) | overhead mean (µs) "
        "| paired overhead: median of per-round p50 differences [95% CI] (µs) | ÷ floor (p50) |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---|---:|")
    overhead: dict[tuple[str, int], float] = {}
    for size in sizes:
        for mech in mechs:
            label = f"{mech}/{size}/vip"
            s = samples[label]
            overhead[(mech, size)] = statistics.median(paired(label))
            print(
                f"| {size:,} | {names[mech]} | {pct(s, 50):.1f} | {statistics.fmean(s):.1f} | {pct(s, 90):.1f} "
                f"| {pct(s, 50) - f50:+.1f} | {statistics.fmean(s) - fmean:+.1f} "
                f"| {paired_cell(paired(label))} | {pct(s, 50) / f50:.2f} |"
            )
    print()
    print("### Straight to the backend's IP in the same node (what every non-service connection pays)\n")
    print("| services | mechanism | p50 (µs) | mean (µs) | overhead p50 (µs) | overhead mean (µs) | paired overhead [95% CI] (µs) |")
    print("|---:|---|---:|---:|---:|---:|---|")
    for size in sizes:
        for mech in mechs:
            label = f"{mech}/{size}/direct"
            s = samples[label]
            print(
                f"| {size:,} | {names[mech]} | {pct(s, 50):.1f} | {statistics.fmean(s):.1f} "
                f"| {pct(s, 50) - f50:+.1f} | {statistics.fmean(s) - fmean:+.1f} | {paired_cell(paired(label))} |"
            )
    print()
    if args.socket_lb:
        print("### Goal (issue 17): socket path connection overhead ≤ 1 µs above the floor at every size\n")
        print(
            "Overhead: per round, the socket-path pod's ClusterIP p50 minus the floor's p50 (same round), "
            "median over rounds with its 95% confidence interval. Met when the whole interval is ≤ 1 µs, "
            "not met when it is entirely above 1 µs, undecided otherwise. For comparison: the same "
            "against the socket-path pod's own straight connection (same node, same cgroup), and the per-packet "
            "path's (opted-out pod) overhead.\n"
        )
        print("| services | socket path − floor [95% CI] (µs) | socket path − its straight connection [95% CI] (µs) | per packet − floor (µs) | socket − per packet [95% CI] (µs) | verdict |")
        print("|---:|---|---|---:|---|---|")
        for size in sizes:
            diff = paired(f"junction-sock/{size}/vip")
            d = statistics.median(diff)
            low, high = median_ci(diff)
            # Met only when the whole interval is at or below 1 µs: a median below 1 µs from a
            # wide interval (a node whose samples are faster than the floor's) proves nothing.
            verdict = "met" if high <= 1 else ("**not met**" if low > 1 else "undecided (the interval contains 1 µs)")
            own = paired(f"junction-sock/{size}/vip", f"junction-sock/{size}/direct")
            pp = paired(f"junction-sock/{size}/vip", f"junction/{size}/vip")
            print(
                f"| {size:,} | {paired_cell(diff)} | {paired_cell(own)} | {overhead[('junction', size)]:+.1f} "
                f"| {paired_cell(pp)} | {verdict} |"
            )
        print()
    print("### Goal: Junction's overhead no more than nftables' at every size\n")
    print(
        "Overheads: the paired medians above. Junction − nft: per round, Junction's ClusterIP p50 minus "
        "nftables' ClusterIP p50 (same round), median over rounds with its 95% confidence interval. "
        "Met when that median is ≤ 0; \"within noise\" when it is above 0 but the interval includes 0.\n"
    )
    print("| services | Junction (µs) | nftables (µs) | iptables (µs) | Junction − nft [95% CI] (µs) | iptables ÷ Junction | nft ÷ Junction | verdict |")
    print("|---:|---:|---:|---:|---|---:|---:|---|")
    for size in sizes:
        j, n, i = overhead[("junction", size)], overhead[("nft", size)], overhead[("iptables", size)]
        diff = paired(f"junction/{size}/vip", f"nft/{size}/vip")
        d = statistics.median(diff)
        low, high = median_ci(diff)
        if d <= 0:
            verdict = "met"
        elif low <= 0:
            verdict = "not met, within noise"
        else:
            verdict = "**not met**"

        def ratio(x: float) -> str:
            return f"{x / j:.1f}x" if j > 0.5 else "n/a (Junction ≈ 0)"

        print(f"| {size:,} | {j:+.1f} | {n:+.1f} | {i:+.1f} | {paired_cell(diff)} | {ratio(i)} | {ratio(n)} | {verdict} |")
    print()
    print("### Programming the nodes (setup, one sample each; see lb-programming.md for the real comparison)\n")
    print("| services | Junction: POST /v1/resources/apply (ms) | iptables-legacy-restore (ms) | nft -f, in transactions of 500 services (ms) |")
    print("|---:|---:|---:|---:|")
    for size in sizes:
        print(f"| {size:,} | {loads.get(f'junction-{size}', '')} | {loads.get(f'iptables-{size}', '')} | {loads.get(f'nft-{size}', '')} |")


FAMILY_NAMES = {
    "junction4": "Junction, IPv4",
    "junction6": "Junction, IPv6",
    "nft4": "kube-proxy nftables mode, IPv4 (ip table)",
    "nft6": "kube-proxy nftables mode, IPv6 (ip6 table)",
    "iptables4": "kube-proxy iptables mode, IPv4 (iptables-legacy)",
    "iptables6": "kube-proxy iptables mode, IPv6 (ip6tables-legacy)",
}


def conncost6(args: argparse.Namespace) -> None:
    """bench/ipv6.sh's connection half: every mechanism in both families, each against the
    floor of its own family; then issue 15's goal, Junction IPv6 against nftables IPv6."""
    samples, per_round = read_samples(args.samples)
    sizes = [int(s) for s in args.sizes.split(",")]
    loads = dict(item.split("=", 1) for item in args.loads)
    floors = {fam: samples[f"floor{fam}"] for fam in "46"}
    print(
        f"Method: as lb-connection-cost.md (bench/conncost.c; socket(), blocking connect(), close() "
        f"per connection, timed with CLOCK_MONOTONIC inside the client pod's netns), {args.rounds} rounds of "
        f"{args.count} timed connections per target ({args.warmup} untimed before each batch), every "
        "target once per round in an order that rotates by one each round, IPv4 and IPv6 targets "
        "interleaved in the same rounds. Overheads are per-round p50 differences against the floor of "
        "the same family (plain ptp pods, no rules, straight to the backend), median over rounds with a "
        "95% distribution-free interval.\n"
    )
    print("| floor | p50 (µs) | mean (µs) | p90 (µs) | connections |")
    print("|---|---:|---:|---:|---:|")
    for fam, values in floors.items():
        print(f"| IPv{fam} | {pct(values, 50):.1f} | {statistics.fmean(values):.1f} | {pct(values, 90):.1f} | {len(values)} |")
    print()
    overhead: dict[tuple[str, int], float] = {}
    for kind, title in (("vip", "Through the ClusterIP"), ("direct", "Straight to the backend's IP in the same node")):
        print(f"### {title}: overhead above the floor of the same family\n")
        print("| services | mechanism | p50 (µs) | mean (µs) | paired overhead [95% CI] (µs) |")
        print("|---:|---|---:|---:|---|")
        for size in sizes:
            for mech, name in FAMILY_NAMES.items():
                label = f"{mech}/{size}/{kind}"
                if label not in samples:
                    continue
                values, diffs = samples[label], paired_rounds(per_round, label, f"floor{mech[-1]}")
                if kind == "vip":
                    overhead[(mech, size)] = statistics.median(diffs)
                print(f"| {size:,} | {name} | {pct(values, 50):.1f} | {statistics.fmean(values):.1f} | {paired_text(diffs)} |")
        print()
    print("### Goal (issue 15): Junction's IPv6 connection overhead no more than nftables' IPv6, at every size\n")
    print(
        "Junction6 − nft6: per round, Junction's IPv6 ClusterIP p50 minus nftables' IPv6 ClusterIP p50, "
        "median over rounds [95% CI]; met when ≤ 0, \"within noise\" when above 0 with an interval that "
        "includes 0. IPv6 ÷ IPv4: Junction's overhead in each family (paired medians above).\n"
    )
    print("| services | Junction IPv4 (µs) | Junction IPv6 (µs) | Junction IPv6 ÷ IPv4 | nft IPv6 (µs) | ip6tables (µs) | Junction6 − nft6 [95% CI] (µs) | verdict |")
    print("|---:|---:|---:|---:|---:|---:|---|---|")
    for size in sizes:
        j4, j6 = overhead[("junction4", size)], overhead[("junction6", size)]
        n6, i6 = overhead[("nft6", size)], overhead[("iptables6", size)]
        diff = paired_rounds(per_round, f"junction6/{size}/vip", f"nft6/{size}/vip")
        d, (low, high) = statistics.median(diff), median_ci(diff)
        verdict = "met" if d <= 0 else "not met, within noise" if low <= 0 else "**not met**"
        # A ratio of overheads means something only when both are clearly above the floor.
        ratio = f"{j6 / j4:.2f}" if min(j4, j6) > 0.5 else "n/a (an overhead ≤ 0.5 µs)"
        print(f"| {size:,} | {j4:+.1f} | {j6:+.1f} | {ratio} | {n6:+.1f} | {i6:+.1f} | {paired_text(diff)} | {verdict} |")
    print()
    print("### Programming the nodes (setup, one sample each)\n")
    print("| services | Junction IPv4 apply (ms) | Junction IPv6 apply (ms) | iptables-legacy-restore (ms) | ip6tables-legacy-restore (ms) | nft ip (ms) | nft ip6 (ms) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        cells = [loads.get(f"{m}-{size}{fam}", "") for m in ("junction", "iptables", "nft") for fam in ("/4", "/6")]
        print(f"| {size:,} | " + " | ".join(cells) + " |")


def iperf(args: argparse.Namespace) -> None:
    runs: dict[tuple[str, int], list[float]] = defaultdict(list)
    by_round: dict[tuple[str, int], dict[int, float]] = defaultdict(dict)
    retrans: dict[tuple[str, int], list[int]] = defaultdict(list)
    paths = glob.glob(os.path.join(args.results, "*.json"))
    for path in sorted(paths, key=lambda p: int(os.path.basename(p).rsplit(".", 2)[1])):
        label, streams, rnd, _ = os.path.basename(path).rsplit(".", 3)
        with open(path) as f:
            data = json.load(f)
        end = data["end"]
        gbits = end["sum_received"]["bits_per_second"] / 1e9
        runs[(label, int(streams))].append(gbits)
        by_round[(label, int(streams))][int(rnd)] = gbits
        retrans[(label, int(streams))].append(end["sum_sent"].get("retransmits", 0))
    labels = ["straight", "junction-sock", "junction", "junction-straight", "nft", "iptables"]
    socket = any(label == "junction-sock" for label, _ in runs)
    names = {
        "junction-sock": "Junction ClusterIP, socket LB (pod in the agent's cgroup hierarchy)",
        "straight": "straight to the backend's IP (plain ptp pods)",
        "junction": "Junction ClusterIP" + (", per packet (pod opted out: JUNCTION_SOCKET_LB=false)" if socket else ""),
        "junction-straight": "straight to the backend's IP between Junction pods (programs run, no translation)",
        "nft": "kube-proxy nftables mode ClusterIP (DNAT)",
        "iptables": "kube-proxy iptables mode ClusterIP (DNAT)",
    }
    print(
        f"Method: iperf3 client in the client pod, server in the backend pod, {args.seconds} s per run "
        f"(`-t {args.seconds} -O 1`: the first second is omitted), TCP, default window; each run's "
        "received throughput (`end.sum_received`). The targets rotate every round so drift hits them "
        f"alike; {args.rounds} rounds per stream count. Each node has {args.services} filler services "
        f"× {args.backends} backends besides svc-iperf.\n"
    )
    for streams in sorted({s for _, s in runs}):
        base = statistics.median(runs[("straight", streams)])
        print(f"### {streams} stream{'s' if streams > 1 else ''} (`-P {streams}`)\n")
        print("| path | median (Gbit/s) | runs, round by round (Gbit/s) | retransmits (median) | ÷ straight (medians) | ÷ straight, same round: median [min, max] | goal ≥ 95% (socket LB: ≥ 99%) |")
        print("|---|---:|---|---:|---:|---|---|")
        for label in labels:
            values = runs.get((label, streams))
            if not values:
                continue
            m = statistics.median(values)
            same = [by_round[(label, streams)][r] / by_round[("straight", streams)][r] for r in sorted(by_round[(label, streams)])]
            paired = f"{statistics.median(same):.3f} [{min(same):.2f}, {max(same):.2f}]"
            need = 0.99 if label == "junction-sock" else 0.95
            goal = "" if label == "straight" else ("met" if m / base >= need else "**not met**")
            print(
                f"| {names[label]} | {m:.2f} | {', '.join(f'{v:.2f}' for v in values)} "
                f"| {statistics.median(retrans[(label, streams)]):.0f} | {m / base:.3f} | {paired} | {goal} |"
            )
        print()


def pairdiff(args: argparse.Namespace) -> None:
    """One table cell group for veth-prog-cost.sh: "BASE P50|TARGET P50|PAIRED [95% CI]"."""
    samples, per_round = read_samples(args.samples)
    print(
        f"{pct(samples[args.base], 50):.1f}|{pct(samples[args.target], 50):.1f}|"
        f"{paired_text(paired_rounds(per_round, args.target, args.base))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("conncost")
    c6 = sub.add_parser("conncost6")
    for c in (c, c6):
        c.add_argument("--samples", required=True)
        c.add_argument("--sizes", required=True)
        c.add_argument("--backends", type=int, required=True)
        c.add_argument("--rounds", type=int, required=True)
        c.add_argument("--count", type=int, required=True)
        c.add_argument("--warmup", type=int, required=True)
        c.add_argument("--loads", nargs="*", default=[])
        c.add_argument("--socket-lb", action="store_true")
    i = sub.add_parser("iperf")
    i.add_argument("--results", required=True)
    i.add_argument("--seconds", type=int, required=True)
    i.add_argument("--rounds", type=int, required=True)
    i.add_argument("--services", type=int, required=True)
    i.add_argument("--backends", type=int, required=True)
    d = sub.add_parser("pairdiff")
    d.add_argument("--samples", required=True)
    d.add_argument("--base", required=True)
    d.add_argument("--target", required=True)
    args = parser.parse_args()
    {"conncost": conncost, "conncost6": conncost6, "iperf": iperf, "pairdiff": pairdiff}[args.command](args)


if __name__ == "__main__":
    main()
