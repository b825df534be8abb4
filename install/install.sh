#!/usr/bin/env bash
# Installs what building needs, builds Junction in release mode with the Swift standard
# library linked statically (a node then needs only glibc, libstdc++, libnl and libbpf),
# and installs the binaries and the datapath:
#
#   junction                -> PREFIX/opt/cni/bin/junction
#   junction-agent          -> PREFIX/usr/local/bin/junction-agent
#   junctionctl             -> PREFIX/usr/local/bin/junctionctl
#   junction-install        -> PREFIX/usr/local/bin/junction-install (chain/unchain)
#   bpf/*.c, built          -> PREFIX/usr/local/lib/junction/bpf/*.o
#   envoy 1.40.0 (pinned)   -> PREFIX/usr/local/lib/junction/envoy/envoy (install/envoy/)
#
#   install/install.sh [--prefix DIR] [--skip-deps]
#
# --prefix relocates everything under DIR (tests and the demo use a temporary one);
# the default is the real system (/). Idempotent: run it again to upgrade in place.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix=""
skip_deps=false
while (($#)); do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --skip-deps) skip_deps=true; shift ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

$skip_deps || "$repo/install/deps.sh" build
command -v swift >/dev/null || { echo "install.sh: swift is not on PATH (Swift 6 toolchain needed)" >&2; exit 1; }

echo "install: building release binaries"
# --disable-local-rpath: no $ORIGIN in RUNPATH, so a binary in /opt/cni/bin never loads a
# library someone dropped beside it (and start-up skips the extra lookups there).
build=(swift build --package-path "$repo" -c release --static-swift-stdlib --disable-local-rpath)
for product in junction junction-agent junctionctl junction-install; do
  "${build[@]}" --product "$product"
done
bin="$("${build[@]}" --show-bin-path)"
bpf_out="$(mktemp -d)"
trap 'rm -rf "$bpf_out"' EXIT
"$repo/install/build-bpf.sh" "$bpf_out" >/dev/null

# Copy to a temporary name and rename, so a runtime never executes a half-written plugin.
install_atomically() {
  local source="$1" target="$2"
  mkdir -p "$(dirname "$target")"
  install -m 0755 "$source" "$target.tmp.$$"
  mv -f "$target.tmp.$$" "$target"
  echo "install: $target"
}
install_atomically "$bin/junction" "$prefix/opt/cni/bin/junction"
install_atomically "$bin/junction-agent" "$prefix/usr/local/bin/junction-agent"
install_atomically "$bin/junctionctl" "$prefix/usr/local/bin/junctionctl"
install_atomically "$bin/junction-install" "$prefix/usr/local/bin/junction-install"
for object in "$bpf_out"/*.o; do
  install_atomically "$object" "$prefix/usr/local/lib/junction/bpf/$(basename "$object")"
done
# The node proxy the agent runs for Ingress and CiliumEnvoyConfig (`--envoy PATH`).
"$repo/install/envoy/install-envoy.sh" "$prefix/usr/local/lib/junction/envoy/envoy"
