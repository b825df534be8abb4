#!/usr/bin/env bash
# A private containerd for tests and demos: Debian's containerd + runc, started with its
# own root, state, socket and config under DIR, and `ctr run --cni` against CNI config
# and plugins of DIR, never the machine's. A system containerd, /etc/cni/net.d,
# /opt/cni/bin, /var/lib/cni and /run/containerd are left alone.
#
#   harness.sh up DIR                      start containerd (pid in DIR/containerd.pid)
#   harness.sh image DIR NAME              build a busybox image (busybox-static) and import it
#   harness.sh start DIR NETNS NAME IMAGE CMD...
#                                          `ctr run --cni` in the background; returns once
#                                          the task runs (CNI ADD done)
#   harness.sh run DIR NETNS NAME IMAGE CMD...
#                                          `ctr run --cni --rm` in the foreground: ADD, run,
#                                          DEL, remove; prints what the command printed
#   harness.sh address DIR NAME            the task's eth0 IPv4 address
#   harness.sh stop DIR NAME               `ctr task kill -s SIGKILL`, wait for `ctr run` to
#                                          run DEL, then `ctr container rm`
#   harness.sh down DIR                    stop every container and containerd, remove DIR
#
# Before `start`/`run`, DIR/cni/net.d holds the conflist and DIR/cni/bin the plugins.
# NETNS is the network namespace `ctr run` (and so every CNI plugin) runs in: the "host"
# side, where the bridge and the host veths live ("-" for the caller's own).
#
# Where CNI runs, in containerd 1.6's ctr: the `ctr run` client itself calls go-cni, with
# its defaults (config /etc/cni/net.d, plugins /opt/cni/bin, libcni cache /var/lib/cni)
# and no flag to change them. ADD runs before the task starts; DEL runs only in a
# foreground `ctr run`, after its task exits (`ctr task kill` makes it exit). `ctr run -d`
# never runs DEL, and neither `ctr task kill/delete` nor `ctr container rm` do. So every
# `ctr run` here gets a private mount namespace in which DIR's directories are mounted
# over those three paths, and `start` keeps a foreground `ctr run` in the background.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="$here/$(basename "${BASH_SOURCE[0]}")"

die() {
  echo "containerd-harness: $*" >&2
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

# Makes SOURCE appear at TARGET in the current mount namespace, which must be private
# (mounts here must not reach the machine). A missing TARGET is not created on the real
# filesystem: its deepest existing ancestor gets a read-only overlay of itself plus a
# skeleton holding the missing directories, which then serve as the mount point.
private_mount() {
  local dir=$1 target=$2 source=$3
  if [[ ! -d "$target" ]]; then
    local ancestor="$target"
    while [[ ! -d "$ancestor" ]]; do ancestor="$(dirname "$ancestor")"; done
    local skeleton
    skeleton="$(mktemp -d "$dir/skeleton.XXXXXX")"
    mkdir -p "$skeleton/${target#"$ancestor"/}"
    mount -t overlay overlay -o "lowerdir=$skeleton:$ancestor" "$ancestor"
  fi
  mount --bind "$source" "$target"
}

# Starts a long-lived command in the background, in a session of its own, with stdin from
# /dev/null, stdout and stderr into LOG and no other descriptor of ours: a caller that
# waits for this script to end must not wait for the daemon too (Foundation's Process
# hands its child a socket without close-on-exec and waits until every holder closes it).
# The command keeps the pid $! (setsid does not fork outside a process-group leader).
spawn() {
  local log=$1
  shift
  (
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null
    done
    exec setsid "$@" </dev/null >"$log" 2>&1
  ) &
}

ctr_in() {
  local dir=$1
  shift
  ctr --address "$dir/containerd.sock" "$@"
}

write_config() {
  local dir=$1
  cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
# Kubernetes' CRI plugin is not needed for ctr and slows the start down.
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$dir/containerd.sock"

[ttrpc]
  address = "$dir/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
EOF
}

# Runs inside containerd's private mount namespace: runc's state and the shims' sockets
# live under /run/containerd, a path containerd 1.6 fixes; here it is DIR/run.
containerd_in_private_namespace() {
  local dir=$1
  mkdir -p "$dir/run"
  private_mount "$dir" /run/containerd "$dir/run"
  exec containerd --config "$dir/config.toml"
}

up() {
  local dir=$1
  [[ -e "$dir/containerd.pid" ]] && die "$dir already has a containerd"
  command -v containerd >/dev/null || die "containerd is missing: apt-get install containerd runc"
  command -v runc >/dev/null || die "runc is missing: apt-get install runc"
  mkdir -p "$dir"/{root,state,opt,fifo,ctr,cni/net.d,cni/bin,cni/cache}
  write_config "$dir"
  spawn "$dir/containerd.log" unshare --mount --propagation private "$self" _containerd "$dir"
  echo $! >"$dir/containerd.pid"
  for _ in $(seq 1 200); do
    if ctr_in "$dir" version >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$(cat "$dir/containerd.pid")" 2>/dev/null || {
      cat "$dir/containerd.log" >&2
      die "containerd exited while starting"
    }
    sleep 0.1
  done
  cat "$dir/containerd.log" >&2
  die "containerd did not answer on $dir/containerd.sock within 20 s"
}

