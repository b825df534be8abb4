#!/usr/bin/env python3
"""Fault-injection soak (issues 18 and 16): N ADD/DEL cycles through libcni with host-local,
in native mode or chained after bridge, against a real junction-agent, faults injected at
random, every kind of leak counted after every cycle and at the end.

    bench/soak.py --cycles 500 [--mode native|chained] [--seed S] [--json FILE] [--markdown FILE]

Run as root from a built tree (swift build, install/build-driver.sh, install/build-bpf.sh;
strace installed). It makes one node namespace (`jsk<pid>n`) with a node address, a
long-lived pod P0 that pings every cycle's pod (a 2 ms flood during each DEL), an agent
in the node namespace with its own socket, state dir and bpffs (a fresh mount under the
run's temporary directory), and one pod namespace per cycle. Faults, one per cycle (or none):

  agent-kill-add   the agent SIGKILLed at a random moment of ADD, then restarted
  agent-kill-del   the agent SIGKILLed at a random moment of DEL, then restarted
  plugin-kill-add  the plugin SIGKILLed at its k-th netlink sendmsg of ADD (k at random;
                   strace's syscall fault injection), then DEL as the runtime would
  netns-gone       the pod namespace removed before DEL
  agent-term-del   the agent sent SIGTERM (2 s grace: requests answered 503) just before
                   DEL, then restarted once it exited
  del-repeated     DEL two or three times
  ipam-fail        the IPAM plugin (a wrapper around host-local) fails ADD, before or after
                   host-local allocated (at random); then DEL as the runtime would
  statedir-full    the agent's state directory (its own small tmpfs) filled up before ADD;
                   freed before DEL or only before DEL's retry (at random)
  agent-freeze-add the agent SIGSTOPped at a random moment of ADD for longer than
                   agentTimeout, then SIGCONT before DEL or after it (at random)
  agent-freeze-del the agent SIGSTOPped at a random moment of DEL for longer than
                   agentTimeout, then SIGCONT

Every pod that got an address sends one UDP datagram to a ClusterIP service with ClientIP
affinity whose backend is P0, so the datapath holds conntrack and affinity entries for it.

Leaks counted (distinct items, kept across cycles): host veths `jnc*` (P0's aside), the pod's
`eth0` left after DEL, host-local allocation files, agent endpoints (API and state files),
deletion-queue records, tc filters, tcx programs and clsact qdiscs on other links than P0's
(or not exactly Junction's two programs there, on the agent's `--tc-hook`; with tcx, no qdisc
anywhere), conntrack and affinity entries of pods no longer there (any
pod address but P0's), counter-map keys of unregistered endpoints, pins beyond the agent's own, and agent
processes beyond ours, and lost deletions (a DEL that succeeded while the agent stopped or
died, and left the endpoint stored without a queue record; checked before the restart,
whose reconcile would hide it). The agent's periodic counter sweep is set to an hour, so it cannot
hide a leak between checks. Exit 1 when anything leaked or a DEL never succeeded.

At the end it also runs GC (CNI 1.1) with P0 alone valid and one orphan attachment (its DEL
"lost"), which GC must deregister and detach, before P0's own DEL.

Everything it makes (namespaces, the agent and pings by PID, the bpffs and tmpfs mounts, the
temporary directory) is removed at the end, also on failure or SIGTERM/SIGINT.
"""

import argparse
import ctypes
import json
import os
import platform
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NETWORK = "pods"
NODE_IP = "192.168.250.1"
SUBNET = "10.243.0.0/16"
SUBNET_PREFIX = bytes([10, 243])
VIP, VIP_PORT, BACKEND_PORT = "10.96.250.10", 53, 5353
AGENT_TIMEOUT = 1.5  # the plugin's agentTimeout here; a freeze lasts longer
# The running agent replays its deletion queue this often (seconds); a record older than
# QUEUE_GRACE is one it did not apply.
QUEUE_INTERVAL, QUEUE_GRACE = 0.5, 5.0
GRACED = ["agent-endpoints-api", "agent-state-files", "conntrack-entries", "affinity-entries",
          "counter-keys"]
FAULTS = [
    "none", "agent-kill-add", "agent-kill-del", "plugin-kill-add", "netns-gone",
    "agent-term-del", "del-repeated", "ipam-fail", "statedir-full", "agent-freeze-add",
    "agent-freeze-del",
]
LEAK_KINDS = [
    "host-veths", "pod-interfaces", "ipam-allocations", "agent-endpoints-api",
    "agent-state-files", "delete-queue-records", "tc-filters", "tc-qdiscs", "conntrack-entries",
    "affinity-entries", "counter-keys", "pins", "agent-processes", "lost-deletions",
]
# The IPAM wrapper: host-local, unless a flag file says to fail ADD ("before": nothing
# allocated; "after": host-local allocated, then the error).
IPAM_WRAPPER = """#!/bin/sh
flag="$(dirname "$0")/../ipam-fail"
if [ "$CNI_COMMAND" = ADD ] && [ -f "$flag" ]; then
  if [ "$(cat "$flag")" = after ]; then /usr/lib/cni/host-local >/dev/null; fi
  echo '{"cniVersion":"1.0.0","code":999,"msg":"soak: injected IPAM failure"}'
  exit 1
fi
exec /usr/lib/cni/host-local
"""
PLUGIN_WRAPPER = """#!/bin/sh
flag="$(dirname "$0")/../plugin-strace"
if [ "$CNI_COMMAND" = ADD ] && [ -f "$flag" ]; then exec $(cat "$flag") @JUNCTION@; fi
exec @JUNCTION@
"""


