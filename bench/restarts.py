#!/usr/bin/env python3
"""Restarts and an upgrade under load (issue 16, part 2).

Two labs (`install/lab up --nodes 2`), one with `--lb-mode snat`, one with `--lb-mode dsr`,
a keep-alive HTTP backend on node2 in each, and wrk (keep-alive: its connections live across
every restart) through five paths at once:

  clusterip-pod   a pod on node1 → ClusterIP 10.96.0.80:80 (per-packet: the pod's veth
                  programs), snat lab
  lrp             the same pod → 169.254.169.254:8081, a Local Redirect Policy frontend
                  served by a pod on node1 (port 9090), snat lab
  nodeport-snat   the lab's external client → node1:30080, backend on node2, snat lab
  clusterip-host  node1's own namespace → 10.96.0.80:80 (socket LB: connect-time
                  translation by the cgroup programs), dsr lab
  nodeport-dsr    the external client → node1:30080, backend on node2, dsr lab

Meanwhile every agent of both labs is restarted --restarts times, all four at once, by
`install/lab restart-agent` (the lab's own start command), with SIGTERM and SIGKILL mixed
(seeded), and upgraded once (restart --upgrade-at and every one after it) to BPF objects
built with -DJNC_BUILD_VARIANT=2 (bpf/lib/variant.h: other program bytes, the same
behaviour), so the agent must replace the programs of running endpoints and devices while
the traffic flows. wrk's failures (connect, read, write, timeout errors, non-2xx answers)
are counted per path, and every TCP RST by tcpdump at both ends of each path (the client's
namespace and the backend pod's). Afterwards: what may have leaked (agents, pins, tc
filters, endpoints, services per node, compared with before the first restart) and whether
the programs were replaced (every attached program's id changed; the tags changed at the
upgrade).

  sudo python3 bench/restarts.py [--restarts 20] [--upgrade-at 10] [--connections 2]
       [--no-new-connections]
       [--delay-ms 5] [--pause 1.0] [--seed 16] [--json FILE] [--bin DIR] [--bpf-objects DIR]

Exit status 0 when there was no failed request, no RST, no leak, and the programs were
replaced; 1 otherwise (the report says which); 2 on bad arguments or a missing tool. Every
lab it made is taken down on exit, failure or Ctrl-C.
"""

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAB = str(REPO / "install" / "lab")
LAB_ROOT = Path(os.environ.get("LAB_ROOT", "/run/junction-lab"))
NODE1, CLIENT = "172.30.0.11", "172.30.0.100"
CLUSTER_IP, LRP_IP = "10.96.0.80", "169.254.169.254"
WEB_PORT, PROXY_PORT, NODE_PORT, LRP_PORT = 8080, 9090, 30080, 8081
PATHS = ["clusterip-pod", "clusterip-host", "nodeport-snat", "nodeport-dsr", "lrp"]

# The backend: HTTP/1.1 keep-alive, a thread per connection, "ok" to every GET; a request
# with "Connection: close" gets it back (wrk then reconnects instead of counting an error),
# and the server waits for the client to close first, as bench/nshttp.c does: were the
# server to close first, its TIME_WAIT sockets would meet SYNs from reused SNAT ports (a
# challenge ACK, the client's RST, a 1 s SYN retransmit), a clash of any NAT, not of restarts.
SERVER = r'''
import http.server, socketserver, sys
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        closing = self.close_connection
        self.send_response(200)
        if closing:
            self.send_header("Connection", "close")
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")
        # The client closes first (it reads EOF next): TIME_WAIT stays on its side.
        self.close_connection = False
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
Server(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
'''

# wrk: a pause before each request (a modest, steady load), and one parseable line at the
# end. errors.status: answers that were not 2xx/3xx.
WRK_SCRIPT = r'''
local pause = tonumber(os.getenv("RESTARTS_DELAY_MS") or "5")
function delay() return pause end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("restarts requests=%d connect=%d read=%d write=%d timeout=%d status=%d\n",
    summary.requests, e.connect, e.read, e.write, e.timeout, e.status))
end
'''

