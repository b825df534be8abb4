#!/usr/bin/env bash
# CNI ADD / DEL latency of Debian's reference `bridge` plugin alone against `bridge` +
# `junction` chained (mode "chained", its node agent junction-agent running), same
# host-local IPAM, in one interleaved run. Needs root.
#
#   sudo [JUNCTION_BIN=.../opt/cni/bin/junction [JUNCTION_AGENT_BIN=...] [JUNCTION_BPF_OBJECTS=DIR]] \
#     bash bench/cni-chained-latency.sh [--runs N] [--warmup W] [--write FILE]
#
#   --runs N      timed iterations per network (default 100, at least 50)
#   --warmup W    untimed iterations first (default 5)
#   --write FILE  also write the report (Markdown) to FILE
#
# Without JUNCTION_BIN everything is built into a temporary prefix with
# `install/install.sh --prefix TMP --skip-deps` (a release build). The node, its agent and
# its bpffs are set up as in bench/cni-latency.sh. The report (Markdown) goes to stdout;
# progress goes to stderr. See bench/README.md.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$repo/bench"

# Options, prerequisites, binaries, the node and its agent, the clean-up: bench/cni-node.sh.
. "$bench/cni-node.sh"
cni_node_setup cni-chained-latency bench/chained_timer.py "jtc$$" /tmp/jtchbench.XXXXXX bridge host-local -- "$@"

# --- configs: each network its own bridge, host-local dataDir and /24 --------------------
alone_subnet=10.251.1.0/24
chained_subnet=10.251.2.0/24
mkdir -p "$tmp/ipam-alone" "$tmp/ipam-chained"
bridge_conf() { # NETWORK BRIDGE SUBNET DATADIR
  cat <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$1",
  "type": "bridge",
  "bridge": "$2",
  "isGateway": true,
  "isDefaultGateway": true,
  "ipMasq": false,
  "mtu": 1500,
  "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$3" }]], "dataDir": "$4" }
}
EOF
}
bridge_conf bench-alone jbalone0 "$alone_subnet" "$tmp/ipam-alone" >"$tmp/bridge-alone.json"
bridge_conf bench-chained jbchain0 "$chained_subnet" "$tmp/ipam-chained" >"$tmp/bridge-chained.json"
cat >"$tmp/junction.json" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "bench-chained",
  "type": "junction",
  "mode": "chained",
  "agentSocket": "$agent_socket"
}
EOF

bridge_bin=/usr/lib/cni/bridge

# --- the node and its agent -------------------------------------------------------------
cni_node_start 192.168.251.1 bench-chained

# --- measure: one python3 in the node netns does every iteration -------------------------
echo "cni-chained-latency: $runs runs (+$warmup warm-up), bridge and bridge + junction interleaved, node netns $node" >&2
cni_node_measure python3 "$bench/chained_timer.py" run \
  --runs "$runs" --warmup "$warmup" --prefix "$prefix" --host-pid "$$" \
  --bridge-bin "$bridge_bin" --junction-bin "$junction_bin" --cni-path "$cni_path" \
  --bridge-conf "$tmp/bridge-alone.json" --chained-bridge-conf "$tmp/bridge-chained.json" \
  --junction-conf "$tmp/junction.json" --agent-socket "$agent_socket" \
  --out "$tmp/samples.json" --progress

# --- report -----------------------------------------------------------------------------
cpu_model="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
mem_kib="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
revision="$(cni_node_revision)"
plugins_version="$(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null || echo unknown)"

report="$tmp/report.md"
{
  echo "# CNI latency: bridge alone vs bridge + Junction chained"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "- machine: kernel $(uname -r), $(nproc) CPUs (${cpu_model:-unknown CPU}), $((mem_kib / 1024)) MiB RAM, load average before the report $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- junction: \`$junction_bin\` ($binary_origin), repo HEAD $revision; junction-agent \`$agent_bin\` (version $agent_version) in the node netns, datapath loaded, default log level"
  echo "- bridge: \`$bridge_bin\` (containernetworking-plugins $plugins_version) with host-local IPAM; each network its own bridge, dataDir and /24"
  echo "- method: $runs timed iterations after $warmup warm-up ones; each iteration gives each network a fresh pod netns and runs its list as a runtime does: raw exec of each plugin (CNI_* env only, config on stdin), the chained ADD feeding bridge's result to junction as prevResult, DEL running junction then bridge; a chain's time is the sum of its plugins' execs (the runtime's own work between them is left out of both); the two networks alternate, and so does which goes first; after each chained ADD (untimed) junction's output must equal bridge's result and the agent must report the endpoint with both programs attached; each iteration also times one VERSION exec of each binary (its start-up floor); percentiles are nearest-rank"
  echo "- command: \`$command_line\`"
  echo
  python3 "$bench/chained_timer.py" summary "$tmp/samples.json"
} >"$report"

cni_node_publish "$report"
