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
import subprocess
import time

from timer import (AgentHTTP, BenchmarkAborted, PodNamespaces, add_run_arguments,
                   check_registered, iterate, run_or_abort, stats, stats_row,
                   verify_no_endpoints, verify_no_veths)

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
        self.pods = PodNamespaces(args.host_pid)
        self.agent = AgentHTTP(args.agent_socket)

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

    def alone(self, tag: str, record: bool) -> None:
        netns = f"{self.args.prefix}-b{tag}"
        container_id = f"{self.args.prefix}-bridge-{tag}"
        self.pods.add(netns)
        add, result = self.call(self.args.bridge_bin, "ADD", self.bridge_alone, container_id, netns)
        delete, _ = self.call(self.args.bridge_bin, "DEL", self.bridge_alone, container_id, netns,
                              result)
        self.pods.delete(netns)
        if record:
            self.samples["bridge ADD"].append(add)
            self.samples["bridge DEL"].append(delete)

    def chained(self, tag: str, record: bool) -> None:
        netns = f"{self.args.prefix}-c{tag}"
        container_id = f"{self.args.prefix}-chained-{tag}"
        self.pods.add(netns)
        bridge_add, bridge_result = self.call(
            self.args.bridge_bin, "ADD", self.bridge_chained, container_id, netns)
        junction_add, result = self.call(
            self.args.junction_bin, "ADD", self.junction, container_id, netns, bridge_result)
        if result != bridge_result:
            raise BenchmarkAborted(
                f"junction changed prevResult:\n{bridge_result}\n{result}")
        check_registered(self.agent, container_id, "chained ADD")
        junction_del, _ = self.call(
            self.args.junction_bin, "DEL", self.junction, container_id, netns, result)
        bridge_del, _ = self.call(
            self.args.bridge_bin, "DEL", self.bridge_chained, container_id, netns, result)
        self.pods.delete(netns)
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

    def run(self) -> None:
        try:
            iterate(self.args, self.iteration, "chained_timer")
            verify_no_veths()
            verify_no_endpoints(self.agent)
        finally:
            self.pods.delete_all()
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
    add_run_arguments(run)
    run.add_argument("--bridge-bin", required=True)
    run.add_argument("--bridge-conf", required=True, help="bridge alone (its own bridge, /24)")
    run.add_argument("--chained-bridge-conf", required=True, help="bridge before junction")
    run.add_argument("--junction-conf", required=True, help="junction, mode chained")
    run.add_argument("--agent-socket", required=True)
    summ = sub.add_parser("summary")
    summ.add_argument("samples")
    summ.add_argument("--goal-ms", type=float, default=3.0)
    args = parser.parse_args()
    if args.command == "summary":
        summary(args)
        return
    run_or_abort("chained_timer", lambda: Runner(args).run())


if __name__ == "__main__":
    main()
