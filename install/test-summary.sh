#!/usr/bin/env bash
# The test run's closing line, from swift test's XCTest log and its exit status:
#
#   install/test-summary.sh LOG STATUS [CHECK=STATUS ...]
#
# prints "tests: N passed, N failed, N skipped", counted from the per-test lines
# ("Test Case 'Suite.test' passed|failed|skipped"), not from XCTest's own "Executed" summary:
# when the test process dies (a Swift runtime trap, a signal), XCTest never prints its overall
# summary, and the last sub-suite's "Executed 3 tests, with 0 failures" would read as a pass.
# A test that started and never finished is the one that crashed: it is named on a line of
# its own and counted as failed, and the tests after it, which never ran, are said to be
# missing. A non-zero STATUS never yields "0 failed". Each CHECK=STATUS (the release install,
# the demo) counts as one more test, passed when its status is 0.
set -euo pipefail

log="${1:?usage: test-summary.sh LOG STATUS}"
status="${2:?usage: test-summary.sh LOG STATUS [CHECK=STATUS ...]}"
shift 2
checks="$*"

awk -v status="$status" -v checks="$checks" '
  match($0, /^Test Case \x27[^\x27]+\x27 (started|passed|failed|skipped)/) {
    line = substr($0, RSTART, RLENGTH)
    name = line
    sub(/^Test Case \x27/, "", name)
    sub(/\x27.*$/, "", name)
    verdict = line
    sub(/^.*\x27 /, "", verdict)
    if (verdict == "started") { running = name; next }
    if (verdict == "passed") passed++
    else if (verdict == "failed") failed++
    else if (verdict == "skipped") skipped++
    running = ""
    next
  }
  /^Test Suite \x27(All tests|Selected tests)\x27 (passed|failed)/ { finished = 1 }
  /exited with unexpected signal|Fatal error|Swift runtime failure/ {
    if (why == "") why = $0
  }
  END {
    if (status != 0 && running != "") {
      failed++
      printf "tests: CRASHED in %s (%s); the tests after it did not run\n", running, (why == "" ? "exit status " status : why)
    } else if (status != 0 && !finished) {
      failed++
      printf "tests: the test process stopped outside a test (%s); the tests after it did not run\n", (why == "" ? "exit status " status : why)
    } else if (status != 0 && failed == 0) {
      failed++
      printf "tests: every test passed but the run exited with status %s\n", status
    }
    n = split(checks, list, " ")
    for (i = 1; i <= n; i++) {
      split(list[i], check, "=")
      if (check[2] == 0) passed++
      else { failed++; printf "tests: %s failed (exit status %s)\n", check[1], check[2] }
    }
    printf "tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped
  }
' "$log"
