# Shared by per-packet.sh, programming.sh, connection-cost.sh and throughput.sh (sourced,
# not run): their option parsing, the machine description for the reports and the
# binaries, built unless given.

# Options of the form --NAME VALUE, each setting the variable NAME (dashes as underscores);
# a name written NAME! is a flag instead (--NAME alone sets it to true). $1: the script's
# name for messages; $2: the names it accepts, space-separated; the rest: its arguments.
value_options() {
  local script="$1" names=" $2 " name
  shift 2
  while [[ $# -gt 0 ]]; do
    name="${1#--}"
    if [[ "$1" == --* && "$names" == *" $name! "* ]]; then
      printf -v "${name//-/_}" true
      shift
    elif [[ "$1" == --* && "$names" == *" $name "* ]]; then
      printf -v "${name//-/_}" '%s' "$2"
      shift 2
    else
      echo "$script: unknown option $1" >&2
      exit 2
    fi
  done
}

# One line per fact about the machine, for the report's header.
machine_lines() {
  local cpu virt
  cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  virt="$(systemd-detect-virt 2>/dev/null || echo unknown)"
  echo "- machine: $(hostname), ${cpu:-unknown CPU}, $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM, virtualization: $virt"
  echo "- kernel: $(uname -r); $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "- load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- revision: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$repo" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
}

# junction-bench: $JUNCTION_BENCH_BIN, else a release build of this checkout.
bench_binary() {
  if [[ -n "${JUNCTION_BENCH_BIN:-}" ]]; then
    echo "$JUNCTION_BENCH_BIN"
    return
  fi
  echo "$(basename "$0"): building junction-bench (release)" >&2
  (cd "$repo" && swift build -c release --product junction-bench >&2)
  echo "$(cd "$repo" && swift build -c release --show-bin-path)/junction-bench"
}

# endpoint.o: $JUNCTION_BPF_OBJECT, else install/build-bpf.sh into $1.
bpf_object() {
  if [[ -n "${JUNCTION_BPF_OBJECT:-}" ]]; then
    echo "$JUNCTION_BPF_OBJECT"
    return
  fi
  bash "$repo/install/build-bpf.sh" "$1" >&2
  echo "$1/endpoint.o"
}
