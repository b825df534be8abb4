# `lab up`, `lab down`, `lab status`: the nodes, the underlay they share, their agents.

lab_up() {
  local nodes="$1" mode="$2" lb_mode="${3:-snat}" ip_family="${4:-ipv4}"
  ((nodes >= 1 && nodes <= 50)) || die "--nodes must be 1..50"
  [[ "$ip_family" =~ ^(ipv4|ipv6|dual)$ ]] || die "--ip-family must be ipv4, ipv6 or dual"
  [[ "$mode" == native || "$mode" == chained ]] || die "--mode must be native or chained"
  [[ "$lb_mode" =~ ^(snat|dsr|hybrid)$ ]] || die "--lb-mode must be snat, dsr or hybrid"
  [[ -e "$(lab_dir)" ]] && die "lab '$LAB' already exists at $(lab_dir); run: install/lab down --name $LAB"
  for binary in "$PLUGIN" "$BIN/junction-agent" "$BIN/junctionctl"; do
    [[ -x "$binary" ]] || die "$binary is missing (swift build, or --bin DIR, or --prefix DIR)"
  done
  [[ -x "$DRIVER" ]] || die "the CNI driver $DRIVER is missing (install/build-driver.sh)"
  [[ -f "$BPF/endpoint.o" && -f "$BPF/netdev.o" ]] || die "the BPF objects are missing at $BPF (install/build-bpf.sh)"

  MODE="$mode" LB_MODE="$lb_mode" IP_FAMILY="$ip_family"
  mkdir -p "$(lab_dir)/nodes" "$(lab_dir)/pods"
  # From here on, any failure (or Ctrl-C) takes down what was made so far.
  trap 'note "up failed; cleaning up"; lab_down >/dev/null' EXIT
  trap 'exit 130' INT TERM
  cat >"$(lab_dir)/lab.env" <<ENV
MODE=$mode
LB_MODE=$lb_mode
IP_FAMILY=$ip_family
BIN=$BIN
PLUGIN=$PLUGIN
DRIVER=$DRIVER
BPF=$BPF
AGENT_ARGS=(${AGENT_ARGS[@]+$(printf '%q ' "${AGENT_ARGS[@]}")})
ENV

  ip netns add "$LAB-underlay"
  ip -n "$LAB-underlay" link set lo up
  ip -n "$LAB-underlay" link add br0 type bridge
  ip -n "$LAB-underlay" link set br0 up
  start_apiserver

  local n
  for n in $(seq "$nodes"); do make_node "$n"; done
  for n in $(seq "$nodes"); do route_pod_cidrs "$(node_ns "node$n")" "$nodes" "$n"; done
  make_client "$nodes"
  for n in $(seq "$nodes"); do start_agent "node$n"; done
  # A v1/Node per node, with its zone; returns once every agent has synced and has it.
  cluster nodes || die "the agents did not sync with the API server"
  trap - EXIT INT TERM
  echo "lab $LAB: $nodes nodes ($mode mode, lb-mode $lb_mode, pods $ip_family), client" \
    "$CLIENT_IP$(has_ipv6 && echo " $CLIENT_IP6"), API server https://$API_IP:$API_PORT;" \
    "state in $(lab_dir)"
}

# The stand-in Kubernetes API server (tools/standin-apiserver: test support, not the
# product) on the underlay bridge, with the CA, token and kubeconfig it writes in
# apiserver/. Stopped with the underlay namespace's processes by `down`.
start_apiserver() {
  local dir _
  dir="$(lab_dir)/apiserver"
  mkdir -p "$dir"
  ip -n "$LAB-underlay" addr add "$API_IP/24" dev br0
  start_detached "$(lab_dir)/apiserver.log" ip netns exec "$LAB-underlay" \
    python3 "$repo/tools/standin-apiserver/standin_apiserver.py" --dir "$dir" \
    --host "$API_IP" --port "$API_PORT" --bookmark-interval 1
  echo "$LAST_PID" >"$(lab_dir)/apiserver.pid"
  echo "https://$API_IP:$API_PORT" >"$dir/url"
  for _ in $(seq 200); do
    grep -q '^listening' "$(lab_dir)/apiserver.log" 2>/dev/null && [[ -f "$dir/kubeconfig" ]] && return 0
    kill -0 "$LAST_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$(lab_dir)/apiserver.log" >&2
  die "the stand-in API server did not come up"
}

# Plugs namespace $1 into the underlay bridge as eth0 with address $2 (port name $3) and,
# with IPv6, address $4. The lab's addresses are assigned, never contested: no duplicate
# address detection (nodad, and accept_dad=0 for the links made later, such as a chained
# bridge's cni0), so nothing waits on it.
attach_underlay() {
  local ns="$1" address="$2" port="$3" address6="${4:-}"
  ip link add eth0 netns "$ns" type veth peer name "$port" netns "$LAB-underlay"
  ip -n "$LAB-underlay" link set "$port" master br0 up
  ip -n "$ns" addr add "$address/24" dev eth0
  if [[ -n "$address6" ]]; then
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.eth0.disable_ipv6=0 \
      net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.eth0.accept_dad=0
    ip -n "$ns" addr add "$address6/64" dev eth0 nodad
  fi
  ip -n "$ns" link set eth0 up
}

