#!/usr/bin/env bash
# The main job until the multi-node lab exists: one simulated node (a network namespace)
# gets two pods in native mode through the real plugin, driven by Debian's libcni the way
# a container runtime drives it, and shows them talking to each other and to the node.
# Everything it creates (namespaces, a temporary install prefix, host-local state) is
# removed on exit, also on failure or Ctrl-C.
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
pods=("jdemo-a-$$" "jdemo-b-$$")
cleanup() {
  for ns in "${pods[@]}" "$node"; do ip netns del "$ns" 2>/dev/null || true; done
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

mkdir -p "$work/conf"
cat >"$work/conf/10-pods.conflist" <<CONF
{"cniVersion": "1.0.0", "name": "pods", "plugins": [
  {"type": "junction", "mode": "native", "mtu": 1500,
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

step "CHECK $a"
driver check "$a" && echo "CHECK: ok"

for pod in "${pods[@]}"; do
  step "DEL $pod"
  driver del "$pod" && echo "DEL: ok"
done
step "Left on the node after DEL (only lo expected)"
ip -n "$node" -br link
step "The plugin's log"
cat "$work/junction.log"
echo
echo "Demo complete: two pods talked over Junction's native routing."
