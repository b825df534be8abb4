#!/usr/bin/env bash
# IPv6 against IPv4 in one run (issue 15): the datapath's per-packet cost with
# BPF_PROG_TEST_RUN (junction-bench per-packet --families ipv4,ipv6), then the cost of a new
# TCP connection through a ClusterIP in dual-stack nodes: Junction, kube-proxy's nftables
# (ip and ip6 tables) and iptables (iptables-legacy and ip6tables-legacy) rule sets, each
# family against its own floor. See "ipv6.sh" in bench/README.md. Needs root, gcc, iptables,
# nftables, iperf3, containernetworking-plugins, python3.
#
#   sudo [JUNCTION_PREFIX=DIR] [JUNCTION_BENCH_BIN=BIN] bash bench/ipv6.sh [--write FILE]
#        [--sizes 100,1000,10000] [--backends 5] [--rounds 100] [--count 100] [--warmup 10]
#        [--pp-sizes 1,1000,10000] [--pp-rounds 10] [--pp-samples 1000] [--pp-repeat 1000000]
#
# --backends 5: the agent sizes only its IPv4 service maps from --lb-services-max; the IPv6
# ones keep the header's 65,536 slots, which 10,000 Services of 10 backends (110,000) overflow.
set -euo pipefail

bench="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$bench")"
. "$bench/lib.sh"
lbnet_families="ipv4 ipv6"
. "$bench/lbnet.sh"

write="" sizes=100,1000,10000 backends=5 rounds=100 count=100 warmup=10
pp_sizes=1,1000,10000 pp_rounds=10 pp_samples=1000 pp_repeat=1000000
args=("$@")
value_options ipv6 "write sizes backends rounds count warmup pp-sizes pp-rounds pp-samples pp-repeat" "$@"
lbnet_setup ipv6 /tmp/junction-ipv6.XXXXXX "jv6$$"
header="$(machine_lines)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
# The machine is shared: its 1-minute load average every 5 s for the whole run.
while sleep 5; do cut -d' ' -f1 /proc/loadavg; done >"$tmp/load.txt" &
lbnet_pids+=($!)

# Per packet: both families' copies of endpoint.o side by side in a private bpffs.
bench_bin="$(bench_binary)"
mkdir -p "$tmp/per-packet-bpffs"
mount -t bpf -o mode=0700 bpf "$tmp/per-packet-bpffs"
lbnet_mounts+=("$tmp/per-packet-bpffs")
echo "ipv6: per packet, ${pp_sizes} services, IPv4 and IPv6" >&2
lbnet_run "$bench_bin" per-packet --bpffs "$tmp/per-packet-bpffs" --object "$bpf_objects/endpoint.o" \
  --families ipv4,ipv6 --services "$pp_sizes" --rounds "$pp_rounds" --samples "$pp_samples" \
  --repeat "$pp_repeat" >"$tmp/per-packet.md"

lbnet_nodes ipv6 "$sizes" "$backends"
lbnet_measure ipv6 "$tmp/samples.txt" "$rounds" "$count" "$warmup" "${lbnet_targets[@]}"

{
  echo "# IPv6 against IPv4: per-packet cost and connection cost (issue 15)"
  echo
  echo "- date: $started"
  echo "$header"
  echo "- load average (1 min) during the run, every 5 s: $(sort -n "$tmp/load.txt" | awk '{v[NR] = $1} END {printf "min %s, median %s, max %s", v[1], v[int((NR + 1) / 2)], v[NR]}'): a machine shared with other engineers' builds"
  echo "- command: \`sudo bash bench/ipv6.sh ${args[*]}\`"
  echo "- junction: \`$agent_bin\`, \`$junction_bin\`, datapath \`$bpf_objects/endpoint.o\`; junction-bench \`$bench_bin\`"
  echo "- tools: $(iptables-legacy --version), $(ip6tables-legacy --version), $(nft --version), $(gcc --version | head -n1)"
  echo
  echo "## Per packet (BPF_PROG_TEST_RUN, as lb-per-packet.md; ${pp_rounds} rounds, both families' copies in the same rotation)"
  echo
  cat "$tmp/per-packet.md"
  echo
  echo "## New TCP connection through a ClusterIP ($backends backends per Service)"
  echo
  python3 "$bench/e2e.py" conncost6 --samples "$tmp/samples.txt" --sizes "$sizes" --backends "$backends" \
    --rounds "$rounds" --count "$count" --warmup "$warmup" --loads "${lbnet_loads[@]}"
} >"$tmp/report.md"
cat "$tmp/report.md"
if [[ -n "$write" ]]; then cp "$tmp/report.md" "$write"; fi
