#!/usr/bin/env bash
# The agent following the Kubernetes API (the stand-in, tools/standin-apiserver), in a network
# namespace of its own: the initial sync of N Services x E endpoints (time from the agent's
# start until healthz says synced, the whole set programmed; the agent's RSS then), then the
# network programming latency of a stream of EndpointSlice changes (RATE/s for SECONDS; the
# agent's p50/p99 from the trigger-time annotation to the map write, over its latest 1,000).
#
#   sudo bench/k8s-sync.sh [N] [E] [RATE] [SECONDS]      default 1000 10 50 60
#
# SECONDS 0: the initial sync only. Also printed: the time the stand-in alone takes to serve
# the two LISTs, and the agent's CPU time and peak RSS (VmHWM) at the sync.
#
# Uses .build/release/junction-agent (set JUNCTION_AGENT_BIN for another build) and the BPF
# objects in .build/bpf (install/build-bpf.sh).
set -euo pipefail
N=${1:-1000} E=${2:-10} RATE=${3:-50} SECONDS_=${4:-60}
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
agent_bin=${JUNCTION_AGENT_BIN:-$repo/.build/release/junction-agent}
D=$(mktemp -d /tmp/junction-k8s-sync.XXXX)
NS=jk8ssync$$
API="" AGENT=""
# Every step goes on whatever the one before returned (set -e must not cut the clean-up
# short: `wait` returns the killed process's status).
cleanup() {
  if [[ -n "$AGENT" ]]; then kill "$AGENT" 2>/dev/null; wait "$AGENT" 2>/dev/null || true; fi
  if [[ -n "$API" ]]; then kill -9 "$API" 2>/dev/null; wait "$API" 2>/dev/null || true; fi
  umount "$D/bpf" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
healthz() { curl -s --unix-socket "$D/agent.sock" http://agent/v1/healthz; }

ip netns add "$NS"
ip -n "$NS" link set lo up
python3 "$repo/bench/k8s_sync.py" populate "$N" "$E" "$D/state.json"
ip netns exec "$NS" python3 "$repo/tools/standin-apiserver/standin_apiserver.py" --dir "$D" \
  --state "$D/state.json" --window 100000 > "$D/api.out" 2>&1 &
API=$!
# Loading a large state takes the stand-in seconds: the agent starts once it listens.
until grep -q listening "$D/api.out"; do
  kill -0 "$API" 2>/dev/null || { cat "$D/api.out"; exit 1; }
  sleep 0.1
done
# What the stand-in alone takes to serve the two big LISTs, as the agent asks for them (the
# agent's own wall time below includes it).
api_url=$(awk '/server:/{print $2}' "$D/kubeconfig")
list_time() {
  local s; s=$(date +%s.%N)
  ip netns exec "$NS" curl -sf --cacert "$D/ca.crt" -H "Authorization: Bearer $(cat "$D/token")" \
    "$api_url$1?limit=500&resourceVersion=0" -o /dev/null
  echo "$(date +%s.%N) - $s" | bc
}
services_list=$(list_time /api/v1/services)
slices_list=$(list_time /apis/discovery.k8s.io/v1/endpointslices)
printf 'stand-in alone: LIST of %d Services in %.2f s, of %d EndpointSlices in %.2f s\n' \
  "$N" "$services_list" "$N" "$slices_list"
mkdir -p "$D/bpf"
mount -t bpf bpf "$D/bpf"
entries=$((N * (E + 2) + 1024))
start=$(date +%s.%N)
ip netns exec "$NS" "$agent_bin" --node-name bench --socket "$D/agent.sock" --state-dir "$D/state" \
  --bpf-fs "$D/bpf" --bpf-objects "$repo/.build/bpf" --kubeconfig "$D/kubeconfig" \
  --log-level warning --lb-services-max "$entries" --lb-backends-max "$entries" \
  > "$D/agent.log" 2>&1 &
AGENT=$!
until [[ "$(healthz 2>/dev/null | jq -r '.cluster.synced // false' 2>/dev/null)" == true ]]; do
  kill -0 "$AGENT" 2>/dev/null || { cat "$D/agent.log"; exit 1; }
  sleep 0.05
done
end=$(date +%s.%N)
rss=$(awk '/VmRSS/{print $2}' "/proc/$AGENT/status")
hwm=$(awk '/VmHWM/{print $2}' "/proc/$AGENT/status")
# CPU time (user + system) the agent used until then: on a shared machine the wall time
# depends on the other load, this much less.
cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$AGENT/stat")
frontends=$(curl -s --unix-socket "$D/agent.sock" http://agent/v1/services | jq length)
printf 'initial sync: %d Services x %d endpoints synced and programmed in %.2f s (%d frontends), agent CPU %s s, RSS %d MiB, peak RSS %d MiB\n' \
  "$N" "$E" "$(echo "$end - $start" | bc)" "$frontends" "$cpu" $((rss / 1024)) $((hwm / 1024))
# Steady: 5 s after the sync (and after the listing above), as the issue's goal reads it.
sleep 5
steady=$(awk '/VmRSS/{print $2}' "/proc/$AGENT/status")
hwm=$(awk '/VmHWM/{print $2}' "/proc/$AGENT/status")
printf 'steady: RSS %d MiB 5 s after the sync, peak RSS %d MiB so far\n' $((steady / 1024)) $((hwm / 1024))
if [[ "$SECONDS_" == 0 ]]; then exit 0; fi
ip netns exec "$NS" python3 "$repo/bench/k8s_sync.py" churn "$D" "$N" "$E" "$RATE" "$SECONDS_"
sleep 1
healthz | jq -r '.cluster.programmingLatency | "programming latency: p50 \(.p50Milliseconds) ms, p99 \(.p99Milliseconds) ms over the latest of \(.count) changes"'
rss=$(awk '/VmRSS/{print $2}' "/proc/$AGENT/status")
echo "agent RSS after the changes: $((rss / 1024)) MiB"
