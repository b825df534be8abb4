#!/usr/bin/env bash
# TCP throughput with iperf3 from a pod through a ClusterIP to a backend pod, 1 and 8
# streams: through Junction, kube-proxy's nftables rules and kube-proxy's iptables rules,
# against the same transfer straight to the backend's IP. See "throughput.sh" in
# bench/README.md. Needs root, gcc, iperf3, iptables, nftables, containernetworking-plugins.
#
#   sudo [JUNCTION_PREFIX=DIR] bash bench/throughput.sh [--write FILE] [--seconds 10]
#        [--rounds 3] [--streams 1,8] [--services 100] [--backends 10] [--socket-lb]
#
# --socket-lb: the Junction node's agent runs with --socket-lb; "junction-sock" is a pod in
# the socket path (iperf3 client in its cgroup under the agent's --cgroup-root), "junction"
# the pod opted out with JUNCTION_SOCKET_LB=false (per packet). See lbnet.sh.
set -euo pipefail

bench="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$bench")"
. "$bench/lib.sh"
. "$bench/lbnet.sh"

write="" seconds=10 rounds=3 streams=1,8 services=100 backends=10 socket_lb=false
args=("$@")
value_options throughput "write seconds rounds streams services backends socket-lb!" "$@"
lbnet_socket_lb=$socket_lb
lbnet_setup throughput /tmp/junction-throughput.XXXXXX "jtp$$"
header="$(machine_lines)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"

# label -> "client netns=IP:PORT"; label -> the cgroup its client runs in (socket LB runs)
declare -A target cgroup
lbnet_node plain straight
target[straight]="${lbnet_client[straight]}=${lbnet_backend[straight]}:5201"
for mech in junction nft iptables; do
  echo "throughput: node $mech ($services services x $backends backends + svc-iperf)" >&2
  lbnet_node "$mech" "$mech" "$services" "$backends"
  target[$mech]="${lbnet_client[$mech]}=10.97.0.1:5201"
done
# Straight in the Junction node too: Junction's programs run on every packet, translated or not.
target[junction-straight]="${lbnet_client[junction]}=${lbnet_backend[junction]}:5201"
labels=(straight junction junction-straight nft iptables)
if $socket_lb; then
  # junction-sock: the pod in the socket path; junction: the opted-out pod (per packet).
  target[junction-sock]="${lbnet_client[junction]}=10.97.0.1:5201"
  target[junction]="${lbnet_client_pp[junction]}=10.97.0.1:5201"
  for label in straight nft iptables; do cgroup[$label]="$lbnet_cgroup/$prefix/home"; done
  cgroup[junction-sock]="${lbnet_cgroup_pod[junction]}"
  cgroup[junction-straight]="${lbnet_cgroup_pod[junction]}"
  cgroup[junction]="${lbnet_cgroup_pp[junction]}"
  labels=(straight junction-sock junction junction-straight nft iptables)
  # The measured service's ClusterIP (port 80 -> 8080): proves each pod's path before timing.
  lbnet_check_socket_lb throughput 80 8080
fi

mkdir -p "$tmp/results"
IFS=, read -r -a stream_list <<<"$streams"
for ((round = 0; round < rounds; round++)); do
  for s in "${stream_list[@]}"; do
    for ((k = 0; k < ${#labels[@]}; k++)); do
      label="${labels[$(((round + k) % ${#labels[@]}))]}"
      ns="${target[$label]%%=*}" dest="${target[$label]#*=}"
      echo "throughput: round $((round + 1))/$rounds, $s stream(s), $label ($dest)" >&2
      # -O 1: the first second (slow start, the first packets' translation) is not counted.
      in_cgroup=()
      [[ -n "${cgroup[$label]:-}" ]] && in_cgroup=(lbnet_in_cgroup "${cgroup[$label]}")
      lbnet_run "${in_cgroup[@]}" ip netns exec "$ns" iperf3 --client "${dest%:*}" --port "${dest#*:}" --time "$seconds" --omit 1 \
        --parallel "$s" --json >"$tmp/results/$label.$s.$round.json" ||
        { echo "throughput: iperf3 to $label failed:" >&2; tail -n 20 "$tmp/results/$label.$s.$round.json" >&2; exit 1; }
    done
  done
done

{
  if $socket_lb; then
    echo "# TCP throughput from a pod through a ClusterIP (iperf3): Junction's socket LB, Junction per packet, nftables, iptables, straight"
  else
    echo "# TCP throughput through a ClusterIP (iperf3): Junction, nftables, iptables, straight"
  fi
  echo
  echo "- date: $started"
  echo "$header"
  echo "- command: \`sudo bash bench/throughput.sh ${args[*]}\`"
  echo "- junction: release build \`$junction_bin\`, agent \`$agent_bin\`, datapath \`$bpf_objects/endpoint.o\`"
  echo "- tools: $(iperf3 --version | head -n1), $(iptables-legacy --version), $(nft --version)"
  echo "- pods: veth pairs, MTU 1500, client and backend pod on the same node (netns); GRO/GSO/TSO at the veth defaults"
  echo
  python3 "$bench/e2e.py" iperf --results "$tmp/results" --seconds "$seconds" --rounds "$rounds" \
    --services "$services" --backends "$backends"
} >"$tmp/report.md"
cat "$tmp/report.md"
if [[ -n "$write" ]]; then cp "$tmp/report.md" "$write"; fi
