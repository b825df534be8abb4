#!/usr/bin/env bash
# Builds the image install/kubernetes/*.yaml run: release binaries from install/install.sh
# staged into a temporary root, then install/kubernetes/Containerfile with podman or docker.
#
#   install/kubernetes/build-image.sh [TAG]        default TAG: junction:dev
#
# Then push TAG where your nodes pull from and replace JUNCTION_IMAGE in the manifests:
#   sed "s|JUNCTION_IMAGE|registry.example/junction:dev|" install/kubernetes/junction.yaml
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tag="${1:-junction:dev}"
builder="$(command -v podman || command -v docker || true)"
[[ -n "$builder" ]] || { echo "build-image.sh: needs podman or docker" >&2; exit 1; }

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
"$repo/install/install.sh" --prefix "$context/stage"
mkdir -p "$context/rootfs/opt/junction/cni"
cp -a "$context/stage/usr" "$context/rootfs/"
mv "$context/stage/opt/cni/bin/junction" "$context/rootfs/opt/junction/cni/junction"
cp "$repo/install/kubernetes/Containerfile" "$context/Containerfile"
"$builder" build -t "$tag" -f "$context/Containerfile" "$context"
echo "build-image.sh: built $tag"
