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

# The exact command line, for the report (the JUNCTION_* variables included when given).
command_line="$(printf '%q ' bash "$0" "$@")"
command_line="${command_line% }"
for variable in JUNCTION_BPF_OBJECTS JUNCTION_AGENT_BIN JUNCTION_BIN; do
  if [[ -n "${!variable:-}" ]]; then
    command_line="$variable=$(printf '%q' "${!variable}") $command_line"
  fi
done

runs=100
warmup=5
write=""
while (($#)); do
  case "$1" in
    --runs) runs="${2:?--runs needs a number}"; shift 2 ;;
    --runs=*) runs="${1#--runs=}"; shift ;;
    --warmup) warmup="${2:?--warmup needs a number}"; shift 2 ;;
    --warmup=*) warmup="${1#--warmup=}"; shift ;;
    --write) write="${2:?--write needs a file}"; shift 2 ;;
    --write=*) write="${1#--write=}"; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cni-chained-latency: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$runs" =~ ^[0-9]+$ ]] || { echo "cni-chained-latency: --runs must be a number, got '$runs'" >&2; exit 2; }
[[ "$warmup" =~ ^[0-9]+$ ]] || { echo "cni-chained-latency: --warmup must be a number, got '$warmup'" >&2; exit 2; }
((runs >= 50)) || { echo "cni-chained-latency: --runs must be at least 50 (p99 of fewer samples is the maximum)" >&2; exit 2; }

((EUID == 0)) || { echo "cni-chained-latency: must run as root (network namespaces, veths)" >&2; exit 1; }
bridge_bin=/usr/lib/cni/bridge
for tool in ip nsenter python3 mount umount mountpoint findmnt ps; do
  command -v "$tool" >/dev/null || { echo "cni-chained-latency: $tool is not on PATH" >&2; exit 1; }
done
for plugin in bridge host-local; do
  [[ -x /usr/lib/cni/$plugin ]] ||
    { echo "cni-chained-latency: /usr/lib/cni/$plugin missing (apt-get install containernetworking-plugins)" >&2; exit 1; }
done
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { echo "cni-chained-latency: python3 >= 3.11 needed for bench/chained_timer.py" >&2; exit 1; }

# --- everything this run creates, and its removal ---------------------------------------
prefix="jtc$$"             # unique per run: netns names and container IDs start with it
node="$prefix-node"
tmp=""
timer_pid=""
agent_pid=""
node_created=false
bpf_mounted=false

# True while PID is a process that has not exited (a zombie child counts as gone).
alive() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z* ]]
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n "$timer_pid" ]] && kill -0 "$timer_pid" 2>/dev/null; then
    kill -TERM "$timer_pid" 2>/dev/null || true
    wait "$timer_pid" 2>/dev/null || true
  fi
  # The agent: this one PID (ip netns exec execs it in place), SIGTERM, then SIGKILL after 10 s.
  if [[ -n "$agent_pid" ]]; then
    if alive "$agent_pid"; then
      kill -TERM "$agent_pid" 2>/dev/null || true
      local waited
      for ((waited = 0; waited < 100; waited++)); do
        alive "$agent_pid" || break
        sleep 0.1
      done
      if alive "$agent_pid"; then
        echo "cni-chained-latency: the agent (pid $agent_pid) ignored SIGTERM for 10 s; SIGKILL" >&2
        kill -KILL "$agent_pid" 2>/dev/null || true
      fi
    fi
    wait "$agent_pid" 2>/dev/null || true
  fi
  # Pod namespaces (timer.py deletes each one itself; these are leftovers of an abort).
  local path
  for path in /var/run/netns/"$prefix"-*; do
    [[ -e "$path" ]] || continue
    [[ "$(basename "$path")" == "$node" ]] && continue
    ip netns del "$(basename "$path")" 2>/dev/null || rm -f "$path"
  done
  if $node_created; then ip netns del "$node" 2>/dev/null || true; fi
  # The bpffs (its pins die with it), then the directory; never rm -rf into a live mount.
  if $bpf_mounted; then
    umount "$tmp/bpf" 2>/dev/null || umount -l "$tmp/bpf" 2>/dev/null ||
      echo "cni-chained-latency: cannot unmount the bpffs at $tmp/bpf" >&2
  fi
  if [[ -n "$tmp" && -d "$tmp" ]]; then
    if mountpoint -q "$tmp/bpf" 2>/dev/null; then
      echo "cni-chained-latency: $tmp/bpf is still a mount point; leaving $tmp in place" >&2
    else
      rm -rf "$tmp"
    fi
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

tmp="$(mktemp -d /tmp/jtchbench.XXXXXX)"

# --- the Junction binaries: plugin, agent, datapath object ------------------------------
if [[ -n "${JUNCTION_BIN:-}" ]]; then
  [[ -x "$JUNCTION_BIN" ]] || { echo "cni-chained-latency: JUNCTION_BIN=$JUNCTION_BIN is not executable" >&2; exit 1; }
  junction_bin="$(realpath "$JUNCTION_BIN")"
  # PREFIX/opt/cni/bin/junction -> PREFIX, where install.sh put the agent and endpoint.o too.
  given_prefix="$(dirname "$(dirname "$(dirname "$(dirname "$junction_bin")")")")"
  agent_bin="${JUNCTION_AGENT_BIN:-$given_prefix/usr/local/bin/junction-agent}"
  bpf_objects="${JUNCTION_BPF_OBJECTS:-$given_prefix/usr/local/lib/junction/bpf}"
  binary_origin="given, not necessarily built from this checkout"
