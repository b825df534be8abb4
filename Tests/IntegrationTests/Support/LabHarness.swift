import Foundation
import XCTest

/// One `install/lab` cluster under test: a name unique per process and per test, a scratch
/// directory for the test's files (manifests, web roots, scripts), the lab's commands, and
/// the checks that `down` left nothing behind. Every lab suite drives the lab through this.
struct LabHarness {
  static var script: String { Artifacts.repoRoot.appendingPathComponent("install/lab").path }
  /// Where `install/lab` keeps each lab's state (`<root>/<name>/nodes`, `.../pods`).
  static let root = "/run/junction-lab"
  private static var counter = 0

  let name: String
  let directory: URL

  /// A fresh lab name and its scratch directory `<tmp>/<name>-<scratch>` (created). Nothing
  /// is up yet; call `tearDown()` when the test ends (a `defer` or a teardown block).
  init(scratch: String = "lab") throws {
    LabHarness.counter += 1
    // Within the lab's 12-character name limit.
    name = "jl\(getpid() % 100000)x\(LabHarness.counter)"
    directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(scratch)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  }

  /// This lab's state directory.
  var state: String { "\(LabHarness.root)/\(name)" }

  /// The node and agent prerequisites, what the lab's stand-in API server and its client
  /// need (openssl, PyYAML), and `tools` on the PATH (or in /usr/sbin).
  static func requirePrerequisites(tools: [String] = []) throws {
    try TestNode.requirePrerequisites()
    try TestAgent.requirePrerequisites()
    if try Shell.run(["python3", "-c", "import yaml"]).status != 0 {
      throw TestNode.missing("PyYAML is not installed (python3-yaml; install/deps.sh test)")
    }
    for tool in ["openssl"] + tools {
      let found = try Shell.run(["sh", "-c", "command -v \(tool) || test -x /usr/sbin/\(tool)"])
      if found.status != 0 {
        throw TestNode.missing("\(tool) is not installed (install/deps.sh test)")
      }
    }
  }

  /// Runs `install/lab --name <name> arguments`, whatever its status.
  @discardableResult
  func run(_ arguments: [String], timeout: TimeInterval = 120) throws -> CommandOutput {
    try Shell.run(["bash", LabHarness.script, "--name", name] + arguments, timeout: timeout)
  }

