#!/usr/bin/env bash
# What the L7 proxy redirect costs in the datapath: a pod's connections to a redirected
# ClusterIP (bpf_sk_assign to the node's proxy listener, destination and source kept)
# against the same listener reached directly at the node's address (no redirect), with the
# BPF-balanced ClusterIP and the backend pod straight as the L4 references. The proxy is a
# stand-in (bench/proxysink.c, IP_TRANSPARENT), so what differs between the first two is the
# redirect alone. See "proxy-redirect.sh" in bench/README.md. Needs root, gcc, python3 and
# what install/lab needs (a debug build is fine: the path measured is the kernel's).
#
#   sudo bash bench/proxy-redirect.sh [--write FILE] [--rounds 20] [--count 200]
#        [--warmup 20] [--bytes 1073741824] [--repeats 5]
set -euo pipefail

bench="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$bench")"
. "$bench/lib.sh"

write="" rounds=20 count=200 warmup=20 bytes=1073741824 repeats=5
value_options proxy-redirect "write rounds count warmup bytes repeats" "$@"
tmp="$(mktemp -d /tmp/junction-proxyredirect.XXXXXX)"
lab=(bash "$repo/install/lab" --name "jpr$$")
cleanup() {
  "${lab[@]}" down >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
header="$(machine_lines)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"

gcc -O2 -Wall -o "$tmp/proxysink" "$bench/proxysink.c" -lpthread
gcc -O2 -o "$tmp/conncost" "$bench/conncost.c"
"${lab[@]}" up --nodes 1 --agent-arg --proxy-redirect=default/sink=15001 \
  --agent-arg --proxy-redirect=default/bulk=15002 >&2
"${lab[@]}" pod add client --node node1 >&2
"${lab[@]}" pod add backend --node node1 --label app=backend >&2
cat >"$tmp/services.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: sink, namespace: default}
spec:
  clusterIP: 10.96.70.10
  selector: {app: backend}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: bulk, namespace: default}
spec:
  clusterIP: 10.96.70.11
  selector: {app: backend}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: plain, namespace: default}
spec:
  clusterIP: 10.96.70.20
  selector: {app: backend}
  ports: [{port: 80, targetPort: 8080}]
YAML
"${lab[@]}" apply -f "$tmp/services.yaml" >&2
"${lab[@]}" exec-node --detach node1 -- "$tmp/proxysink" close 15001 >&2
"${lab[@]}" exec-node --detach node1 -- "$tmp/proxysink" drain 15002 >&2
# The backend: accept-and-close on 8080 (behind the ClusterIP) and 8081 (straight, so a
# straight connection never reuses a tuple a translated one had); drain on 9000.
"${lab[@]}" exec --detach backend -- "$tmp/conncost" serve 8080 >&2
"${lab[@]}" exec --detach backend -- "$tmp/conncost" serve 8081 >&2
"${lab[@]}" exec --detach backend -- "$tmp/proxysink" drain 9000 >&2
sleep 1
backend="$(ip -n "jpr$$-pod-backend" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)"
client_ns="jpr$$-pod-client"
node=172.30.0.11

targets=(
  "redirect=$client_ns=10.96.70.10:80"
  "proxy-direct=$client_ns=$node:15001"
  "clusterip-bpf=$client_ns=10.96.70.20:80"
  "pod-direct=$client_ns=$backend:8081"
)
"$tmp/conncost" measure "$tmp/check.txt" 1 1 0 "${targets[@]}" 2>"$tmp/check.err" ||
  { cat "$tmp/check.err" >&2; exit 1; }
"$tmp/conncost" measure "$tmp/samples.txt" "$rounds" "$count" "$warmup" "${targets[@]}"

: >"$tmp/bulk.txt"
for r in $(seq "$repeats"); do
  for target in "redirect=10.96.70.11:80" "proxy-direct=$node:15002" "pod-direct=$backend:9000"; do
    echo "${target%%=*} $("$tmp/proxysink" send "$client_ns" "${target#*=}" "$bytes")" >>"$tmp/bulk.txt"
  done
done
drops="$("${lab[@]}" ctl node1 bpf drops)"

python3 - "$tmp/samples.txt" "$tmp/bulk.txt" "$started" "$rounds" "$count" "$bytes" "$repeats" "$header" "$drops" >"$tmp/table.md" <<'PY'
import statistics, sys
samples, bulk, started, rounds, count, size, repeats, header, drops = sys.argv[1:10]
by = {}
for line in open(samples):
    label, _, ns = line.split()
    by.setdefault(label, []).append(int(ns) / 1000)
def q(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]
order = ["redirect", "proxy-direct", "clusterip-bpf", "pod-direct"]
print("# L7 proxy redirect: cost in the datapath (bench/proxy-redirect.sh)\n")
print(f"- date: {started}")
print(header)
print(f"- connection cost: {rounds} rounds x {count} connections per target (order rotating), connect()+close() from a pod, µs")
print(f"- throughput: {int(size) >> 20} MiB on one connection from the pod, {repeats} repeats per target, median\n")
print("| target | what | p50 µs | p90 µs | p99 µs | mean µs | p50 vs proxy-direct |")
print("|---|---|---|---|---|---|---|")
what = {
    "redirect": "pod → redirected ClusterIP → bpf_sk_assign → stand-in proxy (node netns)",
    "proxy-direct": "pod → node address:15001, the same listener, no redirect",
    "clusterip-bpf": "pod → ClusterIP balanced by BPF → backend pod (L4 reference)",
    "pod-direct": "pod → backend pod IP (floor)",
}
base = q(by["proxy-direct"], 0.5)
for label in order:
    v = by[label]
    print(f"| {label} | {what[label]} | {q(v,.5):.1f} | {q(v,.9):.1f} | {q(v,.99):.1f} | {statistics.mean(v):.1f} | {q(v,.5)/base:.3f} |")
rates = {}
for line in open(bulk):
    label, n, seconds = line.split()
    rates.setdefault(label, []).append(int(n) * 8 / float(seconds) / 1e9)
print("\n| target | Gbit/s (median) | all runs | vs proxy-direct |")
print("|---|---|---|---|")
b = statistics.median(rates["proxy-direct"])
for label in ["redirect", "proxy-direct", "pod-direct"]:
    m = statistics.median(rates[label])
    print(f"| {label} | {m:.2f} | {', '.join(f'{x:.2f}' for x in rates[label])} | {m/b:.3f} |")
print("\nDrop counters after the run (`junctionctl bpf drops`):\n")
print("```\n" + drops.strip() + "\n```")
PY
cat "$tmp/table.md"
[[ -n "$write" ]] && cp "$tmp/table.md" "$write"
exit 0
