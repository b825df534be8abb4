import Foundation
import XCTest

/// IPv6 and dual-stack pods end to end, through Debian's libcni (the driver) and host-local
/// with one range set per family, in fresh network namespaces on the real kernel: native
/// mode (both families usable the moment ADD returns), v6-only, chained after a dual-stack
/// bridge, CHECK and DEL over both families, and family mix-ups refused before IPAM runs.
final class DualStackTests: XCTestCase {
  private var nodes: [TestNode] = []

  override func tearDown() {
    for node in nodes { node.tearDown() }
    nodes = []
    super.tearDown()
  }

  private static let subnet4 = "10.240.1.0/24"
  private static let subnet6 = "fd00:10:240:1::/64"
  /// The node's own IPv6 address (on its loopback, as `nodeIP` is for IPv4).
  private static let nodeIPv6 = "fd00:192:168:240::1"

  private func makeNode(
    ranges: [[[String: Any]]], routes: [[String: Any]]? = nil,
    chainedAfter previous: ((_ ipam: [String: Any]) -> [String: Any])? = nil
  ) throws -> TestNode {
    var ipam: [String: Any] = ["ranges": ranges]
    if let routes { ipam["routes"] = routes }
    let node = try TestNode(podSubnet: Self.subnet4, ipam: ipam, chainedAfter: previous)
    nodes.append(node)
    try Shell.must(["ip", "-n", node.name, "addr", "add", "\(Self.nodeIPv6)/128", "dev", "lo"])
    return node
  }

  private func dualStackNode() throws -> TestNode {
    try makeNode(ranges: [[["subnet": Self.subnet4]], [["subnet": Self.subnet6]]])
  }

  /// ADD through libcni; the result's addresses (without prefix) by family.
  private func add(
    _ node: TestNode, _ pod: String, file: StaticString = #filePath, line: UInt = #line
  ) throws -> (json: [String: Any], v4: String?, v6: String?) {
    let result = try node.driver("add", pod: pod)
    XCTAssertEqual(result.status, 0, result.stdout + result.stderr, file: file, line: line)
    let json = try XCTUnwrap(result.json, result.stdout, file: file, line: line)
    let ips = (json["ips"] as? [[String: Any]] ?? []).compactMap {
      ($0["address"] as? String)?.split(separator: "/").first.map(String.init)
    }
    return (json, ips.first { !$0.contains(":") }, ips.first { $0.contains(":") })
  }

  private func ping6(_ node: TestNode, from namespace: String, _ address: String) throws -> Bool {
    try node.exec(in: namespace, ["ping", "-6", "-c", "1", "-W", "2", address]).status == 0
  }

