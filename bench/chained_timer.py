#!/usr/bin/env python3
"""Timing helper for bench/cni-chained-latency.sh (stdlib only, Python >= 3.11).

  run      Started ONCE inside the node network namespace. Every iteration gives each of
           the two networks a fresh pod netns and runs what a runtime runs for a conflist:
             "bridge"            bridge ADD ... bridge DEL
             "bridge + junction" bridge ADD, junction ADD (prevResult = bridge's result)
                                 ... junction DEL, bridge DEL (prevResult = the final result)
           Each plugin is a raw exec (CNI_* env only, config on stdin), clocked with
           time.perf_counter_ns; a chain's ADD is the sum of its plugins' ADDs (the
           runtime's own work in between, building the next stdin, is left out of both).
           The two networks alternate inside an iteration and which goes first alternates
           between iterations. After each chained ADD the agent must report the endpoint
           with both programs attached (untimed). Any failed call aborts the run.

  summary  Reads the samples and prints the Markdown tables and the ratio lines.

Pod namespaces are made in the caller's mount namespace, as in timer.py (see there).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

from timer import AgentHTTP, BenchmarkAborted, sh, stats, stats_row, stop

CALL_TIMEOUT_S = 60
SERIES = ("bridge ADD", "bridge + junction ADD", "junction ADD", "bridge DEL",
          "junction + bridge DEL", "junction DEL", "bridge VERSION", "junction VERSION")


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.bridge_alone = json.load(open(args.bridge_conf))
        self.bridge_chained = json.load(open(args.chained_bridge_conf))
        self.junction = json.load(open(args.junction_conf))
        self.samples: dict[str, list[int]] = {name: [] for name in SERIES}
        self.live_netns: set[str] = set()
        self.host_mnt = f"/proc/{args.host_pid}/ns/mnt"
        self.agent = AgentHTTP(args.agent_socket)

    def netns_add(self, name: str) -> None:
        sh(["nsenter", f"--mount={self.host_mnt}", "--", "ip", "netns", "add", name])
        self.live_netns.add(name)

    def netns_del(self, name: str) -> None:
        sh(["nsenter", f"--mount={self.host_mnt}", "--", "ip", "netns", "del", name])
        self.live_netns.discard(name)

    def call(self, binary: str, command: str, config: dict, container_id: str = "",
             netns: str = "", prev_result: dict | None = None) -> tuple[int, dict | None]:
        """One plugin exec: its wall time in ns and its parsed result (ADD)."""
        env = {"CNI_COMMAND": command, "CNI_PATH": self.args.cni_path}
        if command != "VERSION":
            env.update(CNI_CONTAINERID=container_id, CNI_NETNS=f"/var/run/netns/{netns}",
                       CNI_IFNAME="eth0")
        if prev_result is not None:
            config = dict(config, prevResult=prev_result)
        stdin = json.dumps(config).encode()
        start = time.perf_counter_ns()
        try:
            done = subprocess.run([binary], input=stdin, capture_output=True, env=env,
                                  timeout=CALL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise BenchmarkAborted(f"{binary} {command} ({container_id}) timed out") from None
        elapsed = time.perf_counter_ns() - start
        if done.returncode != 0:
            raise BenchmarkAborted(
                f"{binary} {command} ({container_id}, netns {netns}) exited with {done.returncode}\n"
                f"stdout: {done.stdout.decode(errors='replace')}\n"
                f"stderr: {done.stderr.decode(errors='replace')}")
        if command != "ADD":
            return elapsed, None
        try:
            return elapsed, json.loads(done.stdout)
        except ValueError:
            raise BenchmarkAborted(f"{binary} ADD printed no JSON: {done.stdout!r}") from None

    def check_registered(self, container_id: str) -> None:
        endpoint_id = f"{container_id}:eth0"
        try:
            status, body = self.agent.call("GET", f"/v1/endpoints/{endpoint_id}")
        except (OSError, ValueError) as failure:
            raise BenchmarkAborted(f"agent GET endpoint: {failure}") from None
        if status != 200 or json.loads(body).get("datapathAttached") is not True:
            raise BenchmarkAborted(
                f"chained ADD ({container_id}) succeeded but the agent does not report "
                f"{endpoint_id} with both programs attached: {status} {body!r}")

    def alone(self, tag: str, record: bool) -> None:
        netns = f"{self.args.prefix}-b{tag}"
        container_id = f"{self.args.prefix}-bridge-{tag}"
        self.netns_add(netns)
        add, result = self.call(self.args.bridge_bin, "ADD", self.bridge_alone, container_id, netns)
        delete, _ = self.call(self.args.bridge_bin, "DEL", self.bridge_alone, container_id, netns,
                              result)
        self.netns_del(netns)
        if record:
            self.samples["bridge ADD"].append(add)
            self.samples["bridge DEL"].append(delete)

    def chained(self, tag: str, record: bool) -> None:
        netns = f"{self.args.prefix}-c{tag}"
        container_id = f"{self.args.prefix}-chained-{tag}"
        self.netns_add(netns)
        bridge_add, bridge_result = self.call(
            self.args.bridge_bin, "ADD", self.bridge_chained, container_id, netns)
        junction_add, result = self.call(
            self.args.junction_bin, "ADD", self.junction, container_id, netns, bridge_result)
        if result != bridge_result:
            raise BenchmarkAborted(
                f"junction changed prevResult:\n{bridge_result}\n{result}")
        self.check_registered(container_id)
        junction_del, _ = self.call(
            self.args.junction_bin, "DEL", self.junction, container_id, netns, result)
        bridge_del, _ = self.call(
            self.args.bridge_bin, "DEL", self.bridge_chained, container_id, netns, result)
        self.netns_del(netns)
        if record:
            self.samples["bridge + junction ADD"].append(bridge_add + junction_add)
            self.samples["junction ADD"].append(junction_add)
            self.samples["junction + bridge DEL"].append(junction_del + bridge_del)
            self.samples["junction DEL"].append(junction_del)

    def iteration(self, index: int, record: bool) -> None:
        tag = f"{index}" if record else f"w{index}"
        steps = (self.alone, self.chained) if index % 2 == 0 else (self.chained, self.alone)
        for step in steps:
            step(tag, record)
        # The start-up floor of each binary: VERSION does nothing else.
        version = {"cniVersion": "1.0.0"}
        for name, binary in (("bridge", self.args.bridge_bin), ("junction", self.args.junction_bin)):
            elapsed, _ = self.call(binary, "VERSION", version)
            if record:
                self.samples[f"{name} VERSION"].append(elapsed)

    def verify_clean(self) -> None:
        links = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True,
                               text=True)
        if links.returncode != 0 or links.stdout.strip():
            raise BenchmarkAborted(f"veths left after the last DEL:\n{links.stdout}")
        status, body = self.agent.call("GET", "/v1/endpoints")
        if status != 200 or json.loads(body) != []:
            raise BenchmarkAborted(f"the agent still lists endpoints: {status} {body!r}")

    def run(self) -> None:
        try:
            for index in range(self.args.warmup):
                self.iteration(index, record=False)
            for index in range(self.args.runs):
                self.iteration(index, record=True)
                if self.args.progress and (index + 1) % 25 == 0:
                    print(f"chained_timer: {index + 1}/{self.args.runs}", file=sys.stderr,
                          flush=True)
            self.verify_clean()
        finally:
            for name in sorted(self.live_netns):
                subprocess.run(["nsenter", f"--mount={self.host_mnt}", "--", "ip", "netns", "del",
                                name], capture_output=True)
        with open(self.args.out, "w") as out:
            json.dump({"runs": self.args.runs, "warmup": self.args.warmup,
                       "samples_ns": self.samples}, out)


def summary(args: argparse.Namespace) -> None:
    data = json.load(open(args.samples))
    s = {name: stats(values) for name, values in data["samples_ns"].items()}
    print("| what | operation | runs | p50 ms | p99 ms | mean ms | min ms | max ms |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    rows = [
        ("bridge", "ADD", "bridge ADD"),
        ("bridge + junction (chained)", "ADD", "bridge + junction ADD"),
        ("junction's exec within the chain", "ADD", "junction ADD"),
        ("bridge", "DEL", "bridge DEL"),
        ("junction + bridge (chained)", "DEL", "junction + bridge DEL"),
        ("junction's exec within the chain", "DEL", "junction DEL"),
        ("bridge", "VERSION", "bridge VERSION"),
        ("junction", "VERSION", "junction VERSION"),
    ]
    for label, op, key in rows:
        print(stats_row(label, op, s[key]))
    print()
    for op, alone, chain, own in (("ADD", "bridge ADD", "bridge + junction ADD", "junction ADD"),
                                  ("DEL", "bridge DEL", "junction + bridge DEL", "junction DEL")):
        a, c = s[alone], s[chain]
        print(f"- **{op}**: chained p50 / bridge p50 = {c['p50']:.2f} / {a['p50']:.2f} = "
              f"**{c['p50'] / a['p50']:.2f}x** (p99: {c['p99'] / a['p99']:.2f}x); chaining adds "
              f"**{c['p50'] - a['p50']:+.2f} ms** at p50 ({c['p99'] - a['p99']:+.2f} ms at p99); "
              f"junction's own exec {s[own]['p50']:.2f} ms at p50")
    floor = s["junction VERSION"]["p50"]
    print(f"- **Start-up floor**: a junction exec that does nothing (VERSION) takes {floor:.2f} ms "
          f"at p50 (bridge's: {s['bridge VERSION']['p50']:.2f} ms); junction's chained ADD does "
          f"its work in the remaining **{s['junction ADD']['p50'] - floor:.2f} ms** (ADD p50 − "
          f"VERSION p50)")
    added = s["bridge + junction ADD"]["p50"] - s["bridge ADD"]["p50"]
    verdict = "met" if added < args.goal_ms else "NOT met"
    print(f"- **Goal (chaining adds under {args.goal_ms:g} ms to ADD at p50): {verdict}** "
          f"({added:+.2f} ms; junction's exec alone {s['junction ADD']['p50']:.2f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--runs", type=int, required=True)
    run.add_argument("--warmup", type=int, default=5)
    run.add_argument("--prefix", required=True)
    run.add_argument("--host-pid", required=True)
    run.add_argument("--bridge-bin", required=True)
    run.add_argument("--junction-bin", required=True)
    run.add_argument("--cni-path", required=True)
    run.add_argument("--bridge-conf", required=True, help="bridge alone (its own bridge, /24)")
    run.add_argument("--chained-bridge-conf", required=True, help="bridge before junction")
    run.add_argument("--junction-conf", required=True, help="junction, mode chained")
    run.add_argument("--agent-socket", required=True)
    run.add_argument("--out", required=True)
    run.add_argument("--progress", action="store_true")
    summ = sub.add_parser("summary")
    summ.add_argument("samples")
    summ.add_argument("--goal-ms", type=float, default=3.0)
    args = parser.parse_args()
    if args.command == "summary":
        summary(args)
        return
    signal.signal(signal.SIGTERM, stop)
    try:
        Runner(args).run()
    except BenchmarkAborted as failure:
        print(f"chained_timer: benchmark aborted: {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