SERVICE = f"""apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec:
  type: NodePort
  clusterIP: {CLUSTER_IP}
  externalTrafficPolicy: Cluster
  selector: {{app: web}}
  ports:
  - {{name: http, port: 80, protocol: TCP, targetPort: {WEB_PORT}, nodePort: {NODE_PORT}}}
"""

LRP = f"""apiVersion: cilium.io/v2
kind: CiliumLocalRedirectPolicy
metadata: {{name: local-proxy, namespace: default}}
spec:
  redirectFrontend:
    addressMatcher:
      ip: "{LRP_IP}"
      toPorts: [{{port: "{LRP_PORT}", protocol: TCP}}]
  redirectBackend:
    localEndpointSelector: {{matchLabels: {{app: proxy}}}}
    toPorts: [{{port: "{PROXY_PORT}", protocol: TCP}}]
"""


def log(message):
    print(f"restarts: {message}", file=sys.stderr, flush=True)


def run(cmd, timeout=120, check=True):
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {result.stdout.strip()} {result.stderr.strip()}")
    return result


class Lab:
    def __init__(self, name, mode, args):
        self.name, self.mode, self.args = name, mode, args
        self.state = LAB_ROOT / name

    def __call__(self, *arguments, check=True, timeout=180):
        return run([LAB, "--name", self.name, *arguments], timeout=timeout, check=check).stdout

    def up(self):
        self("up", "--nodes", "2", "--lb-mode", self.mode, "--bin", self.args.bin)

    def down(self):
        run([LAB, "--name", self.name, "down"], check=False, timeout=180)

    def ns(self, node):
        return f"{self.name}-{node}"

    def pod_ns(self, pod):
        return f"{self.name}-pod-{pod}"

    def pod_ip(self, pod):
        return (self.state / "pods" / pod / "ip").read_text().strip()

    def agent_pid(self, node):
        return (self.state / "nodes" / node / "agent.pid").read_text().strip()

    def ctl_json(self, node, *arguments):
        return json.loads(self("ctl", node, *arguments, "-o", "json"))


# ---- what the datapath holds, per node (before and after: leaks) -------------------------

def links(ns):
    names = []
    for line in run(["ip", "-o", "-n", ns, "link", "show"]).stdout.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            names.append(parts[1].strip().split("@")[0])
    return names


def filters(ns):
    """{link: [(hook, program name, id, tag)]} of every tc filter (hook "ingress", "egress")
    and tcx program (hook "tcx-ingress", "tcx-egress", through tcxprog.py: Debian 12's tc
    cannot list tcx) in namespace `ns`, whichever `--tc-hook` the agents run."""
    found = {}
    names = links(ns)
    for link in names:
        for hook in ("ingress", "egress"):
            shown = run(["tc", "-n", ns, "filter", "show", "dev", link, hook], check=False).stdout
            for line in shown.splitlines():
                match = re.search(r" id (\d+) name (\S+) tag (\S+)", line)
                if match:
                    found.setdefault(link, []).append(
                        (hook, match.group(2), match.group(1), match.group(3)))
    listed = run(["ip", "netns", "exec", ns, "python3", str(REPO / "bench" / "tcxprog.py"), "list"]
                 + names).stdout
    for line in listed.splitlines():
        link, hook, name, prog_id, tag = line.split()
        found.setdefault(link, []).append((hook, name, prog_id, tag))
    return found


def agents_in(ns):
    pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
    names = []
    for pid in pids:
        try:
            names.append(Path(f"/proc/{pid}/comm").read_text().strip())
        except OSError:
            pass
    return names.count("junction-agent")


