# Shared by cni-latency.sh and cni-chained-latency.sh (sourced, not run): their options,
# prerequisites, the Junction binaries (given or built), one node netns with junction-agent
# running in it (its bpffs mounted here first), the timer run in that netns, and the
# clean-up of all of it.
#
# The caller sets repo and bench, then calls, in this order:
#   cni_node_setup NAME TIMER PREFIX TEMPLATE PLUGIN... -- "$@"
#       NAME: the script's name in its messages (cni_name); TIMER: its timer, for the
#       version message (cni_timer); cni_node_options on the script's arguments,
#       cni_node_prerequisites PLUGIN..., cni_node_prepare PREFIX TEMPLATE (below)
#   (its own configs under $tmp)
#   cni_node_start NODE_IP AGENT_NAME  the node netns and its agent: agent_pid, agent_version
#   cni_node_measure COMMAND...        COMMAND in the node netns, stopped by the clean-up
#   cni_node_revision                  prints the repo's HEAD (and whether it is dirty)
#   cni_node_publish REPORT            the report to stdout and, with --write, to that file

cni_node_setup() {
  cni_name="$1"
  cni_timer="$2"
  local name_prefix="$3" template="$4" plugins=()
  shift 4
  while [[ "$1" != -- ]]; do
    plugins+=("$1")
    shift
  done
  shift
  cni_node_options "$@"
  cni_node_prerequisites "${plugins[@]}"
  cni_node_prepare "$name_prefix" "$template"
}

# The exact command line, for the report (the JUNCTION_* variables included when given),
# then --runs, --warmup, --write.
cni_node_options() {
  command_line="$(printf '%q ' bash "$0" "$@")"
  command_line="${command_line% }"
  local variable
  for variable in CNI_LATENCY_IP_FAMILY JUNCTION_TC_HOOK JUNCTION_BPF_OBJECTS JUNCTION_AGENT_BIN JUNCTION_BIN; do
    if [[ -n "${!variable:-}" ]]; then
      command_line="$variable=$(printf '%q' "${!variable}") $command_line"
    fi
  done

  runs=100
  warmup=5
  write=""
  while (($#)); do
    case "$1" in
      --runs) runs="${2:?--runs needs a number}"; shift 2 ;;
      --runs=*) runs="${1#--runs=}"; shift ;;
      --warmup) warmup="${2:?--warmup needs a number}"; shift 2 ;;
      --warmup=*) warmup="${1#--warmup=}"; shift ;;
      --write) write="${2:?--write needs a file}"; shift 2 ;;
      --write=*) write="${1#--write=}"; shift ;;
      -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
      *) echo "$cni_name: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
  done
  [[ "$runs" =~ ^[0-9]+$ ]] || { echo "$cni_name: --runs must be a number, got '$runs'" >&2; exit 2; }
  [[ "$warmup" =~ ^[0-9]+$ ]] || { echo "$cni_name: --warmup must be a number, got '$warmup'" >&2; exit 2; }
  ((runs >= 50)) || { echo "$cni_name: --runs must be at least 50 (p99 of fewer samples is the maximum)" >&2; exit 2; }
}

# Root, the tools, /usr/lib/cni/PLUGIN for each PLUGIN, python3 >= 3.11.
cni_node_prerequisites() {
  ((EUID == 0)) || { echo "$cni_name: must run as root (network namespaces, veths)" >&2; exit 1; }
  local tool plugin
  for tool in ip nsenter python3 mount umount mountpoint findmnt ps; do
    command -v "$tool" >/dev/null || { echo "$cni_name: $tool is not on PATH" >&2; exit 1; }
  done
  for plugin in "$@"; do
    [[ -x /usr/lib/cni/$plugin ]] ||
      { echo "$cni_name: /usr/lib/cni/$plugin missing (apt-get install containernetworking-plugins)" >&2; exit 1; }
  done
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    { echo "$cni_name: python3 >= 3.11 needed for $cni_timer" >&2; exit 1; }
}

# --- everything a run creates, and its removal ------------------------------------------
tmp=""
timer_pid=""
agent_pid=""
node_created=false
bpf_mounted=false

# True while PID is a process that has not exited (a zombie child counts as gone).
cni_node_alive() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z* ]]
}

