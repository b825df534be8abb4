#!/usr/bin/env bash
# Programming time: 10,000 services x 10 backends applied, then one backend changed, through
# junction-agent's API (the real agent), Junction's steps in-process phase by phase, and the
# same rules for iptables-restore and nft as kube-proxy writes them, each in a throwaway
# network namespace. See "programming.sh" in bench/README.md. Needs root, iptables, nftables.
#
#   sudo bash bench/programming.sh [--write FILE] [--services N] [--backends B] [--changes M]
#        [--full-runs K] [--tool-timeout SECONDS] [--tools nft,nft-batched,iptables-legacy,iptables]
#        [--rules-only]
# --rules-only skips Junction (no build, no agent): the kube-proxy rules alone.
# A restore that runs longer than --tool-timeout (default 300 s) is killed and reported as
# such; that tool's remaining runs are skipped.
set -euo pipefail

bench="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$bench")"
. "$bench/lib.sh"

write="" services=10000 backends=10 changes=20 full_runs=3 tool_timeout=300
tools=nft,nft-batched,iptables-legacy,iptables rules_only=false
value_options programming "write services backends changes full-runs tool-timeout tools rules-only!" "$@"
[[ $EUID -eq 0 ]] || { echo "programming: needs root" >&2; exit 1; }
for tool in ip python3 iptables-restore iptables-legacy-restore nft mount umount mountpoint; do
  command -v "$tool" >/dev/null ||
    { echo "programming: $tool is missing (apt-get install iptables nftables iproute2)" >&2; exit 1; }
done

tmp="$(mktemp -d /tmp/junction-programming.XXXXXX)"
prefix="jbp$$"
agent_pid=""
mounts=()
alive() { kill -0 "$1" 2>/dev/null; }
cleanup() {
  # The agent, by its PID only: SIGTERM, SIGKILL after 10 s.
  if [[ -n "$agent_pid" ]] && alive "$agent_pid"; then
    kill -TERM "$agent_pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$agent_pid" || break; sleep 0.1; done
    alive "$agent_pid" && kill -KILL "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
  fi
  # Only this run's namespaces (their rules go with them).
  for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix-" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
  local busy=false
  for m in "${mounts[@]}"; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    mountpoint -q "$m" 2>/dev/null && busy=true
  done
  if $busy; then echo "programming: a bpffs under $tmp is still mounted; leaving $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

header="$(machine_lines)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
if ! $rules_only; then
  binary="$(bench_binary)"
  object="$(bpf_object "$tmp/obj")"
  agent_bin="${JUNCTION_AGENT_BIN:-}"
  if [[ -z "$agent_bin" ]]; then
    echo "programming: building junction-agent (release)" >&2
    (cd "$repo" && swift build -c release --product junction-agent >&2)
    agent_bin="$(cd "$repo" && swift build -c release --show-bin-path)/junction-agent"
  fi
  agent_bin="$(realpath "$agent_bin")"
  svc_max=$((services * (1 + backends) + 1024))
  be_max=$((services * backends + 1024))

  # 1. Junction's steps in-process, phase by phase (its own bpffs).
  mkdir -p "$tmp/bpffs-inproc"
  mount -t bpf -o mode=0700 bpf "$tmp/bpffs-inproc"
  mounts+=("$tmp/bpffs-inproc")
  echo "programming: in-process" >&2
  "$binary" programming --bpffs "$tmp/bpffs-inproc" --object "$object" --services "$services" \
    --backends "$backends" --changes "$changes" >"$tmp/inproc.md"

  # 2. The real agent, in its own netns, with its bpffs mounted here first (as cni-latency.sh).
  mkdir -p "$tmp/bpf" "$tmp/run" "$tmp/state"
  mount -t bpf -o mode=0700 bpf "$tmp/bpf"
  mounts+=("$tmp/bpf")
  ip netns add "$prefix-node"
  ip netns exec "$prefix-node" ip link set lo up
  ip netns exec "$prefix-node" "$agent_bin" --node-name bench --socket "$tmp/run/junction.sock" \
    --state-dir "$tmp/state" --bpf-fs "$tmp/bpf" --bpf-objects "$(dirname "$object")" \
    --lb-services-max "$svc_max" --lb-backends-max "$be_max" >"$tmp/agent.log" 2>&1 &
  agent_pid=$!
  python3 "$bench/timer.py" agent-wait --socket "$tmp/run/junction.sock" --pid "$agent_pid" \
    --timeout 30 >/dev/null || { echo "programming: the agent did not come up:" >&2; cat "$tmp/agent.log" >&2; exit 1; }
  [[ "$(readlink "/proc/$agent_pid/exe")" == "$agent_bin" ]] ||
    { echo "programming: pid $agent_pid is not the agent" >&2; exit 1; }
  echo "programming: junction-agent (pid $agent_pid)" >&2
  python3 "$bench/lbprog.py" agent --socket "$tmp/run/junction.sock" --bench "$binary" \
    --services "$services" --backends "$backends" --changes "$changes" >"$tmp/agent.json"
  state_bytes="$(du -sb "$tmp/state" | cut -f1)"
  agent_rss="$(awk '/VmHWM/ {print $2 " " $3}' "/proc/$agent_pid/status")"
fi

# 3. kube-proxy's rules, each tool in a fresh netns; python3 runs inside it, so the cost
#    of `ip netns exec` is never in a sample.
rule_files=()
IFS=, read -r -a tool_list <<<"$tools"
for tool in "${tool_list[@]}"; do
  echo "programming: $tool" >&2
  ip netns add "$prefix-$tool"
  ip netns exec "$prefix-$tool" python3 "$bench/lbprog.py" rules --tool "$tool" \
    --services "$services" --backends "$backends" --changes "$changes" \
    --full-runs "$full_runs" --timeout "$tool_timeout" >"$tmp/$tool.json"
  ip netns del "$prefix-$tool"
  rule_files+=("$tmp/$tool.json")
done

{
  echo "# Programming time: $services services x $backends backends, and one backend changed"
  echo
  echo "- date: $started"
  echo "$header"
  echo "- command: \`sudo bash bench/programming.sh${write:+ --write $write} --services $services --backends $backends --changes $changes --full-runs $full_runs --tool-timeout $tool_timeout --tools $tools$($rules_only && echo ' --rules-only')\`"
  echo "- tools: $(iptables --version), $(nft --version), python3 $(python3 -c 'import sys; print(sys.version.split()[0])')"
  $rules_only || echo "- agent: \`$agent_bin\` with \`--lb-services-max $svc_max --lb-backends-max $be_max\`, state dir on $(findmnt -no FSTYPE -T "$tmp/state"); after the run: state dir $state_bytes bytes, agent peak RSS $agent_rss"
  echo
  echo "## Side by side"
  echo
  python3 "$bench/lbprog.py" report $($rules_only || echo --agent "$tmp/agent.json") --rules "${rule_files[@]}"
  echo
  echo
  if ! $rules_only; then
    echo "## Where Junction's time goes"
    echo
    cat "$tmp/inproc.md"
    echo
  fi
  echo "## Raw samples (ms)"
  echo
  echo '```'
  $rules_only || cut -c1-2000 "$tmp/agent.json"
  cat "${rule_files[@]}" | cut -c1-2000
  echo '```'
  if ! $rules_only; then
    echo
    echo "## Agent log (lines about services)"
    echo
    echo '```'
    grep -E 'resources|service|lb' "$tmp/agent.log" | tail -n 8 || true
    echo '```'
  fi
} >"$tmp/report.md"
cat "$tmp/report.md"
if [[ -n "$write" ]]; then cp "$tmp/report.md" "$write"; fi
