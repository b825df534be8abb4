#!/usr/bin/env bash
# CNI ADD / DEL / VERSION latency of Junction (native mode, its node agent junction-agent
# running) against Debian's reference `ptp` plugin, same host-local IPAM, in one interleaved
# run, plus the agent's API round trips and an estimate of what the agent adds. Needs root.
#
#   sudo [JUNCTION_BIN=.../opt/cni/bin/junction [JUNCTION_AGENT_BIN=...] [JUNCTION_BPF_OBJECTS=DIR]] \
#     bash bench/cni-latency.sh [--runs N] [--warmup W] [--write FILE]
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
    *) echo "cni-latency: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$runs" =~ ^[0-9]+$ ]] || { echo "cni-latency: --runs must be a number, got '$runs'" >&2; exit 2; }
[[ "$warmup" =~ ^[0-9]+$ ]] || { echo "cni-latency: --warmup must be a number, got '$warmup'" >&2; exit 2; }
((runs >= 50)) || { echo "cni-latency: --runs must be at least 50 (p99 of fewer samples is the maximum)" >&2; exit 2; }

((EUID == 0)) || { echo "cni-latency: must run as root (network namespaces, veths)" >&2; exit 1; }
ptp_bin=/usr/lib/cni/ptp
for tool in ip nsenter python3 mount umount mountpoint findmnt ps; do
  command -v "$tool" >/dev/null || { echo "cni-latency: $tool is not on PATH" >&2; exit 1; }
done
for plugin in ptp host-local; do
  [[ -x /usr/lib/cni/$plugin ]] ||
    { echo "cni-latency: /usr/lib/cni/$plugin missing (apt-get install containernetworking-plugins)" >&2; exit 1; }
done
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { echo "cni-latency: python3 >= 3.11 needed for bench/timer.py" >&2; exit 1; }

# --- everything this run creates, and its removal ---------------------------------------
prefix="jtb$$"             # unique per run: netns names and container IDs start with it
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
        echo "cni-latency: the agent (pid $agent_pid) ignored SIGTERM for 10 s; SIGKILL" >&2
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
      echo "cni-latency: cannot unmount the bpffs at $tmp/bpf" >&2
  fi
  if [[ -n "$tmp" && -d "$tmp" ]]; then
    if mountpoint -q "$tmp/bpf" 2>/dev/null; then
      echo "cni-latency: $tmp/bpf is still a mount point; leaving $tmp in place" >&2
    else
      rm -rf "$tmp"
    fi
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

tmp="$(mktemp -d /tmp/jtbench.XXXXXX)"

# --- the Junction binaries: plugin, agent, datapath object ------------------------------
if [[ -n "${JUNCTION_BIN:-}" ]]; then
  [[ -x "$JUNCTION_BIN" ]] || { echo "cni-latency: JUNCTION_BIN=$JUNCTION_BIN is not executable" >&2; exit 1; }
  junction_bin="$(realpath "$JUNCTION_BIN")"
  # PREFIX/opt/cni/bin/junction -> PREFIX, where install.sh put the agent and endpoint.o too.
  given_prefix="$(dirname "$(dirname "$(dirname "$(dirname "$junction_bin")")")")"
  agent_bin="${JUNCTION_AGENT_BIN:-$given_prefix/usr/local/bin/junction-agent}"
  bpf_objects="${JUNCTION_BPF_OBJECTS:-$given_prefix/usr/local/lib/junction/bpf}"
  binary_origin="given, not necessarily built from this checkout"
elif [[ -n "${JUNCTION_AGENT_BIN:-}${JUNCTION_BPF_OBJECTS:-}" ]]; then
  echo "cni-latency: JUNCTION_AGENT_BIN / JUNCTION_BPF_OBJECTS need JUNCTION_BIN too (plugin and agent from one build)" >&2
  exit 2
else
  echo "cni-latency: JUNCTION_BIN not set; building with install/install.sh --prefix $tmp/prefix --skip-deps" >&2
  "$repo/install/install.sh" --prefix "$tmp/prefix" --skip-deps >&2
  junction_bin="$tmp/prefix/opt/cni/bin/junction"
  agent_bin="$tmp/prefix/usr/local/bin/junction-agent"
  bpf_objects="$tmp/prefix/usr/local/lib/junction/bpf"
  binary_origin="built by this script from the working tree"
fi
# JUNCTION_BPF_OBJECTS may name endpoint.o itself; the agent wants its directory.
[[ -f "$bpf_objects" ]] && bpf_objects="$(dirname "$bpf_objects")"
[[ -x "$junction_bin" ]] || { echo "cni-latency: no junction plugin at $junction_bin" >&2; exit 1; }
[[ -x "$agent_bin" ]] ||
  { echo "cni-latency: no junction-agent at $agent_bin (set JUNCTION_AGENT_BIN)" >&2; exit 1; }
[[ -f "$bpf_objects/endpoint.o" ]] ||
  { echo "cni-latency: no endpoint.o in $bpf_objects (set JUNCTION_BPF_OBJECTS)" >&2; exit 1; }
agent_bin="$(realpath "$agent_bin")"
bpf_objects="$(realpath "$bpf_objects")"
cni_path="$(dirname "$junction_bin"):/usr/lib/cni"
agent_socket="$tmp/run/junction.sock"

