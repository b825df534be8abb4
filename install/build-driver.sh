#!/usr/bin/env bash
# Build the cnidriver test driver (tools/cnidriver) against Debian's libcni.
#
#   install/build-driver.sh [OUT_PATH]    default: <repo>/.build-driver/cnidriver
#
# Needs the apt packages golang-go and golang-github-appc-cni-dev. Builds in
# GOPATH mode (GO111MODULE=off) from /usr/share/gocode, so nothing is ever
# downloaded: Debian ships libcni as GOPATH source, not as a module.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
libcni_src=/usr/share/gocode/src/github.com/containernetworking/cni

die() {
    echo "build-driver: error: $*" >&2
    exit 1
}

command -v go >/dev/null 2>&1 ||
    die "'go' not found; install it with: apt-get install golang-go"
[[ -f "$libcni_src/libcni/api.go" ]] ||
    die "libcni source not found under $libcni_src; install it with: apt-get install golang-github-appc-cni-dev"
[[ -f "$repo_root/tools/cnidriver/main.go" ]] ||
    die "driver source $repo_root/tools/cnidriver/main.go is missing"

# A relative OUT_PATH is taken relative to the caller's directory, as usual;
# only the default lives under the repo root.
out="${1:-$repo_root/.build-driver/cnidriver}"
[[ "$out" == /* ]] || out="$PWD/$out"
mkdir -p "$(dirname "$out")"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cnidriver-build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# GOPATH mode needs the package inside a GOPATH src tree; a symlink avoids
# copying and keeps the repo layout free of GOPATH conventions.
mkdir -p "$tmp/gopath/src"
ln -s "$repo_root/tools/cnidriver" "$tmp/gopath/src/cnidriver"

# GOENV=off ignores any user `go env -w` settings (e.g. GOFLAGS=-mod=mod);
# GOPROXY=off makes any attempted download fail loudly instead of hanging.
# The build cache is temporary too, so nothing outside OUT_PATH is left behind.
env GO111MODULE=off \
    GOPATH="$tmp/gopath:/usr/share/gocode" \
    GOCACHE="$tmp/gocache" \
    GOENV=off GOFLAGS= GOPROXY=off GOSUMDB=off \
    CGO_ENABLED=0 \
    go build -trimpath -o "$out" cnidriver

echo "built $out"
