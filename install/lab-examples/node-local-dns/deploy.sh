#!/usr/bin/env bash
# The node-local DNS cache in a running lab (install/lab up):
#   - an upstream DNS pod `kube-dns-NODE` (label k8s-app=kube-dns) on each --upstreams node:
#     dnsmasq serving a small cluster.local zone from its own records (--no-resolv, no
#     forwarding; TTL 30 s, as CoreDNS's cluster.local), logging every query;
#   - the kube-dns and kube-dns-upstream Services over them (kube-dns.yaml);
#   - with --cache (default), a cache pod `node-local-dns-NODE` (k8s-app=node-local-dns) on
#     every node: dnsmasq forwarding to the kube-dns-upstream ClusterIP, caching, logging
#     every query;
#   - with --lrp (default), the policy sending kube-dns's port 53 to the local cache.
# Each dnsmasq logs to the pod's directory: $LAB_ROOT/LAB/pods/POD/dnsmasq.log (removed with
# the pod). Lab plumbing, not product.
#
#   deploy.sh [--name LAB] [--upstreams node2[,node1...]] [--no-cache] [--no-lrp]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lab="$here/../../lab"
LAB="${LAB:-lab}"
LAB_ROOT="${LAB_ROOT:-/run/junction-lab}"
upstreams="" cache=1 lrp=1
while (($#)); do
  case "$1" in
    --name) LAB="${2:?}"; shift 2 ;;
    --upstreams) upstreams="${2:?}"; shift 2 ;;
    --no-cache) cache=""; shift ;;
    --no-lrp) lrp=""; shift ;;
    *) echo "deploy.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
nodes=()
for dir in "$LAB_ROOT/$LAB"/nodes/node*; do [[ -d "$dir" ]] && nodes+=("$(basename "$dir")"); done
((${#nodes[@]})) || { echo "deploy.sh: no lab '$LAB'" >&2; exit 1; }
[[ -n "$upstreams" ]] || upstreams="$(IFS=,; echo "${nodes[*]}")"

# Upstream pods first: they are the Services' endpoints.
IFS=, read -r -a upstream_nodes <<<"$upstreams"
for node in "${upstream_nodes[@]}"; do
  pod="kube-dns-$node"
  "$lab" --name "$LAB" pod add "$pod" --node "$node" --label k8s-app=kube-dns
  "$lab" --name "$LAB" exec --detach "$pod" -- dnsmasq --keep-in-foreground --user=root \
    --pid-file= --no-resolv --no-hosts --local=/cluster.local/ --local-ttl=30 \
    --host-record=kubernetes.default.svc.cluster.local,10.96.0.1 \
    --host-record=kube-dns.default.svc.cluster.local,10.96.0.10 \
    --host-record=web.default.svc.cluster.local,10.96.0.20 \
    --txt-record=whoami.cluster.local,"$pod" \
    --log-queries --log-facility="$LAB_ROOT/$LAB/pods/$pod/dnsmasq.log"
done
"$lab" --name "$LAB" apply -f "$here/kube-dns.yaml"

if [[ -n "$cache" ]]; then
  for node in "${nodes[@]}"; do
    pod="node-local-dns-$node"
    "$lab" --name "$LAB" pod add "$pod" --node "$node" --label k8s-app=node-local-dns
    # Forwards to kube-dns-upstream (never kube-dns, which is redirected back to the cache);
    # answers whoami-cache itself, so a client can tell which cache it reached.
    "$lab" --name "$LAB" exec --detach "$pod" -- dnsmasq --keep-in-foreground --user=root \
      --pid-file= --no-resolv --no-hosts --server=10.96.0.11 --cache-size=10000 \
      --txt-record=whoami-cache.cluster.local,"$pod" \
      --log-queries --log-facility="$LAB_ROOT/$LAB/pods/$pod/dnsmasq.log"
  done
fi
if [[ -n "$lrp" ]]; then
  "$lab" --name "$LAB" apply -f "$here/node-local-dns-lrp.yaml"
fi
