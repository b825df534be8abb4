#!/usr/bin/env bash
# DNS from a pod through the kube-dns ClusterIP: to the remote upstream DNS pod (plain
# service load balancing) against the node-local DNS cache on the pod's own node (the
# same ClusterIP, redirected by a Local Redirect Policy), in one run. See "dns-cache.sh" in
# bench/README.md. Needs root, dnsmasq, dnsperf, dig, python3, a built tree (install/lab).
#
#   sudo bash bench/dns-cache.sh [--write FILE] [--rounds 4] [--queries 3000] [--seconds 10]
#        [--bin DIR]
set -euo pipefail

bench="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$bench")"
. "$bench/lib.sh"

write="" rounds=4 queries=3000 seconds=10 bin=""
args=("$@")
value_options dns-cache "write rounds queries seconds bin" "$@"
for tool in dnsmasq dnsperf dig; do
  command -v "$tool" >/dev/null || [[ -x "/usr/sbin/$tool" ]] ||
    { echo "dns-cache: $tool is missing (install/deps.sh test)" >&2; exit 1; }
done
lab="$repo/install/lab"
name="jdns$$"
tmp="$(mktemp -d /tmp/junction-dns.XXXXXX)"
cleanup() {
  bash "$lab" --name "$name" down >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
header="$(machine_lines)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"

echo "dns-cache: lab $name: 2 nodes, client on node1, upstream DNS pod on node2, a cache per node" >&2
bash "$lab" --name "$name" up --nodes 2 ${bin:+--bin "$bin"} >&2
bash "$lab" --name "$name" pod add client --node node1 >&2
bash "$repo/install/lab-examples/node-local-dns/deploy.sh" --name "$name" --upstreams node2 --no-lrp >&2
policy="$repo/install/lab-examples/node-local-dns/node-local-dns-lrp.yaml"
record=web.default.svc.cluster.local
printf '%s A\n' "$record" >"$tmp/queries.txt"

in_client() { bash "$lab" --name "$name" exec client -- "$@"; }

# Puts the path in place and checks that it is the one answering: the cache answers
# whoami-cache itself; the upstream does not know the name.
use_path() {
  local path="$1" want got tries=0
  if [[ "$path" == cache ]]; then
    bash "$lab" --name "$name" apply -f "$policy" >/dev/null
    want='"node-local-dns-node1"'
  else
    bash "$lab" --name "$name" delete -f "$policy" >/dev/null
    want=""
  fi
  while :; do
    got="$(in_client dig @10.96.0.10 +short +time=1 +tries=1 TXT whoami-cache.cluster.local || true)"
    [[ "$got" == "$want" ]] && break
    ((++tries < 20)) || { echo "dns-cache: $path: whoami-cache answered '$got', want '$want'" >&2; exit 1; }
    sleep 0.3
  done
}

paths=(upstream cache)
mkdir -p "$tmp/results"
for ((round = 0; round < rounds; round++)); do
  for ((k = 0; k < ${#paths[@]}; k++)); do
    path="${paths[$(((round + k) % ${#paths[@]}))]}"
    echo "dns-cache: round $((round + 1))/$rounds, $path" >&2
    use_path "$path"
    in_client python3 "$bench/dns_latency.py" 10.96.0.10 "$record" "$queries" 200 \
      >"$tmp/results/$path.$round.latency.json"
    in_client dnsperf -s 10.96.0.10 -d "$tmp/queries.txt" -l "$seconds" -c 1 -T 1 -q 64 \
      >"$tmp/results/$path.$round.dnsperf.txt" 2>&1 ||
      { echo "dns-cache: dnsperf failed:" >&2; cat "$tmp/results/$path.$round.dnsperf.txt" >&2; exit 1; }
  done
done

python3 - "$tmp/results" "$rounds" >"$tmp/table.md" <<'PY'
import json, re, statistics, sys
results, rounds = sys.argv[1], int(sys.argv[2])
names = {"upstream": "kube-dns ClusterIP → upstream DNS pod on the other node (no policy)",
         "cache": "kube-dns ClusterIP → node-local cache on the client's node (LRP)"}
rows = {}
for path in ("upstream", "cache"):
    lat = [json.load(open(f"{results}/{path}.{r}.latency.json")) for r in range(rounds)]
    qps, lost = [], []
    for r in range(rounds):
        text = open(f"{results}/{path}.{r}.dnsperf.txt").read()
        qps.append(float(re.search(r"Queries per second:\s+([\d.]+)", text).group(1)))
        lost.append(int(re.search(r"Queries lost:\s+(\d+)", text).group(1)))
    rows[path] = {
        "p50": statistics.median(l["p50"] for l in lat), "p99": statistics.median(l["p99"] for l in lat),
        "p50s": [l["p50"] for l in lat], "p99s": [l["p99"] for l in lat],
        "timeouts": sum(l["timeouts"] for l in lat), "qps": statistics.median(qps), "qpss": qps,
        "lost": sum(lost)}
base = rows["upstream"]
print("| path | latency p50 (µs) | latency p99 (µs) | p50 per round | p99 per round | timeouts | QPS (dnsperf, median) | QPS per round | lost | p50 ÷ upstream | p99 ÷ upstream | QPS ÷ upstream |")
print("|---|---:|---:|---|---|---:|---:|---|---:|---:|---:|---:|")
for path in ("upstream", "cache"):
    r = rows[path]
    print(f"| {names[path]} | {r['p50']:.0f} | {r['p99']:.0f} | {', '.join(f'{x:.0f}' for x in r['p50s'])} | "
          f"{', '.join(f'{x:.0f}' for x in r['p99s'])} | {r['timeouts']} | {r['qps']:.0f} | "
          f"{', '.join(f'{x:.0f}' for x in r['qpss'])} | {r['lost']} | {r['p50'] / base['p50']:.2f} | "
          f"{r['p99'] / base['p99']:.2f} | {r['qps'] / base['qps']:.2f} |")
PY

report="$(
  echo "# DNS through the kube-dns ClusterIP: remote upstream vs node-local cache (LRP)"
  echo
  echo "- date: $started"
  echo "$header"
  echo "- command: \`sudo bash bench/dns-cache.sh ${args[*]}\`"
  echo "- tools: $(dnsmasq --version | head -1 | awk '{print $1, $3}'), dnsperf $(dpkg-query -W -f='${Version}' dnsperf 2>/dev/null || echo '?'), python3 $(python3 -c 'import platform; print(platform.python_version())')"
  echo "- lab: \`install/lab\`, 2 nodes (netns on a bridge, native routing), client pod on node1, one upstream dnsmasq pod (kube-dns, kube-dns-upstream) on node2, a dnsmasq cache pod per node forwarding to kube-dns-upstream (\`install/lab-examples/node-local-dns\`)"
  echo
  echo "Method: per round, each path in turn (the order rotates every round): the policy applied (cache) or deleted (upstream), checked by asking \`whoami-cache.cluster.local\` (only a cache knows it); then \`bench/dns_latency.py\` in the client pod: $queries sequential UDP queries for \`$record\` (A), one outstanding, 200 untimed first, each timed with \`perf_counter_ns\` (p50/p99 nearest rank, per round; the table gives the median over $rounds rounds); then \`dnsperf -c 1 -T 1 -q 64 -l $seconds\` for the same name (queries per second, median over rounds). Both paths end at a dnsmasq answering from memory (the upstream from its own records, the cache from its cache), so the difference is the path: the same node's pod vs a pod across the node boundary."
  echo
  cat "$tmp/table.md"
  echo
  echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "Reading: the lab's nodes are network namespaces of one machine, so \"the other node\" is one more veth and bridge hop, not a wire: the gain a real cluster gets from the cache (no cross-node round trip, no conntrack pressure on the upstream, no single DNS pod to queue behind) shows here only as the difference of a few microseconds per query; the p99 column is dominated by CPU contention on a shared 2-CPU machine (compare the load averages)."
)"
echo "$report"
[[ -n "$write" ]] && echo "$report" >"$write"
exit 0
