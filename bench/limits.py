#!/usr/bin/env python3
"""Behaviour at the limits (issue 16, part 4), against a real junction-agent in its own node
namespace (the node of bench/soak.py, native mode, host-local):

    bench/limits.py concurrent-adds [--count 100]   N ADDs at once through libcni, then N DELs
    bench/limits.py concurrent-api [--count 1000]   N API requests at once
    bench/limits.py big-apply [--megabytes 100]     one apply of that size
    bench/limits.py bpffs-gone                      the agent's bpffs unmounted under it
    bench/limits.py cgroup-gone                     the cgroup2 of --socket-lb unmounted
                                                    under the agent
    bench/limits.py conntrack-full [--conntrack-max 8]
                                                    TCP connections through a ClusterIP until
                                                    the conntrack map is full, then one more
    bench/limits.py conntrack-upgrade               an agent with ABI 4's LRU conntrack maps
                                                    replaced by this tree's, under held
                                                    connections
    bench/limits.py snat-exhausted [--snat-ports 40000-40003]
                                                    more TCP connections through an SNAT
                                                    NodePort than the range has ports (a
                                                    two-node install/lab, not the soak's node)

Each prints one JSON object (what happened, the agent's peak memory, what was left) and
exits 1 when the behaviour is not the one promised:
- concurrent ADDs: every ADD and DEL succeeds, N endpoints with distinct addresses, then
  nothing left (links, allocations, endpoints);
- concurrent API requests: the agent answers every one (200) or refuses it cleanly (503),
  stays up, and its peak resident memory grows by less than --memory-bound-mb;
- a big apply: 413, the services unchanged, the agent up, memory bounded as above;
- bpffs gone: ADD fails with an error that names the missing pins, /v1/healthz says so
  (degraded, so CNI STATUS fails too), DEL still succeeds, the running pod keeps its datapath; after remounting and restarting the agent, ADD succeeds
  and the old pod's programs are attached again.
- cgroup2 gone (--socket-lb on a cgroup root the agent mounted, unmounted under it):
  /v1/healthz's socketLB component warns (status stays ok: pods do not depend on it), the
  node's own connections to a ClusterIP keep being balanced (the programs hold the cgroup,
  not the mount), ADD works, the agent stops cleanly, and after a restart (which mounts it
  again) socketLB is ok and the node still reaches the service.
- conntrack full (--conntrack-max N, --conntrack-sweep-interval 1): N/2 connections held,
  one more refused with its SYNs counted as "CT: Map insertion failed" while the first one
  keeps echoing; the others closed, a new connection succeeds once their entries have
  expired (the 10 s close timeout) and been swept, and the first one still echoes.
- conntrack upgrade: the pinned LRU jnc_ct4 replaced by a hash map holding all its entries,
  no `_abi4` pin left, the held connections still echoing and a new one working.
- SNAT ports exhausted: as many connections as ports held open from the external client
  through node1's NodePort to a backend on node2; one more fails, with "No free SNAT port"
  counted on node1, while the held ones keep working; once they are closed a new
  connection succeeds (a closed connection's port is free after the datapath's 10 s close
  timeout, bpf/lib/snat.h) and the whole range can be held again.
Run as root from a built tree; everything made is removed at the end.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import soak  # noqa: E402  (the node, agent and driver helpers)


def memory_kb(pid, field):
    """VmRSS or VmHWM (peak) of the process, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def post_reading_early(socket_path, path, body, timeout=120):
    """POST `body` as a client like curl does: the answer is read while the body is still
    being sent (a server may refuse it early). (status, body, bytes sent) or (0, b"", n)."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(timeout)
    connection.connect(socket_path)
    sent = [0]

    def send():
        view = memoryview(body)
        try:
            connection.sendall(
                f"POST {path} HTTP/1.1\r\nHost: agent\r\nContent-Type: application/yaml\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode())
            while sent[0] < len(body):
                sent[0] += connection.send(view[sent[0]:sent[0] + (1 << 20)])
        except OSError:
            pass  # the server closed after answering

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    data = b""
    try:
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + 64:
            chunk = connection.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    finally:
        connection.close()
    head, _, answer = data.partition(b"\r\n\r\n")
    try:
        return int(head.split(b" ")[1]), answer, sent[0]
    except (ValueError, IndexError):
        return 0, b"", sent[0]


def post_writing_first(socket_path, path, body, timeout=120):
    """POST `body` as a naive client does: the whole request written before anything is
    read. A server that refuses early must close (or keep reading) for the write to end;
    then the answer is read. (status, body, bytes sent, how the write ended)."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(timeout)
    connection.connect(socket_path)
    view = memoryview(body)
    sent, ended = 0, "complete"
    try:
        connection.sendall(
            f"POST {path} HTTP/1.1\r\nHost: agent\r\nContent-Type: application/yaml\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode())
        while sent < len(body):
            sent += connection.send(view[sent:sent + (1 << 20)])
    except OSError as error:
        ended = type(error).__name__
    data = b""
    try:
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as error:
        if not data:
            ended += f", read: {type(error).__name__}"
    finally:
        connection.close()
    head, _, answer = data.partition(b"\r\n\r\n")
    try:
        return int(head.split(b" ")[1]), answer, sent, ended
    except (ValueError, IndexError):
        return 0, b"", sent, ended


class Limits(soak.Soak):
    def endpoints(self):
        status, body = soak.api(self.socket, "GET", "/v1/endpoints")
        if status != 200:
            raise RuntimeError(f"GET /v1/endpoints answered {status}")
        return json.loads(body)

    def leftovers(self):
        links = [link for link in self.node_links() if link.startswith("jnc")]
        data = self.ipam / soak.NETWORK
        held = sorted(name for name in os.listdir(data)
                      if not name.startswith("last_reserved_ip") and name != "lock") \
            if data.exists() else []
        return {"links": links, "allocations": held,
                "endpoints": [e["id"] for e in self.endpoints()]}

    # ---- 100 concurrent ADDs -------------------------------------------------------------

    def concurrent_adds(self, count):
        pods = [self.new_pod() for _ in range(count)]
        started = time.monotonic()
        processes = [self.driver_async("add", pod) for pod in pods]
        outputs = [process.communicate(timeout=600) for process in processes]
        add_seconds = time.monotonic() - started
        failures = [f"{pod}: {out.decode().strip()} {err.decode().strip()}"
                    for pod, process, (out, err) in zip(pods, processes, outputs)
                    if process.returncode != 0]
        addresses = [json.loads(out)["ips"][0]["address"]
                     for process, (out, _) in zip(processes, outputs) if process.returncode == 0]
        registered = len(self.endpoints())
        attached = sum(1 for e in self.endpoints() if e.get("datapathAttached"))
        started = time.monotonic()
        processes = [self.driver_async("del", pod) for pod in pods]
        outputs = [process.communicate(timeout=600) for process in processes]
        del_seconds = time.monotonic() - started
        del_failures = [f"{pod}: {out.decode().strip()}"
                        for pod, process, (out, _) in zip(pods, processes, outputs)
                        if process.returncode != 0]
        for pod in pods:
            self.remove_pod(pod)
        left = self.leftovers()
        report = {
            "count": count, "addFailures": failures, "distinctAddresses": len(set(addresses)),
            "registered": registered, "attached": attached, "delFailures": del_failures,
            "addSeconds": round(add_seconds, 1), "delSeconds": round(del_seconds, 1),
            "left": left,
        }
        report["ok"] = (not failures and len(set(addresses)) == count and registered == count
                        and attached == count and not del_failures
                        and not any(left.values()))
        return report

    # ---- 1,000 concurrent API requests ---------------------------------------------------

    def concurrent_api(self, count, bound_mb):
        pid = self.agent.pid
        before = memory_kb(pid, "VmRSS")
        statuses = {}
        lock = threading.Lock()
        barrier = threading.Barrier(count)
        paths = ["/v1/endpoints", "/v1/healthz", "/v1/services", "/v1/config", "/v1/bpf/lb"]

        def one(index):
            try:
                barrier.wait(timeout=60)
            except threading.BrokenBarrierError:
                pass
            # As the plugin's client: connect waits while the listen backlog is full.
            status, _ = soak.api(self.socket, "GET", paths[index % len(paths)], timeout=60,
                                 wait_to_connect=True)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1

        threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.monotonic() - started
        alive = self.agent.poll() is None and \
            soak.api(self.socket, "GET", "/v1/healthz")[0] == 200
        peak = memory_kb(pid, "VmHWM") if alive else 0
        after = memory_kb(pid, "VmRSS") if alive else 0
        report = {
            "count": count, "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "seconds": round(seconds, 2), "agentAlive": alive, "rssBeforeKB": before,
            "peakRssKB": peak, "rssAfterKB": after, "boundMB": bound_mb,
        }
        unanswered = sum(v for k, v in statuses.items() if k not in (200, 503))
        report["ok"] = alive and unanswered == 0 and peak - before < bound_mb * 1024
        return report

    # ---- a 100 MB apply ------------------------------------------------------------------

    def big_apply(self, megabytes, bound_mb):
        pid = self.agent.pid
        _, services_before = soak.api(self.socket, "GET", "/v1/services")
        before = memory_kb(pid, "VmRSS")
        head = b"apiVersion: v1\nkind: Service\nmetadata: {name: big, namespace: default}\n" \
            b"spec:\n  clusterIP: 10.96.251.1\n  ports:\n  - {port: 80, protocol: TCP}\n" \
            b"  # padding\n"
        body = head + b"#" * (megabytes * (1 << 20) - len(head))
        started = time.monotonic()
        status, answer, sent = post_reading_early(self.socket, "/v1/resources/apply", body)
        seconds = time.monotonic() - started
        # A client that writes everything before it reads (as `requests` does).
        started = time.monotonic()
        naive = post_writing_first(self.socket, "/v1/resources/apply", body, timeout=90)
        naive_seconds = time.monotonic() - started
        alive = self.agent.poll() is None and \
            soak.api(self.socket, "GET", "/v1/healthz")[0] == 200
        _, services_after = soak.api(self.socket, "GET", "/v1/services")
        peak = memory_kb(pid, "VmHWM") if alive else 0
        report = {
            "megabytes": megabytes, "status": status, "bytesSentBeforeAnswer": sent, "answer": answer[:300].decode(errors="replace"),
            "seconds": round(seconds, 2),
            "writingFirst": {"status": naive[0], "bytesSent": naive[2], "writeEnded": naive[3],
                             "seconds": round(naive_seconds, 2)},
            "agentAlive": alive,
            "servicesUnchanged": services_before == services_after,
            "rssBeforeKB": before, "peakRssKB": peak, "boundMB": bound_mb,
        }
        report["ok"] = status == 413 and naive[0] == 413 and naive_seconds < 10 \
            and alive and services_before == services_after \
            and peak - before < bound_mb * 1024
        return report

    # ---- the conntrack map full ----------------------------------------------------------

    def ct_setup(self):
        """A backend pod running the echo server behind the TCP ClusterIP CT_VIP:80, and a
        client pod; returns (client, backend)."""
        backend, client = self.new_pod(), self.new_pod()
        addresses = {}
        for pod in (backend, client):
            result = self.driver("add", pod)
            if result.returncode != 0:
                raise RuntimeError(f"ADD failed: {result.stdout.decode()}")
            addresses[pod] = json.loads(result.stdout)["ips"][0]["address"].split("/")[0]
        manifest = soak.service_manifest("ctfull", CT_VIP, "t", 80, "TCP", 8080,
                                         addresses[backend])
        status, body = soak.api(self.socket, "POST", "/v1/resources/apply",
                                body=manifest.encode())
        if status != 200:
            raise RuntimeError(f"applying the service answered {status}: {body[:300]}")
        server = subprocess.Popen(["ip", "netns", "exec", backend, "python3", "-c",
                                   SNAT_SERVER, "8080"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        self.processes.append(server)
        for _ in range(50):
            if soak.run(["ip", "netns", "exec", backend, "python3", "-c",
                         "import socket; socket.create_connection(('127.0.0.1', 8080), 1)"]
                        ).returncode == 0:
                break
            time.sleep(0.2)
        return client, backend

    def conntrack_upgrade(self, old_objects, new_objects, count=3):
        """The agent started with objects whose conntrack maps are ABI 4's LRU maps; a
        client holds `count` connections through a ClusterIP; the agent is restarted with
        this tree's objects (plain hash maps). Promised: the pinned maps are replaced by
        hash maps holding every old entry before the new programs run, the old pins are
        gone, and the held connections keep echoing (none reset)."""
        client, backend = self.ct_setup()
        holder = subprocess.Popen(
            ["ip", "netns", "exec", client, "python3", "-c", CT_HOLDER, CT_VIP, "80",
             str(count)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.processes.append(holder)
        pin = str(self.bpffs / "jnc_ct4")
        phases = []
        report = {"oldObjects": old_objects, "count": count}
        try:
            phases.append(json.loads(holder.stdout.readline() or "null"))
            report["typeBefore"] = map_type_of(pin)
            before = set(soak.map_keys(pin, 16) or [])
            self.args.bpf_objects = new_objects
            started = time.monotonic()
            self.restart_agent()
            report["restartSeconds"] = round(time.monotonic() - started, 1)
            report["typeAfter"] = map_type_of(pin)
            after = set(soak.map_keys(pin, 16) or [])
            report["entriesBefore"] = len(before)
            report["entriesAfter"] = len(after)
            report["entriesKept"] = len(before & after)
            report["legacyPinsLeft"] = sorted(
                name for name in os.listdir(self.bpffs) if name.endswith("_abi4"))
            holder.stdin.write("\n")
            holder.stdin.flush()
            phases.append(json.loads(holder.stdout.readline() or "null"))
            holder.stdin.write("\n")
            holder.stdin.flush()
            holder.wait(timeout=30)
        finally:
            if holder.poll() is None:
                holder.kill()
        with open(self.directory / "agent.log", "rb") as log:
            report["migrationLog"] = [line.decode(errors="replace").strip()
                                      for line in log
                                      if b"aside" in line or b"copied" in line
                                      or b"migration finished" in line]
        for pod in (client, backend):
            self.driver("del", pod)
            self.remove_pod(pod)
        report["phases"] = phases
        report["ok"] = (len(phases) == 2 and phases[0] is not None and phases[1] is not None
                        and phases[0]["held"] == count
                        and report["typeBefore"] == "lru_hash"
                        and report["typeAfter"] == "hash"
                        and len(before) == 2 * count and report["entriesKept"] == len(before)
                        and not report["legacyPinsLeft"]
                        and phases[1]["echoing"] == count and phases[1]["newConnection"])
        return report

    def conntrack_full(self, conntrack_max):
        """A TCP ClusterIP (its backend another pod) and a client pod, the agent's jnc_ct4
        sized to `conntrack_max` entries (two per connection) and swept every second. The
        client holds conntrack_max / 2 connections (the map full), one of them the
        "established" one; promised: one more connection is refused with drops counted as
        "CT: Map insertion failed" while the established one keeps echoing; once the others
        are closed and their entries expired (the 10 s close timeout) and swept, a new
        connection gets through."""
        client, backend = self.ct_setup()
        ct_client = subprocess.Popen(
            ["ip", "netns", "exec", client, "python3", "-c", CT_CLIENT, CT_VIP, "80",
             str(conntrack_max // 2)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.processes.append(ct_client)
        phases, probes = drive_phases(ct_client, 3, lambda: (
            self.ct_full_drops(), len(soak.map_keys(str(self.bpffs / "jnc_ct4"), 16) or [])))
        drops = [d for d, _ in probes]
        entries = [e for _, e in probes]
        map_type = map_type_of(str(self.bpffs / "jnc_ct4"))
        for pod in (client, backend):
            self.driver("del", pod)
            self.remove_pod(pod)
        report = {"conntrackMax": conntrack_max, "mapType": map_type, "phases": phases,
                  "ctFullDrops": drops, "conntrackEntries": entries}
        if len(phases) == 3:
            held, extra, recovery = phases
            report["ok"] = (held["held"] == conntrack_max // 2
                            and extra["extra"] != "connected"
                            and extra["establishedWorking"]
                            and drops[1] > drops[0]
                            and recovery["recoveredAfterSeconds"] is not None
                            and recovery["establishedWorking"])
        else:
            report["ok"] = False
        return report

    def ct_full_drops(self):
        status, body = soak.api(self.socket, "GET", "/v1/bpf/drops")
        if status != 200:
            return None
        return sum(d["packets"] for d in json.loads(body)["drops"]
                   if d["reason"] == "CT: Map insertion failed")

    # ---- the cgroup2 mount vanishing -----------------------------------------------------

    def node_query(self):
        """One datagram from the node's own namespace to the ClusterIP on a connected UDP
        socket: answered only through socket LB (the node has no per-packet path to a
        ClusterIP), and only an answer from the service address counts."""
        script = ("import socket\n"
                  "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                  "u.settimeout(2)\n"
                  f"u.connect(('{soak.VIP}', {soak.VIP_PORT}))\n"
                  "u.send(b'who')\n"
                  "print(u.recv(100).decode())\n")
        result = soak.run(["ip", "netns", "exec", self.node, "python3", "-c", script])
        return result.returncode == 0 and b"echo" in result.stdout

    def health(self):
        status, body = soak.api(self.socket, "GET", "/v1/healthz")
        try:
            return status, json.loads(body)
        except ValueError:
            return status, {}

    def cgroup_gone(self):
        """The agent runs with --socket-lb on a cgroup root of its own (it mounts cgroup2
        there, in the mount namespace `ip netns exec` gave it); the mount is taken away
        under it."""
        backend = self.new_pod()
        result = self.driver("add", backend)
        if result.returncode != 0:
            raise RuntimeError(f"ADD failed: {result.stdout.decode()}")
        self.p0_ip = json.loads(result.stdout)["ips"][0]["address"].split("/")[0]
        server = subprocess.Popen(
            ["ip", "netns", "exec", backend, "python3", "-c",
             "import socket\nu = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
             f"u.bind(('0.0.0.0', {soak.BACKEND_PORT}))\n"
             "while True:\n    d, p = u.recvfrom(100)\n    u.sendto(b'echo', p)\n"])
        self.processes.append(server)
        self.apply_service()
        before = any(self.node_query() for _ in range(10))
        health_before = self.health()
        soak.must(["nsenter", "-t", str(self.agent.pid), "-m", "umount", "-l",
                   self.cgroup_root])
        time.sleep(0.5)
        health_status, health = self.health()
        during = self.node_query()
        # A pod ADD does not depend on the cgroup.
        second = self.new_pod()
        add_during = self.driver("add", second).returncode
        # The recovery path: a restart (the agent mounts cgroup2 again).
        pid = self.agent.pid
        started = time.monotonic()
        self.stop_agent()
        stop_seconds = round(time.monotonic() - started, 1)
        exit_code = None
        log = (self.directory / "agent.log").read_bytes().decode(errors="replace")
        stop_lines = [line for line in log.splitlines()
                      if "cgroup" in line or "socket LB" in line][-6:]
        self.start_agent()
        after = any(self.node_query() for _ in range(10))
        health_after = self.health()
        for pod in (second, backend):
            self.driver("del", pod)
            self.remove_pod(pod)
        report = {
            "cgroupRoot": self.cgroup_root, "agentPid": pid,
            "nodeReachedServiceBefore": before, "healthBefore": health_before[1].get("components"),
            "healthWithoutMount": {"status": health_status, "body": health},
            "nodeReachedServiceWithoutMount": during, "addWithoutMount": add_during,
            "stopSeconds": stop_seconds, "agentLogAtStop": stop_lines,
            "nodeReachedServiceAfterRestart": after,
            "healthAfterRestart": health_after[1].get("components"),
            "left": self.leftovers(),
        }
        components = health.get("components", {}) if isinstance(health, dict) else {}
        report["healthSaysMountGone"] = components.get("socketLB", "").startswith(
            "warning: the cgroup2")
        report["ok"] = (before and report["healthSaysMountGone"] and add_during == 0
                        and health.get("status") == "ok" and during
                        and after and health_after[1].get("components", {}).get("socketLB") == "ok"
                        and not any(report["left"].values()))
        return report

    # ---- the bpffs vanishing -------------------------------------------------------------

    def bpffs_gone(self):
        first = self.new_pod()
        result = self.driver("add", first)
        if result.returncode != 0:
            raise RuntimeError(f"the first ADD failed: {result.stdout.decode()}")
        first_host = [i["name"] for i in json.loads(result.stdout)["interfaces"]
                      if not i.get("sandbox")][0]
        # `ip netns exec` gave the agent its own mount namespace, to which an unmount on the
        # host may not propagate (it depends on the mount's propagation): gone in both.
        soak.run(["nsenter", "-t", str(self.agent.pid), "-m", "umount", "-l", str(self.bpffs)])
        soak.must(["umount", "-l", str(self.bpffs)])
        self.mounted = False
        second = self.new_pod()
        during = self.driver("add", second)
        health_status, health = soak.api(self.socket, "GET", "/v1/healthz")
        kept_datapath = any(program.endswith("ingress:from_endpoint") for program in
                            soak.attached_programs(self.node, [first_host])[first_host])
        second_del = self.driver("del", second)
        # The recovery path: the mount back, the agent restarted.
        soak.must(["mount", "-t", "bpf", "bpf", str(self.bpffs)])
        self.mounted = True
        self.restart_agent()
        third = self.new_pod()
        after = self.driver("add", third)
        first_endpoint = [e for e in self.endpoints() if e["id"] == f"{self.cid(first)}:eth0"]
        reattached = bool(first_endpoint) and bool(first_endpoint[0].get("datapathAttached"))
        dels = [self.driver("del", pod).returncode for pod in (first, third)]
        for pod in (first, second, third):
            self.remove_pod(pod)
        error = during.stdout.decode(errors="replace").strip()
        report = {
            "addWithoutBpffs": {"exit": during.returncode, "error": error[:500]},
            "healthWithoutBpffs": {"status": health_status,
                                   "body": health[:400].decode(errors="replace")},
            "runningPodKeptItsPrograms": kept_datapath,
            "delWithoutBpffs": second_del.returncode,
            "addAfterRecovery": after.returncode, "oldPodReattached": reattached,
            "delsAfterRecovery": dels, "left": self.leftovers(),
        }
        try:
            datapath = json.loads(health)["components"]["datapath"]
        except (ValueError, KeyError):
            datapath = ""
        report["healthSaysPinsMissing"] = "pinned programs" in datapath
        report["ok"] = (during.returncode != 0 and "bpf" in error.lower() and kept_datapath
                        and report["healthSaysPinsMissing"]
                        and second_del.returncode == 0 and after.returncode == 0 and reattached
                        and dels == [0, 0] and not any(report["left"].values()))
        return report


# ---- the conntrack map full ------------------------------------------------------------

CT_VIP = "10.96.250.11"

# What every client script below starts with: `connect` to (host, port), which the script
# sets from its arguments, expecting the echo server's greeting; `echoes`, whether a held
# connection still answers; `say`, one phase's JSON line, then wait for the driver's line.
CLIENT_PRELUDE = r"""
import json, socket, sys, time
def connect(timeout):
    s = socket.create_connection((host, port), timeout=timeout)
    s.settimeout(5)
    if not s.recv(200).startswith(b"hello"):
        raise OSError("no greeting")
    return s
def echoes(s):
    try:
        s.sendall(b"ping\n")
        return s.recv(200) == b"ping\n"
    except OSError:
        return False
def say(report):
    print(json.dumps(report), flush=True)
    sys.stdin.readline()
"""

# The client pod: phases separated by a line on stdin, each reported as one JSON line.
CT_CLIENT = CLIENT_PRELUDE + r"""
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held, failed = [], []
for _ in range(count):
    try:
        held.append(connect(5))
    except OSError as error:
        failed.append(str(error))
say({"held": len(held), "failedToOpen": failed})
# The map holds `count` connections: one more is refused (its SYNs dropped).
started = time.monotonic()
try:
    held.append(connect(3))
    extra = "connected"
except OSError as error:
    extra = str(error) or type(error).__name__
established = held[0] if held else None
say({"extra": extra, "extraSeconds": round(time.monotonic() - started, 1),
     "establishedWorking": established is not None and echoes(established)})
# All but the established one closed: their entries expire (close timeout) and are swept.
for s in held[1:]:
    s.close()
closed = time.monotonic()
first, attempts = None, 0
while time.monotonic() - closed < 60:
    attempts += 1
    try:
        connect(1.5).close()
        first = round(time.monotonic() - closed, 1)
        break
    except OSError:
        pass
say({"recoveredAfterSeconds": first, "attempts": attempts,
     "establishedWorking": established is not None and echoes(established)})
"""

# Holds `count` connections; after a line on stdin, says how many still echo and whether a
# new connection works.
CT_HOLDER = CLIENT_PRELUDE + r"""
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held = []
for _ in range(count):
    try:
        held.append(connect(5))
    except OSError:
        pass
print(json.dumps({"held": len(held), "echoing": sum(echoes(s) for s in held)}), flush=True)
sys.stdin.readline()
try:
    connect(3).close()
    fresh = True
except OSError:
    fresh = False
print(json.dumps({"echoing": sum(echoes(s) for s in held), "newConnection": fresh}),
      flush=True)
sys.stdin.readline()
"""


def drive_phases(client, count, probe):
    """Reads up to `count` phase lines (JSON) from a client script started with pipes,
    calling `probe` after each and only then letting the client go on (a line on its
    stdin); returns the phases and the probes' results. The client is killed if it has not
    ended 60 s after its last phase, or on any error."""
    phases, probes = [], []
    try:
        for _ in range(count):
            line = client.stdout.readline()
            if not line:
                break
            phases.append(json.loads(line))
            probes.append(probe())
            client.stdin.write("\n")
            client.stdin.flush()
        client.wait(timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
    return phases, probes

def map_type_of(pin):
    """The pinned map's type ("hash", "lru_hash" or the number), or None when it is missing:
    BPF_OBJ_GET, then BPF_OBJ_GET_INFO_BY_FD (bpf_map_info.type is its first field)."""
    import ctypes
    import struct
    path = ctypes.create_string_buffer(pin.encode())
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<QII", attr, 0, ctypes.addressof(path), 0, 0)
    fd, _ = soak.bpf(soak.BPF_OBJ_GET, attr)
    if fd < 0:
        return None
    try:
        info = ctypes.create_string_buffer(88)
        attr = ctypes.create_string_buffer(128)
        struct.pack_into("<IIQ", attr, 0, fd, 88, ctypes.addressof(info))
        result, _ = soak.bpf(15, attr)  # BPF_OBJ_GET_INFO_BY_FD
        if result < 0:
            return None
        kind = struct.unpack_from("<I", info.raw, 0)[0]
        return {1: "hash", 9: "lru_hash"}.get(kind, str(kind))
    finally:
        os.close(fd)


# ---- SNAT ports exhausted (a two-node install/lab, not the soak's node) ----------------

SNAT_SERVER = r"""
import socket, sys, threading
def serve(c, peer):
    try:
        c.sendall(("hello %s\n" % peer[0]).encode())
        while True:
            data = c.recv(200)
            if not data:
                break
            c.sendall(data)
    except OSError:
        pass
    c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(64)
while True:
    c, peer = s.accept()
    threading.Thread(target=serve, args=(c, peer), daemon=True).start()
"""

# The external client: phases separated by a line on stdin, each reported as one JSON line.
SNAT_CLIENT = CLIENT_PRELUDE + r"""
host, port, ports = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held, failed = [], []
for _ in range(ports):
    # While few ports are free a SYN may find none in its probes: TCP sends it again.
    try:
        held.append(connect(10))
    except OSError as error:
        failed.append(str(error))
say({"held": len(held), "failedToOpen": failed})
# One more than the range holds: every SYN finds every port taken.
started = time.monotonic()
try:
    held.append(connect(4))
    extra = "connected"
except OSError as error:
    extra = str(error) or type(error).__name__
working = sum(echoes(s) for s in held)
say({"extra": extra, "extraSeconds": round(time.monotonic() - started, 1), "heldWorking": working})
for s in held:
    s.close()
closed = time.monotonic()
# Recovery: a new connection as soon as a closed one's port may be claimed again.
first, attempts = None, 0
while time.monotonic() - closed < 40:
    attempts += 1
    try:
        held = [connect(1.5)]
        first = round(time.monotonic() - closed, 1)
        break
    except OSError:
        pass
reopened = len(held) if first is not None else 0
if first is not None:
    for _ in range(ports - 1):
        try:
            held.append(connect(10))
            reopened += 1
        except OSError:
            pass
say({"recoveredAfterSeconds": first, "attempts": attempts, "reopened": reopened})
"""


class SNATLab:
    """A two-node install/lab in SNAT mode with a tiny --snat-port-range; the one backend
    pod on node2, the NodePort asked from the external client at node1."""

    NODE1, NODE_PORT = "172.30.0.11", 30080

    def __init__(self, args):
        self.name = f"lim{os.getpid() % 100000}"
        self.args = args
        self.directory = Path(f"/tmp/{self.name}-snat")
        self.env = dict(os.environ, LAB_DRIVER=args.driver, LAB_BPF=args.bpf_objects)

    def lab(self, *arguments, check=True, timeout=180):
        result = subprocess.run(
            ["bash", str(soak.REPO / "install/lab"), "--name", self.name, *arguments],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"lab {' '.join(arguments)}: "
                               f"{result.stdout.decode()}{result.stderr.decode()}")
        return result

    def drops(self):
        out = self.lab("ctl", "node1", "bpf", "drops", "-o", "json").stdout
        return {d["reason"]: d["packets"] for d in json.loads(out)["drops"]}

    def run(self, low, high):
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "server.py").write_text(SNAT_SERVER)
        (self.directory / "client.py").write_text(SNAT_CLIENT)
        manifest = self.directory / "service.yaml"
        manifest.write_text(
            "apiVersion: v1\nkind: Service\nmetadata: {name: echo, namespace: default}\n"
            "spec:\n  type: NodePort\n  clusterIP: 10.96.52.10\n  selector: {app: echo}\n"
            f"  ports:\n  - {{port: 80, targetPort: 8080, nodePort: {self.NODE_PORT}, "
            "protocol: TCP}\n")
        binaries = str(Path(self.args.agent).parent)
        self.lab("up", "--nodes", "2", "--lb-mode", "snat", "--bin", binaries,
                 "--agent-arg", f"--snat-port-range={low}-{high}", timeout=300)
        self.lab("pod", "add", "echo2", "--node", "node2", "--label", "app=echo")
        self.lab("exec", "--detach", "echo2", "--", "python3",
                 str(self.directory / "server.py"), "8080")
        self.lab("apply", "-f", str(manifest))
        # The server is up once the pod's port answers (straight, no NAT involved).
        for _ in range(50):
            if self.lab("exec", "echo2", "--", "python3", "-c",
                         "import socket; socket.create_connection(('127.0.0.1', 8080), 1)",
                         check=False).returncode == 0:
                break
            time.sleep(0.2)
        ports = high - low + 1
        client = subprocess.Popen(
            ["bash", str(soak.REPO / "install/lab"), "--name", self.name, "exec-client", "--",
             "python3", str(self.directory / "client.py"), self.NODE1, str(self.NODE_PORT),
             str(ports)],
            env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        phases, drops = drive_phases(client, 3, self.drops)
        report = {"ports": ports, "range": f"{low}-{high}", "phases": phases}
        no_port = "No free SNAT port"
        report["noPortDrops"] = [d.get(no_port, 0) for d in drops]
        report["otherDrops"] = {k: v for k, v in (drops[-1] if drops else {}).items()
                                if k != no_port}
        if len(phases) == 3:
            held, extra, recovery = phases
            report["ok"] = (held["held"] == ports and extra["extra"] != "connected"
                            and extra["heldWorking"] == ports
                            and report["noPortDrops"][1] > report["noPortDrops"][0]
                            and recovery["recoveredAfterSeconds"] is not None
                            and recovery["reopened"] == ports)
        else:
            report["ok"] = False
        return report

    def teardown(self):
        self.lab("down", check=False)
        subprocess.run(["rm", "-rf", str(self.directory)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("limit", choices=["concurrent-adds", "concurrent-api", "big-apply",
                                          "bpffs-gone", "conntrack-full", "conntrack-upgrade",
                                          "snat-exhausted",
                                          "cgroup-gone"])
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--snat-ports", default="40000-40003",
                        help="snat-exhausted: the agents' --snat-port-range (LOW-HIGH)")
    parser.add_argument("--conntrack-max", type=int, default=8,
                        help="conntrack-full: the agent's --conntrack-max (two entries a "
                             "connection)")
    parser.add_argument("--memory-bound-mb", type=int, default=64,
                        help="how much the agent's peak RSS may grow")
    parser.add_argument("--json", help="write the report here (else stdout)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--junction", default=str(soak.REPO / ".build/debug/junction"))
    parser.add_argument("--agent", default=str(soak.REPO / ".build/debug/junction-agent"))
    parser.add_argument("--driver", default=str(soak.REPO / ".build-driver/cnidriver"))
    parser.add_argument("--bpf-objects", default=str(soak.REPO / ".build/bpf"))
    parser.add_argument("--strace", default="/usr/bin/strace")
    parser.add_argument("--legacy-agent", action="store_true",
                        help="an agent from before issue 16 (no --delete-queue-interval)")
    parser.add_argument("--agent-arg", action="append", default=[],
                        help="one more argument for junction-agent (repeatable)")
    args = parser.parse_args()
    # What soak.Soak reads from its own arguments.
    args.mode, args.seed = "native", 0
    if os.getuid() != 0:
        print("limits: needs root", file=sys.stderr)
        return 2

    def terminate(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)

    if args.limit == "snat-exhausted":
        low, high = (int(p) for p in args.snat_ports.split("-"))
        lab = SNATLab(args)
        try:
            report = lab.run(low, high)
        finally:
            lab.teardown()
        return finish(report, args)
    if args.limit == "conntrack-full":
        args.agent_arg += ["--conntrack-max", str(args.conntrack_max),
                           "--conntrack-sweep-interval", "1"]
    limits = Limits(args)
    if args.limit == "conntrack-upgrade":
        # This tree's programs with ABI 4's LRU conntrack maps (bpf/lib/maps.h
        # JNC_CT_MAP_TYPE), built beside the node's directory: the "old" agent's objects.
        new_objects = args.bpf_objects
        old_objects = str(limits.directory / "bpf-abi4")
        build = subprocess.run(
            ["bash", str(soak.REPO / "install/build-bpf.sh"), old_objects],
            env=dict(os.environ, BPF_CFLAGS="-DJNC_CT_MAP_TYPE=BPF_MAP_TYPE_LRU_HASH"),
            capture_output=True, text=True)
        if build.returncode != 0:
            raise RuntimeError(f"building the LRU objects failed: {build.stderr[-500:]}")
        args.bpf_objects = old_objects
    if args.limit == "cgroup-gone":
        limits.cgroup_root = str(limits.directory / "cgroupv2")
        args.agent_arg += ["--socket-lb", "--cgroup-root", limits.cgroup_root]
    try:
        limits.setup_node()
        if args.limit == "concurrent-adds":
            report = limits.concurrent_adds(args.count or 100)
        elif args.limit == "concurrent-api":
            report = limits.concurrent_api(args.count or 1000, args.memory_bound_mb)
        elif args.limit == "big-apply":
            report = limits.big_apply(args.megabytes, args.memory_bound_mb)
        elif args.limit == "cgroup-gone":
            report = limits.cgroup_gone()
        elif args.limit == "conntrack-full":
            report = limits.conntrack_full(args.conntrack_max)
        elif args.limit == "conntrack-upgrade":
            report = limits.conntrack_upgrade(old_objects, new_objects)
        else:
            report = limits.bpffs_gone()
    finally:
        limits.teardown()
    return finish(report, args)


def finish(report, args):
    report["limit"] = args.limit
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
