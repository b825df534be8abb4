# Shared by connection-cost.sh and throughput.sh (sourced, not run): throwaway "nodes"
# (network namespaces), each with a client pod and a backend pod, whose services go through
# one mechanism:
#
#   plain     ptp pods, no service rules at all: the floor (straight to the backend's IP)
#   junction  junction-agent for this node + pods made by the junction CNI plugin (native
#             mode), services applied through the agent's API
#   iptables  ptp pods, the services written as kube-proxy's iptables mode writes them
#             (bench/lbprog.py gen), loaded with iptables-legacy-restore in the node netns
#   nft       ptp pods, the services as kube-proxy's nftables mode writes them, nft -f
#
# lbnet_families (default "ipv4"): the families every node's services are written in. With
# "ipv4 ipv6" (bench/ipv6.sh) each node is also given IPv6: every pod an address (client
# fd00:64::c, backend fd00:64::b, the same in every node, each node being its own netns) with
# the node's fe80::1 as gateway, the backend conncost IPv6 listeners too, and the services
# written a second time as IPv6 Services (lbprog.py gen --family ipv6: the agent's API,
# ip6tables-legacy-restore, nft's ip6 table).
#
# lbnet_socket_lb (default false): with true (connection-cost.sh and throughput.sh
# --socket-lb), every junction node's agent also runs with `--socket-lb --cgroup-root
# CG/NAME`, CG a cgroup2 mounted at $tmp/cgroup (one hierarchy per machine, so NAME is a
# child cgroup of it: the socket programs see only processes under it, not the other
# nodes' or the machine's), and the node gets a second client pod, "$node-o", added with
# CNI_ARGS JUNCTION_SOCKET_LB=false (opted out: translated per packet). Each client pod has
# its cgroup, CG/NAME/pod-c and CG/NAME/pod-o, as kubelet makes one per pod below the
# hierarchy the agent attaches to; the measuring process moves into it before it enters the
# pod's netns (lbnet_cgroup_pod, lbnet_cgroup_pp), and into CG/home (no programs) for every
# other target.
#
# The caller sets repo and bench and calls lbnet_setup (which sets tmp, prefix, the traps,
# the binaries and conncost). Everything this file makes lives under $tmp or in a netns
# named "$prefix-..."; processes are stopped by the PIDs recorded here.

lbnet_pids=()   # agents and servers, stopped by PID
lbnet_fg=""     # the measurement running now (lbnet_run), stopped by PID
lbnet_mounts=() # bpffs mounts, unmounted before $tmp is removed
declare -A lbnet_client_pp lbnet_cgroup_pod lbnet_cgroup_pp
lbnet_socket_lb="${lbnet_socket_lb:-false}"
# lbnet_pin: a command prefix for the measuring client and every backend server, (taskset -c N)
# from connection-cost.sh --cpu N, or empty. On 2 busy vCPUs a server that the scheduler
# keeps on the client's CPU answers ~20-30 µs faster than one on the other CPU; which
# server lands where is chance and sticks for the run, so nodes differed by that much.
lbnet_pin=()
lbnet_cgroup="" # the cgroup2 mount (socket LB runs only), unmounted by lbnet_cleanup
declare -A lbnet_client lbnet_backend lbnet_vip lbnet_load lbnet_socket lbnet_vip6 lbnet_load6
lbnet_families="${lbnet_families:-ipv4}"
# The agents' --tc-hook (clsact or tcx), read by lbnet_node when it starts one.
lbnet_tc_hook="${lbnet_tc_hook:-clsact}"
lbnet_client6=fd00:64::c
lbnet_backend6=fd00:64::b

lbnet_alive() { kill -0 "$1" 2>/dev/null; }

# Runs a measurement in the background and waits for it: a SIGINT/SIGTERM to the script
# then interrupts the wait (a foreground child would delay the trap until it finished), and
# the clean-up stops the measurement by its PID. Returns its exit status.
lbnet_run() {
  "$@" &
  lbnet_fg=$!
  local status=0
  wait "$lbnet_fg" || status=$?
  lbnet_fg=""
  return "$status"
}

