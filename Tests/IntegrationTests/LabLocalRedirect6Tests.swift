import Foundation
import XCTest

/// The seed's Local Redirect Policy scenarios over IPv6, in a two-node dual-stack
/// `install/lab` (`--ip-family dual`, real kernel, pods through the real CNI plugin, one agent
/// per node): an IPv6 droids Service redirected to each caller's node's droid, a droid reaching
/// its own frontend (with skipRedirectFromBackend: the jedis; without: itself, a hairpin), and
/// an IPv6 address redirected to the node's proxy.
final class LabLocalRedirect6Tests: XCTestCase {
  private func addresses(_ lab: LabHarness, _ pod: String) throws -> [String] {
    try String(contentsOfFile: "\(lab.state)/pods/\(pod)/ips", encoding: .utf8)
      .split(separator: "\n").map(String.init)
  }

  /// The pod's IPv6 address (the lab lists IPv4 first).
  private func ipv6(_ lab: LabHarness, _ pod: String) throws -> String {
    let ips = try addresses(lab, pod)
    return try XCTUnwrap(ips.first { $0.contains(":") }, "\(pod): \(ips)")
  }

  /// An IPv6-only droids Service without a selector (so the lab derives nothing for it) and
  /// its IPv6 EndpointSlice over `jedis` (address, node).
  private func droids6(vip: String, jedis: [(String, String)]) -> String {
    let endpoints = jedis.map {
      "- {addresses: [\"\($0.0)\"], nodeName: \($0.1), conditions: {ready: true}}"
    }
    return """
      apiVersion: v1
      kind: Service
      metadata: {name: droids6, namespace: default}
      spec:
        clusterIP: \(vip)
        clusterIPs: [\(vip)]
        ipFamilies: [IPv6]
        ipFamilyPolicy: SingleStack
        ports:
        - {name: http, port: 80, protocol: TCP, targetPort: 80}
      ---
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata:
        name: droids6-v6
        namespace: default
        labels: {kubernetes.io/service-name: droids6}
      addressType: IPv6
      ports:
      - {name: http, port: 80, protocol: TCP}
      endpoints:
      \(endpoints.joined(separator: "\n"))
      """
  }

  private func droidsPolicy(skip: Bool) -> String {
    ServiceManifest.droidsRedirectPolicy(service: "droids6", skipRedirectFromBackend: skip)
  }

  func testIPv6LocalRedirectByServiceAndByAddressInADualStackLab() throws {
    try LabHarness.requirePrerequisites()
    let lab = try LabHarness(scratch: "lrp6")
    addTeardownBlock { lab.tearDown() }
    try lab.must(["up", "--nodes", "2", "--ip-family", "dual"])
    try lab.webPod("obi-wan", node: "node1", labels: ["role=jedi"])
    try lab.webPod("luke", node: "node2", labels: ["role=jedi"])
    try lab.webPod("r2-d2", node: "node1", labels: ["role=droid"])
    try lab.webPod("c3-po", node: "node2", labels: ["role=droid"])
    try lab.webPod("proxy1", node: "node1", labels: ["app=proxy"])
    for (pod, node) in [("trooper1", "node1"), ("trooper2", "node2")] {
      try lab.must(["pod", "add", pod, "--node", node, "--label", "role=soldier"])
    }
    let vip = "fd00:96::10"
    try lab.apply(
      droids6(
        vip: vip, jedis: [(try ipv6(lab, "obi-wan"), "node1"), (try ipv6(lab, "luke"), "node2")]),
      as: "droids6.yaml")
    let url = "http://[\(vip)]/"
    XCTAssertEqual(try lab.answers("trooper1", url, count: 30), ["obi-wan", "luke"])

    // By Service: each caller's node's droid.
    let policy = try lab.write(droidsPolicy(skip: false), to: "lrp6.yaml")
    try lab.must(["apply", "-f", policy])
    XCTAssertEqual(try lab.answers("trooper1", url), ["r2-d2"])
    XCTAssertEqual(try lab.answers("trooper2", url), ["c3-po"])
    let list = try lab.must(["ctl", "node1", "lrp", "list"])
    XCTAssertTrue(list.contains("[\(vip)]:80/TCP"), list)
    XCTAssertTrue(list.contains("[\(try ipv6(lab, "r2-d2"))]:80/TCP"), list)

    // A droid calling its own frontend: itself (an IPv6 hairpin) without the skip, the
    // original Service's jedis with it.
    XCTAssertEqual(try lab.answers("r2-d2", url, count: 6), ["r2-d2"])
    try lab.apply(droidsPolicy(skip: true), as: "skip6.yaml")
    XCTAssertEqual(try lab.answers("r2-d2", url, count: 20), ["obi-wan", "luke"])
    XCTAssertEqual(try lab.answers("trooper1", url), ["r2-d2"], "others are still redirected")

    // By address: an IPv6 address no Service has, to node1's proxy.
    try lab.apply(
      """
      apiVersion: cilium.io/v2
      kind: CiliumLocalRedirectPolicy
      metadata: {name: lrp-addr6}
      spec:
        redirectFrontend:
          addressMatcher:
            ip: "fd00:a9fe::fe"
            toPorts: [{port: "8081", protocol: TCP}]
        redirectBackend:
          localEndpointSelector: {matchLabels: {app: proxy}}
          toPorts: [{port: "80", protocol: TCP}]
      """, as: "addr6.yaml")
    XCTAssertEqual(try lab.answers("trooper1", "http://[fd00:a9fe::fe]:8081/"), ["proxy1"])

    // The policy goes: the Service's jedis again.
    try lab.must(["delete", "-f", policy])
    XCTAssertEqual(try lab.answers("trooper2", url, count: 30), ["obi-wan", "luke"])
    try lab.must(["down"])
  }
}
