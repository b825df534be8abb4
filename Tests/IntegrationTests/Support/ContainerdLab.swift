import Foundation
import XCTest

/// A private containerd for one test, driven through install/containerd/harness.sh: its
/// own root, state, socket and config in a temp dir, a busybox image built from
/// busybox-static, and containers started with `ctr run --cni` inside a node's network
/// namespace against this lab's conflist and plugin dir (mounted over /etc/cni/net.d and
/// /opt/cni/bin in a private mount namespace, so the machine's are never read or
/// written). `tearDown` stops every container and containerd and removes the dir, also
/// after a failure.
final class ContainerdLab {
  static let image = "junction.test/busybox:local"
  static var harness: String {
    Artifacts.repoRoot.appendingPathComponent("install/containerd/harness.sh").path
  }

  let directory: URL
  /// The network namespace `ctr run`, and so every CNI plugin, runs in.
  let netns: String
  private var isUp = false

  var netConfDir: URL { directory.appendingPathComponent("cni/net.d") }
  var pluginDir: URL { directory.appendingPathComponent("cni/bin") }
  /// host-local's dataDir, outside the harness's own tree so tests can read it.
  var ipamDir: URL { directory.appendingPathComponent("ipam") }
  /// libcni's result cache (what go-cni writes to /var/lib/cni).
  var cacheDir: URL { directory.appendingPathComponent("cni/cache") }

  /// containerd, runc and busybox-static (install/deps.sh test). Under CI a missing one
  /// fails the test; elsewhere the test is skipped with the reason.
  static func requirePrerequisites() throws {
    let missing = ["/usr/bin/containerd", "/usr/bin/ctr", "/usr/sbin/runc", "/bin/busybox"]
      .filter { !FileManager.default.isExecutableFile(atPath: $0) }
    guard !missing.isEmpty else { return }
    let problem =
      "\(missing.joined(separator: ", ")) missing: apt-get install containerd runc busybox-static"
    throw TestNode.missing(problem)
  }

  /// Starts containerd and imports the image; `netns` is where containers' host side lives.
  init(netns: String) throws {
    try ContainerdLab.requirePrerequisites()
    self.netns = netns
    directory = URL(fileURLWithPath: NSTemporaryDirectory())
      .appendingPathComponent(TestNode.uniqueName("ctrd"))
    do {
      try harness("up")
      isUp = true
      try harness("image", [ContainerdLab.image])
      try FileManager.default.createDirectory(at: ipamDir, withIntermediateDirectories: true)
    } catch {
      tearDown()
      throw error
    }
  }

  /// Links the plugins into the lab's plugin dir (what `ctr run` sees as /opt/cni/bin).
  func installPlugins(_ plugins: [String: String]) throws {
    for (name, path) in plugins {
      try FileManager.default.createSymbolicLink(
        atPath: pluginDir.appendingPathComponent(name).path, withDestinationPath: path)
    }
  }

  /// Writes the one conflist `ctr run --cni` loads (what it sees as /etc/cni/net.d).
  func writeConflist(name: String, plugins: [[String: Any]]) throws {
    let list: [String: Any] = ["cniVersion": "1.0.0", "name": name, "plugins": plugins]
    try JSONSerialization.data(withJSONObject: list, options: [.prettyPrinted, .sortedKeys])
      .write(to: netConfDir.appendingPathComponent("10-\(name).conflist"))
  }

  /// `ctr run --cni` in the background; returns once the task runs (CNI ADD succeeded).
  func start(_ name: String, _ command: [String]) throws {
    try harness("start", [netns, name, ContainerdLab.image] + command)
  }

  /// `ctr run --cni --rm` in the foreground: ADD, the command, DEL, removal.
  func run(_ name: String, _ command: [String], timeout: TimeInterval = 120) throws
    -> CommandOutput
  {
    try Shell.run(
      [ContainerdLab.harness, "run", directory.path, netns, name, ContainerdLab.image] + command,
      timeout: timeout)
  }

  /// The container's eth0 IPv4 address.
  func address(_ name: String) throws -> String {
    try harness("address", [name]).trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// `ctr task kill -s SIGKILL`, which makes the `ctr run` that started it run CNI DEL,
  /// then `ctr container rm`.
  func stop(_ name: String) throws {
    try harness("stop", [name])
  }

  /// Files host-local still holds for `network` (named by address).
  func reservedAddresses(network: String) -> [String] {
    let names =
      (try? FileManager.default.contentsOfDirectory(
        atPath: ipamDir.appendingPathComponent(network).path)) ?? []
    return names.filter { !$0.hasPrefix("last_reserved_ip") && $0 != "lock" }.sorted()
  }

  /// The results libcni cached at ADD and has not dropped at DEL.
  func cachedResults() -> [String] {
    (try? FileManager.default.contentsOfDirectory(
      atPath: cacheDir.appendingPathComponent("results").path))?.sorted() ?? []
  }

  /// Stops every container and containerd, removes the directory; safe to call twice.
  func tearDown() {
    if isUp || FileManager.default.fileExists(atPath: directory.path) {
      _ = try? Shell.run([ContainerdLab.harness, "down", directory.path], timeout: 120)
    }
    isUp = false
    try? FileManager.default.removeItem(at: directory)
  }

  @discardableResult
  private func harness(_ command: String, _ arguments: [String] = []) throws -> String {
    let result = try Shell.run(
      [ContainerdLab.harness, command, directory.path] + arguments, timeout: 120)
    guard result.status == 0 else {
      throw Failure(
        description: "harness.sh \(command) \(arguments.joined(separator: " ")) exited "
          + "\(result.status): \(result.stderr)")
    }
    return result.stdout
  }

  struct Failure: Error, CustomStringConvertible {
    var description: String
  }
}
