#!/usr/bin/env bash
# CNI ADD / DEL / VERSION latency of Junction (native mode, its node agent junction-agent
# running) against Debian's reference `ptp` plugin, same host-local IPAM, in one interleaved
# run, plus the agent's API round trips and an estimate of what the agent adds. Needs root.
#
#   sudo [JUNCTION_BIN=.../opt/cni/bin/junction [JUNCTION_AGENT_BIN=...] [JUNCTION_BPF_OBJECTS=DIR]] \
#     [CNI_LATENCY_IP_FAMILY=ipv4|dual] bash bench/cni-latency.sh [--runs N] [--warmup W] [--write FILE]
#
#   --runs N      timed iterations per plugin (default 100, at least 50)
#   --warmup W    untimed iterations first (default 5)
#   --write FILE  also write the report (Markdown) to FILE
#
# Without JUNCTION_BIN everything is built into a temporary prefix with
# `install/install.sh --prefix TMP --skip-deps` (needs the Swift toolchain). With it, the
# agent and endpoint.o default to the same install prefix (PREFIX/usr/local/bin/junction-agent,
# PREFIX/usr/local/lib/junction/bpf). The report (Markdown) goes to stdout; progress goes to
# stderr. See bench/README.md.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$repo/bench"

# Options, prerequisites, binaries, the node and its agent, the clean-up: bench/cni-node.sh.
. "$bench/cni-node.sh"
cni_node_setup cni-latency bench/timer.py "jtb$$" /tmp/jtbench.XXXXXX ptp host-local -- "$@"

# --- configs: same host-local IPAM, own dataDir and own /24 each ------------------------
junction_subnet=10.250.1.0/24
ptp_subnet=10.250.2.0/24
# CNI_LATENCY_IP_FAMILY=dual: both plugins get a second range set, an IPv6 /64 each, so
# every pod gets an IPv4 and an IPv6 address (Junction's dual-stack path, ptp's own).
ip_family="${CNI_LATENCY_IP_FAMILY:-ipv4}"
junction_ranges="[[{ \"subnet\": \"$junction_subnet\" }]]"
ptp_ranges="[[{ \"subnet\": \"$ptp_subnet\" }]]"
junction_prefixes="${junction_subnet%.0/24}."
ptp_prefixes="${ptp_subnet%.0/24}."
case "$ip_family" in
  ipv4) ;;
  dual)
    junction_ranges="[[{ \"subnet\": \"$junction_subnet\" }], [{ \"subnet\": \"fd00:250:1::/64\" }]]"
    ptp_ranges="[[{ \"subnet\": \"$ptp_subnet\" }], [{ \"subnet\": \"fd00:250:2::/64\" }]]"
    junction_prefixes="$junction_prefixes,fd00:250:1::"
    ptp_prefixes="$ptp_prefixes,fd00:250:2::"
    ;;
  *) echo "cni-latency: CNI_LATENCY_IP_FAMILY must be ipv4 or dual, got '$ip_family'" >&2; exit 2 ;;
esac
mkdir -p "$tmp/ipam-junction" "$tmp/ipam-ptp"
cat >"$tmp/junction.json" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "benchnet",
  "type": "junction",
  "mode": "native",
  "agentSocket": "$agent_socket",
  "mtu": 1500,
  "ipam": {
    "type": "host-local",
    "ranges": $junction_ranges,
    "dataDir": "$tmp/ipam-junction"
  }
}
EOF
cat >"$tmp/ptp.json" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "benchnet",
  "type": "ptp",
  "ipMasq": false,
  "mtu": 1500,
  "ipam": {
    "type": "host-local",
    "ranges": $ptp_ranges,
    "dataDir": "$tmp/ipam-ptp"
  }
}
EOF

ptp_bin=/usr/lib/cni/ptp

# --- the node and its agent -------------------------------------------------------------
cni_node_start 192.168.250.1 bench

# --- measure: one python3 in the node netns does every iteration -------------------------
echo "cni-latency: $runs runs (+$warmup warm-up), junction and ptp interleaved, node netns $node" >&2
cni_node_measure python3 "$bench/timer.py" run \
  --runs "$runs" --warmup "$warmup" --prefix "$prefix" --host-pid "$$" \
  --junction-bin "$junction_bin" --ptp-bin "$ptp_bin" --cni-path "$cni_path" \
  --junction-conf "$tmp/junction.json" --ptp-conf "$tmp/ptp.json" \
  --junction-ipam-dir "$tmp/ipam-junction" --ptp-ipam-dir "$tmp/ipam-ptp" \
  --junction-subnet-prefix "$junction_prefixes" --ptp-subnet-prefix "$ptp_prefixes" \
  --agent-socket "$agent_socket" --out "$tmp/samples.json" --progress

# --- report -----------------------------------------------------------------------------
cpu_model="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
mem_kib="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
binary_bytes="$(stat -c %s "$junction_bin")"
agent_bytes="$(stat -c %s "$agent_bin")"
state_fs="$(findmnt -n -o FSTYPE,SOURCE -T "$tmp/state" | tr -s ' ' | sed 's/ / on /')"
baseline="$bench/results/cni-latency-before-agent.md"
revision="$(cni_node_revision)"
ptp_version="$(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null || echo unknown)"

report="$tmp/report.md"
{
  if [[ "$ip_family" == dual ]]; then
    echo "# CNI latency, dual-stack pods: Junction (native, with junction-agent) vs ptp"
  else
    echo "# CNI latency: Junction (native, with junction-agent) vs ptp"
  fi
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "- machine: kernel $(uname -r), $(nproc) CPUs (${cpu_model:-unknown CPU}), $((mem_kib / 1024)) MiB RAM, load average before the report $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- junction: \`$junction_bin\` ($binary_origin), $binary_bytes bytes ($((binary_bytes / 1048576)) MiB); repo HEAD $revision"
  echo "- junction-agent: \`$agent_bin\` (version $agent_version), $agent_bytes bytes ($((agent_bytes / 1048576)) MiB); datapath \`$bpf_objects/endpoint.o\`; one agent for the node, run in the node netns, its bpffs mounted by the script, its state dir on ${state_fs:-unknown}; default log level"
  echo "- ptp: \`$ptp_bin\` (containernetworking-plugins $ptp_version); both with host-local IPAM (own dataDir, own /24$([[ "$ip_family" == dual ]] && echo " and own IPv6 /64: two range sets, every pod gets one address of each family"))"
  echo "- method: $runs timed iterations after $warmup warm-up ones; each iteration gives each plugin a fresh pod netns and times VERSION, ADD, DEL (raw exec, CNI_* env only, config on stdin) from inside the node netns; junction and ptp alternate, and so does which goes first; then the agent's API round trips are timed; after each junction ADD the agent must report the endpoint with both programs attached (untimed); percentiles are nearest-rank"
  echo "- command: \`$command_line\`"
  echo
  # The baseline is an IPv4 run from before the agent: only an IPv4 run compares with it.
  if [[ -f "$baseline" && "$ip_family" == ipv4 ]]; then
    python3 "$bench/timer.py" summary "$tmp/samples.json" --baseline "$baseline"
    echo
    echo "## Earlier run (before the agent)"
    echo
    echo "For reference: the committed result from before the agent existed, verbatim from \`bench/results/$(basename "$baseline")\`. A different run and a different binary; compare its numbers with the ones above only through the estimate's caveats."
    echo
    # Its title becomes this section's; the rest as it was.
    sed '1{/^# /d}' "$baseline" | sed '1{/^$/d}'
  else
    python3 "$bench/timer.py" summary "$tmp/samples.json"
  fi
} >"$report"

cni_node_publish "$report"