cni_node_cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n "$timer_pid" ]] && kill -0 "$timer_pid" 2>/dev/null; then
    kill -TERM "$timer_pid" 2>/dev/null || true
    wait "$timer_pid" 2>/dev/null || true
  fi
  # The agent: this one PID (ip netns exec execs it in place), SIGTERM, then SIGKILL after 10 s.
  if [[ -n "$agent_pid" ]]; then
    if cni_node_alive "$agent_pid"; then
      kill -TERM "$agent_pid" 2>/dev/null || true
      local waited
      for ((waited = 0; waited < 100; waited++)); do
        cni_node_alive "$agent_pid" || break
        sleep 0.1
      done
      if cni_node_alive "$agent_pid"; then
        echo "$cni_name: the agent (pid $agent_pid) ignored SIGTERM for 10 s; SIGKILL" >&2
        kill -KILL "$agent_pid" 2>/dev/null || true
      fi
    fi
    wait "$agent_pid" 2>/dev/null || true
  fi
  # Pod namespaces (the timer deletes each one itself; these are leftovers of an abort).
  local path
  for path in /var/run/netns/"$prefix"-*; do
    [[ -e "$path" ]] || continue
    [[ "$(basename "$path")" == "$node" ]] && continue
    ip netns del "$(basename "$path")" 2>/dev/null || rm -f "$path"
  done
  if $node_created; then ip netns del "$node" 2>/dev/null || true; fi
  # The bpffs (its pins die with it), then the directory; never rm -rf into a live mount.
  if $bpf_mounted; then
    umount "$tmp/bpf" 2>/dev/null || umount -l "$tmp/bpf" 2>/dev/null ||
      echo "$cni_name: cannot unmount the bpffs at $tmp/bpf" >&2
  fi
  if [[ -n "$tmp" && -d "$tmp" ]]; then
    if mountpoint -q "$tmp/bpf" 2>/dev/null; then
      echo "$cni_name: $tmp/bpf is still a mount point; leaving $tmp in place" >&2
    else
      rm -rf "$tmp"
    fi
  fi
  exit "$status"
}

# prefix and node (names start with $1), tmp (mktemp -d $2), the clean-up trap, the
# binaries: junction_bin, agent_bin, bpf_objects, binary_origin; cni_path, agent_socket.
cni_node_prepare() {
  prefix="$1" # unique per run: netns names and container IDs start with it
  node="$prefix-node"
  trap cni_node_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  tmp="$(mktemp -d "$2")"

  # --- the Junction binaries: plugin, agent, datapath object ----------------------------
  if [[ -n "${JUNCTION_BIN:-}" ]]; then
    [[ -x "$JUNCTION_BIN" ]] || { echo "$cni_name: JUNCTION_BIN=$JUNCTION_BIN is not executable" >&2; exit 1; }
    junction_bin="$(realpath "$JUNCTION_BIN")"
    # PREFIX/opt/cni/bin/junction -> PREFIX, where install.sh put the agent and endpoint.o too.
    local given_prefix
    given_prefix="$(dirname "$(dirname "$(dirname "$(dirname "$junction_bin")")")")"
    agent_bin="${JUNCTION_AGENT_BIN:-$given_prefix/usr/local/bin/junction-agent}"
    bpf_objects="${JUNCTION_BPF_OBJECTS:-$given_prefix/usr/local/lib/junction/bpf}"
    binary_origin="given, not necessarily built from this checkout"
  elif [[ -n "${JUNCTION_AGENT_BIN:-}${JUNCTION_BPF_OBJECTS:-}" ]]; then
    echo "$cni_name: JUNCTION_AGENT_BIN / JUNCTION_BPF_OBJECTS need JUNCTION_BIN too (plugin and agent from one build)" >&2
    exit 2
  else
    echo "$cni_name: JUNCTION_BIN not set; building with install/install.sh --prefix $tmp/prefix --skip-deps" >&2
    "$repo/install/install.sh" --prefix "$tmp/prefix" --skip-deps >&2
    junction_bin="$tmp/prefix/opt/cni/bin/junction"
    agent_bin="$tmp/prefix/usr/local/bin/junction-agent"
    bpf_objects="$tmp/prefix/usr/local/lib/junction/bpf"
    binary_origin="built by this script from the working tree"
  fi
  # JUNCTION_BPF_OBJECTS may name endpoint.o itself; the agent wants its directory.
  [[ -f "$bpf_objects" ]] && bpf_objects="$(dirname "$bpf_objects")"
  [[ -x "$junction_bin" ]] || { echo "$cni_name: no junction plugin at $junction_bin" >&2; exit 1; }
  [[ -x "$agent_bin" ]] ||
    { echo "$cni_name: no junction-agent at $agent_bin (set JUNCTION_AGENT_BIN)" >&2; exit 1; }
  [[ -f "$bpf_objects/endpoint.o" ]] ||
    { echo "$cni_name: no endpoint.o in $bpf_objects (set JUNCTION_BPF_OBJECTS)" >&2; exit 1; }
  agent_bin="$(realpath "$agent_bin")"
  bpf_objects="$(realpath "$bpf_objects")"
  cni_path="$(dirname "$junction_bin"):/usr/lib/cni"
  agent_socket="$tmp/run/junction.sock"
}