def run(cmd, env=None, stdin="", timeout=60):
    return subprocess.run(
        cmd, input=stdin.encode(), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        timeout=timeout)


def must(cmd):
    result = run(cmd)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {result.stderr.decode().strip()}")
    return result.stdout.decode()


# ---- BPF map keys, by the bpf(2) syscall (no bpftool needed) ----------------------------

SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(platform.machine(), 321)
BPF_MAP_GET_NEXT_KEY, BPF_OBJ_GET = 4, 7
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def bpf(cmd, attr):
    result = libc.syscall(SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    return result, ctypes.get_errno()


def map_keys_u32(pin):
    """Every key of the pinned map (4-byte keys), or None when the pin is missing."""
    keys = map_keys(pin, 4)
    return None if keys is None else [struct.unpack("<I", key)[0] for key in keys]


def map_keys(pin, size):
    """Every key of the pinned map as bytes (`size`-byte keys), or None when it is missing."""
    path = ctypes.create_string_buffer(pin.encode())
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<QII", attr, 0, ctypes.addressof(path), 0, 0)
    fd, errno = bpf(BPF_OBJ_GET, attr)
    if fd < 0:
        return None
    try:
        keys, last = [], None
        current = ctypes.create_string_buffer(size)
        following = ctypes.create_string_buffer(size)
        while len(keys) < 1 << 20:
            attr = ctypes.create_string_buffer(128)
            key_address = 0 if last is None else ctypes.addressof(current)
            if last is not None:
                ctypes.memmove(current, last, size)
            struct.pack_into("<IIQQ", attr, 0, fd, 0, key_address, ctypes.addressof(following))
            result, errno = bpf(BPF_MAP_GET_NEXT_KEY, attr)
            if result < 0:
                break
            last = following.raw[:size]
            keys.append(last)
        return keys
    finally:
        os.close(fd)


# ---- the agent's API over its Unix socket -----------------------------------------------

def api(socket_path, method, path, timeout=3, body=b"", wait_to_connect=False):
    """(status, body) or (0, b"") when nothing answers. With `wait_to_connect`, connect
    waits while the listen backlog is full, as the plugin's client does (a blocking socket);
    otherwise a full backlog fails it at once (EAGAIN)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            if wait_to_connect:
                connection.connect(socket_path)
                connection.settimeout(timeout)
            else:
                connection.settimeout(timeout)
                connection.connect(socket_path)
            connection.sendall(
                f"{method} {path} HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            data = b""
            while True:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split(b" ")[1]), body
    except (OSError, ValueError, IndexError):
        return 0, b""


def service_manifest(name, vip, port_name, port, protocol, target_port, backend,
                     affinity=None):
    """A ClusterIP Service `name` in namespace default (vip:port) and its one EndpointSlice
    (`name`-1, IPv4) with the one ready backend address, as YAML for /v1/resources/apply
    (bench/limits.py uses it too)."""
    affinity_line = f"  sessionAffinity: {affinity}\n" if affinity else ""
    return f"""apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  clusterIP: {vip}
{affinity_line}  ports:
  - {{name: {port_name}, port: {port}, protocol: {protocol}, targetPort: {target_port}}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-1
  namespace: default
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports:
- {{name: {port_name}, port: {target_port}, protocol: {protocol}}}
endpoints:
- addresses: ["{backend}"]
  conditions: {{ready: true}}
"""

def attached_programs(node, links):
    """{link: ["ingress:NAME", "tcx-egress:NAME", ...]}: the tc filters on both clsact hooks
    (tc(8)) and the programs on both tcx hooks (tcxprog.py: Debian 12's tc cannot list tcx)
    of each link in namespace `node`."""
    found = {link: [] for link in links}
    for link in links:
        for hook in ("ingress", "egress"):
            shown = run(["ip", "netns", "exec", node, "tc", "filter", "show", "dev", link,
                         hook]).stdout.decode()
            found[link] += [f"{hook}:{line.split(' name ', 1)[1].split()[0]}"
                            for line in shown.splitlines() if " name " in line]
    listed = run(["ip", "netns", "exec", node, "python3", str(REPO / "bench/tcxprog.py"),
                  "names"] + links)
    if listed.returncode != 0:
        raise RuntimeError(f"tcxprog.py names: {listed.stderr.decode().strip()}")
    for line in listed.stdout.decode().splitlines():
        link, program = line.split(" ", 1)
        found[link].append(program)
    return found


class Soak:
    def __init__(self, args):
        self.args = args
        self.random = random.Random(args.seed)
        self.pid = os.getpid()
        self.node = f"jsk{self.pid % 100000}n"
        self.tc_hook = "clsact"  # the agent's, from GET /v1/config once it runs
        self.bridge = f"jsk{self.pid % 100000}b"
        self.chained = args.mode == "chained"
        self.directory = Path(tempfile.mkdtemp(prefix=f"junction-soak-{self.pid}-"))
        self.socket = str(self.directory / "run" / "agent.sock")
        self.state = self.directory / "state"
        self.bpffs = self.directory / "bpf"
        self.ipam = self.directory / "ipam"
        self.namespaces = []
        self.processes = []  # pings, by Popen
        self.agent = None
        self.agent_log = open(self.directory / "agent.log", "ab")
        self.mounted = False
        self.tmpfs_mounted = False
        self.frozen = False
        self.ct_entries_made = 0
        self.gc_failures = []
        self.cycles_done = 0
        self.gc_orphans = 0
        self.suspects = {}  # (kind, item) → when first seen
        self.pod_counter = 0
        self.faults = {fault: 0 for fault in FAULTS}
        self.leaks = {kind: set() for kind in LEAK_KINDS}
        self.del_failures = []  # DELs that never succeeded (after retries)
        self.del_retries = 0
        self.add_failures = {}  # exit code → count, for faults that make ADD fail
        self.ping_failures = 0
        self.agent_restarts = 0
        self.expected_pins = None
        self.sendmsg_calls = 0

    # ---- setup and teardown --------------------------------------------------------------

    def setup_node(self):
        """The node namespace, the mounts, the conflist and the agent (bench/limits.py uses
        this part alone)."""
        a = self.args
        for what, path in [("junction", a.junction), ("junction-agent", a.agent),
                           ("cnidriver", a.driver), ("strace", a.strace),
                           ("host-local", "/usr/lib/cni/host-local")]:
            if not os.access(path, os.X_OK):
                raise RuntimeError(f"{what} is missing at {path}")
        (self.directory / "bin").mkdir()
        (self.directory / "conf").mkdir()
        (self.directory / "run").mkdir()
        # The plugin behind a wrapper that runs it under strace when a flag file says so
        # (ADD only): to count its netlink sendmsg calls, or to SIGKILL it at the k-th.
        plugin = self.directory / "bin" / "junction"
        plugin.write_text(PLUGIN_WRAPPER.replace("@JUNCTION@", a.junction))
        plugin.chmod(0o755)
        wrapper = self.directory / "bin" / "soak-ipam"
        wrapper.write_text(IPAM_WRAPPER)
        wrapper.chmod(0o755)
        self.bpffs.mkdir()
        must(["mount", "-t", "bpf", "bpf", str(self.bpffs)])
        self.mounted = True
        # The agent's state directory on its own small tmpfs, to fill up for statedir-full.
        self.state.mkdir()
        must(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(self.state)])
        self.tmpfs_mounted = True
        must(["ip", "netns", "add", self.node])
        self.namespaces.append(self.node)
        must(["ip", "-n", self.node, "link", "set", "lo", "up"])
        must(["ip", "-n", self.node, "addr", "add", f"{NODE_IP}/32", "dev", "lo"])
        plugins = [self.bridge_object(), self.plugin_object()] if self.chained \
            else [self.plugin_object()]
        conflist = {"cniVersion": "1.0.0", "name": NETWORK, "plugins": plugins}
        (self.directory / "conf" / "10-pods.conflist").write_text(json.dumps(conflist))
        self.start_agent()
        self.expected_pins = self.pins()

    def setup(self):
        self.setup_node()
        a = self.args
        # The long-lived pod that pings every cycle's pod.
        self.p0 = self.new_pod()
        result = self.driver("add", self.p0)
        if result.returncode != 0:
            raise RuntimeError(f"ADD of P0 failed: {result.stdout.decode()}")
        self.p0_ip = json.loads(result.stdout)["ips"][0]["address"].split("/")[0]
        self.p0_host = [i["name"] for i in json.loads(result.stdout)["interfaces"]
                        if not i.get("sandbox") and i["name"] != self.bridge][0]
        self.p0_id = f"{self.cid(self.p0)}:eth0"
        # P0 answers nothing on BACKEND_PORT: the datagrams only need to reach it.
        self.apply_service()
        # How many netlink sendmsg calls a whole ADD makes: the range for the plugin kill.
        probe = self.new_pod()
        trace = self.directory / "probe.strace"
        result = self.traced_add(probe, [a.strace, "-qq", "-o", str(trace), "-e", "trace=sendmsg"])
        if result.returncode != 0:
            raise RuntimeError(f"traced ADD failed: {result.stdout.decode()}")
        self.sendmsg_calls = sum(
            1 for line in trace.read_text().splitlines() if line.startswith("sendmsg("))
        self.delete(probe)
        self.remove_pod(probe)

    def ipam_object(self):
        return {"type": "soak-ipam", "dataDir": str(self.ipam), "ranges": [[{"subnet": SUBNET}]]}

    def bridge_object(self):
        return {"type": "bridge", "bridge": self.bridge, "isGateway": True,
                "isDefaultGateway": True, "ipMasq": False, "mtu": 1500,
                "ipam": self.ipam_object()}

    def plugin_object(self):
        plugin = {
            "type": "junction", "mode": self.args.mode, "agentSocket": self.socket,
            "agentTimeout": AGENT_TIMEOUT, "logFile": str(self.directory / "junction.log"),
            "logLevel": "info",
        }
        if not self.chained:
            plugin.update(mtu=1500, ipam=self.ipam_object())
        return plugin

    def apply_service(self):
        """A ClusterIP service with ClientIP affinity whose one backend is P0."""
        manifest = service_manifest("soak", VIP, "d", VIP_PORT, "UDP", BACKEND_PORT,
                                    self.p0_ip, affinity="ClientIP")
        status, body = api(self.socket, "POST", "/v1/resources/apply", body=manifest.encode())
        if status != 200:
            raise RuntimeError(f"applying the soak service answered {status}: {body[:300]}")

    def send_to_service(self, pod):
        result = run(["ip", "netns", "exec", pod, "bash", "-c",
                      f"echo soak > /dev/udp/{VIP}/{VIP_PORT}"])
        if result.returncode == 0:
            self.ct_entries_made += 1

    def teardown(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        self.thaw()
        self.stop_agent(kill=True)
        for pid in self.stray_agents():
            os.kill(pid, signal.SIGKILL)
        for namespace in reversed(self.namespaces):
            run(["ip", "netns", "del", namespace])
        if self.mounted:
            run(["umount", "-l", str(self.bpffs)])
        if self.tmpfs_mounted:
            run(["umount", "-l", str(self.state)])
        self.agent_log.close()
        if not self.args.keep:
            subprocess.run(["rm", "-rf", str(self.directory)])

    # ---- the agent -----------------------------------------------------------------------

    def start_agent(self):
        a = self.args
        self.agent = subprocess.Popen(
            ["ip", "netns", "exec", self.node, a.agent, "--node-name", self.node,
             "--socket", self.socket, "--state-dir", str(self.state), "--bpf-fs", str(self.bpffs),
             "--bpf-objects", a.bpf_objects, "--log-level", "info", "--shutdown-grace", "2",
             "--counter-sweep-interval", "3600"]
            + ([] if a.legacy_agent else ["--delete-queue-interval", str(QUEUE_INTERVAL)])
            + a.agent_arg,
            stdin=subprocess.DEVNULL, stdout=self.agent_log, stderr=self.agent_log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.agent.poll() is not None:
                raise RuntimeError(f"the agent exited with {self.agent.returncode} at start")
            if api(self.socket, "GET", "/v1/healthz", timeout=1)[0] == 200:
                status, body = api(self.socket, "GET", "/v1/config", timeout=5)
                if status == 200:
                    self.tc_hook = json.loads(body).get("tcHook") or "clsact"
                return
            time.sleep(0.02)
        raise RuntimeError("the agent did not answer within 20 s")

    def stop_agent(self, kill=False):
        if self.agent is None or self.agent.poll() is not None:
            self.agent = None
            return
        self.agent.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.agent.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.agent.kill()
            self.agent.wait()
        self.agent = None

    def freeze(self):
        if self.agent is not None and self.agent.poll() is None:
            self.agent.send_signal(signal.SIGSTOP)
            self.frozen = True

    def thaw(self):
        if self.frozen and self.agent is not None and self.agent.poll() is None:
            self.agent.send_signal(signal.SIGCONT)
        self.frozen = False

    def fill_state(self):
        """Fills the state tmpfs up to the last byte."""
        # Unbuffered, so closing it has nothing left to write.
        with open(self.state / "soak-filler", "ab", buffering=0) as filler:
            for block in (b"\0" * 65536, b"\0"):
                try:
                    while filler.write(block):
                        pass
                except OSError:
                    pass

    def free_state(self):
        try:
            (self.state / "soak-filler").unlink()
        except FileNotFoundError:
            pass

    def restart_agent(self):
        self.stop_agent()
        self.start_agent()
        self.agent_restarts += 1

    def stray_agents(self):
        """junction-agent processes serving our socket other than ours."""
        ours = self.agent.pid if self.agent and self.agent.poll() is None else None
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == ours:
                continue
            try:
                arguments = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if arguments and arguments[0].endswith(b"junction-agent") and \
                    self.socket.encode() in arguments:
                found.append(int(entry))
        return found

    # ---- pods and the plugin -------------------------------------------------------------

    def new_pod(self):
        self.pod_counter += 1
        name = f"jsk{self.pid % 100000}p{self.pod_counter}"
        must(["ip", "netns", "add", name])
        self.namespaces.append(name)
        return name

    def remove_pod(self, name):
        if name in self.namespaces:
            run(["ip", "netns", "del", name])
            self.namespaces.remove(name)

    def cid(self, pod):
        return f"soak-{pod}"

    def driver_command(self, verb, pod):
        env = dict(os.environ, NETCONFPATH=str(self.directory / "conf"),
                   CNI_PATH=f"{self.directory / 'bin'}:/usr/lib/cni",
                   CNI_CACHE_DIR=str(self.directory / "cache"), CNI_IFNAME="eth0",
                   CNI_CONTAINERID=self.cid(pod))
        return ["ip", "netns", "exec", self.node, self.args.driver, verb, NETWORK,
                f"/var/run/netns/{pod}"], env

    def driver(self, verb, pod):
        command, env = self.driver_command(verb, pod)
        return run(command, env=env)

    def driver_async(self, verb, pod):
        command, env = self.driver_command(verb, pod)
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def traced_add(self, pod, strace):
        """ADD through libcni with the plugin (only) run under `strace`."""
        flag = self.directory / "plugin-strace"
        flag.write_text(" ".join(strace))
        try:
            return self.driver("add", pod)
        finally:
            flag.unlink()

    def delete(self, pod, attempts=3):
        """DEL as a runtime does: retried (after the agent is back, and its state directory
        has room) until it succeeds."""
        for attempt in range(attempts):
            result = self.driver("del", pod)
            if result.returncode == 0:
                return True
            self.del_retries += 1
            self.free_state()
            self.thaw()
            if self.agent is None or self.agent.poll() is not None:
                self.start_agent()
            time.sleep(0.1)
        self.del_failures.append((pod, result.stdout.decode().strip()))
        return False

    def flood(self, address):
        """P0 pings `address` every 2 ms until stopped."""
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.p0, "ping", "-q", "-i", "0.002", "-w", "60", address],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def stop(self, process):
        if process.poll() is None:
            process.terminate()
        process.wait()
        self.processes.remove(process)

    # ---- one cycle -----------------------------------------------------------------------

    def cycle(self, fault):
        pod = self.new_pod()
        self.faults[fault] += 1
        address = None
        if fault == "agent-kill-add":
            process = self.driver_async("add", pod)
            time.sleep(self.random.uniform(0, 0.08))
            self.stop_agent(kill=True)
            out, _ = process.communicate()
            self.start_agent()
            self.agent_restarts += 1
            address = self.address(process.returncode, out)
        elif fault == "plugin-kill-add":
            when = self.random.randint(1, max(1, self.sendmsg_calls))
            result = self.traced_add(pod, [
                self.args.strace, "-qq", "-o", "/dev/null", "-e", "trace=sendmsg",
                "-e", f"inject=sendmsg:signal=SIGKILL:when={when}"])
            self.address(result.returncode, result.stdout)
            address = None  # killed: no result for the runtime
        elif fault == "ipam-fail":
            (self.directory / "ipam-fail").write_text(self.random.choice(["before", "after"]))
            result = self.driver("add", pod)
            (self.directory / "ipam-fail").unlink()
            address = self.address(result.returncode, result.stdout)
        elif fault == "statedir-full":
            self.fill_state()
            result = self.driver("add", pod)
            address = self.address(result.returncode, result.stdout)
            if self.random.random() < 0.5:
                self.free_state()
        elif fault == "agent-freeze-add":
            process = self.driver_async("add", pod)
            time.sleep(self.random.uniform(0, 0.08))
            self.freeze()
            out, _ = process.communicate()
            address = self.address(process.returncode, out)
            time.sleep(max(0, AGENT_TIMEOUT + 0.5 - 0.08))
            if self.random.random() < 0.5:
                self.thaw()
        else:
            result = self.driver("add", pod)
            address = self.address(result.returncode, result.stdout)

        flood = None
        if address:
            ping = run(["ip", "netns", "exec", pod, "ping", "-c", "1", "-W", "1", self.p0_ip])
            if ping.returncode != 0:
                self.ping_failures += 1
            self.send_to_service(pod)
            flood = self.flood(address)
            time.sleep(0.02)

        if fault == "netns-gone":
            self.remove_pod(pod)
            self.delete(pod)
        elif fault == "agent-kill-del":
            process = self.driver_async("del", pod)
            time.sleep(self.random.uniform(0, 0.05))
            self.stop_agent(kill=True)
            process.communicate()
            self.after_agent_went(pod, process.returncode)
        elif fault == "agent-freeze-del":
            process = self.driver_async("del", pod)
            time.sleep(self.random.uniform(0, 0.05))
            self.freeze()
            process.communicate()
            time.sleep(max(0, AGENT_TIMEOUT + 0.5 - 0.05))
            self.thaw()
            if process.returncode != 0:
                self.del_retries += 1
                self.delete(pod)
        elif fault == "agent-term-del":
            self.agent.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 1.5
            while api(self.socket, "GET", "/v1/healthz", timeout=1)[0] != 503 and \
                    time.monotonic() < deadline:
                time.sleep(0.01)
            result = self.driver("del", pod)
            self.agent.wait(timeout=20)
            self.agent = None
            self.after_agent_went(pod, result.returncode)
        else:
            self.delete(pod)
            self.thaw()
            self.free_state()
            if fault == "del-repeated":
                for _ in range(self.random.randint(1, 2)):
                    self.delete(pod)
        if flood:
            time.sleep(0.02)  # the flood goes on against the deleted pod
            self.stop(flood)
        if pod in self.namespaces:
            if run(["ip", "-n", pod, "-o", "link", "show", "eth0"]).returncode == 0:
                self.leaks["pod-interfaces"].add(pod)
            self.remove_pod(pod)

    def after_agent_went(self, pod, del_status):
        """A DEL ran while the agent stopped or died: check it was kept, restart the agent,
        and retry the DEL if it failed, as the runtime would."""
        if del_status == 0:
            self.check_deletion_kept(pod)
        self.start_agent()
        self.agent_restarts += 1
        if del_status != 0:
            self.del_retries += 1
            self.delete(pod)

    def check_deletion_kept(self, pod):
        """After a DEL that succeeded while the agent went away, before it restarts: the
        endpoint is either gone from its state or queued for its next start. (The restart
        would hide a lost deletion: reconcile drops endpoints whose link is gone.)"""
        endpoint = f"{self.cid(pod)}:eth0"
        stored = (self.state / "endpoints" / f"{endpoint}.json").exists()
        queued = (Path(self.socket).parent / "delete-queue" / f"{endpoint}.json").exists()
        if stored and not queued:
            self.leaks["lost-deletions"].add(endpoint)

    def address(self, status, stdout):
        if status != 0:
            try:
                code = json.loads(stdout).get("code", status)
            except ValueError:
                code = f"exit {status}"
            self.add_failures[str(code)] = self.add_failures.get(str(code), 0) + 1
            return None
        try:
            return json.loads(stdout)["ips"][0]["address"].split("/")[0]
        except (ValueError, KeyError, IndexError):
            return None

    # ---- leak checks ---------------------------------------------------------------------

    def pins(self):
        return sorted(p for p in os.listdir(self.bpffs) if not p.endswith(".debug"))

    def node_links(self):
        names = []
        for line in must(["ip", "-o", "-n", self.node, "link", "show"]).splitlines():
            parts = line.split(":")
            if len(parts) > 1:
                names.append(parts[1].strip().split("@")[0])
        return [name for name in names if name != "lo"]

    def programs(self, links):
        return attached_programs(self.node, links)

    def check(self, final=False):
        """Counts what leaked. Links, allocations, filters, pins and processes count at once;
        what the agent removes when it applies a queued deletion (endpoints, state files,
        conntrack, affinity and counter entries) counts when it is still there QUEUE_GRACE
        seconds after it was first seen, or at the end: the running agent replays its queue
        every QUEUE_INTERVAL."""
        found = {kind: set() for kind in GRACED}
        links = self.node_links()
        for link in links:
            if link not in (self.p0_host, self.bridge):
                self.leaks["host-veths"].add(link)
        attached = self.programs(links + ["lo"])
        for link in links + ["lo"]:
            qdiscs = run(["ip", "netns", "exec", self.node, "tc", "qdisc", "show", "dev",
                          link]).stdout.decode()
            if "clsact" in qdiscs and (link != self.p0_host or self.tc_hook == "tcx"):
                self.leaks["tc-qdiscs"].add(link)
            prefix = "tcx-" if self.tc_hook == "tcx" else ""
            expected = [f"{prefix}egress:to_endpoint", f"{prefix}ingress:from_endpoint"] \
                if link == self.p0_host else []
            if sorted(attached[link]) != expected:
                self.leaks["tc-filters"].add(f"{link}: {attached[link]}")
        held = sorted(name for name in os.listdir(self.ipam / NETWORK)
                      if not name.startswith("last_reserved_ip") and name != "lock") \
            if (self.ipam / NETWORK).exists() else []
        for address in held:
            if address != self.p0_ip:
                self.leaks["ipam-allocations"].add(address)
        status, body = api(self.socket, "GET", "/v1/endpoints")
        if status != 200:
            raise RuntimeError(f"GET /v1/endpoints answered {status}")
        endpoints = json.loads(body)
        registered = set()
        for endpoint in endpoints:
            if endpoint["id"] != self.p0_id:
                found["agent-endpoints-api"].add(endpoint["id"])
            registered.add(endpoint["spec"]["hostIfindex"])
        files = self.state / "endpoints"
        for name in (os.listdir(files) if files.exists() else []):
            if name != f"{self.p0_id}.json":
                found["agent-state-files"].add(name)
        for name, age in self.queue_records():
            if self.args.legacy_agent or age > QUEUE_GRACE:
                self.leaks["delete-queue-records"].add(name)
        for key in map_keys(str(self.bpffs / "jnc_ct4"), 16) or []:
            for address in (key[0:4], key[4:8]):
                if address[:2] == SUBNET_PREFIX and socket.inet_ntoa(address) != self.p0_ip:
                    found["conntrack-entries"].add(key.hex())
        for key in map_keys(str(self.bpffs / "jnc_lb4_aff"), 8) or []:
            if key[:2] == SUBNET_PREFIX and socket.inet_ntoa(key[0:4]) != self.p0_ip:
                found["affinity-entries"].add(key.hex())
        keys = map_keys_u32(str(self.bpffs / "jnc_ep_counters")) or []
        for key in keys:
            if key not in registered:
                found["counter-keys"].add(key)
        for pin in set(self.pins()) ^ set(self.expected_pins):
            self.leaks["pins"].add(pin)
        for pid in self.stray_agents():
            self.leaks["agent-processes"].add(pid)
        now = time.monotonic()
        for kind, items in found.items():
            for item in items:
                first = self.suspects.setdefault((kind, item), now)
                if final or self.args.legacy_agent or now - first >= QUEUE_GRACE:
                    self.leaks[kind].add(item)
        for key in [key for key in self.suspects if key[1] not in found[key[0]]]:
            del self.suspects[key]

    def queue_records(self):
        """(name, seconds since it was written) of every deletion-queue record."""
        queue = Path(self.socket).parent / "delete-queue"
        found = []
        for name in (os.listdir(queue) if queue.exists() else []):
            try:
                found.append((name, time.time() - (queue / name).stat().st_mtime))
            except FileNotFoundError:
                pass
        return found

    # ---- the run -------------------------------------------------------------------------

    def soak(self):
        started = time.monotonic()
        for number in range(1, self.args.cycles + 1):
            fault = self.random.choice(self.args.faults or FAULTS)
            self.cycle(fault)
            self.check()
            self.cycles_done = number
            if self.args.verbose:
                found = sum(len(items) for items in self.leaks.values())
                print(f"cycle {number}: {fault}, leaks so far {found}", file=sys.stderr)
            if self.args.checkpoint and number % 25 == 0:
                # A long run stopped early still leaves its figures so far.
                Path(self.args.checkpoint).write_text(json.dumps(
                    self.report(time.monotonic() - started), indent=2) + "\n")
        # GC with P0 alone valid: nothing else may be there for it to find, and P0 stays.
        if self.args.gc:
            self.gc()
        # The end: P0 goes too, and nothing of it may stay either.
        self.delete(self.p0)
        self.remove_pod(self.p0)
        self.p0_host, self.p0_id, self.p0_ip = "", "", ""
        # The last records get their grace before the final count.
        deadline = time.monotonic() + QUEUE_GRACE + 1
        while self.queue_records() and time.monotonic() < deadline and not self.args.legacy_agent:
            time.sleep(0.1)
        time.sleep(2 * QUEUE_INTERVAL)
        self.check(final=True)
        return time.monotonic() - started

    def gc(self):
        """CNI 1.1 GC through the driver (the conflist rewritten at 1.1.0 for it), with P0
        alone valid and one orphan attachment (a pod whose DEL the runtime lost): GC must
        deregister the orphan and take its programs off its host veth (native: remove the
        veth), and leave P0 alone. The orphan is then DELed as the runtime would, for its
        address (host-local 1.0 has no GC), and the usual checks follow."""
        orphan = self.new_pod()
        result = self.driver("add", orphan)
        if result.returncode != 0:
            self.gc_failures.append(f"orphan ADD: {result.stdout.decode().strip()}")
            self.remove_pod(orphan)
            return
        host = [i["name"] for i in json.loads(result.stdout)["interfaces"]
                if not i.get("sandbox") and i["name"] != self.bridge][0]
        conf = self.directory / "conf" / "10-pods.conflist"
        original = conf.read_text()
        # Debian's bridge (CNI 1.0.0) knows no GC and fails it: in chained mode only
        # junction's GC runs.
        conf.write_text(json.dumps({"cniVersion": "1.1.0", "name": NETWORK,
                                    "plugins": [self.plugin_object()]}))
        try:
            command, env = self.driver_command("gc", self.p0)
            env["CNI_VALID_ATTACHMENTS"] = json.dumps(
                [{"containerID": self.cid(self.p0), "ifname": "eth0"}])
            result = run(command, env=env)
            if result.returncode != 0:
                self.gc_failures.append((result.stdout + result.stderr).decode().strip())
        finally:
            conf.write_text(original)
        status, body = api(self.socket, "GET", "/v1/endpoints")
        if status != 200 or [e["id"] for e in json.loads(body)] != [self.p0_id]:
            self.gc_failures.append(f"after GC: {status} {body[:300]}")
        if host in self.node_links():
            programs = self.programs([host])[host]
            if not self.chained or any(p.endswith("ingress:from_endpoint") for p in programs):
                self.gc_failures.append(f"after GC the orphan's {host} is still attached")
        self.gc_orphans += 1
        self.delete(orphan)
        self.remove_pod(orphan)

    def plugin_log_counts(self):
        """What the plugin's log says it did about the faults (its own words)."""
        try:
            text = (self.directory / "junction.log").read_text(errors="replace")
        except OSError:
            return {}
        return {
            "deletionsQueued": text.count("deletion queued for the agent's next start"),
            "unlabelledPairsRecognised": text.count("host interface has no alias"),
            "deregistrationsRefused": text.count("agent refused the deregistration"),
        }

    def report(self, seconds):
        return {
            "pluginLog": self.plugin_log_counts(),
            "mode": self.args.mode, "cyclesDone": self.cycles_done,
            "cycles": self.args.cycles, "seed": self.args.seed, "seconds": round(seconds, 1),
            "serviceDatagramsSent": self.ct_entries_made, "gcFailures": self.gc_failures,
            "gcOrphansCollected": self.gc_orphans,
            "faults": self.faults, "agentRestarts": self.agent_restarts,
            "sendmsgCallsPerAdd": self.sendmsg_calls,
            "addFailuresByCode": self.add_failures, "delRetries": self.del_retries,
            "delFailures": [f"{pod}: {out}" for pod, out in self.del_failures],
            "pingFailures": self.ping_failures,
            "leaks": {kind: len(items) for kind, items in self.leaks.items()},
            "leakedItems": {kind: sorted(map(str, items)) for kind, items in self.leaks.items()
                            if items},
        }


def markdown(report):
    machine = platform.uname()
    lines = [
        f"# Fault-injection soak ({report['mode']} mode, issues 18 and 16)", "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {machine.node}, Linux {machine.release}, {machine.machine}, "
        f"{os.cpu_count()} CPUs (shared)",
        f"- command: `bench/soak.py --mode {report['mode']} --cycles {report['cycles']} "
        f"--seed {report['seed']}`",
        f"- pods that sent a datagram to the affinity service (conntrack and affinity entries "
        f"made): {report['serviceDatagramsSent']}; GC: orphans collected "
        f"{report.get('gcOrphansCollected', 0)}, failures: {report['gcFailures'] or 'none'}",
        f"- cycles: {report['cycles']} in {report['seconds']} s; agent restarts: "
        f"{report['agentRestarts']}; DEL retries: {report['delRetries']}; "
        f"DELs that never succeeded: {len(report['delFailures'])}; "
        f"failed pod→P0 pings: {report['pingFailures']}",
        f"- ADDs that failed under a fault, by CNI code: {report['addFailuresByCode'] or 'none'} "
        f"(netlink sendmsg calls per ADD: {report['sendmsgCallsPerAdd']})",
        f"- from the plugin's log: {report['pluginLog']}", "",
        "| fault | cycles |", "|---|---|",
    ] + [f"| {fault} | {count} |" for fault, count in report["faults"].items()] + [
        "", "| leak | count |", "|---|---|",
    ] + [f"| {kind} | {count} |" for kind, count in report["leaks"].items()]
    if report["leakedItems"]:
        lines += ["", "Leaked items:", "", "```", json.dumps(report["leakedItems"], indent=2),
                  "```"]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--mode", choices=["native", "chained"], default="native")
    parser.add_argument("--no-gc", dest="gc", action="store_false",
                        help="skip the GC at the end")
    parser.add_argument("--legacy-agent", action="store_true",
                        help="an agent from before issue 16 (no --delete-queue-interval; "
                        "every queue record left counts)")
    parser.add_argument("--agent-arg", action="append", default=[],
                        help="one more argument for junction-agent (repeatable)")
    parser.add_argument("--json", help="write the report as JSON here (else stdout)")
    parser.add_argument("--markdown", help="write the report as Markdown here")
    parser.add_argument("--faults", type=lambda text: text.split(","), default=None,
                        help="only these faults (comma-separated; default: all)")
    parser.add_argument("--checkpoint", help="write the report so far here every 25 cycles")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--junction", default=str(REPO / ".build/debug/junction"))
    parser.add_argument("--agent", default=str(REPO / ".build/debug/junction-agent"))
    parser.add_argument("--driver", default=str(REPO / ".build-driver/cnidriver"))
    parser.add_argument("--bpf-objects", default=str(REPO / ".build/bpf"))
    parser.add_argument("--strace", default="/usr/bin/strace")
    args = parser.parse_args()
    unknown = set(args.faults or []) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    if os.getuid() != 0:
        print("soak: needs root (network namespaces, bpffs, veths)", file=sys.stderr)
        return 2

    def terminate(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)

    print(f"soak: mode {args.mode}, {args.cycles} cycles, seed {args.seed}", file=sys.stderr)
    soak = Soak(args)
    try:
        soak.setup()
        seconds = soak.soak()
        report = soak.report(seconds)
    finally:
        soak.teardown()
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    else:
        print(text)
    if args.markdown:
        Path(args.markdown).write_text(markdown(report))
    leaked = sum(report["leaks"].values())
    return 1 if leaked or report["delFailures"] or report["gcFailures"] else 0


if __name__ == "__main__":
    sys.exit(main())
