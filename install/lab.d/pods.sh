# `lab pod add|del`, `lab exec`, `lab exec-node`, `lab exec-client`: pods made through the
# real CNI plugin, driven by libcni (tools/cnidriver) the way a container runtime does.

container_id() { echo "lab-$LAB-$1"; }
pod_namespace() { cat "$(pod_dir "$1")/namespace" 2>/dev/null || echo default; }

# Runs the libcni driver on the pod's node: cnidriver VERB pods /var/run/netns/POD.
cni() {
  local verb="$1" pod="$2" node="$3" dir
  dir="$(node_dir "$node")"
  NETCONFPATH="$dir/conf" CNI_PATH="$dir/bin:/usr/lib/cni" CNI_CACHE_DIR="$dir/cache" \
    CNI_CONTAINERID="$(container_id "$pod")" CNI_IFNAME=eth0 \
    CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=$(pod_namespace "$pod");K8S_POD_NAME=$pod;K8S_POD_INFRA_CONTAINER_ID=$(container_id "$pod")" \
    ip netns exec "$(node_ns "$node")" "$DRIVER" "$verb" pods "/var/run/netns/$(pod_ns "$pod")"
}

pod_add() {
  local pod="$1" node="$2"
  shift 2
  load_lab
  [[ "$pod" =~ ^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$ ]] || die "pod name '$pod': lower-case letters, digits and '-', at most 32"
  [[ -n "$node" ]] || die "pod add $pod: --node is required"
  [[ -d "$(node_dir "$node")" ]] || die "no node '$node' in lab $LAB ($(node_names | paste -sd' '))"
  [[ -e "$(pod_dir "$pod")" ]] && die "pod '$pod' already exists"
  local dir
  dir="$(pod_dir "$pod")"
  mkdir -p "$dir"
  echo "$node" >"$dir/node"
  echo default >"$dir/namespace"
  echo ready >"$dir/state"
  : >"$dir/labels"
  : >"$dir/ports"
  while (($#)); do
    case "$1" in
      --label) [[ "${2:-}" == *=* ]] || die "--label takes k=v"; echo "$2" >>"$dir/labels"; shift 2 ;;
      --port) [[ "${2:-}" =~ ^[a-z0-9-]+=[0-9]+$ ]] || die "--port takes name=number"; echo "$2" >>"$dir/ports"; shift 2 ;;
      --namespace | -n)
        [[ "${2:-}" =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] || { remove_pod "$pod" quiet; die "--namespace takes a DNS label"; }
        echo "$2" >"$dir/namespace"
        shift 2
        ;;
      *) remove_pod "$pod" quiet; die "pod add: unknown option $1" ;;
    esac
  done
  if ! ip netns add "$(pod_ns "$pod")"; then remove_pod "$pod" quiet; die "cannot create the pod's namespace"; fi
  local result
  if ! result="$(cni add "$pod" "$node")"; then
    echo "$result" >&2
    remove_pod "$pod" quiet
    die "CNI ADD of $pod on $node failed"
  fi
  # ip: the first address (IPv4 in a dual-stack lab), what Services and tests have always
  # read; ips: every address, one a line, in the result's order.
  python3 -c 'import json,sys; [print(i["address"].split("/")[0]) for i in json.load(sys.stdin)["ips"]]' \
    <<<"$result" >"$dir/ips"
  head -n 1 "$dir/ips" >"$dir/ip"
  ip -n "$(pod_ns "$pod")" link set lo up
  sync_cluster_state
  echo "pod $(pod_namespace "$pod")/$pod on $node: $(paste -sd' ' "$dir/ips")"
}

# The pod's readiness as the EndpointSlice controller sees it: ready, not-ready (failing its
# readiness probe) or terminating (being deleted, still serving); the Pod and the slices
# follow, and this returns once every agent has applied them.
pod_state() {
  local pod="$1" state="$2"
  load_lab
  [[ -d "$(pod_dir "$pod")" ]] || die "no pod '$pod' in lab $LAB"
  [[ "$state" =~ ^(ready|not-ready|terminating)$ ]] || die "pod state: ready, not-ready or terminating"
  echo "$state" >"$(pod_dir "$pod")/state"
  sync_cluster_state
  echo "pod $(pod_namespace "$pod")/$pod: $state"
}

# DEL through the CNI, the pod's processes and namespace, its record. With "quiet", for
# cleanup: never fails and does not touch the agents' objects.
remove_pod() {
  local pod="$1" quiet="${2:-}" dir node ns
  dir="$(pod_dir "$pod")" ns="$(pod_ns "$pod")"
  node="$(cat "$dir/node" 2>/dev/null)"
  if [[ -d "/var/run/netns" && -e "/var/run/netns/$ns" ]]; then
    kill_namespace_processes "$ns"
    if [[ -n "$node" ]] && ! cni del "$pod" "$node" >/dev/null 2>&1 && [[ -z "$quiet" ]]; then
      note "CNI DEL of $pod failed (removing it anyway)"
    fi
    ip netns del "$ns" 2>/dev/null
  fi
  rm -rf "$dir"
  return 0
}

pod_del() {
  local pod="$1"
  load_lab
  [[ -d "$(pod_dir "$pod")" ]] || die "no pod '$pod' in lab $LAB"
  remove_pod "$pod"
  sync_cluster_state
  echo "pod $pod: deleted"
}

# exec [--detach] NAMESPACE -- CMD...; a detached command's pid is kept in $record_dir/pids
# (and every process in a lab namespace is stopped when the pod or lab goes).
run_in() {
  local ns="$1" detach="$2"
  shift 2
  if [[ -n "$detach" ]]; then
    start_detached /dev/null ip netns exec "$ns" "$@"
    echo "started pid $LAST_PID"
  else
    exec ip netns exec "$ns" "$@"
  fi
}
