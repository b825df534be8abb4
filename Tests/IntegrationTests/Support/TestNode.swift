import Foundation
import XCTest

/// A simulated Kubernetes node for one test: its own network namespace (the plugin's
/// "host"), a node address on loopback, a conflist, a libcni cache and a host-local data
/// dir of its own. Pods are namespaces wired up by the real plugin through the libcni
/// driver. `tearDown` removes every namespace and file it made, also after a failure.
final class TestNode {
  let name: String
  let nodeIP: String
  let podSubnet: String
  let directory: URL
  let network = "pods"
  private(set) var pods: [String] = []
  /// The node's junction-agent, started in the node namespace; nil for a node made
  /// without one (to test what the plugin does when the agent is down).
  private(set) var agent: TestAgent?
  /// Where the plugin looks for the agent, running or not.
  private(set) var agentSocket = ""
  /// Chained mode: the plugin before Junction in the list (bridge, ptp, macvlan), given
  /// this node's host-local IPAM object; nil for Junction alone in native mode.
  private let previousPlugin: ((_ ipam: [String: Any]) -> [String: Any])?
  private static var counter = 0

  var netnsPath: String { "/var/run/netns/\(name)" }
  var ipamDir: URL { directory.appendingPathComponent("ipam") }
  var confDir: URL { directory.appendingPathComponent("conf") }
  /// The same network in cniVersion 1.1.0, for GC and STATUS (libcni 1.1.2 cannot parse
  /// 1.1.0 results, so ADD/CHECK/DEL go through `confDir` at 1.0.0).
  var conf110Dir: URL { directory.appendingPathComponent("conf-1.1.0") }
  var binDir: URL { directory.appendingPathComponent("bin") }
  var cniPath: String { "\(binDir.path):\(Artifacts.referencePlugins)" }

  /// Unique per process and per node, so concurrent runs never share a name.
  static func uniqueName(_ role: String) -> String {
    counter += 1
    return "jt\(role)\(getpid() % 100000)x\(counter)"
  }

  init(
    nodeIP: String = "192.168.240.1", podSubnet: String = "10.240.1.0/24",
    ipam extra: [String: Any] = [:], mtu: Int = 1500, startAgent: Bool = true,
    agentArguments: [String] = [], agentLauncher: [String] = [],
    chainedAfter previousPlugin: ((_ ipam: [String: Any]) -> [String: Any])? = nil,
    beforeAgent: ((_ namespace: String) throws -> [String])? = nil
  ) throws {
    try TestNode.requirePrerequisites()
    self.previousPlugin = previousPlugin
    name = TestNode.uniqueName("n")
    self.nodeIP = nodeIP
    self.podSubnet = podSubnet
    directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(name)
    do {
      try setUp(
        ipam: extra, mtu: mtu, startAgent: startAgent, agentArguments: agentArguments,
        agentLauncher: agentLauncher, beforeAgent: beforeAgent)
    } catch {
      tearDown()  // a half-made node must not outlive the failed test
      throw error
    }
  }

