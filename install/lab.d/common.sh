# Shared by install/lab's parts: where a lab keeps its state, and small helpers.
# A lab's state lives in $LAB_ROOT/LAB/ (default /run/junction-lab/LAB):
#   lab.env                 mode, IP family, node count, binaries (sourced by every command)
#   apiserver/              the stand-in API server's CA, token, kubeconfig and url;
#                           apiserver.pid, apiserver.log beside it
#   nodes/nodeN/            ip, cidr (and ip6, cidr6 with IPv6), zone, agent.pid, agent.log, run/agent.sock, state/,
#                           bpf/ (a bpffs mount), conf/ (conflist), ipam/, cache/, bin/
#   pods/NAME/              node, namespace, state (ready, not-ready or terminating), ip
#                           (the first address), ips (every address, IPv4 first),
#                           labels (k=v lines), ports (name=number lines),
#                           pids (processes started with `exec --detach`)
# Everything is recorded before it is created, so `down` can undo a half-finished `up`.

LAB_ROOT="${LAB_ROOT:-/run/junction-lab}"
UNDERLAY_PREFIX=172.30.0
CLIENT_IP="$UNDERLAY_PREFIX.100"
# The stand-in API server (tools/standin-apiserver), on the underlay bridge of LAB-underlay:
# every node reaches it on its eth0.
API_IP="$UNDERLAY_PREFIX.1"
API_PORT=6443

die() {
  echo "lab: $*" >&2
  exit 1
}
note() { echo "lab: $*" >&2; }

lab_dir() { echo "$LAB_ROOT/$LAB"; }
node_dir() { echo "$(lab_dir)/nodes/$1"; }
pod_dir() { echo "$(lab_dir)/pods/$1"; }

# Namespace names: LAB-underlay, LAB-client, LAB-nodeN, LAB-pod-NAME.
node_ns() { echo "$LAB-$1"; }
pod_ns() { echo "$LAB-pod-$1"; }

node_ip() { echo "$UNDERLAY_PREFIX.$((10 + $1))"; }
node_cidr() { echo "10.240.$1.0/24"; }
# IPv6 (--ip-family ipv6 or dual): the underlay gets fd00:172:30::/64 beside 172.30.0.0/24
# (node N at ::(10+N), the client at ::100), and node N's pods fd00:10:240:N::/64.
UNDERLAY6_PREFIX=fd00:172:30:
CLIENT_IP6="$UNDERLAY6_PREFIX:100"
node_ip6() { echo "$UNDERLAY6_PREFIX:$((10 + $1))"; }
node_cidr6() { echo "fd00:10:240:$1::/64"; }
# The families pods get: IP_FAMILY (lab.env) is ipv4, ipv6 or dual.
has_ipv4() { [[ "${IP_FAMILY:-ipv4}" != ipv6 ]]; }
has_ipv6() { [[ "${IP_FAMILY:-ipv4}" != ipv4 ]]; }
node_zone() { if (($1 % 2)); then echo zone-a; else echo zone-b; fi; }

# Loads lab.env of an existing lab, or dies.
load_lab() {
  [[ -f "$(lab_dir)/lab.env" ]] || die "no lab '$LAB' (looked in $(lab_dir)); run: install/lab up --name $LAB"
  # shellcheck source=/dev/null
  source "$(lab_dir)/lab.env"
}

node_names() {
  local dir
  for dir in "$(lab_dir)"/nodes/node*; do [[ -d "$dir" ]] && basename "$dir"; done | sort -V
}
pod_names() {
  local dir
  for dir in "$(lab_dir)"/pods/*; do [[ -d "$dir" ]] && basename "$dir"; done | sort
}

ctl() {
  local node="$1"
  shift
  "$BIN/junctionctl" --socket "$(node_dir "$node")/run/agent.sock" "$@"
}

# install/lab.d/cluster.py COMMAND ARGS... (apply, delete, nodes, sync) against the lab's
# stand-in API server, from the underlay namespace where it listens; it waits until every
# agent has applied the result.
cluster() {
  BIN="$BIN" ip netns exec "$LAB-underlay" python3 "$LAB_LIB/cluster.py" "$(lab_dir)" "$LAB" "$@"
}

agent_running() {
  local pid
  pid="$(cat "$(node_dir "$1")/agent.pid" 2>/dev/null)" || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

# Starts "$@" in the background, detached: its own session (so Ctrl-C in the terminal does
# not reach it), standard streams from/to $1's log (or /dev/null), and no other inherited
# descriptor. A caller's descriptors must not live on in a long-lived process: Foundation's
# Process, for one, learns that its child exited when the last copy of a socket it gave the
# child closes, and would wait for the lab's agents to exit. Sets LAST_PID: bash forks a
# subshell, which closes its descriptors and execs setsid (not a process group leader here,
# so it does not fork), which execs the command: the pid is the command's own.
start_detached() {
  local log="$1"
  shift
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd="${fd##*/}"
      ((fd > 2)) && eval "exec $fd>&-"
    done
    exec setsid "$@"
  ) </dev/null >"$log" 2>&1 &
  LAST_PID=$!
}
