#!/usr/bin/env python3
"""Programming time of the same services through the kernel's other two service
dataplanes, written as kube-proxy writes them, and through junction-agent's API.

  lbprog.py rules --services N --backends B --full-runs K --changes M
                  --tool iptables|iptables-legacy|nft|nft-batched
      Run INSIDE a throwaway network namespace (programming.sh does `ip netns exec`, so
      its cost is never in a sample). Generates the rule files, then times K full
      restores (the table emptied between them, untimed) and M one-backend changes.
  lbprog.py agent --socket PATH --bench BIN --services N --backends B --changes M
      Times POST /v1/resources/apply of every Service + EndpointSlice (YAML from
      `junction-bench yaml`), then M applies of service 0's EndpointSlice alone with its
      first backend swapped back and forth.

  lbprog.py gen --dir D --services N --measured IP [--iperf IP] [--family ipv4|ipv6]
      Writes the same services for iptables-restore, nft -f and the agent's API into D,
      one of them pointing at a real backend (connection-cost.sh, throughput.sh; with
      --family ipv6 for ip6tables-restore, nft's ip6 table and IPv6 Services: ipv6.sh).
  lbprog.py apply --socket PATH --file YAML
      POST /v1/resources/apply of one file.

rules and agent print one JSON object of millisecond samples on stdout. The layout (service i:
ClusterIP 10.96.0.0 + i + 1, port 80/TCP "http"; backend j: 10.128.0.0 + i*B + j + 1,
port 8080; the change puts 10.200.0.1 in place of service 0's first backend) restates
bench/Sources/JunctionBench/ServiceLayout.swift.
"""

import argparse
import base64
from dataclasses import dataclass
import hashlib
import ipaddress
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

CHANGED = "10.200.0.1"


def vip(i: int, family: str = "ipv4") -> str:
    if family == "ipv6":
        return str(ipaddress.IPv6Address("fd00:96::") + i + 1)
    return str(ipaddress.IPv4Address(0x0A600000 + i + 1))


def backend(i: int, j: int, b: int, variant: int = 0, family: str = "ipv4") -> str:
    if family == "ipv6":
        return str(ipaddress.IPv6Address("fd00:128::") + i * b + j + 1)
    if variant == 1 and i == 0 and j == 0:
        return CHANGED
    return str(ipaddress.IPv4Address(0x0A800000 + i * b + j + 1))


# The IPv6 twins (bench/ipv6.sh): ClusterIPs fd00:96::/64, backends fd00:128::/64, the
# cluster's own addresses fd00::/8 (10.0.0.0/8 for IPv4); each rule set says the family the
# way its tool does. A family is read off an address, so one Svc carries it.


def is6(address: str) -> bool:
    return ":" in address


def host(address: str) -> str:
    return f"{address}/128" if is6(address) else f"{address}/32"


def cluster(address: str) -> str:
    return "fd00::/8" if is6(address) else "10.0.0.0/8"


def hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if is6(address) else f"{address}:{port}"


@dataclass(frozen=True)
class Svc:
    """One Service with one TCP port named "http" in namespace "bench", and its ready
    endpoints (address, target port)."""

    name: str
    vip: str
    port: int
    backends: tuple[tuple[str, int], ...]


def layout(n: int, b: int, variant: int = 0, family: str = "ipv4") -> list[Svc]:
    """The benchmark's services: svc-i at vip(i):80 -> backend(i, j):8080 (IPv6: svc6-i, so
    one agent can hold both families' sets)."""
    name = "svc6" if family == "ipv6" else "svc"
    return [
        Svc(f"{name}-{i}", vip(i, family), 80, tuple((backend(i, j, b, variant, family), 8080) for j in range(b)))
        for i in range(n)
    ]


def short_hash(text: str) -> str:
    # kube-proxy's chain names: base32 of a SHA-256 over the service port (and endpoint).
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


# --- iptables (kube-proxy iptables mode) -----------------------------------------------


def ipt_svc(s: Svc) -> str:
    return "KUBE-SVC-" + short_hash(f"bench/{s.name}:httptcp")


def ipt_sep(s: Svc, ep: str, port: int) -> str:
    return "KUBE-SEP-" + short_hash(f"bench/{s.name}:httptcp{ep}:{port}")


