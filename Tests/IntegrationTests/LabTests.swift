import Foundation
import XCTest

/// `install/lab` end to end: a two-node lab on the real kernel, pods through the real CNI
/// plugin, a selector Service whose EndpointSlice the lab derives, a ClusterIP reached
/// across nodes over native routing, and `down` leaving nothing behind (also after an `up`
/// that failed halfway).
final class LabTests: XCTestCase {
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
    try LabHarness.requirePrerequisites()
    let lab = try LabHarness(scratch: "web")
    defer { lab.tearDown() }

    try lab.must(["up", "--nodes", "2", "--mode", mode])
    let agentPIDs = try lab.agentPIDs(nodes: 2)
    let apiserverPID = try lab.apiserverPID()
    for pid in agentPIDs {
      let cmdline = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
      XCTAssertTrue(cmdline.contains("junction-agent"), "recorded pid \(pid) is the agent")
    }
    try lab.must(["pod", "add", "jedi2", "--node", "node2", "--label", "role=jedi"])
    try lab.must(["pod", "add", "client1", "--node", "node1", "--label", "role=client"])
    let backendIP = try String(contentsOfFile: "\(lab.state)/pods/jedi2/ip", encoding: .utf8)
      .trimmingCharacters(in: .whitespacesAndNewlines)
    XCTAssertTrue(backendIP.hasPrefix("10.240.2."), "node2's pod CIDR: \(backendIP)")
    try lab.serveWeb("jedi2")

    try lab.apply(LabHarness.droids(), as: "droids.yaml")

    // The derived slice is on both agents: the droids frontend with jedi2 as its backend.
    for node in ["node1", "node2"] {
      let list = try lab.must(["ctl", node, "service", "list", "-o", "json"])
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
    let answer = try lab.retried(
      ["exec", "client1", "--", "curl", "-s", "-m", "3", "http://10.96.0.10/"])
    XCTAssertEqual(
      answer.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "jedi2", answer.stderr)

    // Deleting the backend re-derives the slice: no backend left for droids.
    try lab.must(["pod", "del", "jedi2"])
    let after = try lab.must(["ctl", "node1", "service", "list", "-o", "json"])
    XCTAssertFalse(after.contains(backendIP + ":"), after)

    try lab.must(["down"])
    lab.assertNoTrace(agentPIDs: agentPIDs, apiserverPID: apiserverPID)
  }

  /// The seed's traffic-distribution scenario on two nodes in two zones: with PreferClose
  /// each node's client is answered from its own zone; when that zone's only backend goes,
  /// from the other zone; without PreferClose, from both.
  func testPreferCloseAnswersFromTheCallersZoneAndFallsBack() throws {
    try LabHarness.requirePrerequisites()
    let lab = try LabHarness(scratch: "web")
    defer { lab.tearDown() }
    try lab.must(["up", "--nodes", "2"])
    for (pod, node) in [("jedi1", "node1"), ("jedi2", "node2")] {
      try lab.webPod(pod, node: node, labels: ["role=jedi"])
    }
    for (pod, node) in [("client1", "node1"), ("client2", "node2")] {
      try lab.must(["pod", "add", pod, "--node", node, "--label", "role=client"])
    }
    func answers(_ client: String, count: Int = 12) throws -> Set<String> {
      try lab.answers(client, "http://10.96.0.10/", count: count)
    }

    try lab.apply(LabHarness.droids(distribution: "PreferClose"), as: "droids.yaml")
    XCTAssertEqual(try answers("client1"), ["jedi1"], "node1 is in zone-a with jedi1")
    XCTAssertEqual(try answers("client2"), ["jedi2"], "node2 is in zone-b with jedi2")
    try lab.must(["pod", "del", "jedi1"])
    XCTAssertEqual(try answers("client1"), ["jedi2"], "zone-a has no backend left: fall back")
    try lab.webPod("jedi1", node: "node1", labels: ["role=jedi"])
    try lab.apply(LabHarness.droids(), as: "droids.yaml")
    XCTAssertEqual(try answers("client1", count: 30), ["jedi1", "jedi2"], "without PreferClose")
    try lab.must(["down"])
  }

  func testDownAfterAFailedUpLeavesNothing() throws {
    try LabHarness.requirePrerequisites()
    // A bin dir whose agent exits at once: `up` fails after namespaces, veths and the first
    // bpffs mount exist.
    let lab = try LabHarness(scratch: "bin")
    let bin = lab.directory
    defer { lab.tearDown() }
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

    let up = try lab.run(["up", "--nodes", "2", "--bin", bin.path])
    XCTAssertNotEqual(up.status, 0, "up with an agent that cannot start: \(up.stdout)")
    XCTAssertTrue(up.stderr.contains("did not come up"), up.stderr)
    lab.assertNoTrace(agentPIDs: [])
    // And `down` on what is no longer there is harmless.
    let down = try lab.run(["down"])
    XCTAssertEqual(down.status, 0, down.stderr)
  }
}