lbnet_cleanup() {
  local pid ns m busy=false
  if [[ -n "$lbnet_fg" ]] && lbnet_alive "$lbnet_fg"; then
    kill -TERM "$lbnet_fg" 2>/dev/null
    wait "$lbnet_fg" 2>/dev/null || true
  fi
  for pid in "${lbnet_pids[@]}"; do
    lbnet_alive "$pid" && kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${lbnet_pids[@]}"; do
    for _ in $(seq 100); do lbnet_alive "$pid" || break; sleep 0.1; done
    lbnet_alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
  done
  # Pods first, then nodes (a node takes its host veths, routes and rules with it).
  for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix-.*-[cbo]\$" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
  for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix-" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
  for m in "${lbnet_mounts[@]}"; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    mountpoint -q "$m" 2>/dev/null && busy=true
  done
  # The cgroups last: the pinned socket-program links (in the bpffs above) are gone by now,
  # and every process moved into one (conncost, iperf3 clients) has exited.
  if [[ -n "$lbnet_cgroup" ]]; then
    find "$lbnet_cgroup/$prefix" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [[ -d "$lbnet_cgroup/$prefix" ]] && { echo "lbnet: cgroup $prefix is still there (busy?)" >&2; busy=true; }
    umount "$lbnet_cgroup" 2>/dev/null || umount -l "$lbnet_cgroup" 2>/dev/null || true
    mountpoint -q "$lbnet_cgroup" 2>/dev/null && busy=true
  fi
  if $busy; then
    echo "lbnet: a bpffs under $tmp is still mounted; leaving $tmp" >&2
  else
    rm -rf "$tmp"
  fi
}

# Before anything else: root and the tools checked, tmp (mktemp -d $2) and prefix ($3)
# set, lbnet_cleanup on EXIT, the Junction binaries (lbnet_binaries), conncost built into
# $tmp. $1: the script's name for messages.
lbnet_setup() {
  local script="$1" tool
  [[ $EUID -eq 0 ]] || { echo "$script: needs root" >&2; exit 1; }
  for tool in ip gcc python3 iperf3 iptables-legacy-restore ip6tables-legacy-restore nft mount umount mountpoint /usr/lib/cni/ptp /usr/lib/cni/host-local; do
    command -v "$tool" >/dev/null || {
      echo "$script: $tool is missing (apt-get install gcc iperf3 iptables nftables containernetworking-plugins)" >&2
      exit 1
    }
  done

  tmp="$(mktemp -d "$2")"
  prefix="$3"
  trap lbnet_cleanup EXIT
  trap 'exit 130' INT TERM

  if $lbnet_socket_lb; then
    # Mounted before any `ip netns exec` copies our mounts, like the bpffs.
    lbnet_cgroup="$tmp/cgroup"
    mkdir -p "$lbnet_cgroup"
    mount -t cgroup2 cgroup2 "$lbnet_cgroup"
    mkdir -p "$lbnet_cgroup/$prefix/home"
  fi
  lbnet_binaries
  conncost="$tmp/conncost"
  gcc -O2 -Wall -o "$conncost" "$bench/conncost.c"
}

# The Junction binaries: $JUNCTION_PREFIX (an install/install.sh --prefix tree), else a
# release build installed into $tmp/prefix. Sets junction_bin, agent_bin, bpf_objects.
lbnet_binaries() {
  local p="${JUNCTION_PREFIX:-}"
  if [[ -z "$p" ]]; then
    p="$tmp/prefix"
    echo "lbnet: JUNCTION_PREFIX not set; install/install.sh --prefix $p --skip-deps (release build)" >&2
    bash "$repo/install/install.sh" --prefix "$p" --skip-deps >&2
  fi
  junction_bin="$(realpath "$p/opt/cni/bin/junction")"
  agent_bin="$(realpath "$p/usr/local/bin/junction-agent")"
  bpf_objects="$(realpath "$p/usr/local/lib/junction/bpf")"
  [[ -x "$junction_bin" && -x "$agent_bin" && -f "$bpf_objects/endpoint.o" ]] ||
    { echo "lbnet: no complete install under $p" >&2; return 1; }
}