make_node() {
  local n="$1" node="node$1"
  local dir ns
  dir="$(node_dir "$node")" ns="$(node_ns "$node")"
  mkdir -p "$dir/run" "$dir/state" "$dir/bpf" "$dir/conf" "$dir/bin"
  node_ip "$n" >"$dir/ip"
  node_cidr "$n" >"$dir/cidr"
  if has_ipv6; then
    node_ip6 "$n" >"$dir/ip6"
    node_cidr6 "$n" >"$dir/cidr6"
  fi
  node_zone "$n" >"$dir/zone"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  attach_underlay "$ns" "$(node_ip "$n")" "$node" "$(has_ipv6 && node_ip6 "$n")"
  # ip_forward: pods are routed, and the north-south programs (--devices eth0) forward with
  # bpf_fib_lookup, which refuses to route for a device without forwarding. rp_filter off
  # (eth0's own value counts too: the kernel takes the larger of it and "all"): a node
  # receives pod-CIDR traffic from other nodes' pods, and with DSR the client's packets
  # from the ingress node, neither of which its reverse route check needs to judge.
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
    net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
  # IPv6 pods are routed too (the plugin turns this on at the first IPv6 pod as well).
  has_ipv6 && ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.forwarding=1
  ln -s "$PLUGIN" "$dir/bin/junction"
  write_conflist "$node"
}

# Every other node's pod CIDR (each family's) is reached through that node's underlay
# address of the family: native routing, no tunnel.
route_pod_cidrs() {
  local ns="$1" nodes="$2" self="${3:-0}" m
  for m in $(seq "$nodes"); do
    ((m == self)) && continue
    ip -n "$ns" route add "$(node_cidr "$m")" via "$(node_ip "$m")" dev eth0
    if has_ipv6; then
      ip -n "$ns" -6 route add "$(node_cidr6 "$m")" via "$(node_ip6 "$m")" dev eth0
    fi
  done
}

make_client() {
  ip netns add "$LAB-client"
  ip -n "$LAB-client" link set lo up
  attach_underlay "$LAB-client" "$CLIENT_IP" client "$(has_ipv6 && echo "$CLIENT_IP6")"
  route_pod_cidrs "$LAB-client" "$1"
}

# host-local's ranges: one range set per family the pods get, IPv4 first (so a dual-stack
# pod's first address is its IPv4 one, as with containerd's default ip_pref).
ipam_ranges() {
  local dir="$1" sets=()
  has_ipv4 && sets+=("[{\"subnet\": \"$(cat "$dir/cidr")\"}]")
  has_ipv6 && sets+=("[{\"subnet\": \"$(cat "$dir/cidr6")\"}]")
  local IFS=,
  echo "[${sets[*]}]"
}

write_conflist() {
  local node="$1" dir
  dir="$(node_dir "$node")"
  local ipam="{\"type\": \"host-local\", \"dataDir\": \"$dir/ipam\", \"ranges\": $(ipam_ranges "$dir")}"
  local common="\"agentSocket\": \"$dir/run/agent.sock\", \"logFile\": \"$dir/cni.log\", \"logLevel\": \"info\""
  if [[ "$MODE" == native ]]; then
    cat >"$dir/conf/10-pods.conflist" <<CONF
{"cniVersion": "1.0.0", "name": "pods", "plugins": [
  {"type": "junction", "mode": "native", "mtu": 1500, $common,
   "ipam": $ipam}]}
CONF
  else
    # As cni-conf/10-bridge-junction.conflist, without ipMasq: pods keep their addresses
    # across nodes.
    cat >"$dir/conf/10-pods.conflist" <<CONF
{"cniVersion": "1.0.0", "name": "pods", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "isDefaultGateway": true,
   "ipMasq": false, "mtu": 1500, "ipam": $ipam},
  {"type": "junction", "mode": "chained", $common}]}
CONF
  fi
}

start_agent() {
  local node="$1" dir ns
  dir="$(node_dir "$node")" ns="$(node_ns "$node")"
  # The bpffs is mounted here, in our mount namespace, before the agent starts: `ip netns
  # exec` gives each process a private mount namespace (and /sys), and the plugin, run
  # later through another `ip netns exec`, must see the agent's pins.
  # Not again on a restart: a second mount would be a new, empty bpffs over the pins.
  mountpoint -q "$dir/bpf" || mount -t bpf bpf "$dir/bpf"
  start_detached "$dir/agent.log" ip netns exec "$ns" "$BIN/junction-agent" --node-name "$node" \
    --socket "$dir/run/agent.sock" --state-dir "$dir/state" --bpf-fs "$dir/bpf" --bpf-objects "$BPF" \
    --devices eth0 --lb-mode "${LB_MODE:-snat}" --socket-lb --cgroup-root "$dir/cgroup" \
    --kubeconfig "$(lab_dir)/apiserver/kubeconfig" ${AGENT_ARGS[@]+"${AGENT_ARGS[@]}"}
  echo "$LAST_PID" >"$dir/agent.pid"
  local _
  for _ in $(seq 200); do
    ctl "$node" status >/dev/null 2>&1 && return 0
    agent_running "$node" || break
    sleep 0.1
  done
  cat "$dir/agent.log" >&2
  die "$node's agent did not come up"
}

