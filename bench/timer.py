#!/usr/bin/env python3
"""Timing helper for bench/cni-latency.sh (stdlib only, Python >= 3.11).

Two subcommands:

  run      Started ONCE inside the node network namespace
           (`ip netns exec NODE python3 bench/timer.py run ...`). For every iteration
           it creates a fresh pod netns per plugin, then times only the plugin's own
           exec (subprocess.run of the plugin binary, clocked with
           time.perf_counter_ns) for VERSION, ADD and DEL. Junction and ptp alternate
           inside each iteration, and which one goes first alternates from one
           iteration to the next, so drift (thermal, a neighbour's build, page cache)
           hits both equally. Every call's exit status is checked; any failure aborts
           with the plugin's stdout and stderr. Samples are written as JSON.

  summary  Reads that JSON and prints the Markdown table and the ratio lines.

Pod namespaces: `ip netns exec` puts this process in a private mount namespace whose
mounts are a *slave* of the caller's, so an `ip netns add` run from here would be
visible to nobody else and the benchmark script could not clean it up. Pod namespaces
are therefore created and deleted in the caller's mount namespace
(`nsenter --mount=/proc/<script pid>/ns/mnt ip netns add ...`); the mount propagates
into ours, so the plugin sees it. Creation and deletion are not timed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time

PLUGINS = ("junction", "ptp")
OPERATIONS = ("ADD", "DEL", "VERSION")
CALL_TIMEOUT_S = 60


class BenchmarkAborted(Exception):
    pass


def sh(argv: list[str]) -> None:
    """Untimed set-up/tear-down command; failure aborts."""
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchmarkAborted(
            f"set-up command failed ({done.returncode}): {' '.join(argv)}\n{done.stdout}{done.stderr}"
        )


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.binaries = {"junction": args.junction_bin, "ptp": args.ptp_bin}
        self.configs = {
            "junction": open(args.junction_conf, "rb").read(),
            "ptp": open(args.ptp_conf, "rb").read(),
        }
        self.version_stdin = json.dumps({"cniVersion": "1.0.0"}).encode()
        self.samples: dict[str, dict[str, list[int]]] = {
            p: {op: [] for op in OPERATIONS} for p in PLUGINS
        }
        self.live_netns: set[str] = set()
        self.host_mnt = f"/proc/{args.host_pid}/ns/mnt"

    # -- pod namespaces, in the caller's mount namespace ------------------------------

    def netns_add(self, name: str) -> None:
        sh(["nsenter", f"--mount={self.host_mnt}", "--", "ip", "netns", "add", name])
        self.live_netns.add(name)
        if not os.path.exists(f"/var/run/netns/{name}"):
            raise BenchmarkAborted(f"pod netns {name} is not visible in the node netns' mount namespace")

    def netns_del(self, name: str) -> None:
        sh(["nsenter", f"--mount={self.host_mnt}", "--", "ip", "netns", "del", name])
        self.live_netns.discard(name)

    # -- one timed plugin exec -------------------------------------------------------

    def call(self, plugin: str, command: str, container_id: str = "", netns: str = "") -> tuple[int, bytes]:
        # Exactly what `env -i CNI_...=...` would give the plugin: no PATH, no HOME, nothing else.
        env = {"CNI_COMMAND": command, "CNI_PATH": self.args.cni_path}
        if command == "VERSION":
            stdin = self.version_stdin
        else:
            env.update(
                CNI_CONTAINERID=container_id,
                CNI_NETNS=f"/var/run/netns/{netns}",
                CNI_IFNAME="eth0",
            )
            stdin = self.configs[plugin]
        argv = [self.binaries[plugin]]
        start = time.perf_counter_ns()
        try:
            done = subprocess.run(
                argv, input=stdin, capture_output=True, env=env, timeout=CALL_TIMEOUT_S
            )
        except subprocess.TimeoutExpired as timeout:
            raise BenchmarkAborted(
                f"{plugin} {command} ({container_id or '-'}) timed out after {CALL_TIMEOUT_S}s\n"
                f"stdout: {timeout.stdout!r}\nstderr: {timeout.stderr!r}"
            ) from None
        elapsed = time.perf_counter_ns() - start
        if done.returncode != 0:
            raise BenchmarkAborted(
                f"{plugin} {command} ({container_id or '-'}, netns {netns or '-'}) "
                f"exited with {done.returncode}\n"
                f"--- plugin stdout ---\n{done.stdout.decode(errors='replace')}\n"
                f"--- plugin stderr ---\n{done.stderr.decode(errors='replace')}"
            )
        self.check_output(plugin, command, container_id, done.stdout)
        return elapsed, done.stdout

    def check_output(self, plugin: str, command: str, container_id: str, stdout: bytes) -> None:
        """A zero exit with a nonsensical answer is a failure too."""
        if command == "DEL":
            return
        try:
            result = json.loads(stdout)
        except ValueError:
            raise BenchmarkAborted(
                f"{plugin} {command} ({container_id or '-'}) exited 0 but its stdout is not JSON:\n"
                f"{stdout.decode(errors='replace')}"
            ) from None
        if command == "VERSION":
            ok = "1.0.0" in result.get("supportedVersions", [])
        else:
            ips = result.get("ips") or []
            subnet_prefix = self.args.subnets[plugin]
            ok = bool(ips) and all(ip.get("address", "").startswith(subnet_prefix) for ip in ips)
        if not ok:
            raise BenchmarkAborted(
                f"{plugin} {command} ({container_id or '-'}) exited 0 with an unexpected result:\n"
                f"{stdout.decode(errors='replace')}"
            )

    # -- the loop --------------------------------------------------------------------

    def iteration(self, index: int, record: bool) -> None:
        order = PLUGINS if index % 2 == 0 else PLUGINS[::-1]
        tag = f"{index}" if record else f"w{index}"
        for plugin in order:
            short = plugin[0]  # j / p
            netns = f"{self.args.prefix}-{short}{tag}"
            container_id = f"{self.args.prefix}-{plugin}-{tag}"
            self.netns_add(netns)
            version_ns, _ = self.call(plugin, "VERSION")
            add_ns, _ = self.call(plugin, "ADD", container_id, netns)
            del_ns, _ = self.call(plugin, "DEL", container_id, netns)
            self.netns_del(netns)
            if record:
                self.samples[plugin]["VERSION"].append(version_ns)
                self.samples[plugin]["ADD"].append(add_ns)
                self.samples[plugin]["DEL"].append(del_ns)

    def verify_clean(self) -> None:
        """After the last DEL: no veth left in the node netns, no IPAM allocation left."""
        links = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True, text=True)
        if links.returncode != 0 or links.stdout.strip():
            raise BenchmarkAborted(f"veths left in the node netns after the last DEL:\n{links.stdout}{links.stderr}")
        for plugin, data_dir in (("junction", self.args.junction_ipam_dir), ("ptp", self.args.ptp_ipam_dir)):
            network_dir = os.path.join(data_dir, self.args.network)
            if not os.path.isdir(network_dir):
                raise BenchmarkAborted(f"{plugin}: host-local never wrote {network_dir}")
            leftovers = [
                f for f in os.listdir(network_dir) if not f.startswith("last_reserved_ip") and f != "lock"
            ]
            if leftovers:
                raise BenchmarkAborted(f"{plugin}: IPAM allocations left after DEL: {leftovers}")

    def run(self) -> None:
        try:
            for index in range(self.args.warmup):
                self.iteration(index, record=False)
            for index in range(self.args.runs):
                self.iteration(index, record=True)
                if self.args.progress and (index + 1) % 25 == 0:
                    print(f"timer: {index + 1}/{self.args.runs} iterations", file=sys.stderr, flush=True)
            self.verify_clean()
        finally:
            for name in sorted(self.live_netns):
                subprocess.run(
                    ["nsenter", f"--mount={self.host_mnt}", "--", "ip", "netns", "del", name],
                    capture_output=True,
                )
        with open(self.args.out, "w") as out:
            json.dump({"runs": self.args.runs, "warmup": self.args.warmup, "samples_ns": self.samples}, out)


# -- statistics ------------------------------------------------------------------------


def percentile(sorted_values: list[int], p: float) -> int:
    """Nearest-rank percentile: the smallest sample with at least p% of samples <= it."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def stats(values: list[int]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "runs": len(ordered),
        "p50": percentile(ordered, 50) / 1e6,
        "p99": percentile(ordered, 99) / 1e6,
        "mean": sum(ordered) / len(ordered) / 1e6,
        "min": ordered[0] / 1e6,
        "max": ordered[-1] / 1e6,
    }


