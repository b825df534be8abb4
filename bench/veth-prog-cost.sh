#!/usr/bin/env bash
# What Junction's endpoint programs cost a pod's connections that need no translation, on
# both hooks the agent can use (--tc-hook clsact and tcx): two nodes of the kind
# connection-cost.sh builds (a client and a backend pod made by the junction CNI plugin, 100
# Services applied), one per hook, beside the floor (plain ptp pods), the client connecting
# straight to the backend pod's IP, in three phases on the same pods:
#
#   junction  from_endpoint / to_endpoint as the plugin attached them
#   empty     both replaced by a program that only returns TC_ACT_OK (the cost of having a
#             tc program on the veth at all, on that hook)
#   none      the programs removed (the clsact qdiscs deleted, the tcx hooks emptied): should
#             match the floor
#
# Per phase and hook: the paired overhead above the floor (median over rounds of the round's
# p50 difference), and the kernel's own accounting of the programs
# (kernel.bpf_stats_enabled, restored afterwards): runs per connection and nanoseconds per
# run. See bench/README.md.
#
#   sudo [JUNCTION_PREFIX=DIR] bash bench/veth-prog-cost.sh [--rounds 20] [--count 100]
#        [--warmup 10] [--cpu 1] [--write FILE]
set -euo pipefail

bench="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$bench")"
. "$bench/lib.sh"
. "$bench/lbnet.sh"

write="" rounds=20 count=100 warmup=10 cpu=1
args=("$@")
value_options veth-prog-cost "write rounds count warmup cpu" "$@"
lbnet_pin=(taskset -c "$cpu")
stats_before="$(sysctl -n kernel.bpf_stats_enabled)"
lbnet_setup veth-prog-cost /tmp/junction-vethcost.XXXXXX "jvc$$"
trap 'sysctl -qw kernel.bpf_stats_enabled="$stats_before"; lbnet_cleanup' EXIT
header="$(machine_lines)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"

# The empty program, built with the clang that builds the datapath.
clang="${CLANG:-/opt/swift/usr/bin/clang}"
[[ -x "$clang" ]] || clang=clang
cat >"$tmp/empty.bpf.c" <<'C'
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "Dual BSD/GPL";
SEC("tc") int empty(struct __sk_buff *skb) { return TC_ACT_OK; }
C
"$clang" -O2 -target bpf -I"/usr/include/$(gcc -dumpmachine)" -c "$tmp/empty.bpf.c" -o "$tmp/empty.o"

echo "veth-prog-cost: nodes" >&2
lbnet_node plain plain
lbnet_node junction j 100 10
lbnet_tc_hook=tcx lbnet_node junction jt 100 10
targets=("floor=${lbnet_client[plain]}=${lbnet_backend[plain]}:8081"
  "clsact=${lbnet_client[j]}=${lbnet_backend[j]}:8081"
  "tcx=${lbnet_client[jt]}=${lbnet_backend[jt]}:8081")
host_veths() { ip -n "$1" -o link show | awk -F'[ :@]+' '$2 != "lo" {print $2}'; }
# The ids of the programs on the host veths of node $1, on hook $2.
program_ids() {
  local node="$1" link dir
  if [[ $2 == tcx ]]; then
    # shellcheck disable=SC2046
    ip netns exec "$node" python3 "$bench/tcxprog.py" ids $(host_veths "$node") | sort -un
    return
  fi
  for link in $(host_veths "$node"); do
    for dir in ingress egress; do
      ip netns exec "$node" tc filter show dev "$link" "$dir"
    done
  done | { grep -o ' id [0-9]*' || true; } | awk '{print $2}' | sort -un
}

rows=()
phase() {
  local name="$1" hook node ids id runs ns total_runs per
  sysctl -qw kernel.bpf_stats_enabled=1
  lbnet_measure veth-prog-cost "$tmp/$name.txt" "$rounds" "$count" "$warmup" "${targets[@]}"
  for hook in clsact tcx; do
    node="$prefix-j" total_runs=0 per=""
    [[ $hook == tcx ]] && node="$prefix-jt"
    ids="$(program_ids "$node" "$hook")"
    for id in $ids; do
      read -r _ runs ns < <(python3 "$bench/progstats.py" "$id")
      total_runs=$((total_runs + runs))
      per+="${per:+ / }$(awk -v n="$ns" -v r="$runs" 'BEGIN {printf "%.0f", r ? n / r : 0}')"
    done
    # Connections through the junction pods: the check's one, then warm-up and timed ones.
    rows+=("$name|$hook|$(python3 "$bench/e2e.py" pairdiff --samples "$tmp/$name.txt" --base floor --target "$hook")|$(awk -v r="$total_runs" -v c="$((rounds * (count + warmup) + 1))" 'BEGIN {printf "%.1f", r / c}')|${per:-none}")
  done
  sysctl -qw kernel.bpf_stats_enabled=0
}

phase junction
for link in $(host_veths "$prefix-j"); do
  ip netns exec "$prefix-j" tc qdisc del dev "$link" clsact
  ip netns exec "$prefix-j" tc qdisc add dev "$link" clsact
  for dir in ingress egress; do
    ip netns exec "$prefix-j" tc filter add dev "$link" "$dir" bpf direct-action obj "$tmp/empty.o" sec tc
  done
done
# shellcheck disable=SC2046
ip netns exec "$prefix-jt" python3 "$bench/tcxprog.py" replace-empty $(host_veths "$prefix-jt")
phase empty
for link in $(host_veths "$prefix-j"); do ip netns exec "$prefix-j" tc qdisc del dev "$link" clsact; done
# shellcheck disable=SC2046
ip netns exec "$prefix-jt" python3 "$bench/tcxprog.py" clear $(host_veths "$prefix-jt")
phase none

{
  echo "# A pod's straight connection (no Service): what the veth programs cost"
  echo
  echo "- date: $started"
  echo "$header"
  echo "- command: \`sudo bash bench/veth-prog-cost.sh ${args[*]}\`"
  echo "- junction: \`$junction_bin\`, agent \`$agent_bin\`, datapath \`$bpf_objects/endpoint.o\`; 100 Services × 10 applied, on each node (one agent with --tc-hook clsact, one with tcx)"
  echo "- pinned: the measuring client and every server on CPU $cpu"
  echo "- $rounds rounds × $count connections (+$warmup warm-up) per target; connect() + close() to the backend pod's IP"
  echo
  echo "| programs on the pods' host veths | hook (--tc-hook) | floor p50 (µs) | junction pod p50 (µs) | paired overhead: median of per-round p50 differences [95% CI] (µs) | program runs per connection (all programs) | ns per run, by program id (kernel accounting, its own ~20-40 ns included) |"
  echo "|---|---|---:|---:|---|---:|---|"
  for row in "${rows[@]}"; do echo "| ${row//|/ | } |"; done
} >"$tmp/report.md"
cat "$tmp/report.md"
if [[ -n "$write" ]]; then cp "$tmp/report.md" "$write"; fi
