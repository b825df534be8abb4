import Foundation
import XCTest

/// `install/lab up --ip-family`: pods get addresses of the lab's families from each node's
/// pod CIDRs, IPv6 pod CIDRs are routed natively between nodes as IPv4 ones are, the agents
/// hold both families, and the v1 Pods carry every address.
final class LabIPFamilyTests: XCTestCase {
  private func addresses(_ lab: LabHarness, _ pod: String) throws -> [String] {
    try String(contentsOfFile: "\(lab.state)/pods/\(pod)/ips", encoding: .utf8)
      .split(separator: "\n").map(String.init)
  }

  private func ping(_ lab: LabHarness, from pod: String, _ address: String) throws -> CommandOutput
  {
    try lab.run(["exec", pod, "--", "ping", "-c", "1", "-W", "2", address])
  }

  private func registeredIPs(_ lab: LabHarness, node: String) throws -> [String] {
    let list = try lab.must(["ctl", node, "endpoint", "list", "-o", "json"])
    let endpoints = try XCTUnwrap(
      (try? JSONSerialization.jsonObject(with: Data(list.utf8))) as? [[String: Any]], list)
    return endpoints.flatMap { ($0["spec"] as? [String: Any])?["ips"] as? [String] ?? [] }
  }

  func testDualStackPodsReachEachOtherAcrossNodesOnBothFamilies() throws {
    try LabHarness.requirePrerequisites()
    let lab = try LabHarness(scratch: "dual")
    defer { lab.tearDown() }
    let up = try lab.must(["up", "--nodes", "2", "--ip-family", "dual"])
    XCTAssertTrue(up.contains("pods dual"), up)
    let agentPIDs = try lab.agentPIDs(nodes: 2)
    try lab.must(["pod", "add", "a1", "--node", "node1"])
    try lab.must(["pod", "add", "b2", "--node", "node2"])
    let a = try addresses(lab, "a1")
    let b = try addresses(lab, "b2")
    XCTAssertEqual(a.count, 2, "\(a)")
    XCTAssertEqual(b.count, 2, "\(b)")
    // IPv4 first: the pod's `ip` (what Services and the other lab tests read) is unchanged.
    XCTAssertTrue(a[0].hasPrefix("10.240.1."), "\(a)")
    XCTAssertTrue(a[1].hasPrefix("fd00:10:240:1::"), "\(a)")
    XCTAssertTrue(b[1].hasPrefix("fd00:10:240:2::"), "\(b)")
    let ip = try String(contentsOfFile: "\(lab.state)/pods/a1/ip", encoding: .utf8)
    XCTAssertEqual(ip.trimmingCharacters(in: .whitespacesAndNewlines), a[0])

    // Across nodes, over the underlay, on both families; and from the external client.
    for (from, to) in [("a1", b[1]), ("b2", a[1]), ("a1", b[0]), ("b2", a[0])] {
      let result = try ping(lab, from: from, to)
      XCTAssertEqual(result.status, 0, "\(from) → \(to): \(result.stdout)\(result.stderr)")
    }
    let client = try lab.run(["exec-client", "--", "ping", "-c", "1", "-W", "2", b[1]])
    XCTAssertEqual(client.status, 0, "client → \(b[1]): \(client.stdout)\(client.stderr)")

    // Each node's agent holds its pod's two addresses; the v1 Pod carries both.
    XCTAssertEqual(try registeredIPs(lab, node: "node1"), ["\(a[0])/32", "\(a[1])/128"])
    XCTAssertEqual(try registeredIPs(lab, node: "node2"), ["\(b[0])/32", "\(b[1])/128"])
    let pod = try lab.must(["get", "Pod", "default/b2"])
    let object = try XCTUnwrap(
      (try? JSONSerialization.jsonObject(with: Data(pod.utf8))) as? [String: Any], pod)
    let status = try XCTUnwrap(object["status"] as? [String: Any], pod)
    XCTAssertEqual(status["podIP"] as? String, b[0])
    XCTAssertEqual((status["podIPs"] as? [[String: String]])?.compactMap { $0["ip"] }, b)

    try lab.must(["down"])
    lab.assertNoTrace(agentPIDs: agentPIDs)
  }

  /// IPv6 only, chained after a bridge (whose gateway is on cni0): no IPv4 pod address,
  /// IPv6 across nodes.
  func testIPv6OnlyChainedPodsReachEachOtherAcrossNodes() throws {
    try LabHarness.requirePrerequisites()
    let lab = try LabHarness(scratch: "v6")
    defer { lab.tearDown() }
    try lab.must(["up", "--nodes", "2", "--mode", "chained", "--ip-family", "ipv6"])
    let agentPIDs = try lab.agentPIDs(nodes: 2)
    try lab.must(["pod", "add", "a1", "--node", "node1"])
    try lab.must(["pod", "add", "b2", "--node", "node2"])
    let a = try addresses(lab, "a1")
    let b = try addresses(lab, "b2")
    XCTAssertEqual(a.count, 1, "\(a)")
    XCTAssertTrue(a[0].hasPrefix("fd00:10:240:1::"), "\(a)")
    XCTAssertTrue(b[0].hasPrefix("fd00:10:240:2::"), "\(b)")
    let ipv4 = try lab.run(["exec", "a1", "--", "ip", "-4", "-o", "addr", "show", "dev", "eth0"])
    XCTAssertEqual(ipv4.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "")

    for (from, to) in [("a1", b[0]), ("b2", a[0])] {
      let result = try ping(lab, from: from, to)
      XCTAssertEqual(result.status, 0, "\(from) → \(to): \(result.stdout)\(result.stderr)")
    }
    XCTAssertEqual(try registeredIPs(lab, node: "node2"), ["\(b[0])/128"])

    try lab.must(["down"])
    lab.assertNoTrace(agentPIDs: agentPIDs)
  }

  func testUnknownIPFamilyIsRefused() throws {
    try LabHarness.requirePrerequisites()
    let lab = try LabHarness(scratch: "bad")
    defer { lab.tearDown() }
    let up = try lab.run(["up", "--ip-family", "ipv5"])
    XCTAssertNotEqual(up.status, 0)
    XCTAssertTrue(up.stderr.contains("--ip-family must be ipv4, ipv6 or dual"), up.stderr)
    lab.assertNoTrace(agentPIDs: [])
  }
}