  /// `beforeAgent` runs once the node's namespace exists, before its agent starts (e.g. to
  /// start an API server there), and gives more agent arguments.
  private func setUp(
    ipam extra: [String: Any], mtu: Int, startAgent: Bool, agentArguments: [String],
    agentLauncher: [String], beforeAgent: ((_ namespace: String) throws -> [String])?
  ) throws {
    try FileManager.default.createDirectory(at: binDir, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(at: confDir, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(at: conf110Dir, withIntermediateDirectories: true)
    try FileManager.default.createSymbolicLink(
      atPath: binDir.appendingPathComponent("junction").path,
      withDestinationPath: Artifacts.junction)
    try Shell.must(["ip", "netns", "add", name])
    try Shell.must(["ip", "-n", name, "link", "set", "lo", "up"])
    try Shell.must(["ip", "-n", name, "addr", "add", "\(nodeIP)/32", "dev", "lo"])
    let agentArguments = agentArguments + (try beforeAgent?(name) ?? [])
    if startAgent {
      let agent = try TestAgent(
        namespace: name, arguments: agentArguments, launcher: agentLauncher)
      self.agent = agent
      agentSocket = agent.socketPath
    } else {
      agentSocket = directory.appendingPathComponent("no-agent/junction.sock").path
    }
    try writeConflist(ipam: extra, mtu: mtu)
  }

  struct MissingPrerequisite: Error, CustomStringConvertible {
    var description: String
  }

  /// What a test does when something it needs is missing: under CI (CI set, as install/test.sh
  /// does) it fails, so a test that cannot run is never counted as passing; on a developer's
  /// machine it is skipped with the reason.
  static func missing(_ reason: String) -> any Error {
    if ProcessInfo.processInfo.environment["CI"] != nil {
      return MissingPrerequisite(description: reason)
    }
    return XCTSkip(reason)
  }

  /// Root, the plugin binary and the driver. Under CI a missing one fails the test; on a
  /// developer's machine without root the integration tests are skipped with the reason.
  static func requirePrerequisites() throws {
    if getuid() != 0 {
      let reason = "integration tests need root: they create network namespaces and veths"
      throw TestNode.missing(reason)
    }
    for (what, path) in [
      ("junction (swift build)", Artifacts.junction),
      ("cnidriver (install/build-driver.sh)", Artifacts.driver),
      (
        "host-local (apt-get install containernetworking-plugins)",
        Artifacts.referencePlugins + "/host-local"
      ),
    ]
    where !FileManager.default.isExecutableFile(atPath: path) {
      throw MissingPrerequisite(description: "\(what) is missing at \(path)")
    }
  }

  /// This node's host-local object: its own data dir, its pod subnet.
  func ipamConfig(_ extra: [String: Any] = [:]) -> [String: Any] {
    var ipam: [String: Any] = [
      "type": "host-local", "dataDir": ipamDir.path, "ranges": [[["subnet": podSubnet]]],
    ]
    ipam.merge(extra) { _, new in new }
    return ipam
  }

  var isChained: Bool { previousPlugin != nil }

  /// The plugin object, also used for raw calls.
  func pluginConfig(cniVersion: String = "1.0.0", ipam extra: [String: Any] = [:], mtu: Int = 1500)
    -> [String: Any]
  {
    if isChained {
      return [
        "cniVersion": cniVersion, "name": network, "type": "junction", "mode": "chained",
        "agentSocket": agentSocket, "agentTimeout": 5,
        "logFile": directory.appendingPathComponent("junction.log").path, "logLevel": "debug",
      ]
    }
    let ipam = ipamConfig(extra)
    return [
      "cniVersion": cniVersion, "name": network, "type": "junction", "mode": "native", "mtu": mtu,
      "agentSocket": agentSocket, "agentTimeout": 5,
      "logFile": directory.appendingPathComponent("junction.log").path, "logLevel": "debug",
      "ipam": ipam,
    ]
  }

  private func writeConflist(ipam: [String: Any], mtu: Int) throws {
    for (version, dir) in [("1.0.0", confDir), ("1.1.0", conf110Dir)] {
      var plugin = pluginConfig(cniVersion: version, ipam: ipam, mtu: mtu)
      plugin.removeValue(forKey: "cniVersion")
      plugin.removeValue(forKey: "name")
      var plugins = [plugin]
      // Debian's reference plugins (1.1.1) speak up to 1.0.0, so the 1.1.0 list (GC and
      // STATUS only) holds Junction alone: what is tested there is Junction's part.
      if let previousPlugin, version == "1.0.0" {
        plugins.insert(previousPlugin(ipamConfig(ipam)), at: 0)
      }
      let list: [String: Any] = ["cniVersion": version, "name": network, "plugins": plugins]
      try JSONSerialization.data(withJSONObject: list, options: [.prettyPrinted])
        .write(to: dir.appendingPathComponent("10-\(network).conflist"))
    }
  }

  /// Replaces the 1.0.0 conflist (what ADD, CHECK and DEL read) with `list`, e.g. one of
  /// cni-conf/'s examples adapted to this node.
  func replaceConflist(_ list: [String: Any]) throws {
    try JSONSerialization.data(withJSONObject: list, options: [.prettyPrinted])
      .write(to: confDir.appendingPathComponent("10-\(network).conflist"))
  }

  /// A new pod namespace (not yet attached).
  func makePodNamespace() throws -> String {
    let pod = TestNode.uniqueName("p")
    try Shell.must(["ip", "netns", "add", pod])
    pods.append(pod)
    return pod
  }

  func containerID(_ pod: String) -> String { "ctr-\(pod)" }

  /// Runs the libcni driver in this node's namespace, as kubelet's runtime would.
  func driver(
    _ verb: String, pod: String?, ifname: String = "eth0", containerID: String? = nil,
    cniVersion110: Bool = false, extraEnvironment: [String: String] = [:]
  ) throws -> CommandOutput {
    var environment = ProcessInfo.processInfo.environment
    environment["NETCONFPATH"] = (cniVersion110 ? conf110Dir : confDir).path
    environment["CNI_PATH"] = cniPath
    environment["CNI_CACHE_DIR"] = directory.appendingPathComponent("cache").path
    environment["CNI_IFNAME"] = ifname
    if let pod { environment["CNI_CONTAINERID"] = containerID ?? self.containerID(pod) }
    environment.merge(extraEnvironment) { _, new in new }
    return try Shell.run(
      [
        "ip", "netns", "exec", name, Artifacts.driver, verb, network,
        pod.map { "/var/run/netns/\($0)" } ?? "-",
      ],
      environment: environment)
  }

  /// ADD through libcni; fails the test unless it succeeds. The pod's first IPv4 address.
  /// `kubernetes` (namespace, name) goes in CNI_ARGS as kubelet passes it.
  @discardableResult
  func addPod(
    _ pod: String, kubernetes: (namespace: String, name: String)? = nil,
    file: StaticString = #filePath, line: UInt = #line
  ) throws -> String {
    var environment: [String: String] = [:]
    if let kubernetes {
      environment["CNI_ARGS"] =
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=\(kubernetes.namespace);K8S_POD_NAME=\(kubernetes.name)"
    }
    let result = try driver("add", pod: pod, extraEnvironment: environment)
    XCTAssertEqual(
      result.status, 0, "ADD \(pod): \(result.stdout) \(result.stderr)", file: file, line: line)
    let ips = result.json?["ips"] as? [[String: Any]] ?? []
    let address = (ips.first?["address"] as? String)?.split(separator: "/").first.map(String.init)
    return try XCTUnwrap(
      address, "ADD result has no address: \(result.stdout)", file: file, line: line)
  }

  /// A new pod namespace attached through the plugin with its Kubernetes namespace and name:
  /// (its network namespace, its address).
  func addNamedPod(
    _ namespace: String, _ name: String, file: StaticString = #filePath, line: UInt = #line
  ) throws -> (netns: String, address: String) {
    let netns = try makePodNamespace()
    let address = try addPod(netns, kubernetes: (namespace, name), file: file, line: line)
    return (netns, address)
  }

  /// Calls the plugin binary directly, for inputs libcni would refuse to send; `wrapper`
  /// runs it under another command (e.g. strace with fault injection).
  func rawCall(
    command: String, stdin: String, containerID: String? = "raw-ctr", netns: String? = nil,
    ifname: String? = "eth0", extra: [String: String] = [:], wrapper: [String] = []
  ) throws -> CommandOutput {
    var environment: [String: String] = ["CNI_COMMAND": command, "CNI_PATH": cniPath]
    if let containerID { environment["CNI_CONTAINERID"] = containerID }
    if let netns { environment["CNI_NETNS"] = netns }
    if let ifname { environment["CNI_IFNAME"] = ifname }
    environment.merge(extra) { _, new in new }
    let assignments = environment.map { "\($0.key)=\($0.value)" }
    return try Shell.run(
      ["ip", "netns", "exec", name] + wrapper + ["env", "-i"] + assignments + [Artifacts.junction],
      stdin: stdin)
  }

  static func json(_ object: [String: Any]) -> String {
    String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
  }

  /// Runs a command inside a namespace.
  func exec(in namespace: String, _ arguments: [String], timeout: TimeInterval = 30) throws
    -> CommandOutput
  {
    try Shell.run(["ip", "netns", "exec", namespace] + arguments, timeout: timeout)
  }

  /// Links in the node namespace other than loopback: what the plugin left behind.
  func hostLinks() throws -> [String] {
    try Shell.must(["ip", "-o", "-n", name, "link", "show"])
      .split(separator: "\n")
      .compactMap { line in
        line.split(separator: ":").dropFirst().first.map { $0.trimmingCharacters(in: .whitespaces) }
      }
      .map { $0.split(separator: "@").first.map(String.init) ?? $0 }
      .filter { $0 != "lo" }
  }

  /// Addresses host-local still holds for this network (its files are named by address).
  func reservedAddresses() -> [String] {
    let dir = ipamDir.appendingPathComponent(network).path
    let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
    return names.filter { !$0.hasPrefix("last_reserved_ip") && $0 != "lock" }.sorted()
  }

  /// What a failed ADD or a DEL must leave: no link on the node, no address held, and, when
  /// the pod namespace still exists, no `eth0` in it.
  func assertNothingLeftBehind(
    pod: String?, file: StaticString = #filePath, line: UInt = #line
  ) throws {
    XCTAssertEqual(
      try hostLinks(), [], "a link was left behind on the node", file: file, line: line)
    XCTAssertEqual(reservedAddresses(), [], "an address is still held", file: file, line: line)
    if let pod, pods.contains(pod) {
      XCTAssertEqual(
        try exec(in: pod, ["ip", "-o", "link", "show", "eth0"]).status, 1, "eth0 is in \(pod)",
        file: file, line: line)
    }
  }

  func ping(from pod: String, _ address: String) throws -> Bool {
    try exec(in: pod, ["ping", "-c", "1", "-W", "2", address]).status == 0
  }

  func deletePodNamespace(_ pod: String) throws {
    try Shell.run(["ip", "netns", "del", pod])
    pods.removeAll { $0 == pod }
  }

  /// Removes every namespace and file this node made; safe to call twice.
  func tearDown() {
    for pod in pods { _ = try? Shell.run(["ip", "netns", "del", pod]) }
    pods = []
    agent?.tearDown()
    agent = nil
    _ = try? Shell.run(["ip", "netns", "del", name])
    try? FileManager.default.removeItem(at: directory)
  }
}

extension TestNode {
  /// junctionctl against this node's agent.
  func junctionctl(_ arguments: [String], stdin: String = "") throws -> CommandOutput {
    try Shell.run([Artifacts.junctionctl, "--socket", agentSocket] + arguments, stdin: stdin)
  }
}
