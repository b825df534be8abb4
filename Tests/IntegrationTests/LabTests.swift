import Foundation
import XCTest

/// `install/lab` end to end: a two-node lab on the real kernel, pods through the real CNI
/// plugin, a selector Service whose EndpointSlice the lab derives, a ClusterIP reached
/// across nodes over native routing, and `down` leaving nothing behind (also after an `up`
/// that failed halfway).
final class LabTests: XCTestCase {
  static var script: String { Artifacts.repoRoot.appendingPathComponent("install/lab").path }
  static let root = "/run/junction-lab"
  private static var counter = 0

  /// Unique per process and per test, within the lab's 12-character name limit.
  static func uniqueLabName() -> String {
    counter += 1
    return "jl\(getpid() % 100000)x\(counter)"
  }

  @discardableResult
  func lab(_ name: String, _ arguments: [String], timeout: TimeInterval = 120) throws
    -> CommandOutput
  {
    try Shell.run(["bash", LabTests.script, "--name", name] + arguments, timeout: timeout)
  }

  /// Runs a lab command that must succeed; its stdout.
  @discardableResult
  func labMust(
    _ name: String, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line
  ) throws -> String {
    let result = try lab(name, arguments)
    XCTAssertEqual(
      result.status, 0, "lab \(arguments.joined(separator: " ")): \(result.stdout)\(result.stderr)",
      file: file, line: line)
    return result.stdout
  }

  func requirePrerequisites() throws {
    try TestNode.requirePrerequisites()
    try TestAgent.requirePrerequisites()
  }

  func testClusterIPAcrossTwoNodesThenDownLeavesNothing() throws {
    try crossNodeScenario(mode: "native")
  }

  func testChainedModeClusterIPAcrossTwoNodesThenDownLeavesNothing() throws {
    try crossNodeScenario(mode: "chained")
  }

