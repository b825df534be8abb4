#!/usr/bin/env bash
# Chains Junction into a node's existing CNI config, or takes it out again:
#
#   install/cni-chain.sh chain FILE [--agent-socket PATH] [--log-file PATH] [--log-level L]
#   install/cni-chain.sh chain --first-in /etc/cni/net.d       # the file the runtime loads
#   install/cni-chain.sh unchain FILE
#   install/cni-chain.sh pick /etc/cni/net.d                   # which file that is
#
# A front for `junction-install` (see `junction-install --help`): the installed one when
# install/install.sh put it on PATH, else this checkout's build (built when missing).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if command -v junction-install >/dev/null; then
  exec junction-install "$@"
fi
for candidate in "$repo/.build/release/junction-install" "$repo/.build/debug/junction-install"; do
  [[ -x "$candidate" ]] && exec "$candidate" "$@"
done
swift build --package-path "$repo" --product junction-install >&2
exec "$repo/.build/debug/junction-install" "$@"
