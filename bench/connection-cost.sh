#!/usr/bin/env bash
# The cost of a new TCP connection from a pod to a ClusterIP, above the floor (the same
# connection straight to the backend pod's IP), through Junction, kube-proxy's iptables
# rules and kube-proxy's nftables rules, side by side in one run at several service counts.
# See "connection-cost.sh" in bench/README.md. Needs root, gcc, iptables, nftables,
# containernetworking-plugins, python3.
#
#   sudo [JUNCTION_PREFIX=DIR] bash bench/connection-cost.sh [--write FILE]
#        [--sizes 100,1000,10000] [--backends 10] [--rounds 200] [--count 100] [--warmup 10]
#        [--socket-lb] [--cpu N] [--tc-hook clsact|tcx]
#
# --tc-hook: Junction's agents attach the endpoint programs there (default clsact).
#
# --cpu N: the measuring client and every backend server pinned to CPU N (taskset), so no
# node's servers are faster by the chance of sharing the client's CPU (see lbnet.sh).
#
# --socket-lb: Junction's agents run with --socket-lb (pods in cgroups under its
# --cgroup-root, see lbnet.sh); Junction is measured twice per size, a pod in the socket
# path (junction-sock) and a pod opted out with JUNCTION_SOCKET_LB=false (per packet), against
# the goal of socket-path overhead <= 1 µs above the floor.
#
# JUNCTION_PREFIX: a tree made by install/install.sh --prefix DIR (release build); without
# it the script makes one in its temp dir first (several minutes).
set -euo pipefail

bench="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$bench")"
. "$bench/lib.sh"
. "$bench/lbnet.sh"

write="" sizes=100,1000,10000 backends=10 rounds=200 count=100 warmup=10 socket_lb=false cpu=""
tc_hook=clsact
args=("$@")
value_options connection-cost "write sizes backends rounds count warmup socket-lb! cpu tc-hook" "$@"
lbnet_socket_lb=$socket_lb
lbnet_tc_hook=$tc_hook
if [[ -n "$cpu" ]]; then lbnet_pin=(taskset -c "$cpu"); fi
lbnet_setup connection-cost /tmp/junction-conncost.XXXXXX "jcc$$"
header="$(machine_lines)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"

lbnet_nodes connection-cost "$sizes" "$backends"
lbnet_measure connection-cost "$tmp/samples.txt" "$rounds" "$count" "$warmup" "${lbnet_targets[@]}"

{
  if $socket_lb; then
    echo "# New TCP connection cost from a pod through a ClusterIP: Junction's socket LB, Junction per packet, iptables, nftables"
  else
    echo "# New TCP connection cost through a ClusterIP: Junction, iptables, nftables"
  fi
  echo
  echo "- date: $started"
  echo "$header"
  echo "- command: \`sudo bash bench/connection-cost.sh ${args[*]}\`"
  echo "- junction: release build \`$junction_bin\`, agent \`$agent_bin\`, datapath \`$bpf_objects/endpoint.o\`, --tc-hook $tc_hook"
  echo "- tools: $(iptables-legacy --version), $(nft --version), $(gcc --version | head -n1), $(iperf3 --version | head -n1)"
  if [[ -n "$cpu" ]]; then echo "- pinned: the measuring client and every backend server on CPU $cpu (taskset); agents and the rest unpinned"; fi
  echo "- IPVS: not measured, this kernel has no IPVS (no /proc/net/ip_vs, no loadable modules)"
  echo
  python3 "$bench/e2e.py" conncost --samples "$tmp/samples.txt" --sizes "$sizes" --backends "$backends" \
    --rounds "$rounds" --count "$count" --warmup "$warmup" $($socket_lb && echo --socket-lb) --loads "${lbnet_loads[@]}"
} >"$tmp/report.md"
cat "$tmp/report.md"
if [[ -n "$write" ]]; then cp "$tmp/report.md" "$write"; fi
