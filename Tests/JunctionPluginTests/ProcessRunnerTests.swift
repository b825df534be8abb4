import Foundation
import XCTest

@testable import JunctionPlugin

/// The delegated-plugin runner against real child processes (small shell scripts).
final class ProcessRunnerTests: XCTestCase {
  private var scratch: URL?

  override func tearDown() {
    if let scratch { try? FileManager.default.removeItem(at: scratch) }
    scratch = nil
    super.tearDown()
  }

  private func script(_ body: String) throws -> String {
    let directory = FileManager.default.temporaryDirectory
      .appendingPathComponent("jpr-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    scratch = directory
    let path = directory.appendingPathComponent("plugin").path
    try ("#!/bin/sh\n" + body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    chmod(path, 0o755)
    return path
  }

  /// A plugin that exits without reading stdin (an old IPAM plugin refusing GC does): writing
  /// a config larger than the pipe's buffer hits EPIPE, and the runner reports the plugin's
  /// exit instead of this process dying of SIGPIPE.
  func testAPluginThatDoesNotReadItsStdinDoesNotKillTheCaller() throws {
    let path = try script("exit 7")
    let stdin = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20)
    let outcome = try ProcessRunner.run(path, environment: [:], stdin: stdin)
    XCTAssertEqual(outcome.exitStatus, 7)
  }

  /// The child starts with SIGPIPE at its default disposition, not inheriting our ignore.
  func testTheChildGetsTheDefaultSIGPIPEDisposition() throws {
    let path = try script("cat >/dev/null; grep '^SigIgn:' /proc/self/status")
    let outcome = try ProcessRunner.run(path, environment: [:], stdin: Array("{}".utf8))
    XCTAssertEqual(outcome.exitStatus, 0)
    let line = String(decoding: outcome.stdout, as: UTF8.self)
    let mask = UInt64(
      line.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "",
      radix: 16)
    let ignored = try XCTUnwrap(mask, "no SigIgn line: \(line)")
    XCTAssertEqual(ignored & (1 << (UInt64(SIGPIPE) - 1)), 0, "SIGPIPE ignored in the child")
  }
}
