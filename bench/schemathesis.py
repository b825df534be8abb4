#!/usr/bin/env python3
"""schemathesis against docs/openapi.yaml on a live junction-agent (issue 16, part 3).

    bench/schemathesis.py [--max-examples 50] [--seed N] [--json FILE]

A standalone agent (its own network namespace, bpffs, state and socket in a temporary
directory) with its datapath loaded; the API is on a Unix socket only, so a small TCP
forwarder on 127.0.0.1 gives schemathesis a base URL. schemathesis (pinned in
tools/schemathesis/requirements.txt, installed by install/deps.sh test into
.venv-schemathesis) runs every operation of the document (less /flows' follow, which
streams until shutdown): examples, coverage and fuzzing phases, with the checks that every response is not a 5xx and conforms to the document
(status code, content type, headers, body schema). Prints one JSON object (cases, failures,
schemathesis's summary) and exits 1 on any failure or when the agent died. Run as root from a
built tree; everything made is removed at the end.
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance")


def forward(listener, socket_path, stop):
    """Accepts TCP connections on `listener` and pipes each to the agent's Unix socket."""
    def pipe(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (sink, source):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    listener.settimeout(0.5)
    while not stop.is_set():
        try:
            client, _ = listener.accept()
        except socket.timeout:
            continue
        except OSError:
            break
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(socket_path)
        except OSError:
            client.close()
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pipe, args=(a, b), daemon=True).start()


def without_follow(directory):
    """docs/openapi.yaml less GET /v1/flows's `follow` parameter, written to `directory`:
    follow=true streams until the agent shuts down (as documented), so a case with it could
    only time out. The stream is FlowTests' to test; everything else is the document as is."""
    import yaml
    document = yaml.safe_load((REPO / "docs/openapi.yaml").read_text())
    flows = document["paths"]["/flows"]["get"]
    flows["parameters"] = [p for p in flows["parameters"] if p.get("name") != "follow"]
    path = directory / "openapi.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", default=str(REPO / ".build/debug/junction-agent"))
    parser.add_argument("--bpf-objects", default=str(REPO / ".build/bpf"))
    parser.add_argument("--schemathesis", default=str(REPO / ".venv-schemathesis/bin/schemathesis"))
    parser.add_argument("--max-examples", type=int, default=50,
                        help="per operation and phase (schemathesis's --max-examples)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--workers", default="1",
                        help="1: several workers tripped a thread-safety error inside hypothesis")
    parser.add_argument("--json", help="write the report here (else stdout)")
    args = parser.parse_args()
    if os.getuid() != 0:
        print("schemathesis: needs root", file=sys.stderr)
        return 2
    for what, path in (("junction-agent", args.agent), ("schemathesis", args.schemathesis)):
        if not os.access(path, os.X_OK):
            print(f"schemathesis: {what} is missing at {path} (install/deps.sh test)",
                  file=sys.stderr)
            return 2

    def terminate(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)

    directory = Path(tempfile.mkdtemp(prefix=f"junction-st-{os.getpid()}-"))
    namespace = f"jst{os.getpid() % 100000}"
    bpffs, state, sock = directory / "bpf", directory / "state", str(directory / "agent.sock")
    agent = None
    stop = threading.Event()
    mounted = False
    try:
        bpffs.mkdir()
        state.mkdir()
        subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], check=True)
        mounted = True
        subprocess.run(["ip", "netns", "add", namespace], check=True)
        log = open(directory / "agent.log", "wb")
        agent = subprocess.Popen(
            ["ip", "netns", "exec", namespace, args.agent, "--node-name", namespace,
             "--socket", sock, "--state-dir", str(state), "--bpf-fs", str(bpffs),
             "--bpf-objects", args.bpf_objects, "--log-level", "info"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while not os.path.exists(sock):
            if agent.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the agent did not start: "
                                   + (directory / "agent.log").read_text()[-2000:])
            time.sleep(0.05)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        threading.Thread(target=forward, args=(listener, sock, stop), daemon=True).start()
        env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
        command = [args.schemathesis, "run", str(without_follow(directory)),
                   "--url", f"http://127.0.0.1:{port}/v1", "--checks", CHECKS,
                   "--phases", "examples,coverage,fuzzing",
                   "--max-examples", str(args.max_examples), "--seed", str(args.seed),
                   "--workers", args.workers, "--request-timeout", "10",
                   "--suppress-health-check", "all", "--continue-on-failure"]
        started = time.monotonic()
        result = subprocess.run(command, env=env, cwd=directory, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, timeout=1800)
        seconds = round(time.monotonic() - started, 1)
        output = result.stdout.decode(errors="replace")
        alive = agent.poll() is None
        exit_status = agent.returncode
        agent_log = (directory / "agent.log").read_text(errors="replace")
    finally:
        stop.set()
        if agent is not None and agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(timeout=20)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
        subprocess.run(["ip", "netns", "del", namespace], stderr=subprocess.DEVNULL)
        if mounted:
            subprocess.run(["umount", "-l", str(bpffs)])
        subprocess.run(["rm", "-rf", str(directory)])
    cases = re.search(r"Test cases:\s*\n?\s*(\d+) generated", output)
    failures = re.search(r"found (\d+) unique failures", output)
    errored = re.search(r"Test cases:[^\n]*\n?[^\n]*?(\d+) errored", output)
    summary = output[output.rfind("SUMMARY"):] if "SUMMARY" in output else output[-3000:]
    report = {
        "command": " ".join(command[1:]).replace(str(REPO) + "/", ""),
        "exit": result.returncode, "seconds": seconds, "agentAlive": alive,
        "casesGenerated": int(cases.group(1)) if cases else None,
        "uniqueFailures": int(failures.group(1)) if failures else (0 if cases else None),
        "errored": int(errored.group(1)) if errored else 0,
        "summary": summary[-6000:],
    }
    if not alive:
        report["agentExit"] = exit_status
        crash = max(agent_log.find("Fatal error"), agent_log.find("Crash"), 0)
        report["agentCrash"] = agent_log[crash:crash + 6000]
    if "ERRORS" in output:
        errors = output[output.find("ERRORS"):]
        report["errors"] = errors[:errors.find("WARNINGS")][:12000]
    if result.returncode != 0:
        report["failures"] = output[output.find("FAILURES"):][:20000] if "FAILURES" in output \
            else output[-20000:]
    report["ok"] = result.returncode == 0 and alive
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