# The nodes of connection-cost.sh and ipv6.sh, all alive at once: "plain" (the floor), then
# per size in $2 (comma-separated) one per mechanism, $3 backends per Service. Fills
# lbnet_targets (LABEL=NETNS=IP:PORT) and lbnet_loads (NAME=MS). IPv4 alone: labels floor,
# MECH/SIZE/vip|direct, loads NAME=MS; with IPv6 too, per family floor4 and floor6,
# MECH4/SIZE/... and MECH6/SIZE/..., loads NAME/4=MS and NAME/6=MS. $1: the script's name.
lbnet_nodes() {
  local script="$1" sizes="$2" backends="$3" size mech name f4="" dual=false
  local -a size_list
  if [[ " $lbnet_families " == *" ipv6 "* ]]; then dual=true f4=4; fi
  echo "$script: node plain" >&2
  lbnet_node plain plain
  # In socket LB runs every target names its cgroup (CG/home when not a socket-LB pod), so
  # conncost never stays in a pod's cgroup for the next target.
  local home="" sock pp
  $lbnet_socket_lb && home="=$lbnet_cgroup/$prefix/home"
  lbnet_targets=("floor$f4=${lbnet_client[plain]}=${lbnet_backend[plain]}:8081$home")
  if $dual; then lbnet_targets+=("floor6=${lbnet_client[plain]}=$lbnet_backend6:8081"); fi
  lbnet_loads=()
  IFS=, read -r -a size_list <<<"$sizes"
  for size in "${size_list[@]}"; do
    for mech in junction iptables nft; do
      name="$mech-$size"
      echo "$script: node $name ($size services x $backends backends$($dual && echo ', each family'))" >&2
      lbnet_node "$mech" "$name" "$size" "$backends"
      lbnet_loads+=("$name${f4:+/4}=${lbnet_load[$name]}")
      if [[ $mech == junction ]] && $lbnet_socket_lb; then
        # junction-sock: the pod in the socket path; junction: the opted-out pod (per packet).
        sock="=${lbnet_cgroup_pod[$name]}" pp="=${lbnet_cgroup_pp[$name]}"
        lbnet_targets+=("junction-sock$f4/$size/vip=${lbnet_client[$name]}=${lbnet_vip[$name]}:80$sock")
        lbnet_targets+=("junction-sock$f4/$size/direct=${lbnet_client[$name]}=${lbnet_backend[$name]}:8081$sock")
        lbnet_targets+=("$mech$f4/$size/vip=${lbnet_client_pp[$name]}=${lbnet_vip[$name]}:80$pp")
        lbnet_targets+=("$mech$f4/$size/direct=${lbnet_client_pp[$name]}=${lbnet_backend[$name]}:8081$pp")
        continue
      fi
      lbnet_targets+=("$mech$f4/$size/vip=${lbnet_client[$name]}=${lbnet_vip[$name]}:80$home")
      lbnet_targets+=("$mech$f4/$size/direct=${lbnet_client[$name]}=${lbnet_backend[$name]}:8081$home")
      if $dual; then
        lbnet_loads+=("$name/6=${lbnet_load6[$name]}")
        lbnet_targets+=("${mech}6/$size/vip=${lbnet_client[$name]}=${lbnet_vip6[$name]}:80")
        lbnet_targets+=("${mech}6/$size/direct=${lbnet_client[$name]}=$lbnet_backend6:8081")
      fi
    done
  done
}

# The connection measurement of connection-cost.sh and ipv6.sh: one untimed connection to
# every target (each must answer), then `conncost measure` into $2 ($3 rounds of $4 timed
# connections, $5 warm-up) over the rest of the arguments (LABEL=NETNS=IP:PORT), then every
# agent and server must still be alive. $1: the script's name for messages.
lbnet_measure() {
  local script="$1" out="$2" rounds="$3" count="$4" warmup="$5" pid
  shift 5
  "$conncost" measure "$tmp/check.txt" 1 1 0 "$@" 2>"$tmp/check.err" ||
    { cat "$tmp/check.err" >&2; echo "$script: a target does not answer" >&2; return 1; }
  if $lbnet_socket_lb; then lbnet_check_socket_lb "$script" 80 8080 || return 1; fi
  echo "$script: measuring $# targets, $rounds rounds x $count connections (+$warmup warm-up each)" >&2
  lbnet_run "${lbnet_pin[@]}" "$conncost" measure "$out" "$rounds" "$count" "$warmup" "$@"
  for pid in "${lbnet_pids[@]}"; do
    lbnet_alive "$pid" || { echo "$script: pid $pid (agent or server) died during the run" >&2; return 1; }
  done
}