def ipt_top(services: list[Svc]) -> tuple[list[str], list[str]]:
    """The chains kube-proxy rewrites on every sync, KUBE-SERVICES in full."""
    lines = [":KUBE-SERVICES - [0:0]", ":KUBE-POSTROUTING - [0:0]", ":KUBE-MARK-MASQ - [0:0]"]
    rules = [
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
    ]
    for s in services:
        rules.append(
            f'-A KUBE-SERVICES -m comment --comment "bench/{s.name}:http cluster IP" '
            f"-m tcp -p tcp -d {host(s.vip)} --dport {s.port} -j {ipt_svc(s)}"
        )
    return lines, rules


def ipt_service(s: Svc) -> tuple[list[str], list[str]]:
    b = len(s.backends)
    chains = [f":{ipt_svc(s)} - [0:0]"] + [f":{ipt_sep(s, ep, port)} - [0:0]" for ep, port in s.backends]
    rules = [
        f'-A {ipt_svc(s)} -m comment --comment "bench/{s.name}:http cluster IP" -m tcp -p tcp '
        f"-d {host(s.vip)} --dport {s.port} ! -s {cluster(s.vip)} -j KUBE-MARK-MASQ"
    ]
    for j, (ep, port) in enumerate(s.backends):
        left = b - j
        stat = f"-m statistic --mode random --probability {1 / left:.10f} " if left > 1 else ""
        rules.append(
            f'-A {ipt_svc(s)} -m comment --comment "bench/{s.name}:http -> {ep}:{port}" {stat}-j {ipt_sep(s, ep, port)}'
        )
    for ep, port in s.backends:
        rules.append(f"-A {ipt_sep(s, ep, port)} -m comment --comment bench/{s.name}:http -s {host(ep)} -j KUBE-MARK-MASQ")
        rules.append(
            f"-A {ipt_sep(s, ep, port)} -m comment --comment bench/{s.name}:http -m tcp -p tcp -j DNAT --to-destination {hostport(ep, port)}"
        )
    return chains, rules


def ipt_full(services: list[Svc]) -> str:
    chains, rules = ipt_top(services)
    chains = [":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]"] + chains
    rules = [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    ] + rules
    for s in services:
        c, r = ipt_service(s)
        chains += c
        rules += r
    return "*nat\n" + "\n".join(chains + rules) + "\nCOMMIT\n"


def ipt_change(n: int, b: int, variant: int, partial_only: bool) -> str:
    """kube-proxy's partial sync (1.27+): the top-level chains in full, plus the changed
    service's chains, the new endpoint chain, and -X of the stale one. `partial_only`:
    the changed chains alone (a lower bound no kube-proxy writes)."""
    services = layout(n, b, variant)
    chains, rules = ([], []) if partial_only else ipt_top(services)
    c, r = ipt_service(services[0])
    chains += c
    rules += r
    # A chain must be empty to be deleted: declaring it flushes it (as kube-proxy does).
    old = ipt_sep(services[0], backend(0, 0, b, 1 - variant), 8080)
    return "*nat\n" + "\n".join(chains + [f":{old} - [0:0]"] + rules + [f"-X {old}"]) + "\nCOMMIT\n"


# --- nftables (kube-proxy nftables mode) ----------------------------------------------
#
# The shape of kube-proxy's nftables proxier (pkg/proxy/nftables): one table, one
# `service-ips` verdict map keyed by ip . proto . port, a chain per service port whose
# last rule is `numgen random mod N vmap { 0 : goto endpoint-..., ... }` (an anonymous
# map inline in the rule), a chain per endpoint with its dnat.


def nft_svc(s: Svc) -> str:
    return f"service-{short_hash(f'bench/{s.name}:httptcp')[:8]}-bench/{s.name}/tcp/http"


def nft_ep(s: Svc, ep: str, port: int) -> str:
    # A colon cannot appear in a chain name: an IPv6 endpoint's is written with dots.
    shown = ep.replace(":", ".")
    return f"endpoint-{short_hash(f'bench/{s.name}:httptcp{ep}:{port}')[:8]}-bench/{s.name}/tcp/http__{shown}/{port}"


T = "ip kube-proxy"
T6 = "ip6 kube-proxy"


def nft_family(address: str) -> tuple[str, str]:
    """The table kube-proxy's nftables mode uses for an address's family, and its keyword."""
    return (T6, "ip6") if is6(address) else (T, "ip")


