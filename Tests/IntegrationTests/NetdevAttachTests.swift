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

  /// The BPF programs on `direction` of the device, tc filters then tcx programs: (program
  /// name, program id) each.
  private func filters(_ node: String, _ direction: String) throws -> [(String, String)] {
    let shown = try Shell.must([
      "ip", "netns", "exec", node, "tc", "filter", "show", "dev", device, direction,
    ])
    let clsact = shown.split(separator: "\n").compactMap { line -> (String, String)? in
      let words = line.split(separator: " ").map(String.init)
      guard let nameAt = words.firstIndex(of: "name"), let idAt = words.firstIndex(of: "id"),
        nameAt + 1 < words.count, idAt + 1 < words.count
      else { return nil }
      return (words[nameAt + 1], words[idAt + 1])
    }
    let tcx = try TCXWitness.programsWithIDs(in: node, link: device)
    return clsact + (direction == "ingress" ? tcx.ingress : tcx.egress).map { ($0.name, $0.id) }
  }

  func testTheDeviceGetsBothProgramsAndARestartReplacesThemInPlace() throws {
    try theDeviceGetsBothProgramsAndARestartReplacesThemInPlace(hook: "clsact")
  }

  /// On a kernel without tcx (before 6.6) the agent refuses `--tc-hook tcx` and this fails,
  /// as TCXHookTests does.
  func testTheSameOnTheTCXHook() throws {
    try theDeviceGetsBothProgramsAndARestartReplacesThemInPlace(hook: "tcx")
  }

  private func theDeviceGetsBothProgramsAndARestartReplacesThemInPlace(hook: String) throws {
    let node = try makeNode()
    let agent = try TestAgent(
      namespace: node, arguments: ["--devices", device, "--tc-hook", hook])
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