elif [[ -n "${JUNCTION_AGENT_BIN:-}${JUNCTION_BPF_OBJECTS:-}" ]]; then
  echo "cni-chained-latency: JUNCTION_AGENT_BIN / JUNCTION_BPF_OBJECTS need JUNCTION_BIN too (plugin and agent from one build)" >&2
  exit 2
else
  echo "cni-chained-latency: JUNCTION_BIN not set; building with install/install.sh --prefix $tmp/prefix --skip-deps" >&2
  "$repo/install/install.sh" --prefix "$tmp/prefix" --skip-deps >&2
  junction_bin="$tmp/prefix/opt/cni/bin/junction"
  agent_bin="$tmp/prefix/usr/local/bin/junction-agent"
  bpf_objects="$tmp/prefix/usr/local/lib/junction/bpf"
  binary_origin="built by this script from the working tree"
fi
# JUNCTION_BPF_OBJECTS may name endpoint.o itself; the agent wants its directory.
[[ -f "$bpf_objects" ]] && bpf_objects="$(dirname "$bpf_objects")"
[[ -x "$junction_bin" ]] || { echo "cni-chained-latency: no junction plugin at $junction_bin" >&2; exit 1; }
[[ -x "$agent_bin" ]] ||
  { echo "cni-chained-latency: no junction-agent at $agent_bin (set JUNCTION_AGENT_BIN)" >&2; exit 1; }
[[ -f "$bpf_objects/endpoint.o" ]] ||
  { echo "cni-chained-latency: no endpoint.o in $bpf_objects (set JUNCTION_BPF_OBJECTS)" >&2; exit 1; }
agent_bin="$(realpath "$agent_bin")"
bpf_objects="$(realpath "$bpf_objects")"
cni_path="$(dirname "$junction_bin"):/usr/lib/cni"
agent_socket="$tmp/run/junction.sock"

# --- configs: each network its own bridge, host-local dataDir and /24 --------------------
alone_subnet=10.251.1.0/24
chained_subnet=10.251.2.0/24
node_ip=192.168.251.1
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

# --- the node ---------------------------------------------------------------------------
ip netns add "$node"
node_created=true
ip -n "$node" link set lo up
ip -n "$node" addr add "$node_ip/32" dev lo

# --- the agent: one for the node, its bpffs mounted here first ----------------------------
# `ip netns exec` gives every process its own mount namespace (a slave of ours): a bpffs
# the agent mounted itself would exist only in the agent's namespace, and the plugin (run
# by the timer, in another one) could not open the pinned programs. Mounted here, before
# the agent and the timer start, it is copied into both.
mkdir -p "$tmp/bpf" "$tmp/run" "$tmp/state"
mount -t bpf bpf "$tmp/bpf"
bpf_mounted=true
ip netns exec "$node" "$agent_bin" --node-name bench-chained --socket "$agent_socket" \
  --state-dir "$tmp/state" --bpf-fs "$tmp/bpf" --bpf-objects "$bpf_objects" \
  >"$tmp/agent.log" 2>&1 &
agent_pid=$!
if ! agent_health="$(python3 "$bench/timer.py" agent-wait --socket "$agent_socket" --pid "$agent_pid" --timeout 30)"; then
  echo "cni-chained-latency: junction-agent did not come up; its log:" >&2
  cat "$tmp/agent.log" >&2
  exit 1
fi
# The PID we will stop must be the agent itself, not a wrapper.
if [[ "$(readlink "/proc/$agent_pid/exe" 2>/dev/null)" != "$agent_bin" ]]; then
  echo "cni-chained-latency: pid $agent_pid is not $agent_bin; refusing to go on" >&2
  exit 1
fi
agent_version="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["version"])' "$agent_health")"
echo "cni-chained-latency: junction-agent $agent_version up (pid $agent_pid), bpffs $tmp/bpf" >&2

# --- measure: one python3 in the node netns does every iteration -------------------------
echo "cni-chained-latency: $runs runs (+$warmup warm-up), bridge and bridge + junction interleaved, node netns $node" >&2
ip netns exec "$node" python3 "$bench/chained_timer.py" run \
  --runs "$runs" --warmup "$warmup" --prefix "$prefix" --host-pid "$$" \
  --bridge-bin "$bridge_bin" --junction-bin "$junction_bin" --cni-path "$cni_path" \
  --bridge-conf "$tmp/bridge-alone.json" --chained-bridge-conf "$tmp/bridge-chained.json" \
  --junction-conf "$tmp/junction.json" --agent-socket "$agent_socket" \
  --out "$tmp/samples.json" --progress &
timer_pid=$!
if ! wait "$timer_pid"; then
  timer_pid=""
  echo "cni-chained-latency: benchmark aborted (see the plugin output above); no numbers reported" >&2
  echo "cni-chained-latency: the agent's log, last 20 lines:" >&2
  tail -n 20 "$tmp/agent.log" >&2
  exit 1
fi
timer_pid=""
alive "$agent_pid" || { echo "cni-chained-latency: the agent exited during the run; its log:" >&2; cat "$tmp/agent.log" >&2; exit 1; }

# --- report -----------------------------------------------------------------------------
cpu_model="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
mem_kib="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
revision="$(git -c safe.directory="$repo" -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -c safe.directory="$repo" -C "$repo" status --porcelain 2>/dev/null)" ]]; then
  revision="$revision (working tree has uncommitted changes)"
fi
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

cat "$report"
if [[ -n "$write" ]]; then
  mkdir -p "$(dirname "$write")"
  cp "$report" "$write"
  echo "cni-chained-latency: report written to $write" >&2
fi