# --- configs: same host-local IPAM, own dataDir and own /24 each ------------------------
junction_subnet=10.250.1.0/24
ptp_subnet=10.250.2.0/24
node_ip=192.168.250.1
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
    "ranges": [[{ "subnet": "$junction_subnet" }]],
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
    "ranges": [[{ "subnet": "$ptp_subnet" }]],
    "dataDir": "$tmp/ipam-ptp"
  }
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
ip netns exec "$node" "$agent_bin" --node-name bench --socket "$agent_socket" \
  --state-dir "$tmp/state" --bpf-fs "$tmp/bpf" --bpf-objects "$bpf_objects" \
  >"$tmp/agent.log" 2>&1 &
agent_pid=$!
if ! agent_health="$(python3 "$bench/timer.py" agent-wait --socket "$agent_socket" --pid "$agent_pid" --timeout 30)"; then
  echo "cni-latency: junction-agent did not come up; its log:" >&2
  cat "$tmp/agent.log" >&2
  exit 1
fi
# The PID we will stop must be the agent itself, not a wrapper.
if [[ "$(readlink "/proc/$agent_pid/exe" 2>/dev/null)" != "$agent_bin" ]]; then
  echo "cni-latency: pid $agent_pid is not $agent_bin; refusing to go on" >&2
  exit 1
fi
agent_version="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["version"])' "$agent_health")"
echo "cni-latency: junction-agent $agent_version up (pid $agent_pid), bpffs $tmp/bpf" >&2

# --- measure: one python3 in the node netns does every iteration -------------------------
echo "cni-latency: $runs runs (+$warmup warm-up), junction and ptp interleaved, node netns $node" >&2
ip netns exec "$node" python3 "$bench/timer.py" run \
  --runs "$runs" --warmup "$warmup" --prefix "$prefix" --host-pid "$$" \
  --junction-bin "$junction_bin" --ptp-bin "$ptp_bin" --cni-path "$cni_path" \
  --junction-conf "$tmp/junction.json" --ptp-conf "$tmp/ptp.json" \
  --junction-ipam-dir "$tmp/ipam-junction" --ptp-ipam-dir "$tmp/ipam-ptp" \
  --junction-subnet-prefix "${junction_subnet%.0/24}." --ptp-subnet-prefix "${ptp_subnet%.0/24}." \
  --agent-socket "$agent_socket" --out "$tmp/samples.json" --progress &
timer_pid=$!
if ! wait "$timer_pid"; then
  timer_pid=""
  echo "cni-latency: benchmark aborted (see the plugin output above); no numbers reported" >&2
  echo "cni-latency: the agent's log, last 20 lines:" >&2
  tail -n 20 "$tmp/agent.log" >&2
  exit 1
fi
timer_pid=""
alive "$agent_pid" || { echo "cni-latency: the agent exited during the run; its log:" >&2; cat "$tmp/agent.log" >&2; exit 1; }

# --- report -----------------------------------------------------------------------------
cpu_model="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
mem_kib="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
binary_bytes="$(stat -c %s "$junction_bin")"
agent_bytes="$(stat -c %s "$agent_bin")"
state_fs="$(findmnt -n -o FSTYPE,SOURCE -T "$tmp/state" | tr -s ' ' | sed 's/ / on /')"
baseline="$bench/results/cni-latency-before-agent.md"
revision="$(git -c safe.directory="$repo" -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -c safe.directory="$repo" -C "$repo" status --porcelain 2>/dev/null)" ]]; then
  revision="$revision (working tree has uncommitted changes)"
fi
ptp_version="$(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null || echo unknown)"

report="$tmp/report.md"
{
  echo "# CNI latency: Junction (native, with junction-agent) vs ptp"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "- machine: kernel $(uname -r), $(nproc) CPUs (${cpu_model:-unknown CPU}), $((mem_kib / 1024)) MiB RAM, load average before the report $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- junction: \`$junction_bin\` ($binary_origin), $binary_bytes bytes ($((binary_bytes / 1048576)) MiB); repo HEAD $revision"
  echo "- junction-agent: \`$agent_bin\` (version $agent_version), $agent_bytes bytes ($((agent_bytes / 1048576)) MiB); datapath \`$bpf_objects/endpoint.o\`; one agent for the node, run in the node netns, its bpffs mounted by the script, its state dir on ${state_fs:-unknown}; default log level"
  echo "- ptp: \`$ptp_bin\` (containernetworking-plugins $ptp_version); both with host-local IPAM (own dataDir, own /24)"
  echo "- method: $runs timed iterations after $warmup warm-up ones; each iteration gives each plugin a fresh pod netns and times VERSION, ADD, DEL (raw exec, CNI_* env only, config on stdin) from inside the node netns; junction and ptp alternate, and so does which goes first; then the agent's API round trips are timed; after each junction ADD the agent must report the endpoint with both programs attached (untimed); percentiles are nearest-rank"
  echo "- command: \`$command_line\`"
  echo
  if [[ -f "$baseline" ]]; then
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

cat "$report"
if [[ -n "$write" ]]; then
  mkdir -p "$(dirname "$write")"
  cp "$report" "$write"
  echo "cni-latency: report written to $write" >&2
fi