  private func sysctl(_ node: TestNode, in namespace: String, _ key: String) throws -> String {
    try node.exec(in: namespace, ["cat", "/proc/sys/\(key)"]).stdout
      .trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// The `ip -6 addr` lines of eth0 in `pod`.
  private func ipv6Addresses(_ node: TestNode, _ pod: String) throws -> String {
    try node.exec(in: pod, ["ip", "-6", "-o", "addr", "show", "dev", "eth0"]).stdout
  }

  private func registeredIPs(_ node: TestNode, _ pod: String) throws -> [String]? {
    let id = "\(node.containerID(pod)):eth0"
    let endpoint = try XCTUnwrap(node.agent).endpoints().first { $0["id"] as? String == id }
    return (endpoint?["spec"] as? [String: Any])?["ips"] as? [String]
  }

  // MARK: - Native mode

  func testDualStackPodHasBothFamiliesUsableAtOnceAndCheckAndDelCoverBoth() throws {
    let node = try dualStackNode()
    let podA = try node.makePodNamespace()
    let podB = try node.makePodNamespace()
    let a = try add(node, podA)
    let b = try add(node, podB)
    let a4 = try XCTUnwrap(a.v4, "\(a.json)")
    let a6 = try XCTUnwrap(a.v6, "\(a.json)")
    let b4 = try XCTUnwrap(b.v4, "\(b.json)")
    let b6 = try XCTUnwrap(b.v6, "\(b.json)")
    XCTAssertTrue(a6.hasPrefix("fd00:10:240:1::"), a6)

    // Usable the moment ADD returns: a host address, not tentative, nothing waited for. (The
    // kernel's own link-local address appears asynchronously once the link is up, tentative
    // for the moment its DAD work takes to see accept_dad=0; it is not the pod's address.)
    let global = try ipv6Addresses(node, podA).split(separator: "\n")
      .filter { $0.contains("scope global") }
    XCTAssertEqual(global.count, 1, "\(global)")
    XCTAssertTrue(global.first?.contains("\(a6)/128") == true, "\(global)")
    XCTAssertFalse(global.first?.contains("tentative") ?? true, "\(global)")
    XCTAssertFalse(global.first?.contains("dadfailed") ?? true, "\(global)")
    XCTAssertTrue(try ping6(node, from: podA, b6), "pod A cannot ping6 pod B")
    XCTAssertTrue(try ping6(node, from: podB, a6), "pod B cannot ping6 pod A")
    XCTAssertTrue(try ping6(node, from: podA, Self.nodeIPv6), "pod cannot ping6 the node")
    XCTAssertTrue(try ping6(node, from: node.name, a6), "node cannot ping6 the pod")
    XCTAssertTrue(try node.ping(from: podA, b4), "IPv4 broke beside IPv6")
    XCTAssertTrue(try node.ping(from: podB, node.nodeIP), "IPv4 to the node broke beside IPv6")

    // The sysctls that make it so.
    XCTAssertEqual(try sysctl(node, in: podA, "net/ipv6/conf/eth0/disable_ipv6"), "0")
    XCTAssertEqual(try sysctl(node, in: podA, "net/ipv6/conf/eth0/accept_dad"), "0")
    XCTAssertEqual(try sysctl(node, in: podA, "net/ipv6/conf/eth0/accept_ra"), "0")
    XCTAssertEqual(try sysctl(node, in: node.name, "net/ipv6/conf/all/forwarding"), "1")

    // The result: both addresses on the pod interface with their gateways, a default route
    // per family.
    let ips = try XCTUnwrap(a.json["ips"] as? [[String: Any]])
    XCTAssertEqual(ips.count, 2, "\(ips)")
    XCTAssertEqual(ips.map { $0["interface"] as? Int }, [1, 1])
    XCTAssertEqual(
      ips.first { ($0["address"] as? String)?.contains(":") == true }?["gateway"]
        as? String, "fd00:10:240:1::1")
    let routes = try XCTUnwrap(a.json["routes"] as? [[String: Any]])
    let byDestination = Dictionary(
      routes.map { ($0["dst"] as? String ?? "", $0["gw"] as? String ?? "") }
    ) { first, _ in first }
    XCTAssertEqual(byDestination["0.0.0.0/0"], "10.240.1.1", "\(routes)")
    XCTAssertEqual(byDestination["::/0"], "fd00:10:240:1::1", "\(routes)")
    let podRoutes = try node.exec(in: podA, ["ip", "-6", "route", "show", "default"]).stdout
    XCTAssertTrue(podRoutes.contains("via fd00:10:240:1::1 dev eth0"), podRoutes)

    // The agent holds both, as junctionctl shows them.
    XCTAssertEqual(try registeredIPs(node, podA), ["\(a4)/32", "\(a6)/128"])
    let listed = try node.junctionctl(["endpoint", "list"])
    XCTAssertEqual(listed.status, 0, listed.stderr)
    XCTAssertTrue(listed.stdout.contains("\(a4)/32,\(a6)/128"), listed.stdout)

    // CHECK covers the IPv6 half: whole → passes; its default route gone → code 105.
    let healthy = try node.driver("check", pod: podA)
    XCTAssertEqual(healthy.status, 0, healthy.stdout + healthy.stderr)
    try Shell.must(["ip", "-n", podA, "-6", "route", "del", "default"])
    let broken = try node.driver("check", pod: podA)
    XCTAssertEqual(broken.errorCode, 105, broken.stdout)
    XCTAssertTrue((broken.json?["details"] as? String ?? "").contains("::/0"), broken.stdout)
    try Shell.must(["ip", "-n", podB, "-6", "addr", "del", "\(b6)/128", "dev", "eth0"])
    let missing = try node.driver("check", pod: podB)
    XCTAssertEqual(missing.errorCode, 105, missing.stdout)
    XCTAssertTrue((missing.json?["details"] as? String ?? "").contains(b6), missing.stdout)

    // DEL releases both families' addresses and everything else.
    XCTAssertEqual(node.reservedAddresses().count, 4, "\(node.reservedAddresses())")
    for pod in [podA, podB] {
      let result = try node.driver("del", pod: pod)
      XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
    }
    try node.assertNothingLeftBehind(pod: podA)
    XCTAssertEqual(try XCTUnwrap(node.agent).endpointIDs(), [])
  }

  func testIPv6OnlyPodGetsNoIPv4AndReachesPodsAndTheNode() throws {
    let node = try makeNode(ranges: [[["subnet": Self.subnet6]]])
    let podA = try node.makePodNamespace()
    let podB = try node.makePodNamespace()
    let a = try add(node, podA)
    let b = try add(node, podB)
    XCTAssertNil(a.v4, "\(a.json)")
    let a6 = try XCTUnwrap(a.v6, "\(a.json)")
    let b6 = try XCTUnwrap(b.v6, "\(b.json)")
    let routes = try XCTUnwrap(a.json["routes"] as? [[String: Any]])
    XCTAssertEqual(routes.compactMap { $0["dst"] as? String }, ["::/0"])
    let ipv4 = try node.exec(in: podA, ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout
    XCTAssertEqual(ipv4.trimmingCharacters(in: .whitespacesAndNewlines), "")
    let global = try ipv6Addresses(node, podA).split(separator: "\n")
      .filter { $0.contains("scope global") }
    XCTAssertEqual(global.count, 1, "\(global)")
    XCTAssertFalse(global.first?.contains("tentative") ?? true, "\(global)")

    XCTAssertTrue(try ping6(node, from: podA, b6), "pod A cannot ping6 pod B")
    XCTAssertTrue(try ping6(node, from: podB, Self.nodeIPv6), "pod cannot ping6 the node")
    XCTAssertTrue(try ping6(node, from: node.name, a6), "node cannot ping6 the pod")
    XCTAssertEqual(try registeredIPs(node, podA), ["\(a6)/128"])

    let check = try node.driver("check", pod: podA)
    XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
    for pod in [podA, podB] {
      XCTAssertEqual(try node.driver("del", pod: pod).status, 0)
    }
    try node.assertNothingLeftBehind(pod: podB)
  }

  /// cni-conf/10-junction-dual-stack.conflist as shipped, but for what a user must set (the
  /// subnets) and what this node keeps elsewhere: ADD gives both families, CHECK passes,
  /// DEL leaves nothing.
  func testTheDualStackExampleConflistWorksAsShipped() throws {
    let node = try dualStackNode()
    let url = Artifacts.repoRoot.appendingPathComponent("cni-conf/10-junction-dual-stack.conflist")
    var list = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    var plugins = try XCTUnwrap(list["plugins"] as? [[String: Any]])
    var ipam = try XCTUnwrap(plugins[0]["ipam"] as? [String: Any])
    XCTAssertEqual((ipam["ranges"] as? [Any])?.count, 2, "one range set per family")
    ipam["ranges"] = [[["subnet": Self.subnet4]], [["subnet": Self.subnet6]]]
    ipam["dataDir"] = node.ipamDir.path
    plugins[0]["ipam"] = ipam
    plugins[0]["agentSocket"] = node.agentSocket
    plugins[0]["logFile"] = node.directory.appendingPathComponent("junction.log").path
    list["plugins"] = plugins
    list["name"] = node.network
    try node.replaceConflist(list)

    let pod = try node.makePodNamespace()
    let added = try add(node, pod)
    let v6 = try XCTUnwrap(added.v6, "\(added.json)")
    XCTAssertNotNil(added.v4, "\(added.json)")
    XCTAssertTrue(try ping6(node, from: node.name, v6), "node cannot ping6 the pod")
    let check = try node.driver("check", pod: pod)
    XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
    let del = try node.driver("del", pod: pod)
    XCTAssertEqual(del.status, 0, del.stdout + del.stderr)
    try node.assertNothingLeftBehind(pod: pod)
  }

  // MARK: - Chained mode

  func testChainedAfterDualStackBridgeRegistersBothFamilies() throws {
    let node = try makeNode(
      ranges: [[["subnet": Self.subnet4]], [["subnet": Self.subnet6]]],
      routes: [["dst": "0.0.0.0/0"], ["dst": "::/0"]]
    ) { ipam in
      [
        "type": "bridge", "bridge": "jtbr6", "isGateway": true, "ipMasq": false, "ipam": ipam,
      ]
    }
    let podA = try node.makePodNamespace()
    let podB = try node.makePodNamespace()
    let a = try add(node, podA)
    let b = try add(node, podB)
    let a4 = try XCTUnwrap(a.v4, "\(a.json)")
    let a6 = try XCTUnwrap(a.v6, "\(a.json)")
    let b6 = try XCTUnwrap(b.v6, "\(b.json)")
    // bridge's result handed on unchanged (its /24 and /64), both registered as host
    // prefixes.
    let prefixes = (a.json["ips"] as? [[String: Any]] ?? []).compactMap { $0["address"] as? String }
    XCTAssertEqual(Set(prefixes), ["\(a4)/24", "\(a6)/64"])
    XCTAssertEqual(try registeredIPs(node, podA), ["\(a4)/32", "\(a6)/128"])
    let listed = try node.junctionctl(["endpoint", "list", "-o", "json"])
    XCTAssertTrue(listed.stdout.contains("\(a6)/128"), listed.stdout)
    // IPv6 passes the endpoint programs both ways (the pods talk over the bridge).
    XCTAssertTrue(try ping6(node, from: podA, b6), "pod A cannot ping6 pod B on the bridge")

    let check = try node.driver("check", pod: podA)
    XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
    for pod in [podA, podB] {
      let result = try node.driver("del", pod: pod)
      XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
    }
    XCTAssertEqual(try XCTUnwrap(node.agent).endpointIDs(), [])
    XCTAssertEqual(node.reservedAddresses(), [])
  }

  // MARK: - Refusals

  /// Each family mix-up is refused by field name with code 7, before host-local allocates
  /// anything or a link is made.
  func testIPv6ConfigMistakesAreRefusedWithAClearErrorAndLeaveNothing() throws {
    let cases: [(ipam: [String: Any], field: String, says: String)] = [
      (
        ["ranges": [[["subnet": Self.subnet4], ["subnet": Self.subnet6]]]],
        "ipam.ranges[0]", "mixes IPv4 and IPv6"
      ),
      (
        [
          "ranges": [
            [["subnet": Self.subnet4]], [["subnet": Self.subnet6, "gateway": "10.240.1.1"]],
          ]
        ],
        "ipam.ranges[1][0].gateway", "IPv4 address in the IPv6 subnet"
      ),
      (
        ["ranges": [[["subnet": Self.subnet6, "rangeStart": "fd00:10:241::5"]]]],
        "ipam.ranges[0][0].rangeStart", "outside the subnet"
      ),
      (
        [
          "ranges": [[["subnet": Self.subnet4]], [["subnet": Self.subnet6]]],
          "routes": [["dst": "::/0", "gw": "10.240.1.1"]],
        ],
        "ipam.routes[0].gw", "must be of its family"
      ),
      (["ranges": [[["subnet": "fd00:10:240:1::/129"]]]], "ipam.ranges[0][0].subnet", "CIDR"),
    ]
    let node = try dualStackNode()
    let pod = try node.makePodNamespace()
    for (ipam, field, says) in cases {
      let config = node.pluginConfig(ipam: ipam)
      let result = try node.rawCall(
        command: "ADD", stdin: TestNode.json(config), containerID: "bad-v6",
        netns: "/var/run/netns/\(pod)")
      XCTAssertEqual(result.status, 1, result.stdout)
      XCTAssertEqual(result.errorCode, 7, result.stdout)
      XCTAssertEqual(result.json?["cniVersion"] as? String, "1.0.0", result.stdout)
      let message = result.json?["msg"] as? String ?? ""
      XCTAssertTrue(message.contains("\"\(field)\""), "\(field): \(result.stdout)")
      XCTAssertTrue(message.contains(says), "\(says): \(result.stdout)")
      try node.assertNothingLeftBehind(pod: pod)
    }
  }
}