# In socket LB runs: from each junction node's two client pods (each in its cgroup), one
# connection to the node's ClusterIP port $2, read back from the kernel's socket table
# (/proc/net/tcp, which shows the socket's real destination: socket LB rewrites it at
# connect() and only getpeername() reports the ClusterIP). The socket-path pod's socket must
# point at the backend (port $3), the opted-out pod's at the ClusterIP (its packets are
# rewritten on the way). Otherwise the socket path did not run and the numbers would be the
# per-packet path's.
lbnet_peer_script='
import socket, struct, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
port = s.getsockname()[1]
for line in open("/proc/net/tcp").readlines()[1:]:
    local, remote = line.split()[1:3]
    if int(local.split(":")[1], 16) == port:
        ip, rport = remote.split(":")
        print("%s:%d" % (socket.inet_ntoa(struct.pack("<I", int(ip, 16))), int(rport, 16)))
'
lbnet_check_socket_lb() {
  local script="$1" vport="$2" bport="$3" name vip backend sock pp
  for name in "${!lbnet_client_pp[@]}"; do
    [[ -n "${lbnet_client_pp[$name]}" ]] || continue
    vip="${lbnet_vip[$name]}:$vport" backend="${lbnet_backend[$name]}:$bport"
    sock="$(lbnet_in_cgroup "${lbnet_cgroup_pod[$name]}" ip netns exec "${lbnet_client[$name]}" \
      python3 -c "$lbnet_peer_script" "${lbnet_vip[$name]}" "$vport")"
    pp="$(lbnet_in_cgroup "${lbnet_cgroup_pp[$name]}" ip netns exec "${lbnet_client_pp[$name]}" \
      python3 -c "$lbnet_peer_script" "${lbnet_vip[$name]}" "$vport")"
    if [[ "$sock" != "$backend" ]]; then
      echo "$script: $name: the socket-path pod's socket to $vip points at '$sock', not the backend $backend: no socket LB" >&2
      return 1
    fi
    if [[ "$pp" != "$vip" ]]; then
      echo "$script: $name: the opted-out pod's socket to $vip points at '$pp': not the per-packet path" >&2
      return 1
    fi
    echo "$script: $name: socket-path pod's socket points at $backend, opted-out pod's at $vip (/proc/net/tcp)" >&2
  done
}

# One CNI ADD of pod netns $2 (created here) through plugin config $3, run in node $1,
# with CNI_ARGS $4 if given; prints the pod's IPv4 address.
lbnet_pod() {
  local node="$1" pod="$2" conf="$3" cni_args="${4:-}" plugin out
  plugin="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["type"])' "$conf")"
  ip netns add "$pod"
  if ! out="$(ip netns exec "$node" env -i CNI_COMMAND=ADD CNI_CONTAINERID="$pod" \
    CNI_NETNS="/var/run/netns/$pod" CNI_IFNAME=eth0 ${cni_args:+CNI_ARGS="$cni_args"} CNI_PATH="$(dirname "$junction_bin"):/usr/lib/cni" \
    "$( [[ $plugin == junction ]] && echo "$junction_bin" || echo /usr/lib/cni/$plugin )" <"$conf")"; then
    echo "lbnet: CNI ADD of $pod failed: $out" >&2
    return 1
  fi
  python3 -c 'import json, sys; print(json.loads(sys.argv[1])["ips"][0]["address"].split("/")[0])' "$out"
}

