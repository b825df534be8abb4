#!/usr/bin/env bash
# Fuzzes the decoders that read untrusted bytes (issue 16, part 3) with libFuzzer:
#   cni-config        the plugin's stdin config under every command, CNI_* environment, CNI_ARGS
#   conflist          junction-install's conflist editor (chain, unchain, convert)
#   endpoint-request  the agent's PUT /v1/endpoints/ID body
#   k8s-yaml          the Kubernetes YAML/JSON resource decoder (apply, manifests)
#
#   fuzz/run.sh [--seconds N] [TARGET...]   each target N seconds (default 30), all by default
#   fuzz/run.sh --replay                    the committed corpus through every harness, no
#                                           libFuzzer (an ordinary build of JunctionFuzz)
#
# The fuzz build has its own build path (.build-fuzz: -sanitize=fuzzer -DFUZZING). Each run
# starts from fuzz/corpus/TARGET, writes what it finds to a temporary copy (the committed
# corpus only changes by hand), and a crash to fuzz/crashes/TARGET-crash-*; exit 1 then.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=30
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --replay)
      swift build --product JunctionFuzz >/dev/null
      exec .build/debug/JunctionFuzz fuzz/corpus/*/*
      ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(cni-config conflist endpoint-request k8s-yaml)

swift build --product JunctionFuzz --build-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING >/dev/null
fuzzer=.build-fuzz/debug/JunctionFuzz
mkdir -p fuzz/crashes
work=$(mktemp -d /tmp/junction-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
status=0
for target in "${targets[@]}"; do
  mkdir -p "$work/$target"
  log="$work/$target.log"
  # The Swift runtime's backtracer would take the trap before libFuzzer could write the
  # crashing input: off.
  if SWIFT_BACKTRACE=enable=no JUNCTION_FUZZ_TARGET="$target" "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 \
      -max_len=65536 -artifact_prefix="fuzz/crashes/$target-" -print_final_stats=1 \
      "$work/$target" "fuzz/corpus/$target" >"$log" 2>&1; then
    result=ok
  else
    result=CRASH
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  echo "$target: $result, $seconds s, $runs inputs, coverage $cov edges, $(ls "$work/$target" | wc -l) new corpus inputs"
  [ "$result" = ok ] || tail -30 "$log"
done
exit $status