def snapshot(lab, node):
    ns = lab.ns(node)
    bpffs = lab.state / "nodes" / node / "bpf"
    return {
        "agents": agents_in(ns),
        "pins": sorted(os.listdir(bpffs)),
        "filters": {link: sorted((h, n) for h, n, _, _ in f) for link, f in filters(ns).items()},
        "programs": {link: sorted((h, n, i, t) for h, n, i, t in f)
                     for link, f in filters(ns).items()},
        "endpoints": sorted(e["id"] for e in lab.ctl_json(node, "endpoint", "list")),
        "services": len(lab.ctl_json(node, "service", "list")),
    }


def leaks(before, after):
    """What differs, by kind: agents (not exactly one), pins, tc filters, endpoints and
    services (the set or count changed)."""
    found = {"agent-processes": [], "pins": [], "tc-filters": [], "endpoints": [], "services": []}
    for key, old in before.items():
        new = after[key]
        if new["agents"] != 1:
            found["agent-processes"].append(f"{key}: {new['agents']}")
        found["pins"] += [f"{key}: {p}" for p in sorted(set(old["pins"]) ^ set(new["pins"]))]
        for link in sorted(set(old["filters"]) | set(new["filters"])):
            if old["filters"].get(link) != new["filters"].get(link):
                found["tc-filters"].append(
                    f"{key} {link}: {old['filters'].get(link)} -> {new['filters'].get(link)}")
        if old["endpoints"] != new["endpoints"]:
            found["endpoints"].append(f"{key}: {old['endpoints']} -> {new['endpoints']}")
        if old["services"] != new["services"]:
            found["services"].append(f"{key}: {old['services']} -> {new['services']}")
    return found


def replaced(before, after, upgraded):
    """Attached programs whose id did not change (not replaced), and, after an upgrade,
    whose tag did not change (not the new build)."""
    stale, same_tag = [], []
    for key, old in before.items():
        for link, programs in old["programs"].items():
            new = {(h, n): (i, t) for h, n, i, t in after[key]["programs"].get(link, [])}
            for hook, name, pid, tag in programs:
                if (hook, name) not in new:
                    continue
                if new[(hook, name)][0] == pid:
                    stale.append(f"{key} {link} {hook} {name} id {pid}")
                if upgraded and new[(hook, name)][1] == tag:
                    same_tag.append(f"{key} {link} {hook} {name} tag {tag}")
    return stale, same_tag


# ---- load and capture --------------------------------------------------------------------

class Capture:
    """tcpdump of every RST in one namespace (all its interfaces)."""

    def __init__(self, ns, out):
        self.ns, self.file = ns, out
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", ns, "tcpdump", "-i", "any", "-n", "-l", "-q", "-U",
             "tcp[tcpflags] & tcp-rst != 0"],
            stdout=open(out, "w"), stderr=subprocess.PIPE, text=True)
        # tcpdump says "listening on" once its filter is in place.
        seen = ""
        while "listening" not in seen:
            line = self.process.stderr.readline()
            if not line:
                raise RuntimeError(f"tcpdump in {ns}: {seen.strip()}")
            seen += line

    def stop(self):
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=10)
        return [line for line in open(self.file).read().splitlines() if " IP " in line]


def endpoints_of(line):
    """(source, destination) "address.port" strings of a tcpdump line."""
    match = re.search(r" IP (\S+) > (\S+?):", line)
    return (match.group(1), match.group(2)) if match else ("", "")


class Load:
    """wrk in namespace `ns` against `url` until stopped (SIGINT: wrk prints its summary)."""

    def __init__(self, ns, url, args, script, connections, close=False):
        env = dict(os.environ, RESTARTS_DELAY_MS=str(args.delay_ms))
        header = ["-H", "Connection: close"] if close else []
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", ns, "wrk", "-t1", f"-c{connections}", "-d3600s",
             "--timeout", "2s", *header, "-s", script, url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def stop(self):
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=20)
        match = re.search(r"restarts (requests=.*)", out)
        if not match:
            raise RuntimeError(f"wrk gave no summary: {out} {err}")
        return {k: int(v) for k, v in (f.split("=") for f in match.group(1).split())}