def summary(args: argparse.Namespace) -> None:
    data = json.load(open(args.samples))
    samples = data["samples_ns"]
    table = {(p, op): stats(samples[p][op]) for p in PLUGINS for op in OPERATIONS}
    print("| plugin | operation | runs | p50 ms | p99 ms | mean ms | min ms | max ms |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for op in OPERATIONS:
        for p in PLUGINS:
            s = table[(p, op)]
            print(
                f"| {p} | {op} | {s['runs']} | {s['p50']:.2f} | {s['p99']:.2f} | "
                f"{s['mean']:.2f} | {s['min']:.2f} | {s['max']:.2f} |"
            )
    print()
    for op in OPERATIONS:
        j, p = table[("junction", op)], table[("ptp", op)]
        print(
            f"- **{op}**: junction p50 / ptp p50 = {j['p50']:.2f} / {p['p50']:.2f} = "
            f"**{j['p50'] / p['p50']:.2f}x** (p99: {j['p99'] / p['p99']:.2f}x)"
        )


def stop(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run")
    run.add_argument("--runs", type=int, required=True)
    run.add_argument("--warmup", type=int, default=5)
    run.add_argument("--prefix", required=True, help="unique prefix for pod netns names and container IDs")
    run.add_argument("--host-pid", required=True, help="a pid in the mount namespace pod netns are made in")
    run.add_argument("--junction-bin", required=True)
    run.add_argument("--ptp-bin", required=True)
    run.add_argument("--cni-path", required=True)
    run.add_argument("--junction-conf", required=True)
    run.add_argument("--ptp-conf", required=True)
    run.add_argument("--junction-ipam-dir", required=True)
    run.add_argument("--ptp-ipam-dir", required=True)
    run.add_argument("--junction-subnet-prefix", required=True, help="e.g. 10.250.1.")
    run.add_argument("--ptp-subnet-prefix", required=True)
    run.add_argument("--network", default="benchnet")
    run.add_argument("--out", required=True)
    run.add_argument("--progress", action="store_true")

    summ = sub.add_parser("summary")
    summ.add_argument("samples")

    args = parser.parse_args()
    if args.command == "summary":
        summary(args)
        return
    args.subnets = {"junction": args.junction_subnet_prefix, "ptp": args.ptp_subnet_prefix}
    # The script stops us with SIGTERM: turn it into an exception, so subprocess.run kills a
    # plugin that is still running and the finally clause deletes our pod namespaces.
    signal.signal(signal.SIGTERM, stop)
    try:
        Runner(args).run()
    except BenchmarkAborted as failure:
        print(f"timer: benchmark aborted: {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