image() {
  local dir=$1 name=$2
  python3 "$here/busybox-image.py" "$dir/busybox-oci.tar" "$name"
  ctr_in "$dir" images import "$dir/busybox-oci.tar" >/dev/null
  rm -f "$dir/busybox-oci.tar"
}

# Runs inside a fresh private mount namespace (in NETNS): DIR's CNI directories over the
# paths go-cni and libcni fix, then `ctr run --cni`.
ctr_run_in_private_namespace() {
  local dir=$1
  shift
  private_mount "$dir" /etc/cni/net.d "$dir/cni/net.d"
  private_mount "$dir" /opt/cni/bin "$dir/cni/bin"
  private_mount "$dir" /var/lib/cni "$dir/cni/cache"
  exec ctr --address "$dir/containerd.sock" run --cni --fifo-dir "$dir/fifo" "$@"
}

# The command that enters NETNS with a private mount namespace. `ip netns exec` makes one
# itself (mounts in it do not propagate back); "-" keeps the caller's network namespace.
enter() {
  local netns=$1
  if [[ "$netns" == "-" ]]; then
    echo unshare --mount --propagation slave
  else
    echo ip netns exec "$netns"
  fi
}

start() {
  local dir=$1 netns=$2 name=$3
  shift 3
  local pidfile="$dir/ctr/$name.pid" log="$dir/ctr/$name.log"
  [[ -e "$pidfile" ]] && die "container $name was already started"
  # shellcheck disable=SC2046 # enter prints a command line
  spawn "$log" $(enter "$netns") "$self" _ctr-run "$dir" --null-io "$@" "$name"
  local pid=$!
  echo "$pid" >"$pidfile"
  for _ in $(seq 1 300); do
    # The task is started only after CNI ADD returned, so RUNNING means networked.
    if ctr_in "$dir" tasks ls 2>/dev/null | awk -v n="$name" '$1 == n && $3 == "RUNNING" {f=1} END {exit !f}'; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$log" >&2
      die "ctr run $name exited before its task ran"
    fi
    sleep 0.1
  done
  cat "$log" >&2
  die "container $name did not run within 30 s"
}

run() {
  local dir=$1 netns=$2 name=$3
  shift 3
  # shellcheck disable=SC2046
  $(enter "$netns") "$self" _ctr-run "$dir" --rm "$@" "$name"
}

# ctr wants IMAGE before the container id; start/run take NAME first, so _ctr-run puts the
# id back after the image.
ctr_run_arguments() {
  local dir=$1
  shift
  local flags=()
  while [[ "$1" == --* ]]; do
    flags+=("$1")
    shift
  done
  local image=$1 name=${*: -1}
  local command=("${@:2:$#-2}")
  # ctr's default cgroup, /default/NAME, would leave /default behind in every hierarchy;
  # a relative path nests the container under the shim's own cgroup, and runc removes
  # that one leaf when the task is deleted.
  ctr_run_in_private_namespace "$dir" "${flags[@]}" --cgroup "${dir##*/}-$name" \
    "$image" "$name" "${command[@]}"
}

