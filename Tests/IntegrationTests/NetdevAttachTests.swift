import Foundation
import XCTest

/// The agent's side of the north-south programs: with `--devices` it loads netdev.o next to
/// endpoint.o, pins from_netdev/to_netdev and attaches them to each device's tc ingress and
/// egress; a restart replaces Junction's filters in place (one per direction, the new
/// programs), never stacks a second one.
final class NetdevAttachTests: DeviceNodeTestCase {
  private let device = "jndev0"

  /// A node namespace with the device, once the agent and netdev.o are there; its name.
  private func makeNode() throws -> String {
    try TestAgent.requirePrerequisites()
    guard FileManager.default.fileExists(atPath: TestAgent.bpfObjects + "/netdev.o") else {
      throw TestNode.missing(
        "netdev.o (install/build-bpf.sh) is missing at \(TestAgent.bpfObjects)")
    }
    return try makeNode(prefix: "nd", device: device, peer: "jndev1", address: "192.168.78.2")
  }

  /// The BPF filters on `direction` of the device: (program name, program id) each.
  private func filters(_ node: String, _ direction: String) throws -> [(String, String)] {
    let shown = try Shell.must([
      "ip", "netns", "exec", node, "tc", "filter", "show", "dev", device, direction,
    ])
    return shown.split(separator: "\n").compactMap { line in
      let words = line.split(separator: " ").map(String.init)
      guard let nameAt = words.firstIndex(of: "name"), let idAt = words.firstIndex(of: "id"),
        nameAt + 1 < words.count, idAt + 1 < words.count
      else { return nil }
      return (words[nameAt + 1], words[idAt + 1])
    }
  }

  func testTheDeviceGetsBothProgramsAndARestartReplacesThemInPlace() throws {
    let node = try makeNode()
    let agent = try TestAgent(namespace: node, arguments: ["--devices", device])
    self.agent = agent

    let ingress = try filters(node, "ingress")
    let egress = try filters(node, "egress")
    XCTAssertEqual(ingress.map(\.0), ["from_netdev"])
    XCTAssertEqual(egress.map(\.0), ["to_netdev"])
    for pin in ["from_netdev", "to_netdev"] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: agent.bpfFS + "/" + pin), pin)
    }
    XCTAssertTrue(agent.log.contains("north-south programs attached"), agent.log)

    agent.stop()
    // Stopped, the programs stay: north-south traffic does not depend on the agent running.
    XCTAssertEqual(try filters(node, "ingress").map(\.0), ["from_netdev"])
    try agent.start()
    let after = try filters(node, "ingress")
    XCTAssertEqual(after.map(\.0), ["from_netdev"], "replaced, not stacked")
    XCTAssertNotEqual(after.first?.1, ingress.first?.1, "the restarted agent's program")
    XCTAssertEqual(try filters(node, "egress").map(\.0), ["to_netdev"])
  }
}
