#!/usr/bin/env bash
# One `junctionctl apply -f` of N Services x B backends (a `junction-bench yaml` file) to a
# real junction-agent in a throwaway netns: wall time as the CLI sees it, and the agent's
# CPU (and a perf profile with --perf), and its memory: resident size before, its peak while
# applying (VmHWM) and the resident size --settle seconds after (VmRSS). Needs root.
#
#   sudo bash bench/cli-apply.sh [--agent BIN] [--ctl BIN] [--services N] [--backends B] [--perf]
#        [--tty] [--chunk N] [--settle S] [--pod-refs]
# --pod-refs gives every endpoint a nodeName and a targetRef to its Pod, as the EndpointSlice
# controller writes them in a cluster (without: addresses and conditions only).
# --chunk N applies the file in parts of N Services (with their slices) one after another:
# the agent takes at most 64 MiB per apply, and 50,000 Services × 10 are 68 MB.
# --tty runs junctionctl on a pseudo-terminal (script(1)) and keeps what it wrote, so the
# waiting line can be seen (in "$tmp/err", printed with cat -A).
set -euo pipefail
bench="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$bench")"
agent_bin="$repo/.build/release/junction-agent" ctl="$repo/.build/debug/junctionctl"
services=10000 backends=10 perf=false tty=false chunk=0 settle=5 pod_refs=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --agent) agent_bin="$2"; shift 2 ;;
    --ctl) ctl="$2"; shift 2 ;;
    --services) services="$2"; shift 2 ;;
    --backends) backends="$2"; shift 2 ;;
    --perf) perf=true; shift ;;
    --tty) tty=true; shift ;;
    --chunk) chunk="$2"; shift 2 ;;
    --settle) settle="$2"; shift 2 ;;
    --pod-refs) pod_refs=1; shift ;;
    *) echo "cli-apply: unknown option $1" >&2; exit 2 ;;
  esac
done
tmp="$(mktemp -d /tmp/junction-cli-apply.XXXXXX)"
ns="jca$$"
agent_pid=""
cleanup() {
  if [[ -n "$agent_pid" ]] && kill -0 "$agent_pid" 2>/dev/null; then
    kill -TERM "$agent_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$agent_pid" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  umount "$tmp/bpf" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
"$repo/.build/debug/junction-bench" yaml --services "$services" --backends "$backends" \
  --pod-refs "$pod_refs" >"$tmp/all.yaml"
parts=("$tmp/all.yaml")
if [[ "$chunk" -gt 0 && "$chunk" -lt "$services" ]]; then
  # Each Service is two documents (the Service, its slice), each starting with `---`.
  awk -v per=$((chunk * 2)) -v out="$tmp/part" \
    '/^---$/ { n++ } { print > (out "." sprintf("%04d", int((n - 1) / per)) ".yaml") }' \
    "$tmp/all.yaml"
  parts=("$tmp"/part.*.yaml)
fi
mkdir -p "$tmp/bpf" "$tmp/run" "$tmp/state"
mount -t bpf -o mode=0700 bpf "$tmp/bpf"
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" "$agent_bin" --node-name bench --socket "$tmp/run/junction.sock" \
  --state-dir "$tmp/state" --bpf-fs "$tmp/bpf" --bpf-objects "$repo/.build/bpf" \
  --lb-services-max $((services * (1 + backends) + 1024)) \
  --lb-backends-max $((services * backends + 1024)) >"$tmp/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 300); do [[ -S "$tmp/run/junction.sock" ]] && break; sleep 0.1; done
"$ctl" --socket "$tmp/run/junction.sock" status >/dev/null 2>&1 || sleep 2
cpu() { awk '{print $14 + $15}' "/proc/$agent_pid/stat"; }
kib() { awk -v key="$1:" '$1 == key {print $2}' "/proc/$agent_pid/status"; }
rss_idle="$(kib VmRSS)"
before="$(cpu)"
if $perf; then
  perf record -F 499 -g -p "$agent_pid" -o "$tmp/perf.data" 2>/dev/null &
  perf_pid=$!
  sleep 1
fi
start="$(date +%s.%N)"
if $tty; then
  script -qec "'$ctl' --socket '$tmp/run/junction.sock' apply -f '$tmp/all.yaml' >'$tmp/out'" \
    "$tmp/err" >/dev/null && rc=0 || rc=$?
else
  rc=0
  for part in "${parts[@]}"; do
    "$ctl" --socket "$tmp/run/junction.sock" apply -f "$part" >>"$tmp/out" 2>>"$tmp/err" || rc=$?
  done
fi
end="$(date +%s.%N)"
after="$(cpu)"
if $perf; then
  kill -INT "$perf_pid"; wait "$perf_pid" || true
  perf report -i "$tmp/perf.data" --no-children --sort dso,symbol -g none --stdio 2>/dev/null \
    >"$tmp/report" || true
  grep '%' "$tmp/report" | head -30 >&2 || true
  # Inclusive shares of the frames that say where the time goes (parse, decode, program).
  perf report -i "$tmp/perf.data" --children --sort symbol -g none --stdio 2>/dev/null \
    >"$tmp/children" || true
  echo "--- inclusive (children) ---" >&2
  grep -E 'compose_all|YAMLValue.*documents|YAMLValueOyAC4Yams4NodeOcfC|Node.*hash|ServiceManager|bpf_map_update|sys_bpf|JSONEncoder|encode|write' \
    "$tmp/children" | head -25 >&2 || true
fi
ticks="$(getconf CLK_TCK)"
echo "services=$services backends=$backends bytes=$(stat -c %s "$tmp/all.yaml") exit=$rc"
echo "wall_s=$(echo "$end - $start" | bc) agent_cpu_s=$(echo "scale=2; ($after - $before) / $ticks" | bc)"
echo "configured=$(grep -c configured "$tmp/out" || true) stderr(last 300 bytes)=$(tail -c 300 "$tmp/err" | cat -A)"
peak="$(kib VmHWM)"
sleep "$settle"
echo "parts=${#parts[@]} agent_rss_idle_mib=$((rss_idle / 1024)) agent_peak_mib=$((peak / 1024)) agent_rss_steady_mib=$(($(kib VmRSS) / 1024)) (after ${settle} s)"
