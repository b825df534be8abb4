#!/usr/bin/env bash
# The lab's first scenario: the `droids` Service in front of `role: jedi` pods spread over
# the nodes, queried from a client pod on each node; prints which backend answered each
# request; then the same Service as a NodePort, asked from the external client through
# node1 in DSR mode, answered straight from the backends' nodes. The lab is dual-stack
# (--ip-family dual) and droids a RequireDualStack Service: a client pod asks it on both of
# its cluster IPs, and the external client at node1's IPv6 NodePort. (A kernel without IPv6
# gets an IPv4 lab and no dual-stack step.) Brings a lab up, and always takes it down again.
#
#   sudo install/lab-demo.sh [--nodes N] [--mode native|chained] [--name LAB]
#                            [--bin DIR | --prefix DIR]
# (needs `install/build-driver.sh && install/build-bpf.sh && swift build` first, or an
# `install/install.sh --prefix DIR` tree; the main job, install/demo.sh, installs one and
# then runs this)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
nodes=3 mode=native name=demo bin=()
while (($#)); do
  case "$1" in
    --nodes) nodes="$2"; shift 2 ;;
    --mode) mode="$2"; shift 2 ;;
    --name) name="$2"; shift 2 ;;
    --bin) bin=(--bin "$2"); shift 2 ;;
    --prefix) bin=(--prefix "$2"); shift 2 ;;
    *) echo "usage: $0 [--nodes N] [--mode native|chained] [--name LAB] [--bin DIR | --prefix DIR]" >&2; exit 2 ;;
  esac
done
lab() { "$repo/install/lab" --name "$name" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

web="$(mktemp -d /tmp/junction-lab-demo.XXXXXX)"
up=""
cleanup() {
  [[ -n "$up" ]] && { step "Down"; lab down; }
  rm -rf "$web"
}
trap cleanup EXIT INT TERM

# Dual-stack unless the kernel has no IPv6 at all (booted with ipv6.disable=1).
family=dual
[[ -d /proc/sys/net/ipv6 ]] || family=ipv4
step "A $nodes-node lab ($mode mode, pods $family)"
up=1
lab up --nodes "$nodes" --mode "$mode" --lb-mode dsr --ip-family "$family" "${bin[@]}"

step "Jedi pods, each serving its own name on port 80 (busybox httpd)"
jedi=(luke leia obiwan yoda)
for i in "${!jedi[@]}"; do
  pod="${jedi[$i]}" node="node$((i % nodes + 1))"
  lab pod add "$pod" --node "$node" --label role=jedi
  mkdir -p "$web/$pod"
  echo "$pod" >"$web/$pod/index.html"
  lab exec --detach "$pod" -- busybox httpd -f -p 80 -h "$web/$pod" >/dev/null
done

step "A client pod on each node"
for n in $(seq "$nodes"); do lab pod add "client$n" --node "node$n" --label role=client; done

step "The droids Service (selector role: jedi) to the API server; the lab derives its EndpointSlices"
if [[ "$family" == dual ]]; then
  families='  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  clusterIPs: [10.96.0.10, "fd00:10:96::a"]'
else
  families=""
fi
cat >"$web/droids.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: droids, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
$families
  selector: {role: jedi}
  ports:
  - {name: http, port: 80, protocol: TCP, targetPort: 80, nodePort: 30080}
YAML
cat "$web/droids.yaml"
lab apply -f "$web/droids.yaml" >/dev/null
lab status
step "What node1's agent holds, from the lab's stand-in Kubernetes API server"
lab ctl node1 status | sed -n '/^Kubernetes API:/,$p'
lab ctl node1 service list
sleep 0.5

for n in $(seq "$nodes"); do
  step "client$n (on node$n) asks droids (10.96.0.10:80) 6 times"
  for i in $(seq 6); do
    answer="$(lab exec "client$n" -- curl -s -m 3 http://10.96.0.10/ 2>&1 || echo "(no answer)")"
    echo "  request $i answered by: $answer"
  done
done
node1_ip="$(lab exec-node node1 -- ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)"
step "The external client (outside the cluster) asks droids at node1's NodePort ($node1_ip:30080) 6 times"
echo "  (DSR: node1 forwards the SYN with the frontend in an IPv4 option; the backend's node answers the client directly)"
for i in $(seq 6); do
  answer="$(lab exec-client -- curl -s -m 3 "http://$node1_ip:30080/" 2>&1 || echo "(no answer)")"
  echo "  request $i answered by: $answer"
done
if [[ "$family" == dual ]]; then
  step "droids is dual-stack: client1 asks it on each family, 3 times"
  echo "  (one EndpointSlice per family: the IPv6 cluster IP goes to the jedi's IPv6 addresses)"
  for vip in 10.96.0.10 "[fd00:10:96::a]"; do
    for i in $(seq 3); do
      answer="$(lab exec client1 -- curl -s -g -m 3 "http://$vip/" 2>&1 || echo "(no answer)")"
      echo "  $vip request $i answered by: $answer"
    done
  done
  node1_ip6="$(lab exec-node node1 -- ip -6 -o addr show dev eth0 scope global | awk '{print $4}' | cut -d/ -f1)"
  step "The external client asks droids at node1's IPv6 NodePort ([$node1_ip6]:30080) 3 times"
  echo "  (DSR over IPv6: the frontend travels in a destination-options extension header)"
  for i in $(seq 3); do
    answer="$(lab exec-client -- curl -s -g -m 3 "http://[$node1_ip6]:30080/" 2>&1 || echo "(no answer)")"
    echo "  request $i answered by: $answer"
  done
fi
step "node1's service maps as the kernel holds them"
lab ctl node1 bpf lb list
step "node1's endpoints, with the packets its eBPF programs counted"
lab ctl node1 endpoint list
echo
echo "Demo complete: one Service, backends on every node, reached by its ClusterIP from every node and by its NodePort from outside$([[ "$family" == dual ]] && echo ", on both IPv4 and IPv6")."
