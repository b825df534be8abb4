#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need on a fresh Debian 12
# machine with the Swift toolchain, builds the plugin and the libcni driver, and runs the
# unit and the integration tests. The integration tests create network namespaces and
# veths on the real kernel, so this runs as root; without root it stops here and fails.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
if [[ $(id -u) -ne 0 ]]; then
  echo "test.sh: the integration tests need root (network namespaces, veths); run: sudo bash install/test.sh" >&2
  exit 1
fi

install/deps.sh test
install/build-driver.sh
install/build-bpf.sh >/dev/null
swift build --build-tests
# CI=true turns a test that cannot run into a failure instead of a skip. The tests are
# XCTest; Swift Testing is switched off so its empty run does not print the last word.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
CI="${CI:-true}" swift test --skip-build --disable-swift-testing 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One plain closing line, "tests: N passed, N failed, N skipped", from XCTest's overall
# summary ("Executed N tests, with [S tests skipped and] F failures").
summary="$(grep -E 'Executed [0-9]+ tests?, with ' "$log" | tail -n 1)"
if [[ "$summary" =~ Executed\ ([0-9]+)\ tests?,\ with\ (([0-9]+)\ tests?\ skipped\ and\ )?([0-9]+)\ failure ]]; then
  executed=${BASH_REMATCH[1]} skipped=${BASH_REMATCH[3]:-0} failed=${BASH_REMATCH[4]}
  echo "tests: $((executed - skipped - failed)) passed, $failed failed, $skipped skipped"
fi
exit "$status"
