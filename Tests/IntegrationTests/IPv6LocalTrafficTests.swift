import Foundation
import XCTest

/// IPv6 hairpin and Local Redirect Policy end to end over real veths: dual-stack pods wired by
/// the plugin in native mode (host-local with an IPv4 and an IPv6 range), IPv6 Services,
/// EndpointSlices, Pods and policies applied through junctionctl, and python clients and
/// servers in the pods. Each server answers "name peer-address", so an answer says which pod
/// gave it and whom that pod saw; each client line ends with the peer its socket saw.
final class IPv6LocalTrafficTests: XCTestCase {
  private var node: TestNode?
  private let processes = PodProcesses()

  override func tearDown() {
    processes.stopAll()
    node?.tearDown()
    node = nil
    super.tearDown()
  }

  /// A dual-stack native-mode node (pod subnets 10.240.`n`.0/24 and fd00:10:240:`n`::/64).
  private func dualStackNode(_ n: Int) throws -> TestNode {
    let node = try TestNode(
      podSubnet: "10.240.\(n).0/24",
      ipam: ["ranges": [[["subnet": "10.240.\(n).0/24"]], [["subnet": "fd00:10:240:\(n)::/64"]]]])
    self.node = node
    return node
  }

  /// A pod through the plugin, serving as `name`: (netns, IPv4 address, IPv6 address).
  private func servingPod(_ name: String, on node: TestNode) throws -> (String, String, String) {
    let pod = try node.makePodNamespace()
    let result = try node.driver("add", pod: pod)
    XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
    let ips = (result.json?["ips"] as? [[String: Any]] ?? []).compactMap {
      ($0["address"] as? String)?.split(separator: "/").first.map(String.init)
    }
    let v4 = try XCTUnwrap(ips.first { !$0.contains(":") }, result.stdout)
    let v6 = try XCTUnwrap(ips.first { $0.contains(":") }, result.stdout)
    try processes.spawn(in: pod, EchoScripts.server(ipv6: true), [name])
    XCTAssertTrue(try node.servesPort8080(in: pod, ipv6: true), "\(name): the server did not start")
    return (pod, v4, v6)
  }

  private func call(_ vip: String, from pod: String, on node: TestNode) throws -> [String] {
    let result = try node.exec(in: pod, ["python3", "-c", EchoScripts.client, vip], timeout: 30)
    XCTAssertEqual(result.status, 0, result.stderr)
    return result.stdout.split(separator: "\n").map(String.init)
  }

  /// A pod object on `node` (what the API would say about a pod the plugin wired).
  private func podObject(_ name: String, node: TestNode, role: String, v4: String, v6: String)
    throws -> String
  {
    let nodeName = try XCTUnwrap(node.agent).name
    return """
      apiVersion: v1
      kind: Pod
      metadata: {name: \(name), namespace: default, labels: {role: \(role)}}
      spec: {nodeName: \(nodeName)}
      status:
        podIP: \(v4)
        podIPs: [{ip: \(v4)}, {ip: "\(v6)"}]
        conditions: [{type: Ready, status: "True"}]
      """
  }

  /// A pod that is the only backend of an IPv6 ClusterIP reaches itself over TCP and UDP: its
  /// server sees the IPv6 service loopback address, its client sees [VIP]:80; twice (new
  /// connections again).
  func testAPodThatIsItsIPv6ServicesOnlyBackendGetsItsOwnAnswer() throws {
    let node = try dualStackNode(63)
    let (pod, _, v6) = try servingPod("me", on: node)
    let vip = "fd00:96::63"
    try node.apply(ServiceManifest.ipv6TCPAndUDP(name: "myself", vip: vip, backends: [v6]))
    for _ in 0..<2 {
      XCTAssertEqual(
        try call(vip, from: pod, on: node),
        ["me 100::a9fe:2a01 | \(vip) 80", "me 100::a9fe:2a01 | \(vip) 80"], "TCP then UDP")
    }
  }

  /// A service matcher over an IPv6 Service: a client gets the node's droid, and, with
  /// skipRedirectFromBackend, the droid itself gets the original Service's backend (the jedi),
  /// each answer from [VIP]:80. An address matcher on an IPv6 address reaches the droid too.
  /// `junctionctl lrp list` shows the IPv6 frontends.
  func testIPv6LocalRedirectByServiceAndByAddressAndTheSkippedBackend() throws {
    let node = try dualStackNode(64)
    let (client, _, clientV6) = try servingPod("client", on: node)
    let (jediPod, jediV4, jediV6) = try servingPod("jedi", on: node)
    let (droidPod, droidV4, droidV6) = try servingPod("droid", on: node)
    _ = jediPod
    let vip = "fd00:96::64"
    try node.apply(ServiceManifest.ipv6TCPAndUDP(name: "droids", vip: vip, backends: [jediV6]))
    XCTAssertEqual(
      try call(vip, from: client, on: node),
      ["jedi \(clientV6) | \(vip) 80", "jedi \(clientV6) | \(vip) 80"], "the Service first")

    try node.apply(
      [
        try podObject("jedi", node: node, role: "jedi", v4: jediV4, v6: jediV6),
        try podObject("droid", node: node, role: "droid", v4: droidV4, v6: droidV6),
        ServiceManifest.droidsRedirectPolicy(
          toPorts: ServiceManifest.tcpAndUDP8080, skipRedirectFromBackend: true),
        """
        apiVersion: cilium.io/v2
        kind: CiliumLocalRedirectPolicy
        metadata: {name: metadata6, namespace: default}
        spec:
          redirectFrontend:
            addressMatcher:
              ip: "fd00:a9fe::fe"
              toPorts: [{port: "80", name: tcp, protocol: TCP}, {port: "80", name: udp, protocol: UDP}]
          redirectBackend:
            localEndpointSelector: {matchLabels: {role: droid}}
            toPorts: [{port: "8080", name: tcp, protocol: TCP}, {port: "8080", name: udp, protocol: UDP}]
        """,
      ].joined(separator: "\n---\n"))

    XCTAssertEqual(
      try call(vip, from: client, on: node),
      ["droid \(clientV6) | \(vip) 80", "droid \(clientV6) | \(vip) 80"], "redirected by Service")
    XCTAssertEqual(
      try call(vip, from: droidPod, on: node),
      ["jedi \(droidV6) | \(vip) 80", "jedi \(droidV6) | \(vip) 80"],
      "skipRedirectFromBackend: the droid gets the original Service")
    XCTAssertEqual(
      try call("fd00:a9fe::fe", from: client, on: node),
      ["droid \(clientV6) | fd00:a9fe::fe 80", "droid \(clientV6) | fd00:a9fe::fe 80"],
      "redirected by address")

    let listed = try node.junctionctl(["lrp", "list"])
    XCTAssertEqual(listed.status, 0, listed.stderr)
    for expected in [
      "[\(vip)]:80/TCP", "[\(vip)]:80/UDP", "[\(droidV6)]:8080/TCP", "[fd00:a9fe::fe]:80/UDP",
    ] {
      XCTAssertTrue(listed.stdout.contains(expected), "\(expected) in:\n\(listed.stdout)")
    }
  }
}