# IPv6 for pod $2 of node $1: address $3/128 without duplicate address detection (nothing
# else holds it, and DAD would leave it tentative for a second), the node's fe80::1 on the
# pod's host veth as its gateway, a host route back. The recipe of IPv6ServiceTests, which
# works the same under the junction plugin and ptp.
lbnet_ipv6_pod() {
  local node="$1" pod="$2" address="$3" index veth setting
  for setting in all.disable_ipv6=0 default.disable_ipv6=0 eth0.disable_ipv6=0 eth0.accept_dad=0 eth0.accept_ra=0; do
    ip netns exec "$pod" sysctl -qw "net.ipv6.conf.$setting"
  done
  ip -n "$pod" -6 addr add "$address/128" dev eth0 nodad
  index="$(ip -n "$pod" -o link show eth0 | sed -n 's/.*@if\([0-9]*\).*/\1/p')"
  veth="$(ip -n "$node" -o link show | awk -F': ' -v i="$index" '$1 == i {split($2, a, "@"); print a[1]}')"
  [[ -n "$veth" ]] || { echo "lbnet: no host veth for $pod" >&2; return 1; }
  ip netns exec "$node" sysctl -qw "net.ipv6.conf.$veth.disable_ipv6=0"
  ip -n "$node" -6 addr add fe80::1/64 dev "$veth" nodad
  ip -n "$node" -6 route add "$address/128" dev "$veth"
  ip -n "$pod" -6 route add default via fe80::1 dev eth0
}

