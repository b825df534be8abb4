#!/usr/bin/env bash
# Per-packet cost of the service datapath (from_endpoint) with BPF_PROG_TEST_RUN at several
# service counts: see "per-packet.sh" in bench/README.md. Needs root (BPF, a bpffs mount).
#
#   sudo bash bench/per-packet.sh [--write FILE] [junction-bench per-packet options]
#
# Options after --write go to `junction-bench per-packet` as they are (defaults: --services
# 1,1000,10000,50000 --repeat 1000000 --rounds 10 --samples 1000 --seed 1).
set -euo pipefail

bench="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$bench")"
. "$bench/lib.sh"

write=""
if [[ "${1:-}" == "--write" ]]; then
  write="$2"
  shift 2
fi
[[ $EUID -eq 0 ]] || { echo "per-packet: needs root" >&2; exit 1; }

tmp="$(mktemp -d /tmp/junction-per-packet.XXXXXX)"
mounted=false
cleanup() {
  # The bpffs first (the pins go with it), then the directory, never rm -rf into a mount.
  if $mounted; then
    umount "$tmp/bpffs" 2>/dev/null || umount -l "$tmp/bpffs" 2>/dev/null || true
  fi
  if mountpoint -q "$tmp/bpffs" 2>/dev/null; then
    echo "per-packet: $tmp/bpffs is still mounted; leaving $tmp" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

binary="$(bench_binary)"
object="$(bpf_object "$tmp/obj")"
mkdir -p "$tmp/bpffs"
# A private bpffs: endpoint.o pins its maps by name, and nothing here may touch /sys/fs/bpf.
mount -t bpf -o mode=0700 bpf "$tmp/bpffs"
mounted=true

args=("$@")
header="$(machine_lines)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
"$binary" per-packet --bpffs "$tmp/bpffs" --object "$object" "${args[@]}" >"$tmp/table.md"

{
  echo "# Service datapath per-packet cost (BPF_PROG_TEST_RUN)"
  echo
  echo "- date: $started"
  echo "$header"
  echo "- command: \`sudo bash bench/per-packet.sh${write:+ --write $write}${args[*]:+ ${args[*]}}\`"
  echo "- program: \`from_endpoint\` of \`$(basename "$object")\` (install/build-bpf.sh), loaded once per service count, side by side, maps pinned in a private bpffs"
  echo
  cat "$tmp/table.md"
} >"$tmp/report.md"
cat "$tmp/report.md"
if [[ -n "$write" ]]; then cp "$tmp/report.md" "$write"; fi
