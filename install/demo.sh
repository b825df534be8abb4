#!/usr/bin/env bash
# The main job until the multi-node lab exists: one simulated node (a network namespace)
# runs junction-agent and gets three pods in native mode through the real plugin, driven by
# Debian's libcni the way a container runtime drives it. It shows pods talking to each
# other and to the node, a ClusterIP Service (Kubernetes YAML applied with junctionctl)
# balancing a client's requests over two backend pods, the service maps, the endpoints the
# agent knows with their eBPF packet counters, and DEL leaving nothing behind. Everything it creates (namespaces, the agent process, a
# bpffs mount, a temporary install prefix, host-local state) is removed on exit, also on
# failure or Ctrl-C.
#
#   sudo bash install/demo.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $(id -u) -ne 0 ]]; then
  echo "demo.sh: needs root (it creates network namespaces); run: sudo bash install/demo.sh" >&2
  exit 1
fi

work="$(mktemp -d /tmp/junction-demo.XXXXXX)"
node="jdemo-node-$$"
pods=("jdemo-a-$$" "jdemo-b-$$" "jdemo-c-$$")
agent_pid=""
servers=()
cleanup() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [[ -n "$agent_pid" ]]; then
    kill -TERM "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
  fi
  for ns in "${pods[@]}" "$node"; do ip netns del "$ns" 2>/dev/null || true; done
  umount "$work/bpf" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Installing build and demo dependencies, building Junction (release) and the libcni driver"
"$repo/install/deps.sh" test
"$repo/install/install.sh" --prefix "$work/prefix" --skip-deps
"$repo/install/build-driver.sh" "$work/cnidriver" >/dev/null

step "A node (network namespace $node) with address 192.168.200.1"
ip netns add "$node"
ip -n "$node" link set lo up
ip -n "$node" addr add 192.168.200.1/32 dev lo

step "junction-agent on the node"
# The bpffs is mounted here, before the agent starts: `ip netns exec` gives each process a
# private mount namespace, and the plugin must see the agent's pinned programs.
mkdir -p "$work/bpf" "$work/run"
mount -t bpf bpf "$work/bpf"
ip netns exec "$node" "$work/prefix/usr/local/bin/junction-agent" --node-name demo-node \
  --socket "$work/run/junction.sock" --state-dir "$work/state" --bpf-fs "$work/bpf" \
  --bpf-objects "$work/prefix/usr/local/lib/junction/bpf" 2>"$work/agent.log" &
agent_pid=$!
ctl() { "$work/prefix/usr/local/bin/junctionctl" --socket "$work/run/junction.sock" "$@"; }
for _ in $(seq 100); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done
ctl status

mkdir -p "$work/conf"
cat >"$work/conf/10-pods.conflist" <<CONF
{"cniVersion": "1.0.0", "name": "pods", "plugins": [
  {"type": "junction", "mode": "native", "mtu": 1500,
   "agentSocket": "$work/run/junction.sock",
   "logFile": "$work/junction.log", "logLevel": "info",
   "ipam": {"type": "host-local", "dataDir": "$work/ipam",
            "ranges": [[{"subnet": "10.200.1.0/24"}]]}}]}
CONF
cat "$work/conf/10-pods.conflist"

driver() {
  local verb="$1" pod="$2"
  NETCONFPATH="$work/conf" CNI_PATH="$work/prefix/opt/cni/bin:/usr/lib/cni" \
    CNI_CACHE_DIR="$work/cache" CNI_CONTAINERID="demo-$pod" CNI_IFNAME=eth0 \
    CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=$pod" \
    ip netns exec "$node" "$work/cnidriver" "$verb" pods "/var/run/netns/$pod"
}

declare -A address
for pod in "${pods[@]}"; do
  step "ADD $pod"
  ip netns add "$pod"
  result="$(driver add "$pod")"
  echo "$result"
  address[$pod]="$(jq -r '.ips[0].address | split("/")[0]' <<<"$result")"
done

a="${pods[0]}" b="${pods[1]}"
step "Inside $a: its interface and routes"
ip -n "$a" -br addr show dev eth0
ip -n "$a" route
step "On the node: one /32 route per pod"
ip -n "$node" route

step "$a (${address[$a]}) -> $b (${address[$b]})"
ip netns exec "$a" ping -c 3 -i 0.2 "${address[$b]}"
step "$b -> the node (192.168.200.1)"
ip netns exec "$b" ping -c 3 -i 0.2 192.168.200.1
step "TCP: $b serves, $a connects"
ip netns exec "$b" python3 -c '
import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0",8080)); s.listen(1); s.settimeout(10)
c,peer=s.accept(); c.sendall(("hello %s, this is '"$b"'\n" % peer[0]).encode()); c.close()' &
server=$!
sleep 0.5
ip netns exec "$a" python3 -c '
import socket,sys
print(socket.create_connection((sys.argv[1],8080),timeout=5).recv(200).decode(),end="")' "${address[$b]}"
wait "$server"

c="${pods[2]}"
step "A ClusterIP service: droids (10.96.0.10:80) in front of $b and $c"
for pod in "$b" "$c"; do
  ip netns exec "$pod" python3 -c '
import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0",8080)); s.listen(16)
while True:
    c,_=s.accept(); c.sendall(sys.argv[1].encode()); c.close()' "$pod" &
  servers+=($!)
done
cat >"$work/droids.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: droids, namespace: default}
spec:
  clusterIP: 10.96.0.10
  selector: {role: jedi}
  ports:
  - {name: http, port: 80, protocol: TCP, targetPort: 8080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: droids-demo
  namespace: default
  labels: {kubernetes.io/service-name: droids}
addressType: IPv4
ports:
- {name: http, port: 8080, protocol: TCP}
endpoints:
- {addresses: ["${address[$b]}"], conditions: {ready: true}}
- {addresses: ["${address[$c]}"], conditions: {ready: true}}
YAML
cat "$work/droids.yaml"
ctl apply -f "$work/droids.yaml"
ctl service list
sleep 0.5
step "$a asks the droids service 8 times: which backend answered"
ip netns exec "$a" python3 -c '
import socket
for i in range(8):
    print("  request %d answered by %s" % (i + 1, socket.create_connection(("10.96.0.10", 80), timeout=5).recv(100).decode()))'
step "The service maps as the kernel holds them"
ctl bpf lb list

step "The agent's endpoints, with the packets its eBPF programs counted"
ctl endpoint list
ctl endpoint get "demo-$a:eth0"

step "CHECK $a"
driver check "$a" && echo "CHECK: ok"

for pod in "${pods[@]}"; do
  step "DEL $pod"
  driver del "$pod" && echo "DEL: ok"
done
step "Left on the node after DEL (only lo expected), and the agent's endpoints (none)"
ip -n "$node" -br link
ctl endpoint list
step "The plugin's log"
cat "$work/junction.log"
echo
step "The agent's log"
cat "$work/agent.log"
echo
echo "Demo complete: pods talked over native routing and a ClusterIP, counted and balanced by Junction's eBPF datapath."
