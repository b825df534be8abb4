import Foundation
import XCTest

/// A node namespace with one veth (both ends inside it) carrying an address: the device an
/// agent started with `--devices` serves, without touching the host's links.
struct DeviceNode {
  let namespace: String
  let device: String

  /// A fresh namespace named after `prefix`, lo up, `device` (peer `peer`) up with
  /// `address`/24. Nothing is left when it fails halfway; `remove()` when the test ends.
  init(prefix: String, device: String, peer: String, address: String) throws {
    namespace = TestNode.uniqueName(prefix)
    self.device = device
    try Shell.must(["ip", "netns", "add", namespace])
    do {
      for command in [
        ["link", "set", "lo", "up"],
        ["link", "add", device, "type", "veth", "peer", "name", peer],
        ["addr", "add", "\(address)/24", "dev", device],
        ["link", "set", device, "up"],
      ] {
        try Shell.must(["ip", "-n", namespace] + command)
      }
    } catch {
      remove()
      throw error
    }
  }

  /// Deletes the namespace (its veth goes with it).
  func remove() {
    _ = try? Shell.run(["ip", "netns", "del", namespace])
  }
}

/// Tests that each run one agent on one `DeviceNode`: both are gone when a test ends, also
/// when it failed.
class DeviceNodeTestCase: XCTestCase {
  var node: DeviceNode?
  var agent: TestAgent?

  override func tearDown() {
    agent?.tearDown()
    agent = nil
    node?.remove()
    node = nil
    super.tearDown()
  }

  /// The node prerequisites, then this test's node (see `DeviceNode`); its namespace.
  func makeNode(prefix: String, device: String, peer: String, address: String) throws -> String {
    try TestNode.requirePrerequisites()
    let node = try DeviceNode(prefix: prefix, device: device, peer: peer, address: address)
    self.node = node
    return node.namespace
  }
}