# Kills every process in namespace $1 (all of them were started by the lab: agents, plugin
# helpers, `exec --detach` servers).
kill_namespace_processes() {
  local pids
  pids="$(ip netns pids "$1" 2>/dev/null || true)"
  [[ -z "$pids" ]] && return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  sleep 0.2
  pids="$(ip netns pids "$1" 2>/dev/null || true)"
  # shellcheck disable=SC2086
  [[ -n "$pids" ]] && kill -KILL $pids 2>/dev/null || true
}

stop_agent() {
  local node="$1" pid _
  pid="$(cat "$(node_dir "$node")/agent.pid" 2>/dev/null)" || return 0
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  note "$node's agent (pid $pid) ignored SIGTERM; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

# `restart-agent`: node $1's agent stopped with signal $2 (TERM or KILL; TERM that is not
# obeyed in 10 s becomes KILL) and started again as `up` starts it, with the BPF objects of
# directory $3 when given (an upgrade to other programs; later restarts without it go back
# to the lab's). The pods, their programs and the pinned maps stay.
restart_agent() {
  local node="$1" signal="${2:-TERM}" objects="${3:-}" pid _
  [[ "$signal" =~ ^(TERM|KILL)$ ]] || die "restart-agent: --signal TERM or KILL"
  [[ -z "$objects" || (-f "$objects/endpoint.o" && -f "$objects/netdev.o") ]] ||
    die "restart-agent: no BPF objects at $objects"
  pid="$(cat "$(node_dir "$node")/agent.pid" 2>/dev/null)" || die "$node has no agent pid"
  kill "-$signal" "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    note "$node's agent (pid $pid) ignored SIG$signal; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  BPF="${objects:-$BPF}" start_agent "$node"
}

# Removes everything the lab made, whatever state it is in. Never fails.
lab_down() {
  trap - EXIT
  set +e
  local dir pod node ns point
  dir="$(lab_dir)"
  # shellcheck source=/dev/null
  [[ -f "$dir/lab.env" ]] && source "$dir/lab.env"
  for pod in $(pod_names); do remove_pod "$pod" quiet; done
  for node in $(node_names); do stop_agent "$node"; done
  for ns in $(ip netns list | awk '{print $1}'); do
    case "$ns" in
      "$LAB-underlay" | "$LAB-client" | "$LAB"-node[0-9]* | "$LAB"-pod-*)
        kill_namespace_processes "$ns"
        ip netns del "$ns"
        ;;
    esac
  done
  # Deepest first: the bpffs mounts of the nodes.
  for point in $(awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$point"
  done
  rm -rf "$dir"
  rmdir "$LAB_ROOT" 2>/dev/null
  echo "lab $LAB: down"
  return 0
}

lab_status() {
  load_lab
  local node pod state
  echo "lab $LAB ($MODE mode, lb-mode ${LB_MODE:-snat}, pods ${IP_FAMILY:-ipv4}), state in $(lab_dir)"
  local api=down
  kill -0 "$(cat "$(lab_dir)/apiserver.pid" 2>/dev/null)" 2>/dev/null && api="up (pid $(cat "$(lab_dir)/apiserver.pid"))"
  echo "API server (stand-in): https://$API_IP:$API_PORT, $api; kubeconfig $(lab_dir)/apiserver/kubeconfig"
  printf '%-8s %-14s %-14s %-8s %s\n' NODE ADDRESS POD-CIDR ZONE AGENT
  for node in $(node_names); do
    state=down
    agent_running "$node" && ctl "$node" status >/dev/null 2>&1 && state="up (pid $(cat "$(node_dir "$node")/agent.pid"))"
    # With IPv6: both underlay addresses, and the pod CIDR of each family pods get.
    local dir cidrs
    dir="$(node_dir "$node")" cidrs=""
    has_ipv4 && cidrs="$(cat "$dir/cidr")"
    has_ipv6 && cidrs="${cidrs:+$cidrs,}$(cat "$dir/cidr6")"
    printf '%-8s %-14s %-14s %-8s %s\n' "$node" "$(cat "$dir/ip" "$dir/ip6" 2>/dev/null | paste -sd,)" \
      "$cidrs" "$(cat "$dir/zone")" "$state"
  done
  echo
  printf '%-16s %-12s %-8s %-14s %-11s %s\n' POD NAMESPACE NODE ADDRESS STATE LABELS
  for pod in $(pod_names); do
    printf '%-16s %-12s %-8s %-14s %-11s %s\n' "$pod" "$(pod_namespace "$pod")" \
      "$(cat "$(pod_dir "$pod")/node")" "$(paste -sd, "$(pod_dir "$pod")/ips" 2>/dev/null || cat "$(pod_dir "$pod")/ip" 2>/dev/null)" \
      "$(cat "$(pod_dir "$pod")/state" 2>/dev/null || echo ready)" "$(paste -sd, "$(pod_dir "$pod")/labels")"
  done
}
