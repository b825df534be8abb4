import Foundation

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