# A node: netns "$prefix-$name", a client pod and a backend pod, the backend serving
# conncost on 8080 and 8081 and iperf3 on 5201; then $size services of $backends backends each (the
# measured one, in the middle, pointing at the backend pod; plus svc-iperf) through $mech.
# Fills lbnet_client[name] (the client pod's netns), lbnet_backend[name] (the backend's IP),
# lbnet_vip[name] (the measured service's ClusterIP), lbnet_load[name] (programming time).
lbnet_node() {
  local mech="$1" name="$2" size="${3:-0}" backends="${4:-10}"
  local node="$prefix-$name" dir="$tmp/$name" conf plugin=ptp client backend_ip started
  local -a socket_args=()
  mkdir -p "$dir/ipam"
  ip netns add "$node"
  ip -n "$node" link set lo up
  if [[ $mech == junction ]]; then
    plugin=junction
    mkdir -p "$dir/bpf" "$dir/run" "$dir/state"
    # Mounted here, before `ip netns exec` copies our mounts, so agent and plugin share it.
    mount -t bpf bpf "$dir/bpf"
    lbnet_mounts+=("$dir/bpf")
    if $lbnet_socket_lb; then
      mkdir -p "$lbnet_cgroup/$prefix/$name/pod-c" "$lbnet_cgroup/$prefix/$name/pod-o"
      socket_args=(--socket-lb --cgroup-root "$lbnet_cgroup/$prefix/$name")
      lbnet_cgroup_pod[$name]="$lbnet_cgroup/$prefix/$name/pod-c"
      lbnet_cgroup_pp[$name]="$lbnet_cgroup/$prefix/$name/pod-o"
    fi
    ip netns exec "$node" "$agent_bin" --node-name "$name" --socket "$dir/run/junction.sock" "${socket_args[@]}" \
      --tc-hook "$lbnet_tc_hook" \
      --state-dir "$dir/state" --bpf-fs "$dir/bpf" --bpf-objects "$bpf_objects" \
      --lb-services-max $((size * (1 + backends) + 1024)) --lb-backends-max $((size * backends + 1024)) \
      >"$dir/agent.log" 2>&1 &
    lbnet_pids+=($!)
    python3 "$bench/timer.py" agent-wait --socket "$dir/run/junction.sock" --pid "$!" --timeout 60 >/dev/null ||
      { echo "lbnet: junction-agent for $name did not come up:" >&2; cat "$dir/agent.log" >&2; return 1; }
    [[ "$(readlink "/proc/$!/exe")" == "$agent_bin" ]] || { echo "lbnet: pid $! is not the agent" >&2; return 1; }
    lbnet_socket[$name]="$dir/run/junction.sock"
  fi
  conf="$dir/cni.json"
  cat >"$conf" <<EOF
{
  "cniVersion": "1.0.0", "name": "benchnet", "type": "$plugin", "mtu": 1500,
  $( [[ $plugin == junction ]] && echo "\"mode\": \"native\", \"agentSocket\": \"$dir/run/junction.sock\"," || echo '"ipMasq": false,' )
  "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]], "dataDir": "$dir/ipam"$( [[ $plugin == ptp ]] && echo ', "routes": [{"dst": "0.0.0.0/0"}]' )}
}
EOF
  client="$node-c"
  lbnet_pod "$node" "$client" "$conf" >/dev/null
  backend_ip="$(lbnet_pod "$node" "$node-b" "$conf")"
  # The client makes tens of thousands of connections per destination: every port, and
  # TIME_WAIT ports reused (safe with timestamps), so it never runs out.
  # (Both are net.ipv4 sysctls that IPv6 TCP obeys too.)
  ip netns exec "$client" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
  lbnet_client_pp[$name]=""
  if [[ $mech == junction ]] && $lbnet_socket_lb; then
    lbnet_pod "$node" "$node-o" "$conf" "IgnoreUnknown=1;K8S_POD_NAME=client-opted-out;JUNCTION_SOCKET_LB=false" >/dev/null
    ip netns exec "$node-o" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
    lbnet_client_pp[$name]="$node-o"
  fi
  if [[ " $lbnet_families " == *" ipv6 "* ]]; then
    ip netns exec "$node" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.all.forwarding=1
    lbnet_ipv6_pod "$node" "$client" "$lbnet_client6"
    lbnet_ipv6_pod "$node" "$node-b" "$lbnet_backend6"
    "${lbnet_pin[@]}" ip netns exec "$node-b" "$conncost" serve 8080 6 &
    lbnet_pids+=($!)
    "${lbnet_pin[@]}" ip netns exec "$node-b" "$conncost" serve 8081 6 &
    lbnet_pids+=($!)
  fi
  # 8080 behind the ClusterIP, 8081 straight: the two never share a 4-tuple on the wire
  # (a client port reused for a straight connection while a translated one to the same
  # backend port sits in TIME_WAIT would look, on the wire, like the old connection).
  "${lbnet_pin[@]}" ip netns exec "$node-b" "$conncost" serve 8080 &
  lbnet_pids+=($!)
  "${lbnet_pin[@]}" ip netns exec "$node-b" "$conncost" serve 8081 &
  lbnet_pids+=($!)
  ip netns exec "$node-b" iperf3 --server --port 5201 >/dev/null 2>&1 &
  lbnet_pids+=($!)
  lbnet_client[$name]="$client"
  lbnet_backend[$name]="$backend_ip"
  lbnet_vip[$name]=""
  lbnet_load[$name]=""
  lbnet_vip6[$name]=""
  lbnet_load6[$name]=""
  [[ $mech == plain ]] && return 0

  if [[ " $lbnet_families " == *" ipv4 "* ]]; then
    lbnet_vip[$name]="$(python3 "$bench/lbprog.py" gen --dir "$dir/rules" --services "$size" \
      --backends "$backends" --measured "$backend_ip" --iperf "$backend_ip")"
    lbnet_load[$name]="$(lbnet_program "$mech" "$node" "$dir" iptables-legacy-restore)"
  fi
  if [[ " $lbnet_families " == *" ipv6 "* ]]; then
    lbnet_vip6[$name]="$(python3 "$bench/lbprog.py" gen --dir "$dir/rules" --services "$size" \
      --backends "$backends" --measured "$lbnet_backend6" --family ipv6)"
    lbnet_load6[$name]="$(lbnet_program "$mech" "$node" "$dir" ip6tables-legacy-restore)"
  fi
}

# Loads the rules lbprog.py gen wrote into $3/rules through mechanism $1 in node $2 (iptables
# with $4), removes them, and prints the milliseconds it took.
lbnet_program() {
  local mech="$1" node="$2" dir="$3" restore="$4" started f
  started=$(date +%s%N)
  case "$mech" in
    junction)
      python3 "$bench/lbprog.py" apply --socket "$dir/run/junction.sock" --file "$dir/rules/objects.yaml" >/dev/null
      ;;
    iptables)
      ip netns exec "$node" "$restore" <"$dir/rules/iptables.rules"
      ;;
    nft)
      for f in "$dir"/rules/nft-*.nft; do ip netns exec "$node" nft -f "$f"; done
      ;;
  esac
  echo $((($(date +%s%N) - started) / 1000000))
  rm -rf "$dir/rules"
}

# Runs the rest of the arguments in cgroup v2 directory $1 (its pid into cgroup.procs, then
# exec): throughput.sh's iperf3 client in a socket-LB pod's cgroup.
lbnet_in_cgroup() {
  sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' lbnet-in-cgroup "$@"
}
