#!/usr/bin/env bash
# CNI ADD / DEL / VERSION latency of Junction (native mode) against Debian's reference
# `ptp` plugin, same host-local IPAM, in one interleaved run. Needs root.
#
#   sudo [JUNCTION_BIN=/path/to/junction] bash bench/cni-latency.sh [--runs N] [--warmup W] [--write FILE]
#
#   --runs N      timed iterations per plugin (default 100, at least 50)
#   --warmup W    untimed iterations first (default 5)
#   --write FILE  also write the report (Markdown) to FILE
#
# Without JUNCTION_BIN the binary is built into a temporary prefix with
# `install/install.sh --prefix TMP --skip-deps` (needs the Swift toolchain).
# The report (Markdown) goes to stdout; progress goes to stderr. See bench/README.md.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$repo/bench"

# The exact command line, for the report (JUNCTION_BIN included when it was given).
command_line="$(printf '%q ' bash "$0" "$@")"
command_line="${command_line% }"
if [[ -n "${JUNCTION_BIN:-}" ]]; then
  command_line="JUNCTION_BIN=$(printf '%q' "$JUNCTION_BIN") $command_line"
fi

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
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cni-latency: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$runs" =~ ^[0-9]+$ ]] || { echo "cni-latency: --runs must be a number, got '$runs'" >&2; exit 2; }
[[ "$warmup" =~ ^[0-9]+$ ]] || { echo "cni-latency: --warmup must be a number, got '$warmup'" >&2; exit 2; }
((runs >= 50)) || { echo "cni-latency: --runs must be at least 50 (p99 of fewer samples is the maximum)" >&2; exit 2; }

((EUID == 0)) || { echo "cni-latency: must run as root (network namespaces, veths)" >&2; exit 1; }
ptp_bin=/usr/lib/cni/ptp
for tool in ip nsenter python3; do
  command -v "$tool" >/dev/null || { echo "cni-latency: $tool is not on PATH" >&2; exit 1; }
done
for plugin in ptp host-local; do
  [[ -x /usr/lib/cni/$plugin ]] ||
    { echo "cni-latency: /usr/lib/cni/$plugin missing (apt-get install containernetworking-plugins)" >&2; exit 1; }
done
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { echo "cni-latency: python3 >= 3.11 needed for bench/timer.py" >&2; exit 1; }

# --- everything this run creates, and its removal ---------------------------------------
prefix="jtb$$"             # unique per run: netns names and container IDs start with it
node="$prefix-node"
tmp=""
timer_pid=""
node_created=false

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n "$timer_pid" ]] && kill -0 "$timer_pid" 2>/dev/null; then
    kill -TERM "$timer_pid" 2>/dev/null || true
    wait "$timer_pid" 2>/dev/null || true
  fi
  # Pod namespaces (timer.py deletes each one itself; these are leftovers of an abort).
  local path
  for path in /var/run/netns/"$prefix"-*; do
    [[ -e "$path" ]] || continue
    [[ "$(basename "$path")" == "$node" ]] && continue
    ip netns del "$(basename "$path")" 2>/dev/null || rm -f "$path"
  done
  if $node_created; then ip netns del "$node" 2>/dev/null || true; fi
  if [[ -n "$tmp" && -d "$tmp" ]]; then rm -rf "$tmp"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

tmp="$(mktemp -d /tmp/jtbench.XXXXXX)"

# --- the Junction binary ---------------------------------------------------------------
if [[ -n "${JUNCTION_BIN:-}" ]]; then
  junction_bin="$(realpath "$JUNCTION_BIN")"
  [[ -x "$junction_bin" ]] || { echo "cni-latency: JUNCTION_BIN=$JUNCTION_BIN is not executable" >&2; exit 1; }
  binary_origin="given as JUNCTION_BIN, not necessarily built from this checkout"
else
  echo "cni-latency: JUNCTION_BIN not set; building with install/install.sh --prefix $tmp/prefix --skip-deps" >&2
  "$repo/install/install.sh" --prefix "$tmp/prefix" --skip-deps >&2
  junction_bin="$tmp/prefix/opt/cni/bin/junction"
  [[ -x "$junction_bin" ]] || { echo "cni-latency: the build did not produce $junction_bin" >&2; exit 1; }
  binary_origin="built by this script from the working tree"