def nft_service(s: Svc, flush: bool) -> list[str]:
    t, ip = nft_family(s.vip)
    lines = []
    for ep, port in s.backends:
        lines += [
            f"add chain {t} {nft_ep(s, ep, port)}",
            f"add rule {t} {nft_ep(s, ep, port)} {ip} saddr {ep} jump mark-for-masquerade",
            f"add rule {t} {nft_ep(s, ep, port)} meta l4proto tcp dnat to {hostport(ep, port)}",
        ]
    vmap = " , ".join(f"{j} : goto {nft_ep(s, ep, port)}" for j, (ep, port) in enumerate(s.backends))
    lines += [f"add chain {t} {nft_svc(s)}"]
    if flush:
        lines += [f"flush chain {t} {nft_svc(s)}"]
    lines += [
        f"add rule {t} {nft_svc(s)} {ip} daddr {s.vip} tcp dport {s.port} {ip} saddr != {cluster(s.vip)} jump mark-for-masquerade",
        f"add rule {t} {nft_svc(s)} numgen random mod {len(s.backends)} vmap {{ {vmap} }}",
    ]
    return lines


def nft_base(family: str = "ipv4") -> list[str]:
    t, ip = nft_family("::" if family == "ipv6" else "0.0.0.0")
    kind = "ipv6_addr" if family == "ipv6" else "ipv4_addr"
    return [
        f"add table {t}",
        f"add chain {t} mark-for-masquerade",
        f"add rule {t} mark-for-masquerade mark set mark or 0x4000",
        f"add chain {t} services",
        f"add map {t} service-ips {{ type {kind} . inet_proto . inet_service : verdict ; }}",
        f"add rule {t} services {ip} daddr . meta l4proto . th dport vmap @service-ips",
        f"add chain {t} nat-prerouting {{ type nat hook prerouting priority -100 ; }}",
        f"add rule {t} nat-prerouting jump services",
        f"add chain {t} nat-output {{ type nat hook output priority -100 ; }}",
        f"add rule {t} nat-output jump services",
    ]


def nft_services(services: list[Svc]) -> list[str]:
    lines = []
    for s in services:
        lines += nft_service(s, flush=False)
        t = nft_family(s.vip)[0]
        lines.append(f"add element {t} service-ips {{ {s.vip} . tcp . {s.port} : goto {nft_svc(s)} }}")
    return lines


def nft_full(services: list[Svc]) -> str:
    """Everything in one `nft -f` transaction, as kube-proxy's full sync writes it."""
    return "\n".join(nft_base() + nft_services(services)) + "\n"


def nft_batches(services: list[Svc], per: int, family: str = "ipv4") -> list[str]:
    """The same ruleset in several transactions of `per` services each. kube-proxy never
    splits a sync; this exists because this kernel's cost per transaction grows with the
    square of its size (see bench/README.md), and the end result is the same ruleset."""
    out = []
    for k in range(0, max(len(services), 1), per):
        head = nft_base(family) if k == 0 else []
        out.append("\n".join(head + nft_services(services[k : k + per])) + "\n")
    return out


def nft_change(b: int, variant: int) -> str:
    """kube-proxy nftables mode's sync of one changed service: the new endpoint chain, the
    service chain flushed and rewritten, the stale endpoint chain deleted; one transaction."""
    s0 = layout(1, b, variant)[0]
    old = backend(0, 0, b, 1 - variant)
    return "\n".join(nft_service(s0, flush=True) + [f"delete chain {T} {nft_ep(s0, old, 8080)}"]) + "\n"


# --- junction-agent (the same services as Kubernetes objects) ---------------------------


def yaml_objects(services: list[Svc]) -> str:
    """Every Service and its EndpointSlice, as `junction-bench yaml` prints them (and
    `kubectl get -o yaml` would list them)."""
    parts = []
    for s in services:
        target = s.backends[0][1] if s.backends else s.port
        # IPv6: the Service says its family as a single-stack IPv6 Service does.
        family = f"  clusterIPs: [{s.vip}]\n  ipFamilies: [IPv6]\n  ipFamilyPolicy: SingleStack\n" if is6(s.vip) else ""
        parts.append(
            "---\napiVersion: v1\nkind: Service\n"
            f"metadata: {{name: {s.name}, namespace: bench}}\n"
            f"spec:\n  clusterIP: {s.vip}\n{family}  ports:\n"
            f"  - {{name: http, port: {s.port}, protocol: TCP, targetPort: {target}}}\n"
        )
        parts.append(
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
            f"  name: {s.name}-1\n  namespace: bench\n  labels: {{kubernetes.io/service-name: {s.name}}}\n"
            f"addressType: {'IPv6' if is6(s.vip) else 'IPv4'}\nports:\n- {{name: http, port: {target}, protocol: TCP}}\nendpoints:\n"
        )
        for ep, _ in s.backends:
            parts.append(f'- addresses: ["{ep}"]\n  conditions: {{ready: true, serving: true, terminating: false}}\n')
    return "".join(parts)


