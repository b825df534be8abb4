#!/usr/bin/env bash
# Fuzzes the decoders that read untrusted bytes (issue 16, part 3) with libFuzzer:
#   cni-config        the plugin's stdin config under every command, CNI_* environment, CNI_ARGS
#   conflist          junction-install's conflist editor (chain, unchain, convert)
#   endpoint-request  the agent's PUT /v1/endpoints/ID body
#   k8s-yaml          the Kubernetes YAML/JSON resource decoder (apply, manifests)
#   k8s-api           what an API server sends the agent's client (KubernetesWire): JSON,
#                     LIST pages, watch streams split into events, Status errors
#   agent-request     the agent API's request line (route, percent-decoded ids, the
#                     /v1/flows query) and the body of an endpoint PUT or resources apply
#
#   fuzz/run.sh [--seconds N] [--merge] [--logs DIR] [TARGET...]
#                      each target N seconds (default 30), one after the other, all by default;
#                      --merge adds what a run found to fuzz/corpus/TARGET (libFuzzer -merge=1:
#                      the inputs that add coverage; nothing committed is dropped);
#                      --logs keeps each run's libFuzzer log as DIR/TARGET.log
#   fuzz/run.sh --replay                    the committed corpus through every harness, no
#                                           libFuzzer (an ordinary build of JunctionFuzz)
#
# The fuzz build has its own build path (.build-fuzz: -sanitize=fuzzer -DFUZZING); each run
# uses a copy of the binary, so a rebuild meanwhile does not disturb it. Each run starts from
# fuzz/corpus/TARGET, writes what it finds to a temporary directory (the committed corpus
# changes only with --merge), and a crash to fuzz/crashes/TARGET-crash-*; exit 1 then.
set -euo pipefail
# The whole script in one block: bash reads it before running any of it, so an edit of this
# file during a long run does not change what that run does.
{
cd "$(dirname "$0")/.."
seconds=30
merge=no
logs=
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --merge) merge=yes; shift ;;
    --logs) logs="$2"; mkdir -p "$logs"; shift 2 ;;
    --replay)
      swift build --product JunctionFuzz >/dev/null
      exec .build/debug/JunctionFuzz fuzz/corpus/*/*
      ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(cni-config conflist endpoint-request k8s-yaml k8s-api agent-request)

swift build --product JunctionFuzz --build-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING >/dev/null
mkdir -p fuzz/crashes
work=$(mktemp -d /tmp/junction-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
fuzzer="$work/JunctionFuzz"
cp .build-fuzz/debug/JunctionFuzz "$fuzzer"
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
  found=$(ls "$work/$target" | wc -l)
  merged=
  if [ "$merge" = yes ] && [ "$result" = ok ]; then
    before=$(ls "fuzz/corpus/$target" | wc -l)
    SWIFT_BACKTRACE=enable=no JUNCTION_FUZZ_TARGET="$target" "$fuzzer" -merge=1 -rss_limit_mb=2048 \
      -max_len=65536 "fuzz/corpus/$target" "$work/$target" >>"$log" 2>&1 || status=1
    merged=", $(($(ls "fuzz/corpus/$target" | wc -l) - before)) merged into fuzz/corpus/$target ($(du -sk --apparent-size "fuzz/corpus/$target" | cut -f1) KiB)"
  fi
  echo "$target: $result, $seconds s, $runs inputs, coverage $cov edges, $found new corpus inputs$merged"
  [ -z "$logs" ] || cp "$log" "$logs/$target.log"
  [ "$result" = ok ] || tail -30 "$log"
done
exit $status
}
