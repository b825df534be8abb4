import Foundation
import XCTest

/// python3 scripts (test servers and clients) run in pod namespaces, each stopped by its own
/// Process (never by name) when the test ends.
final class PodProcesses {
  private var processes: [Process] = []

  /// Starts python3 `script` with `arguments` in `pod`, its stdout into `stdout` when given,
  /// through `launcher` (e.g. setpriv with a capability set) when given.
  @discardableResult
  func spawn(
    in pod: String, _ script: String, _ arguments: [String], stdout: URL? = nil,
    through launcher: [String] = []
  ) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments =
      ["ip", "netns", "exec", pod] + launcher + ["python3", "-c", script] + arguments
    if let stdout {
      _ = FileManager.default.createFile(atPath: stdout.path, contents: nil)
      process.standardOutput = try FileHandle(forWritingTo: stdout)
    }
    try process.run()
    processes.append(process)
    return process
  }

  /// Waits until something listens on (TCP) or is bound to (UDP) port 8080 in `pod` of
  /// `node`; a test failure naming backend `name` when nothing does within five seconds.
  func waitForPort8080(
    _ node: TestNode, in pod: String, udp: Bool, name: String, file: StaticString = #filePath,
    line: UInt = #line
  ) throws {
    let table = udp ? "/proc/net/udp" : "/proc/net/tcp"
    for _ in 0..<50 {
      if try node.exec(in: pod, ["grep", "-q", ":1F90 ", table]).status == 0 { return }
      usleep(100_000)
    }
    XCTFail(
      "backend \(name) did not start on 8080 (\(udp ? "UDP" : "TCP"))", file: file, line: line)
  }

  /// Stops every process still running and waits for it.
  func stopAll() {
    for process in processes where process.isRunning {
      process.terminate()
      process.waitUntilExit()
    }
    processes = []
  }
}

/// Tests that run TestNodes (`nodes`) and processes in their pods (`processes`): both are
/// gone when a test ends, also when it failed; the processes first, while their namespaces
/// are still there.
class PodNodesTestCase: XCTestCase {
  var nodes: [TestNode] = []
  let processes = PodProcesses()

  override func tearDown() {
    processes.stopAll()
    for node in nodes { node.tearDown() }
    nodes = []
    super.tearDown()
  }
}

extension TestNode {
  /// Whether something listens on TCP port 8080 and is bound to UDP port 8080 in `pod`
  /// (the IPv6 tables when `ipv6`, which a dual-family [::] socket shows in) within five
  /// seconds.
  func servesPort8080(in pod: String, ipv6: Bool) throws -> Bool {
    let suffix = ipv6 ? "6" : ""
    for _ in 0..<50 {
      let tcp = try exec(in: pod, ["grep", "-q", ":1F90 ", "/proc/net/tcp\(suffix)"]).status == 0
      let udp = try exec(in: pod, ["grep", "-q", ":1F90 ", "/proc/net/udp\(suffix)"]).status == 0
      if tcp && udp { return true }
      usleep(100_000)
    }
    return false
  }

  /// `yaml` applied to this node's agent with `junctionctl apply -f -`; a test failure with
  /// its output when it is refused.
  func apply(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let ctl = Artifacts.junctionctl
    let applied = try Shell.run([ctl, "--socket", agentSocket, "apply", "-f", "-"], stdin: yaml)
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr, file: file, line: line)
  }
}
