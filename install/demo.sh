#!/usr/bin/env bash
# The main job: on a fresh Debian 12 machine with the Swift toolchain, install what the lab
# needs, install Junction's release build the way users do (install/install.sh, into a
# scratch prefix removed afterwards), build the libcni driver, and run the lab's first
# scenario on the installed binaries
# (install/lab-demo.sh): a three-node lab, `role: jedi` pods on every node behind the
# `droids` Service, queried from a client pod on each node, printing which backend answered;
# the lab is dual-stack and droids a RequireDualStack Service, asked on both families;
# then the service maps and the endpoints' eBPF counters, and the lab is taken down (also
# on failure or Ctrl-C: lab-demo.sh always runs `lab down`).
#
#   sudo bash install/demo.sh [lab-demo.sh options: --nodes N --mode native|chained]
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $(id -u) -ne 0 ]]; then
  echo "demo.sh: needs root (it creates network namespaces); run: sudo bash install/demo.sh" >&2
  exit 1
fi
cd "$repo"

printf '\n\033[1m== %s\033[0m\n' "Installing dependencies, building Junction, the BPF objects and the libcni driver"
install/deps.sh test
install/build-driver.sh
prefix="$(mktemp -d /tmp/junction-demo-install.XXXXXX)"
trap 'rm -rf "$prefix"' EXIT
install/install.sh --prefix "$prefix" --skip-deps

"$repo/install/lab-demo.sh" --prefix "$prefix" "$@"