fi
cni_path="$(dirname "$junction_bin"):/usr/lib/cni"

# --- configs: same host-local IPAM, own dataDir and own /24 each ------------------------
junction_subnet=10.250.1.0/24
ptp_subnet=10.250.2.0/24
node_ip=192.168.250.1
mkdir -p "$tmp/ipam-junction" "$tmp/ipam-ptp"
cat >"$tmp/junction.json" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "benchnet",
  "type": "junction",
  "mode": "native",
  "mtu": 1500,
  "ipam": {
    "type": "host-local",
    "ranges": [[{ "subnet": "$junction_subnet" }]],
    "dataDir": "$tmp/ipam-junction"
  }
}
EOF
cat >"$tmp/ptp.json" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "benchnet",
  "type": "ptp",
  "ipMasq": false,
  "mtu": 1500,
  "ipam": {
    "type": "host-local",
    "ranges": [[{ "subnet": "$ptp_subnet" }]],
    "dataDir": "$tmp/ipam-ptp"
  }
}
EOF

# --- the node ---------------------------------------------------------------------------
ip netns add "$node"
node_created=true
ip -n "$node" link set lo up
ip -n "$node" addr add "$node_ip/32" dev lo

# --- measure: one python3 in the node netns does every iteration -------------------------
echo "cni-latency: $runs runs (+$warmup warm-up), junction and ptp interleaved, node netns $node" >&2
ip netns exec "$node" python3 "$bench/timer.py" run \
  --runs "$runs" --warmup "$warmup" --prefix "$prefix" --host-pid "$$" \
  --junction-bin "$junction_bin" --ptp-bin "$ptp_bin" --cni-path "$cni_path" \
  --junction-conf "$tmp/junction.json" --ptp-conf "$tmp/ptp.json" \
  --junction-ipam-dir "$tmp/ipam-junction" --ptp-ipam-dir "$tmp/ipam-ptp" \
  --junction-subnet-prefix "${junction_subnet%.0/24}." --ptp-subnet-prefix "${ptp_subnet%.0/24}." \
  --out "$tmp/samples.json" --progress &
timer_pid=$!
if ! wait "$timer_pid"; then
  timer_pid=""
  echo "cni-latency: benchmark aborted (see the plugin output above); no numbers reported" >&2
  exit 1
fi
timer_pid=""

# --- report -----------------------------------------------------------------------------
cpu_model="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
mem_kib="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
binary_bytes="$(stat -c %s "$junction_bin")"
revision="$(git -c safe.directory="$repo" -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -c safe.directory="$repo" -C "$repo" status --porcelain 2>/dev/null)" ]]; then
  revision="$revision (working tree has uncommitted changes)"
fi
ptp_version="$(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null || echo unknown)"

report="$tmp/report.md"
{
  echo "# CNI latency: Junction (native) vs ptp"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "- machine: kernel $(uname -r), $(nproc) CPUs (${cpu_model:-unknown CPU}), $((mem_kib / 1024)) MiB RAM, load average before the report $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- junction: \`$junction_bin\` ($binary_origin), $binary_bytes bytes ($((binary_bytes / 1048576)) MiB); repo HEAD $revision"
  echo "- ptp: \`$ptp_bin\` (containernetworking-plugins $ptp_version); both with host-local IPAM (own dataDir, own /24)"
  echo "- method: $runs timed iterations after $warmup warm-up ones; each iteration gives each plugin a fresh pod netns and times VERSION, ADD, DEL (raw exec, CNI_* env only, config on stdin) from inside the node netns; junction and ptp alternate, and so does which goes first; percentiles are nearest-rank"
  echo "- command: \`$command_line\`"
  echo
  python3 "$bench/timer.py" summary "$tmp/samples.json"
} >"$report"

cat "$report"
if [[ -n "$write" ]]; then
  mkdir -p "$(dirname "$write")"
  cp "$report" "$write"
  echo "cni-latency: report written to $write" >&2
fi