def wait_for_answer(ns, url, tries=60):
    for _ in range(tries):
        if run(["ip", "netns", "exec", ns, "curl", "-sf", "-m", "1", url], check=False).returncode == 0:
            return
        time.sleep(0.25)
    raise RuntimeError(f"{url} does not answer from {ns}")


# ---- the run -----------------------------------------------------------------------------

def campaign(args, tmp, labs):
    server = tmp / "server.py"
    server.write_text(SERVER)
    script = tmp / "report.lua"
    script.write_text(WRK_SCRIPT)
    (tmp / "service.yaml").write_text(SERVICE)
    (tmp / "lrp.yaml").write_text(LRP)
    variant = tmp / "bpf-variant"
    env = dict(os.environ, BPF_CFLAGS="-DJNC_BUILD_VARIANT=2")
    built = subprocess.run(["bash", str(REPO / "install" / "build-bpf.sh"), str(variant)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if built.returncode != 0:
        raise RuntimeError(f"building the variant BPF objects: {built.stderr}")

    snat, dsr = labs
    errors = []

    def up(lab):
        try:
            lab.up()
        except Exception as error:  # reported below
            errors.append(error)
    threads = [threading.Thread(target=up, args=(lab,)) for lab in labs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    for lab in labs:
        lab("pod", "add", "web", "--node", "node2", "--label", "app=web")
        lab("exec", "--detach", "web", "--", "python3", str(server), str(WEB_PORT))
        lab("apply", "-f", str(tmp / "service.yaml"))
    snat("pod", "add", "client", "--node", "node1")
    snat("pod", "add", "proxy", "--node", "node1", "--label", "app=proxy")
    snat("exec", "--detach", "proxy", "--", "python3", str(server), str(PROXY_PORT))
    snat("apply", "-f", str(tmp / "lrp.yaml"))

    targets = {
        "clusterip-pod": (snat.pod_ns("client"), f"http://{CLUSTER_IP}/"),
        "lrp": (snat.pod_ns("client"), f"http://{LRP_IP}:{LRP_PORT}/"),
        "nodeport-snat": (f"{snat.name}-client", f"http://{NODE1}:{NODE_PORT}/"),
        "clusterip-host": (dsr.ns("node1"), f"http://{CLUSTER_IP}/"),
        "nodeport-dsr": (f"{dsr.name}-client", f"http://{NODE1}:{NODE_PORT}/"),
    }
    for path, (ns, url) in targets.items():
        wait_for_answer(ns, url)

    # The capture points and which path an RST seen there belongs to.
    snat_web, dsr_web, client = snat.pod_ip("web"), dsr.pod_ip("web"), snat.pod_ip("client")

    def classify(point, line):
        source, destination = endpoints_of(line)
        ends = source + " " + destination
        if point == "snat-client-pod":
            return "lrp" if f".{LRP_PORT}" in ends or f".{PROXY_PORT}" in ends else "clusterip-pod"
        if point == "snat-proxy":
            return "lrp"
        if point == "snat-external":
            return "nodeport-snat"
        if point == "snat-web":
            return "clusterip-pod" if client in ends else "nodeport-snat"
        if point == "dsr-external":
            return "nodeport-dsr"
        if point == "dsr-web":
            return "nodeport-dsr" if CLIENT in ends else "clusterip-host"
        if point == "dsr-node1":
            # node1 sees forwarded DSR packets too: the host path's own are NODE1's.
            return "clusterip-host" if (NODE1 + ".") in ends and f".{WEB_PORT}" in ends else None
        return None

    points = {
        "snat-client-pod": snat.pod_ns("client"), "snat-proxy": snat.pod_ns("proxy"),
        "snat-external": f"{snat.name}-client", "snat-web": snat.pod_ns("web"),
        "dsr-external": f"{dsr.name}-client", "dsr-web": dsr.pod_ns("web"),
        "dsr-node1": dsr.ns("node1"),
    }
    captures = {point: Capture(ns, tmp / f"{point}.rst") for point, ns in points.items()}
    nodes = [(lab, node) for lab in labs for node in ("node1", "node2")]
    before = {f"{lab.mode}/{node}": snapshot(lab, node) for lab, node in nodes}
    # Per path: keep-alive connections that must live through every restart, and (unless
    # --no-new-connections) one more wrk connection that closes after every answer, so new
    # connections keep needing the service maps and programs during the restarts.
    loads = {(path, "keepalive"): Load(ns, url, args, str(script), args.connections)
             for path, (ns, url) in targets.items()}
    if args.new_connections:
        loads.update({(path, "close"): Load(ns, url, args, str(script), 1, close=True)
                      for path, (ns, url) in targets.items()})
    time.sleep(args.pause)

    rng = random.Random(args.seed)
    signals = ["TERM", "KILL"] * (args.restarts // 2) + ["TERM"] * (args.restarts % 2)
    rng.shuffle(signals)
    durations, tags_before_upgrade = [], None
    started = time.monotonic()
    for index, sig in enumerate(signals, start=1):
        upgrading = args.upgrade_at and index >= args.upgrade_at
        if args.upgrade_at and index == args.upgrade_at:
            tags_before_upgrade = {f"{lab.mode}/{node}": snapshot(lab, node) for lab, node in nodes}
        extra = ["--bpf", str(variant)] if upgrading else []
        begin = time.monotonic()
        procs = [subprocess.Popen([LAB, "--name", lab.name, "restart-agent", node, "--signal", sig,
                                   *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for lab, node in nodes]
        for proc, (lab, node) in zip(procs, nodes):
            out, err = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise RuntimeError(f"restart {index} of {lab.name}/{node}: {out} {err}")
        durations.append(time.monotonic() - begin)
        log(f"restart {index}/{len(signals)}: SIG{sig}{' (upgraded objects)' if upgrading else ''}"
            f", {durations[-1]:.1f} s")
        time.sleep(args.pause)
    elapsed = time.monotonic() - started
    # The captures end before wrk does: wrk's exit resets the connections it still holds
    # (2 RSTs per path in a trial run, all at the moment wrk was stopped), which says nothing
    # about the datapath.
    captured = {point: capture.stop() for point, capture in captures.items()}
    results = {key: load.stop() for key, load in loads.items()}
    rsts = {path: {"client": 0, "backend": 0} for path in PATHS}
    samples = []
    for point, lines in captured.items():
        for line in lines:
            path = classify(point, line)
            if path:
                side = "backend" if point.endswith(("web", "proxy")) else "client"
                rsts[path][side] += 1
                samples.append(f"{point}: {line}")
    after = {f"{lab.mode}/{node}": snapshot(lab, node) for lab, node in nodes}
    leaked = leaks(before, after)
    stale, same_tag = replaced(before, after, False)
    _, not_upgraded = replaced(tags_before_upgrade, after, True) if tags_before_upgrade else ([], [])

    paths = {}
    kinds = ("connect", "read", "write", "timeout", "status")
    for path in PATHS:
        entry = {"rstClient": rsts[path]["client"], "rstBackend": rsts[path]["backend"]}
        for style in ("keepalive", "close"):
            r = results.get((path, style))
            if r is None:
                continue
            entry[style] = {"requests": r["requests"], "failed": sum(r[k] for k in kinds),
                            "errors": {k: r[k] for k in kinds}}
        entry["requests"] = sum(entry[s]["requests"] for s in ("keepalive", "close") if s in entry)
        entry["failed"] = sum(entry[s]["failed"] for s in ("keepalive", "close") if s in entry)
        paths[path] = entry
    attached = sum(len(p) for snap in after.values() for p in snap["programs"].values())
    return {
        "restarts": len(signals), "signals": {s: signals.count(s) for s in ("TERM", "KILL")},
        "agentsPerRestart": len(nodes), "upgradeAt": args.upgrade_at, "seed": args.seed,
        "connectionsPerPath": args.connections, "delayMs": args.delay_ms,
        "seconds": round(elapsed, 1), "restartSeconds": [round(d, 2) for d in durations],
        "paths": paths, "rstSamples": samples[:20],
        "leaks": {k: len(v) for k, v in leaked.items()}, "leaked": leaked,
        "attachedPrograms": attached, "programsNotReplaced": stale,
        "programsNotUpgraded": not_upgraded,
    }


def markdown(report):
    lines = [
        f"{report['restarts']} restarts of {report['agentsPerRestart']} agents at once "
        f"(SIGTERM {report['signals']['TERM']}, SIGKILL {report['signals']['KILL']}), upgraded "
        f"at restart {report['upgradeAt']}, {report['seconds']} s under load; restart (all four "
        f"back and answering) {min(report['restartSeconds']):.1f}–{max(report['restartSeconds']):.1f} s.",
        "",
        "| path | keep-alive requests | failed | new-connection requests | failed "
        "| RSTs at the client | RSTs at the backend |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for path, p in report["paths"].items():
        close = p.get("close", {"requests": "—", "failed": "—"})
        lines.append(f"| {path} | {p['keepalive']['requests']:,} | {p['keepalive']['failed']} "
                     f"| {close['requests']} | {close['failed']} "
                     f"| {p['rstClient']} | {p['rstBackend']} |")
    lines += ["", f"leaks: {report['leaks']}; attached programs {report['attachedPrograms']}, "
              f"not replaced {len(report['programsNotReplaced'])}, not upgraded "
              f"{len(report['programsNotUpgraded'])}"]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restarts", type=int, default=20)
    parser.add_argument("--upgrade-at", type=int, default=None,
                        help="the restart that upgrades (default: the middle one; 0: none)")
    parser.add_argument("--connections", type=int, default=2, help="wrk connections per path")
    parser.add_argument("--delay-ms", type=int, default=5, help="pause before each request")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between restarts")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--no-new-connections", dest="new_connections", action="store_false",
                        help="keep-alive load only (no connection-per-request wrk)")
    parser.add_argument("--json", help="write the report here")
    parser.add_argument("--bin", default=str(REPO / ".build" / "debug"))
    args = parser.parse_args()
    if args.upgrade_at is None:
        args.upgrade_at = max(1, args.restarts // 2)
    if args.restarts < 1 or not 0 <= args.upgrade_at <= args.restarts:
        parser.error("--restarts ≥ 1 and 0 ≤ --upgrade-at ≤ --restarts")
    if os.geteuid() != 0:
        sys.exit("restarts: must run as root (the labs: namespaces, bpffs)")
    for tool in ("wrk", "tcpdump", "curl", "tc", "ip"):
        if not any(os.access(f"{d}/{tool}", os.X_OK) for d in
                   os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/sbin"]):
            print(f"restarts: {tool} is missing (install/deps.sh test)", file=sys.stderr)
            sys.exit(2)
    suffix = os.getpid() % 100000
    labs = [Lab(f"rs{suffix}s", "snat", args), Lab(f"rs{suffix}d", "dsr", args)]

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    report, failure = None, None
    with tempfile.TemporaryDirectory(prefix="junction-restarts-") as directory:
        os.chmod(directory, 0o755)
        try:
            report = campaign(args, Path(directory), labs)
        except (Exception, KeyboardInterrupt) as error:
            failure = f"{type(error).__name__}: {error}"
        finally:
            for lab in labs:
                lab.down()
    if failure:
        report = dict(report or {}, failure=failure)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if failure:
        print(f"restarts: {failure}", file=sys.stderr)
        sys.exit(1)
    print(markdown(report))
    bad = (sum(p["failed"] + p["rstClient"] + p["rstBackend"] for p in report["paths"].values())
           + sum(report["leaks"].values()) + len(report["programsNotReplaced"])
           + len(report["programsNotUpgraded"]))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
