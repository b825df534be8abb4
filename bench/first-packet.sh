#!/usr/bin/env bash
# Where a connection's first packet through from_endpoint spends its time, and the datapath
# before and after a change, with BPF_PROG_TEST_RUN: see "first-packet.sh" in bench/README.md.
# Needs root (BPF, a bpffs mount).
#
#   sudo bash bench/first-packet.sh [--before REV] [--write FILE] [--no-stages]
#                                   [junction-bench first-packet options]
#
# Builds, all from the same compiler and flags (install/build-bpf.sh):
#   before, after           endpoint.o of REV (default HEAD; git archive of bpf/) and of the
#                           working tree
#   before-new, after-new   the same with -DJNC_BENCH_SKIP=JNC_STAGE_ALWAYS_NEW (bpf/lib/stages.h:
#                           REV must have it), so a repeated run is a first packet every time
#   skip-<stage>            after-new without one stage (bpf/lib/stages.h), and skip-all
#                           (not with --no-stages: before and after only)
# and times them interleaved in one run; deltas are to after-new. Options after --write go to
# `junction-bench first-packet` (defaults: --services 1000 --rounds 10 --samples 300
# --repeat 5000 --monitor flows --seed 1).
set -euo pipefail

bench="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$bench")"
. "$bench/lib.sh"

before="HEAD"
stages_wanted=true
write=""
while [[ $# -gt 0 ]]; do
  case "$1" in
  --before) before="$2"; shift 2 ;;
  --write) write="$2"; shift 2 ;;
  --no-stages) stages_wanted=false; shift ;;
  *) break ;;
  esac
done
[[ $EUID -eq 0 ]] || { echo "first-packet: needs root" >&2; exit 1; }

tmp="$(mktemp -d /tmp/junction-first-packet.XXXXXX)"
mounted=false
cleanup() {
  if $mounted; then
    umount "$tmp/bpffs" 2>/dev/null || umount -l "$tmp/bpffs" 2>/dev/null || true
  fi
  if mountpoint -q "$tmp/bpffs" 2>/dev/null; then
    echo "first-packet: $tmp/bpffs is still mounted; leaving $tmp" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# name, JNC_BENCH_SKIP mask (bpf/lib/stages.h; 0x800 = JNC_STAGE_ALWAYS_NEW)
stages=(
  "skip-flow-event 0x801" "skip-lrp 0x802" "skip-hairpin 0x804" "skip-affinity 0x808"
  "skip-select 0x810" "skip-ct-reply 0x820" "skip-ct-request 0x840" "skip-nat 0x880"
  "skip-ct-lookup 0x900" "skip-count 0xa00" "skip-proxy 0xc00" "skip-event-query 0x1800"
  "skip-all 0x1fff"
)

build() { # name, source tree, mask
  BPF_CFLAGS="-DJNC_BENCH_SKIP=$3" bash "$2/install/build-bpf.sh" "$tmp/obj/$1" >/dev/null
  objects+="${objects:+,}$1=$tmp/obj/$1/endpoint.o"
}

mkdir -p "$tmp/before"
git -C "$repo" archive "$before" bpf install/build-bpf.sh | tar -x -C "$tmp/before"
[[ -f "$tmp/before/bpf/lib/stages.h" ]] ||
  { echo "first-packet: $before has no bpf/lib/stages.h (JNC_STAGE_ALWAYS_NEW)" >&2; exit 1; }
objects=""
build before "$tmp/before" 0
build after "$repo" 0
build before-new "$tmp/before" 0x800
build after-new "$repo" 0x800
$stages_wanted || stages=()
for stage in "${stages[@]}"; do
  read -r name mask <<<"$stage"
  build "$name" "$repo" "$mask"
done

binary="$(bench_binary)"
mkdir -p "$tmp/bpffs"
# A private bpffs: endpoint.o pins its maps by name, and nothing here may touch /sys/fs/bpf.
mount -t bpf -o mode=0700 bpf "$tmp/bpffs"
mounted=true

args=("$@")
header="$(machine_lines)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
"$binary" first-packet --bpffs "$tmp/bpffs" --objects "$objects" --baseline after-new \
  "${args[@]}" >"$tmp/table.md"

{
  echo "# First packet through from_endpoint: where the time goes (BPF_PROG_TEST_RUN)"
  echo
  echo "- date: $started"
  echo "$header"
  echo "- before: $(git -C "$repo" rev-parse --short "$before"), after: the working tree"
  nostages="$($stages_wanted || echo " --no-stages")"
  echo "- command: \`sudo bash bench/first-packet.sh --before $before$nostages${write:+ --write $write}${args[*]:+ ${args[*]}}\`"
  echo
  cat "$tmp/table.md"
} >"$tmp/report.md"
cat "$tmp/report.md"
if [[ -n "$write" ]]; then cp "$tmp/report.md" "$write"; fi