  /// Two nodes in `mode`: a backend on node2, a client on node1, the droids Service; the
  /// derived slice on both agents, the ClusterIP answered across nodes, the slice following
  /// a pod's deletion, and nothing left after `down`.
  func crossNodeScenario(mode: String) throws {
    try requirePrerequisites()
    let name = LabTests.uniqueLabName()
    let web = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-web")
    try FileManager.default.createDirectory(at: web, withIntermediateDirectories: true)
    defer {
      _ = try? lab(name, ["down"])
      try? FileManager.default.removeItem(at: web)
    }

    try labMust(name, ["up", "--nodes", "2", "--mode", mode])
    let agentPIDs = try (1...2).map { node in
      try String(
        contentsOfFile: "\(LabTests.root)/\(name)/nodes/node\(node)/agent.pid", encoding: .utf8
      )
      .trimmingCharacters(in: .whitespacesAndNewlines)
    }
    for pid in agentPIDs {
      let cmdline = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
      XCTAssertTrue(cmdline.contains("junction-agent"), "recorded pid \(pid) is the agent")
    }
    try labMust(name, ["pod", "add", "jedi2", "--node", "node2", "--label", "role=jedi"])
    try labMust(name, ["pod", "add", "client1", "--node", "node1", "--label", "role=client"])
    let backendIP = try String(
      contentsOfFile: "\(LabTests.root)/\(name)/pods/jedi2/ip", encoding: .utf8
    ).trimmingCharacters(in: .whitespacesAndNewlines)
    XCTAssertTrue(backendIP.hasPrefix("10.240.2."), "node2's pod CIDR: \(backendIP)")
    try "jedi2\n".write(
      to: web.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
    try labMust(
      name,
      ["exec", "--detach", "jedi2", "--", "busybox", "httpd", "-f", "-p", "80", "-h", web.path])

    try applyDroids(name, in: web)

    // The derived slice is on both agents: the droids frontend with jedi2 as its backend.
    for node in ["node1", "node2"] {
      let list = try labMust(name, ["ctl", node, "service", "list", "-o", "json"])
      let services = try XCTUnwrap(
        (try? JSONSerialization.jsonObject(with: Data(list.utf8))) as? [[String: Any]], list)
      let droids = services.first {
        ($0["frontend"] as? String)?.hasPrefix("10.96.0.10:80") == true
      }
      let backends = (droids?["backends"] as? [[String: Any]] ?? []).compactMap {
        $0["address"] as? String
      }
      XCTAssertTrue(
        backends.contains { $0.hasPrefix(backendIP + ":") }, "\(node): \(list)")
    }

    // client1 on node1 reaches jedi2 on node2 through the ClusterIP (routed over the
    // underlay, no tunnel). A few tries: httpd was just started.
    var answer = CommandOutput(status: -1, stdout: "", stderr: "")
    for _ in 0..<10 {
      answer = try lab(
        name, ["exec", "client1", "--", "curl", "-s", "-m", "3", "http://10.96.0.10/"])
      if answer.status == 0 { break }
      usleep(300_000)
    }
    XCTAssertEqual(
      answer.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "jedi2", answer.stderr)

    // Deleting the backend re-derives the slice: no backend left for droids.
    try labMust(name, ["pod", "del", "jedi2"])
    let after = try labMust(name, ["ctl", "node1", "service", "list", "-o", "json"])
    XCTAssertFalse(after.contains(backendIP + ":"), after)

    try labMust(name, ["down"])
    assertNoTrace(of: name, agentPIDs: agentPIDs)
  }

  /// The seed's traffic-distribution scenario on two nodes in two zones: with PreferClose
  /// each node's client is answered from its own zone; when that zone's only backend goes,
  /// from the other zone; without PreferClose, from both.
  func testPreferCloseAnswersFromTheCallersZoneAndFallsBack() throws {
    try requirePrerequisites()
    let name = LabTests.uniqueLabName()
    let web = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-web")
    defer {
      _ = try? lab(name, ["down"])
      try? FileManager.default.removeItem(at: web)
    }
    try labMust(name, ["up", "--nodes", "2"])
    for (pod, node) in [("jedi1", "node1"), ("jedi2", "node2")] {
      try labMust(name, ["pod", "add", pod, "--node", node, "--label", "role=jedi"])
      let root = web.appendingPathComponent(pod)
      try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
      try "\(pod)\n".write(
        to: root.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
      try labMust(
        name,
        ["exec", "--detach", pod, "--", "busybox", "httpd", "-f", "-p", "80", "-h", root.path])
    }
    for (pod, node) in [("client1", "node1"), ("client2", "node2")] {
      try labMust(name, ["pod", "add", pod, "--node", node, "--label", "role=client"])
    }
    /// Who answered `count` requests from `client`; a failed request (httpd still starting)
    /// is retried, ten times at most.
    func answers(_ client: String, count: Int = 12) throws -> Set<String> {
      var seen: Set<String> = []
      var answered = 0
      var retries = 10
      while answered < count {
        let answer = try lab(
          name, ["exec", client, "--", "curl", "-s", "-m", "3", "http://10.96.0.10/"])
        if answer.status == 0 {
          seen.insert(answer.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
          answered += 1
        } else if retries > 0 {
          retries -= 1
          usleep(300_000)
        } else {
          XCTFail("\(client): the ClusterIP does not answer: \(answer.stderr)")
          break
        }
      }
      return seen
    }

    try applyDroids(name, in: web, distribution: "PreferClose")
    XCTAssertEqual(try answers("client1"), ["jedi1"], "node1 is in zone-a with jedi1")
    XCTAssertEqual(try answers("client2"), ["jedi2"], "node2 is in zone-b with jedi2")
    try labMust(name, ["pod", "del", "jedi1"])
    XCTAssertEqual(try answers("client1"), ["jedi2"], "zone-a has no backend left: fall back")
    try labMust(name, ["pod", "add", "jedi1", "--node", "node1", "--label", "role=jedi"])
    try labMust(
      name,
      [
        "exec", "--detach", "jedi1", "--", "busybox", "httpd", "-f", "-p", "80", "-h",
        web.appendingPathComponent("jedi1").path,
      ])
    try applyDroids(name, in: web)
    XCTAssertEqual(try answers("client1", count: 30), ["jedi1", "jedi2"], "without PreferClose")
    try labMust(name, ["down"])
  }

  /// The droids Service (selector role: jedi, port 80), written to `directory` and applied
  /// to lab `name`; the lab derives its EndpointSlice.
  func applyDroids(_ name: String, in directory: URL, distribution: String? = nil) throws {
    let manifest = directory.appendingPathComponent("droids.yaml")
    try """
    apiVersion: v1
    kind: Service
    metadata: {name: droids, namespace: default}
    spec:
      clusterIP: 10.96.0.10
      selector: {role: jedi}
      \(distribution.map { "trafficDistribution: \($0)" } ?? "")
      ports:
      - {name: http, port: 80, protocol: TCP, targetPort: 80}
    """.write(to: manifest, atomically: true, encoding: .utf8)
    try labMust(name, ["apply", "-f", manifest.path])
  }

  func testDownAfterAFailedUpLeavesNothing() throws {
    try requirePrerequisites()
    let name = LabTests.uniqueLabName()
    // A bin dir whose agent exits at once: `up` fails after namespaces, veths and the first
    // bpffs mount exist.
    let bin = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-bin")
    try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
    defer {
      _ = try? lab(name, ["down"])
      try? FileManager.default.removeItem(at: bin)
    }
    let built = Artifacts.repoRoot.appendingPathComponent(".build/debug")
    for tool in ["junction", "junctionctl"] {
      try FileManager.default.createSymbolicLink(
        atPath: bin.appendingPathComponent(tool).path,
        withDestinationPath: built.appendingPathComponent(tool).path)
    }
    let agent = bin.appendingPathComponent("junction-agent")
    try "#!/bin/sh\necho 'fake agent: refusing to start' >&2\nexit 1\n".write(
      to: agent, atomically: true, encoding: .utf8)
    chmod(agent.path, 0o755)

    let up = try lab(name, ["up", "--nodes", "2", "--bin", bin.path])
    XCTAssertNotEqual(up.status, 0, "up with an agent that cannot start: \(up.stdout)")
    XCTAssertTrue(up.stderr.contains("did not come up"), up.stderr)
    assertNoTrace(of: name, agentPIDs: [])
    // And `down` on what is no longer there is harmless.
    let down = try lab(name, ["down"])
    XCTAssertEqual(down.status, 0, down.stderr)
  }

  /// No namespace, link, mount, directory or agent process of lab `name` remains.
  func assertNoTrace(
    of name: String, agentPIDs: [String], file: StaticString = #filePath, line: UInt = #line
  ) {
    let namespaces = (try? Shell.run(["ip", "netns", "list"]))?.stdout ?? ""
    let leftover = namespaces.split(separator: "\n").filter { $0.hasPrefix("\(name)-") }
    XCTAssertEqual(leftover, [], "namespaces left", file: file, line: line)
    let links = (try? Shell.run(["ip", "-o", "link"]))?.stdout ?? ""
    XCTAssertFalse(links.contains(name), "links left: \(links)", file: file, line: line)
    let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
    XCTAssertFalse(
      mounts.contains("\(LabTests.root)/\(name)/"), "mounts left: \(mounts)", file: file,
      line: line)
    XCTAssertFalse(
      FileManager.default.fileExists(atPath: "\(LabTests.root)/\(name)"), "lab dir left",
      file: file, line: line)
    for pid in agentPIDs {
      let cmdline = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
      XCTAssertFalse(
        cmdline.contains("junction-agent"), "agent \(pid) still running", file: file, line: line)
    }
  }
}