task_pid() {
  local dir=$1 name=$2
  ctr_in "$dir" tasks ls | awk -v n="$name" '$1 == n {print $2}'
}

address() {
  local dir=$1 name=$2 pid
  pid="$(task_pid "$dir" "$name")"
  [[ -n "$pid" ]] || die "no task $name"
  nsenter --net="/proc/$pid/ns/net" ip -4 -o addr show dev eth0 |
    awk '{split($4, a, "/"); print a[1]; exit}'
}

# Waits (bounded) for a pid to go; false if it is still there.
wait_gone() {
  local pid=$1 tenths=$2
  for _ in $(seq 1 "$tenths"); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  ! kill -0 "$pid" 2>/dev/null
}

stop() {
  local dir=$1 name=$2
  local pidfile="$dir/ctr/$name.pid"
  [[ -e "$pidfile" ]] || die "container $name was not started here"
  local pid
  pid="$(cat "$pidfile")"
  # PID 1 of the container ignores SIGTERM unless it handles it; SIGKILL always ends it.
  ctr_in "$dir" tasks kill --signal SIGKILL "$name" 2>/dev/null || true
  if ! wait_gone "$pid" 300; then
    kill -KILL "$pid" 2>/dev/null || true
    cat "$dir/ctr/$name.log" >&2
    die "ctr run $name did not end within 30 s of its task's SIGKILL"
  fi
  rm -f "$pidfile"
  ctr_in "$dir" containers rm "$name" >/dev/null
  if grep -q "level=error" "$dir/ctr/$name.log"; then
    cat "$dir/ctr/$name.log" >&2
    die "ctr run $name logged an error (CNI DEL failed?)"
  fi
}

# Stops all that `up` and `start` began, also after a failure; leaves no process, mount
# or file of DIR behind.
down() {
  local dir=$1
  [[ -d "$dir" ]] || return 0
  local pidfile
  if [[ -S "$dir/containerd.sock" ]]; then
    for pidfile in "$dir"/ctr/*.pid; do
      [[ -e "$pidfile" ]] || continue
      (stop "$dir" "$(basename "$pidfile" .pid)") || true  # stop exits on failure
    done
    local name
    for name in $(ctr_in "$dir" tasks ls -q 2>/dev/null); do
      ctr_in "$dir" tasks kill --signal SIGKILL "$name" 2>/dev/null || true
      ctr_in "$dir" tasks delete --force "$name" >/dev/null 2>&1 || true
    done
    for name in $(ctr_in "$dir" containers ls -q 2>/dev/null); do
      ctr_in "$dir" containers rm "$name" >/dev/null 2>&1 || true
    done
  fi
  for pidfile in "$dir"/ctr/*.pid; do
    [[ -e "$pidfile" ]] || continue
    kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
  done
  if [[ -e "$dir/containerd.pid" ]]; then
    local pid
    pid="$(cat "$dir/containerd.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 100 || kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 50 || true
  fi
  # A shim outlives containerd while its task lives; each wrote its pid into its bundle.
  local shim
  for shim in "$dir"/state/io.containerd.runtime.v2.task/*/*/shim.pid; do
    [[ -e "$shim" ]] || continue
    kill -KILL "$(cat "$shim")" 2>/dev/null || true
  done
  rm -rf "$dir"
}

[[ $# -ge 2 ]] || usage
command=$1
dir=$2
[[ "$dir" == /* ]] || dir="$PWD/$dir"
shift 2
case "$command" in
  up) up "$dir" ;;
  image) image "$dir" "$@" ;;
  start) start "$dir" "$@" ;;
  run) run "$dir" "$@" ;;
  address) address "$dir" "$@" ;;
  stop) stop "$dir" "$@" ;;
  down) down "$dir" ;;
  _containerd) containerd_in_private_namespace "$dir" ;;
  _ctr-run) ctr_run_arguments "$dir" "$@" ;;
  *) usage ;;
esac