  /// Runs a lab command the test cannot go on without: its stdout, or a recorded failure
  /// (with the command's output) and a thrown error.
  @discardableResult
  func must(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws
    -> String
  {
    let result = try run(arguments)
    guard result.status == 0 else {
      let command = "lab \(arguments.joined(separator: " "))"
      XCTFail("\(command): \(result.stdout)\(result.stderr)", file: file, line: line)
      throw LabCommandFailed(description: "\(command) failed")
    }
    return result.stdout
  }

  /// `down` (its failure ignored) and the scratch directory removed: also after a failure.
  func tearDown() {
    _ = try? run(["down"])
    try? FileManager.default.removeItem(at: directory)
  }

  /// The pids the lab recorded for the agents of nodes 1...`nodes`.
  func agentPIDs(nodes: Int) throws -> [String] {
    try (1...nodes).map { node in
      try String(contentsOfFile: "\(state)/nodes/node\(node)/agent.pid", encoding: .utf8)
        .trimmingCharacters(in: .whitespacesAndNewlines)
    }
  }

  /// The pid the lab recorded for its stand-in API server.
  func apiserverPID() throws -> String {
    try String(contentsOfFile: "\(state)/apiserver.pid", encoding: .utf8)
      .trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// `text` written to `file` in the scratch directory; its path.
  @discardableResult
  func write(_ text: String, to file: String) throws -> String {
    let url = directory.appendingPathComponent(file)
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url.path
  }

  /// `yaml` written to `file` in the scratch directory and applied (`lab apply -f`).
  func apply(_ yaml: String, as file: String) throws {
    try must(["apply", "-f", try write(yaml, to: file)])
  }

  /// The seed's droids Service: ClusterIP 10.96.0.10, port 80 to the pods labelled
  /// role=jedi (the lab derives its EndpointSlice), with `trafficDistribution` when given.
  static func droids(distribution: String? = nil) -> String {
    """
    apiVersion: v1
    kind: Service
    metadata: {name: droids, namespace: default}
    spec:
      clusterIP: 10.96.0.10
      selector: {role: jedi}
      \(distribution.map { "trafficDistribution: \($0)" } ?? "")
      ports:
      - {name: http, port: 80, protocol: TCP, targetPort: 80}
    """
  }

  /// Pod `pod` on `node` serving "pod\n" over HTTP on `port` (busybox httpd, its web root
  /// in the scratch directory).
  func webPod(_ pod: String, node: String, labels: [String], port: Int = 80) throws {
    try must(["pod", "add", pod, "--node", node] + labels.flatMap { ["--label", $0] })
    try serveWeb(pod, port: port)
  }

  /// Starts busybox httpd in the existing pod `pod`, answering "pod\n" on `port`.
  func serveWeb(_ pod: String, port: Int = 80) throws {
    let root = directory.appendingPathComponent(pod)
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    try "\(pod)\n".write(
      to: root.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
    try must(
      ["exec", "--detach", pod, "--", "busybox", "httpd", "-f", "-p", "\(port)", "-h", root.path])
  }

  /// `arguments` run until they succeed, ten tries 0.3 s apart (a server just started); the
  /// last result.
  func retried(_ arguments: [String], tries: Int = 10) throws -> CommandOutput {
    var answer = CommandOutput(status: -1, stdout: "", stderr: "")
    for _ in 0..<tries {
      answer = try run(arguments)
      if answer.status == 0 { break }
      usleep(300_000)
    }
    return answer
  }

  /// Who answered `count` HTTP requests from pod `client` to `url`; a failed request (a
  /// server still starting) is retried, ten times at most.
  func answers(
    _ client: String, _ url: String, count: Int = 12, file: StaticString = #filePath,
    line: UInt = #line
  ) throws -> Set<String> {
    var seen: Set<String> = []
    var answered = 0
    var retries = 10
    while answered < count {
      let answer = try run(["exec", client, "--", "curl", "-s", "-m", "3", url])
      if answer.status == 0 {
        seen.insert(answer.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        answered += 1
      } else if retries > 0 {
        retries -= 1
        usleep(300_000)
      } else {
        XCTFail("\(client): \(url) does not answer: \(answer.stderr)", file: file, line: line)
        break
      }
    }
    return seen
  }

  /// No namespace, link, mount, directory, agent or API server process of this lab remains
  /// (by their pids; whatever ran in the lab's namespaces went with them).
  func assertNoTrace(
    agentPIDs: [String], apiserverPID: String? = nil, file: StaticString = #filePath,
    line: UInt = #line
  ) {
    let namespaces = (try? Shell.run(["ip", "netns", "list"]))?.stdout ?? ""
    let leftover = namespaces.split(separator: "\n").filter { $0.hasPrefix("\(name)-") }
    XCTAssertEqual(leftover, [], "namespaces left", file: file, line: line)
    let links = (try? Shell.run(["ip", "-o", "link"]))?.stdout ?? ""
    XCTAssertFalse(links.contains(name), "links left: \(links)", file: file, line: line)
    let mounts = TestAgent.procText("/proc/self/mounts") ?? ""
    XCTAssertFalse(mounts.contains("\(state)/"), "mounts left: \(mounts)", file: file, line: line)
    XCTAssertFalse(
      FileManager.default.fileExists(atPath: state), "lab dir left", file: file, line: line)
    for pid in agentPIDs {
      let cmdline = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
      XCTAssertFalse(
        cmdline.contains("junction-agent"), "agent \(pid) still running", file: file, line: line)
    }
    if let pid = apiserverPID {
      let cmdline = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
      XCTAssertFalse(
        cmdline.contains("standin_apiserver"), "the stand-in API server \(pid) still running",
        file: file, line: line)
    }
  }
}

/// A lab command the test cannot go on without failed (already reported by XCTFail).
struct LabCommandFailed: Error, CustomStringConvertible {
  var description: String
}