# --- timing -------------------------------------------------------------------------------


class TooSlow(Exception):
    pass


TIMEOUT = 300.0


def run_file(argv: list[str], path: str) -> float:
    with open(path, "rb") as f:
        start = time.perf_counter_ns()
        try:
            done = subprocess.run(argv, stdin=f, capture_output=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            # subprocess.run has killed it; the tool's result is "did not finish".
            raise TooSlow()
        elapsed = (time.perf_counter_ns() - start) / 1e6
    if done.returncode != 0:
        sys.exit(f"lbprog: {' '.join(argv)} < {path} failed: {done.stderr.decode()[:2000]}")
    return elapsed


def sh(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"lbprog: {' '.join(argv)} failed: {done.stderr[:2000]}")
    return done.stdout


def rules(args: argparse.Namespace) -> None:
    n, b = args.services, args.backends
    out: dict[str, object] = {"tool": args.tool, "services": n, "backends": b}
    with tempfile.TemporaryDirectory(prefix="lbprog.") as tmp:
        def write(name: str, text: str) -> str:
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                f.write(text)
            return path

        if args.tool in ("iptables", "iptables-legacy"):
            prefix = "" if args.tool == "iptables" else "-legacy"
            restore = [f"iptables{prefix}-restore", "--noflush"]
            full = write("full", ipt_full(layout(n, b)))
            changes = [write(f"change{v}", ipt_change(n, b, v, False)) for v in (0, 1)]
            minimal = [write(f"minimal{v}", ipt_change(n, b, v, True)) for v in (0, 1)]

            def reset() -> None:
                sh([f"iptables{prefix}", "-t", "nat", "-F"])
                sh([f"iptables{prefix}", "-t", "nat", "-X"])

            def check() -> None:
                saved = sh([f"iptables{prefix}-save", "-t", "nat"])
                seps = sum(1 for line in saved.splitlines() if line.startswith(":KUBE-SEP-"))
                if seps != n * b:
                    sys.exit(f"lbprog: {seps} KUBE-SEP chains after restore, expected {n * b}")
        else:
            restore = ["nft", "-f", "-"]
            if args.tool == "nft":
                full = write("full", nft_full(layout(n, b)))
            else:
                full = [write(f"full{k}", text) for k, text in enumerate(nft_batches(layout(n, b), args.nft_batch))]
            changes = [write(f"change{v}", nft_change(b, v)) for v in (0, 1)]
            minimal = []

            def reset() -> None:
                subprocess.run(["nft", "delete", "table", "ip", "kube-proxy"], capture_output=True)

            def check() -> None:
                listed = sh(["nft", "list", "table", "ip", "kube-proxy"])
                eps = listed.count('chain "endpoint-') + listed.count("chain endpoint-")
                if eps != n * b:
                    sys.exit(f"lbprog: {eps} endpoint chains after nft -f, expected {n * b}")

        out["full_bytes"] = sum(os.path.getsize(p) for p in (full if isinstance(full, list) else [full]))
        if isinstance(full, list):
            out["transactions"] = len(full)
        out["change_bytes"] = os.path.getsize(changes[1])
        try:
            timed_runs(args, out, reset, check, restore, full, changes, minimal)
        except TooSlow:
            out["timeout"] = TIMEOUT
        reset()
    print(json.dumps(out))


def timed_runs(args, out, reset, check, restore, full, changes, minimal) -> None:
    """K full restores (the table emptied before each, untimed), then M changes alternating
    (variant 1 swaps the backend in, variant 0 puts it back), then for iptables M minimal
    ones. Samples go into `out` as they come, so a time-out keeps the finished ones."""
    out["full"] = []
    out["full_cpu"] = []
    for _ in range(args.full_runs):
        reset()
        # A list of files: one transaction each, timed together. CPU time (user + sys of the
        # tool, kernel work of its netlink batches included) is kept beside the wall time:
        # on a shared machine the wall time also counts waiting for a CPU.
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out["full"].append(sum(run_file(restore, p) for p in (full if isinstance(full, list) else [full])))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        out["full_cpu"].append(1000 * (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime))
    check()
    out["change"] = []
    for k in range(args.changes):
        out["change"].append(run_file(restore, changes[(k + 1) % 2]))
    if args.changes % 2 == 1:
        run_file(restore, changes[0])
    check()
    if minimal:
        out["change_minimal"] = []
        for k in range(args.changes):
            out["change_minimal"].append(run_file(restore, minimal[(k + 1) % 2]))
        if args.changes % 2 == 1:
            run_file(restore, minimal[0])
        check()


def post(sock: str, path: str, body: bytes) -> tuple[int, bytes]:
    """One request on a fresh AF_UNIX connection, raw HTTP/1.1, read to EOF."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(600)
    conn.connect(sock)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: junction-agent\r\nConnection: close\r\n"
        f"Content-Type: application/yaml\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    conn.sendall(head.encode() + body)
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    conn.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


def agent(args: argparse.Namespace) -> None:
    def yaml(*extra: str) -> bytes:
        return subprocess.run(
            [args.bench, "yaml", "--services", str(args.services), "--backends", str(args.backends), *extra],
            check=True, capture_output=True,
        ).stdout

    full = yaml()
    changes = [yaml("--change", "0"), yaml("--change", "1")]
    out: dict[str, object] = {"full_bytes": len(full), "change_bytes": len(changes[1])}

    def timed(body: bytes) -> float:
        start = time.perf_counter_ns()
        status, answer = post(args.socket, "/v1/resources/apply", body)
        elapsed = (time.perf_counter_ns() - start) / 1e6
        if status != 200:
            sys.exit(f"lbprog: apply answered {status}: {answer[:2000].decode(errors='replace')}")
        return elapsed

    out["full"] = [timed(full)]
    out["change"] = [timed(changes[(k + 1) % 2]) for k in range(args.changes)]
    print(json.dumps(out))


def pct(values: list[float], p: float) -> float:
    """Nearest rank, as bench/timer.py."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(min(rank, len(ordered))) - 1]


def report(args: argparse.Namespace) -> None:
    """The summary table of programming.sh from the JSON the other subcommands printed;
    without --agent, the rules alone and no ratio columns."""
    rows = []
    cpu: dict[int, list[float] | None] = {}
    timeouts = []
    a = None
    if args.agent:
        with open(args.agent) as f:
            a = json.load(f)
        rows.append(("junction-agent: `POST /v1/resources/apply` (HTTP round trip)", a["full"], a["change"]))
    names = {
        "iptables": "iptables-restore --noflush (iptables-nft)",
        "iptables-legacy": "iptables-legacy-restore --noflush",
        "nft": "nft -f (kube-proxy nftables mode, one transaction)",
        "nft-batched": "nft -f, the same ruleset in transactions of 500 services (kube-proxy never splits)",
    }
    for path in args.rules:
        with open(path) as f:
            r = json.load(f)
        if "timeout" in r:
            timeouts.append((names[r["tool"]], r["timeout"], r.get("full", [])))
            continue
        cpu[len(rows)] = r.get("full_cpu")
        rows.append((names[r["tool"]] + (": kube-proxy partial sync" if "change_minimal" in r else ""), r["full"], r["change"]))
        if "change_minimal" in r:
            cpu[len(rows)] = r.get("full_cpu")
            rows.append((names[r["tool"]] + ": changed chains only (lower bound)", r["full"], r["change_minimal"]))
    if a:
        print(
            f"Request bodies: full apply {a['full_bytes']} bytes of YAML, one change {a['change_bytes']} "
            "bytes (one EndpointSlice). The agent's full apply is one sample (a repeat would be a no-op).\n"
        )
        base_full = pct(rows[0][1], 50)
        base_change = pct(rows[0][2], 50)
        print("| dataplane, tool | full apply, p50 (ms) [runs] | agent ÷ this | one change p50 (ms) | p90 | max | agent ÷ this | one change < 10 ms |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
    else:
        print("| dataplane, tool | full apply, p50 (ms) [runs] | its CPU time, user + sys, p50 (ms) | one change p50 (ms) | p90 | max | one change < 10 ms |")
        print("|---|---:|---:|---:|---:|---:|---|")
    for k, (name, full, change) in enumerate(rows):
        f50, c50 = pct(full, 50), pct(change, 50)
        if a:
            print(
                f"| {name} | {f50:.0f} [{len(full)}] | {base_full / f50:.3g}x | {c50:.1f} | {pct(change, 90):.1f} | "
                f"{max(change):.1f} | {base_change / c50:.3g}x | {'yes' if c50 < 10 else 'no'} |"
            )
        else:
            used = f"{pct(cpu[k], 50):.0f}" if cpu.get(k) else ""
            print(
                f"| {name} | {f50:.0f} [{len(full)}] | {used} | {c50:.1f} | {pct(change, 90):.1f} | "
                f"{max(change):.1f} | {'yes' if c50 < 10 else 'no'} |"
            )
    empty = "| | | | | | |" if a else "| | | | |"
    for name, limit, done in timeouts:
        finished = f"{len(done)} finished, then " if done else ""
        print(f"| {name} | > {limit * 1000:.0f} ({finished}killed at the time limit) {empty} not measured |")

def measured_layout(n: int, b: int, measured: str, iperf: str | None, family: str = "ipv4") -> list[Svc]:
    """The benchmark's n services, with service n // 2 (the middle of KUBE-SERVICES, where a
    service picked at random sits on average) pointing at one real backend, measured:8080;
    with `iperf`, one more service, svc-iperf at 10.97.0.1:5201 -> iperf:5201, last."""
    services = layout(n, b, family=family)
    m = n // 2
    services[m] = Svc(services[m].name, services[m].vip, 80, ((measured, 8080),))
    if iperf:
        services.append(Svc("svc-iperf", "10.97.0.1", 5201, ((iperf, 5201),)))
    return services


def gen(args: argparse.Namespace) -> None:
    """Writes the same services three ways into --dir: iptables.rules (for
    iptables-restore), nft-K.nft (for nft -f, --nft-batch services per file), objects.yaml
    (for POST /v1/resources/apply); prints the measured service's ClusterIP."""
    services = measured_layout(args.services, args.backends, args.measured, args.iperf, args.family)
    os.makedirs(args.dir, exist_ok=True)
    with open(os.path.join(args.dir, "iptables.rules"), "w") as f:
        f.write(ipt_full(services))
    for k, text in enumerate(nft_batches(services, args.nft_batch, args.family)):
        with open(os.path.join(args.dir, f"nft-{k:04d}.nft"), "w") as f:
            f.write(text)
    with open(os.path.join(args.dir, "objects.yaml"), "w") as f:
        f.write(yaml_objects(services))
    print(services[args.services // 2].vip)


def apply(args: argparse.Namespace) -> None:
    """POST /v1/resources/apply of a YAML file; prints the elapsed ms, fails unless 200."""
    with open(args.file, "rb") as f:
        body = f.read()
    start = time.perf_counter_ns()
    status, answer = post(args.socket, "/v1/resources/apply", body)
    elapsed = (time.perf_counter_ns() - start) / 1e6
    if status != 200:
        sys.exit(f"lbprog: apply answered {status}: {answer[:2000].decode(errors='replace')}")
    print(f"{elapsed:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("rules")
    r.add_argument("--tool", choices=["iptables", "iptables-legacy", "nft", "nft-batched"], required=True)
    r.add_argument("--nft-batch", type=int, default=500, help="services per transaction for nft-batched")
    a = sub.add_parser("agent")
    a.add_argument("--socket", required=True)
    a.add_argument("--bench", required=True)
    for p in (r, a):
        p.add_argument("--services", type=int, default=10000)
        p.add_argument("--backends", type=int, default=10)
        p.add_argument("--changes", type=int, default=20)
    r.add_argument("--full-runs", type=int, default=3)
    r.add_argument("--timeout", type=float, default=300.0, help="seconds per restore")
    s = sub.add_parser("report")
    s.add_argument("--agent", help="the agent's JSON; without it, the rules alone (no ratio columns)")
    s.add_argument("--rules", nargs="+", default=[])
    g = sub.add_parser("gen")
    g.add_argument("--dir", required=True)
    g.add_argument("--services", type=int, required=True)
    g.add_argument("--backends", type=int, default=10)
    g.add_argument("--measured", required=True, help="the real backend's IP")
    g.add_argument("--iperf", help="the iperf3 server's IP (adds svc-iperf)")
    g.add_argument("--nft-batch", type=int, default=500)
    g.add_argument("--family", choices=["ipv4", "ipv6"], default="ipv4", help="ipv6: ip6tables-restore, nft ip6, IPv6 Services")
    p = sub.add_parser("apply")
    p.add_argument("--socket", required=True)
    p.add_argument("--file", required=True)
    args = parser.parse_args()
    global TIMEOUT
    TIMEOUT = getattr(args, "timeout", TIMEOUT)
    {"rules": rules, "agent": agent, "report": report, "gen": gen, "apply": apply}[args.command](args)


if __name__ == "__main__":
    main()