cni_node_start() {
  local node_ip="$1" agent_name="$2" agent_health
  # --- the node -------------------------------------------------------------------------
  ip netns add "$node"
  node_created=true
  ip -n "$node" link set lo up
  ip -n "$node" addr add "$node_ip/32" dev lo

  # --- the agent: one for the node, its bpffs mounted here first --------------------------
  # `ip netns exec` gives every process its own mount namespace (a slave of ours): a bpffs
  # the agent mounted itself would exist only in the agent's namespace, and the plugin (run
  # by the timer, in another one) could not open the pinned programs. Mounted here, before
  # the agent and the timer start, it is copied into both.
  mkdir -p "$tmp/bpf" "$tmp/run" "$tmp/state"
  mount -t bpf bpf "$tmp/bpf"
  bpf_mounted=true
  # JUNCTION_TC_HOOK: the agent's --tc-hook (its default, clsact, when unset).
  ip netns exec "$node" "$agent_bin" --node-name "$agent_name" --socket "$agent_socket" \
    --state-dir "$tmp/state" --bpf-fs "$tmp/bpf" --bpf-objects "$bpf_objects" \
    ${JUNCTION_TC_HOOK:+--tc-hook "$JUNCTION_TC_HOOK"} >"$tmp/agent.log" 2>&1 &
  agent_pid=$!
  if ! agent_health="$(python3 "$bench/timer.py" agent-wait --socket "$agent_socket" --pid "$agent_pid" --timeout 30)"; then
    echo "$cni_name: junction-agent did not come up; its log:" >&2
    cat "$tmp/agent.log" >&2
    exit 1
  fi
  # The PID we will stop must be the agent itself, not a wrapper.
  if [[ "$(readlink "/proc/$agent_pid/exe" 2>/dev/null)" != "$agent_bin" ]]; then
    echo "$cni_name: pid $agent_pid is not $agent_bin; refusing to go on" >&2
    exit 1
  fi
  agent_version="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["version"])' "$agent_health")"
  echo "$cni_name: junction-agent $agent_version up (pid $agent_pid), bpffs $tmp/bpf" >&2
}

# The timer, in the background so that a SIGINT/SIGTERM to the script interrupts the wait
# and the clean-up stops it by its PID; a failure, or an agent gone meanwhile, ends the run.
cni_node_measure() {
  ip netns exec "$node" "$@" &
  timer_pid=$!
  if ! wait "$timer_pid"; then
    timer_pid=""
    echo "$cni_name: benchmark aborted (see the plugin output above); no numbers reported" >&2
    echo "$cni_name: the agent's log, last 20 lines:" >&2
    tail -n 20 "$tmp/agent.log" >&2
    exit 1
  fi
  timer_pid=""
  cni_node_alive "$agent_pid" ||
    { echo "$cni_name: the agent exited during the run; its log:" >&2; cat "$tmp/agent.log" >&2; exit 1; }
}

cni_node_revision() {
  local revision
  revision="$(git -c safe.directory="$repo" -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [[ -n "$(git -c safe.directory="$repo" -C "$repo" status --porcelain 2>/dev/null)" ]]; then
    revision="$revision (working tree has uncommitted changes)"
  fi
  echo "$revision"
}

# The report to stdout, and with --write to that file too.
cni_node_publish() {
  cat "$1"
  if [[ -n "$write" ]]; then
    mkdir -p "$(dirname "$write")"
    cp "$1" "$write"
    echo "$cni_name: report written to $write" >&2
  fi
}
