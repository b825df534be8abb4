import Foundation
import XCTest

/// install/test-summary.sh, the closing line of the README's test command: counted per test,
/// and a crash of the test process names the test and never reads as a pass.
final class TestSummaryTests: XCTestCase {
  static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("install/test-summary.sh").path

  /// The log of a real crash (a machine up less than 10 minutes, an arithmetic overflow in a
  /// test helper), trimmed: the last sub-suite's own summary never comes, XCTest's overall
  /// one neither, and the process dies with signal 4.
  static let crashLog = """
    Test Suite 'Selected tests' started at 2026-12-06 02:21:55.070
    Test Suite 'NetdevTests' started at 2026-12-06 02:21:55.143
    Test Case 'NetdevTests.testAForwardedPacketWhoseTTLRunsOutIsDropped' started at 2026-12-06 02:21:57.376
    Test Case 'NetdevTests.testAForwardedPacketWhoseTTLRunsOutIsDropped' passed (0.885 seconds)
    Test Case 'NetdevTests.testAUDPFlowsPortIsClaimedAgainAfterAMinuteIdle' started at 2026-12-06 02:22:00.676
    Test Case 'NetdevTests.testAUDPFlowsPortIsClaimedAgainAfterAMinuteIdle' passed (0.795 seconds)
    Test Case 'NetdevTests.testAnOpenConnectionKeepsItsPortWhileIdle' started at 2026-12-06 02:22:01.471
    *** Swift runtime failure: arithmetic overflow ***
      4 [ra]error: Process '/x/JunctionPackageTests.xctest' exited with unexpected signal code 4
    Test Suite 'CNIKitTests' started at 2026-12-06 01:00:00.000
    Executed 3 tests, with 0 failures (0 unexpected) in 0.1 (0.1) seconds

    """

  static let passLog = """
    Test Suite 'All tests' started at 2026-12-06 02:21:55.070
    Test Case 'A.testOne' started at 2026-12-06 02:21:55.143
    Test Case 'A.testOne' passed (0.1 seconds)
    Test Case 'A.testTwo' started at 2026-12-06 02:21:55.143
    Test Case 'A.testTwo' skipped (0.1 seconds)
    Test Case 'A.testThree' started at 2026-12-06 02:21:55.143
    /x/A.swift:3: error: A.testThree : XCTAssertEqual failed
    Test Case 'A.testThree' failed (0.1 seconds)
    Test Suite 'All tests' failed at 2026-12-06 02:21:56.000
    \t Executed 3 tests, with 1 test skipped and 1 failure (0 unexpected) in 0.3 (0.3) seconds

    """

  func testACrashNamesTheTestAndCountsAsAFailure() throws {
    let lines = try summary(Self.crashLog, status: 1)
    XCTAssertEqual(lines.last, "tests: 2 passed, 1 failed, 0 skipped")
    let crash = try XCTUnwrap(lines.first)
    XCTAssertTrue(
      crash.hasPrefix("tests: CRASHED in NetdevTests.testAnOpenConnectionKeepsItsPortWhileIdle"),
      crash)
    XCTAssertTrue(crash.contains("arithmetic overflow"), crash)
    XCTAssertFalse(crash.contains(" passed, "), "only the closing line may read as a count")
  }

  func testACompleteRunIsCountedPerTest() throws {
    XCTAssertEqual(
      try summary(Self.passLog, status: 1), ["tests: 1 passed, 1 failed, 1 skipped"])
    // A run with --filter closes with "Selected tests" instead of "All tests".
    let filtered = Self.passLog.replacingOccurrences(of: "All tests", with: "Selected tests")
    XCTAssertEqual(try summary(filtered, status: 1), ["tests: 1 passed, 1 failed, 1 skipped"])
  }

  func testAFailedCheckAfterTheTestsCountsAsAFailure() throws {
    let complete = Self.passLog.replacingOccurrences(of: "1 failure", with: "0 failures")
      .replacingOccurrences(of: "'A.testThree' failed", with: "'A.testThree' passed")
    XCTAssertEqual(
      try summary(complete, status: 0, checks: ["demo=0"]),
      ["tests: 3 passed, 0 failed, 1 skipped"])
    XCTAssertEqual(
      try summary(complete, status: 0, checks: ["demo=2"]),
      ["tests: demo failed (exit status 2)", "tests: 2 passed, 1 failed, 1 skipped"])
  }

  /// A process that died outside any test, or a run that failed with every test passed:
  /// never "0 failed".
  func testANonZeroStatusNeverReadsAsAPass() throws {
    let noTests = "Test Suite 'All tests' started at 2026-12-06 02:21:55.070\n"
    XCTAssertEqual(try summary(noTests, status: 134).last, "tests: 0 passed, 1 failed, 0 skipped")
    let allPassed = Self.passLog.replacingOccurrences(
      of: "'A.testThree' failed", with: "'A.testThree' passed")
    XCTAssertEqual(try summary(allPassed, status: 1).last, "tests: 2 passed, 1 failed, 1 skipped")
  }

  private func summary(_ log: String, status: Int32, checks: [String] = []) throws -> [String] {
    let file = FileManager.default.temporaryDirectory
      .appendingPathComponent("test-summary-\(getpid())-\(UUID().uuidString).log")
    try log.write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = [Self.script, file.path, "\(status)"] + checks
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    XCTAssertEqual(process.terminationStatus, 0, "the summary itself must not fail")
    return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
  }
}
