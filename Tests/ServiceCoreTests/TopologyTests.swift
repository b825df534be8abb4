import XCTest

@testable import ServiceCore

/// Topology-aware backends on one node (kube-proxy's rules, see `TopologyFilter`).
final class TopologyTests: XCTestCase {
  private struct Backend {
    var ip: String
    var zone: String
    var node: String
    var ready = true
    var hints: [String]? = nil
    var nodeHints: [String]? = nil
  }

  private func service(distribution: String?) -> String {
    """
    apiVersion: v1
    kind: Service
    metadata: {name: droids, namespace: default}
    spec:
      clusterIP: 10.96.0.10
      ports: [{port: 80, targetPort: 80}]
    \(distribution.map { "  trafficDistribution: \($0)" } ?? "")
    """
  }

  private func slice(_ backends: [Backend]) -> String {
    let endpoints = backends.map { backend -> String in
      var hints: [String] = []
      if let zones = backend.hints {
        hints.append("forZones: [\(zones.map { "{name: \($0)}" }.joined(separator: ", "))]")
      }
      if let nodes = backend.nodeHints {
        hints.append("forNodes: [\(nodes.map { "{name: \($0)}" }.joined(separator: ", "))]")
      }
      return """
        - addresses: ["\(backend.ip)"]
          conditions: {ready: \(backend.ready), serving: \(backend.ready), terminating: false}
          nodeName: \(backend.node)
          zone: \(backend.zone)
        \(hints.isEmpty ? "" : "  hints: {\(hints.joined(separator: ", "))}")
        """
    }
    return """
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata: {name: droids-1, namespace: default, labels: {kubernetes.io/service-name: droids}}
      addressType: IPv4
      ports: [{port: 80}]
      endpoints:
      \(endpoints.joined(separator: "\n"))
      """
  }

  private func node(_ name: String, zone: String) -> String {
    """
    apiVersion: v1
    kind: Node
    metadata: {name: \(name), labels: {topology.kubernetes.io/zone: \(zone)}}
    """
  }

  /// The addresses that take new connections on node `node1` in `zone`.
  private func selectable(
    _ backends: [Backend], distribution: String? = nil, zone: String = "zone-a"
  ) throws -> [String] {
    let yaml = [service(distribution: distribution), slice(backends), node("node1", zone: zone)]
    var table = ServiceTable(nodeName: "node1")
    table.commit(try ApplyPlan(.apply, yaml: yaml.joined(separator: "\n---\n")).update(for: table))
    return table.frontends.values.first!.selectable.map { "\($0.key.address)" }
  }

  private let a1 = Backend(ip: "10.0.1.1", zone: "zone-a", node: "node1")
  private let a2 = Backend(ip: "10.0.1.2", zone: "zone-a", node: "node3")
  private let b1 = Backend(ip: "10.0.2.1", zone: "zone-b", node: "node2")

  func testPreferCloseKeepsNewConnectionsInTheZoneAndFallsBackWhenItHasNone() throws {
    XCTAssertEqual(try selectable([a1, b1], distribution: "PreferClose"), ["10.0.1.1"])
    XCTAssertEqual(
      try selectable([a1, b1], distribution: "PreferClose", zone: "zone-b"), ["10.0.2.1"])
    // The zone's only backend goes (not ready): the other zone answers, no blackhole.
    var gone = a1
    gone.ready = false
    XCTAssertEqual(try selectable([gone, b1], distribution: "PreferClose"), ["10.0.2.1"])
    // A zone nobody is in: every backend.
    XCTAssertEqual(
      try selectable([a1, b1], distribution: "PreferClose", zone: "zone-c"),
      ["10.0.1.1", "10.0.2.1"])
    // Without a traffic distribution (and no hints): every backend.
    XCTAssertEqual(try selectable([a1, b1]), ["10.0.1.1", "10.0.2.1"])
  }

  func testHintsFollowKubeProxysRules() throws {
    var hinted = [a1, a2, b1]
    for index in hinted.indices { hinted[index].hints = [hinted[index].zone] }
    XCTAssertEqual(try selectable(hinted), ["10.0.1.1", "10.0.1.2"])
    // One ready endpoint without hints switches topology off for the Service.
    var missing = hinted
    missing[2].hints = nil
    XCTAssertEqual(try selectable(missing), ["10.0.1.1", "10.0.1.2", "10.0.2.1"])
    // A pod still starting (not ready, no hint yet) does not.
    var starting = hinted
    starting.append(Backend(ip: "10.0.1.9", zone: "zone-a", node: "node1", ready: false))
    XCTAssertEqual(try selectable(starting), ["10.0.1.1", "10.0.1.2"])
    // No endpoint hinted for this zone: all of them.
    XCTAssertEqual(try selectable(hinted, zone: "zone-b"), ["10.0.2.1"])
    XCTAssertEqual(try selectable(hinted, zone: "zone-x"), ["10.0.1.1", "10.0.1.2", "10.0.2.1"])
  }

  func testPreferSameNodeUsesThisNodesBackendsThenTheZone() throws {
    XCTAssertEqual(try selectable([a1, a2, b1], distribution: "PreferSameNode"), ["10.0.1.1"])
    var noLocal = a1
    noLocal.ready = false
    // Node hints do not name node1 any more: zone hints take over.
    XCTAssertEqual(
      try selectable([noLocal, a2, b1], distribution: "PreferSameNode"), ["10.0.1.2"])
  }

  func testTheOthersKeepTheirEntriesAndAZoneChangeReplansLive() throws {
    let yaml = [
      service(distribution: "PreferClose"), slice([a1, b1]), node("node1", zone: "zone-a"),
    ]
    var table = ServiceTable(nodeName: "node1")
    table.commit(try ApplyPlan(.apply, yaml: yaml.joined(separator: "\n---\n")).update(for: table))
    let before = table.frontends.values.first!
    XCTAssertEqual(before.backends.map(\.state), [.active, .notPreferred])
    // The node's label changes: the Service is re-planned, the ids stay.
    let update = try ApplyPlan(.apply, yaml: node("node1", zone: "zone-b")).update(for: table)
    XCTAssertEqual(update.diff.changedFrontends.count, 1)
    XCTAssertEqual(update.diff.changedFrontends.first?.stateChangedBackends.count, 2)
    table.commit(update)
    let after = table.frontends.values.first!
    XCTAssertEqual(after.backends.map(\.state), [.notPreferred, .active])
    XCTAssertEqual(after.backends.map(\.id), before.backends.map(\.id))
    XCTAssertEqual(table.topology.zone, "zone-b")
    // Another node's label is not this node's business.
    let other = try ApplyPlan(.apply, yaml: node("node2", zone: "zone-a")).update(for: table)
    XCTAssertTrue(other.diff.isEmpty)
    // The whole-set planner agrees.
    var ids = LoadBalancerIDs()
    let whole = ServicePlanner.plan(table.resources, ids: &ids, nodeName: "node1")
    XCTAssertEqual(whole.frontends.first?.backends.map(\.state), [.notPreferred, .active])
  }
}
