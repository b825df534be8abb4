import Foundation
import XCTest

/// What a command printed and how it ended.
struct CommandOutput {
  var status: Int32
  var stdout: String
  var stderr: String

  var json: [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any]
  }

  /// The CNI error code printed on stdout, if any.
  var errorCode: Int? { json?["code"] as? Int }
}

/// See `Shell.run`.
private let launchLock = NSLock()

enum Shell {
  /// Runs `arguments` (no shell), feeding `stdin`, and kills it after `timeout` seconds so
  /// a hung plugin fails the test instead of the CI run.
  @discardableResult
  static func run(
    _ arguments: [String], environment: [String: String]? = nil, stdin: String = "",
    timeout: TimeInterval = 60
  ) throws -> CommandOutput {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    if let environment { process.environment = environment }
    let input = Pipe()
    let output = Pipe()
    let errors = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = errors
    // Foundation's Process on Linux is not safe to launch and wait on from many threads at
    // once (a test of 20 concurrent ADDs crashed inside Process.waitUntilExit): launches are
    // serialized, and the exit is awaited through terminationHandler, not its run loop.
    let exited = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in exited.signal() }
    try launchLock.withLock { try process.run() }
    input.fileHandleForWriting.write(Data(stdin.utf8))
    try input.fileHandleForWriting.close()
    let timer = DispatchWorkItem { [process] in if process.isRunning { process.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
    // Read both pipes before waiting, so a chatty child cannot block on a full pipe.
    let group = DispatchGroup()
    var stdoutData = Data()
    var stderrData = Data()
    DispatchQueue.global().async(group: group) {
      stdoutData = output.fileHandleForReading.readDataToEndOfFile()
    }
    DispatchQueue.global().async(group: group) {
      stderrData = errors.fileHandleForReading.readDataToEndOfFile()
    }
    exited.wait()
    group.wait()
    timer.cancel()
    return CommandOutput(
      status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
      stderr: String(decoding: stderrData, as: UTF8.self))
  }

  /// Runs a command that must succeed; its stdout.
  @discardableResult
  static func must(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws
    -> String
  {
    let result = try run(arguments)
    if result.status != 0 {
      XCTFail(
        "\(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr)", file: file,
        line: line)
    }
    return result.stdout
  }
}

/// Where the built binaries are: the package's own debug build, unless overridden.
enum Artifacts {
  static let repoRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  static var junction: String {
    ProcessInfo.processInfo.environment["JUNCTION_BIN"]
      ?? repoRoot.appendingPathComponent(".build/debug/junction").path
  }

  /// The CLI: $JUNCTIONCTL_BIN, else the package's debug build.
  static var junctionctl: String {
    ProcessInfo.processInfo.environment["JUNCTIONCTL_BIN"]
      ?? repoRoot.appendingPathComponent(".build/debug/junctionctl").path
  }

  static var driver: String {
    ProcessInfo.processInfo.environment["CNIDRIVER_BIN"]
      ?? repoRoot.appendingPathComponent(".build-driver/cnidriver").path
  }

  /// Debian's containernetworking-plugins.
  static let referencePlugins = "/usr/lib/cni"
}
