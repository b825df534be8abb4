import CNIKit
import XCTest

@testable import ServiceCore

/// North-south planning on node `node1` (address 172.18.0.2): NodePort on the node's
/// addresses and the wildcard, external / DSR flags per frontend, local backends, and the
/// Local traffic policies.
final class NorthSouthPlannerTests: XCTestCase {
  private let nodeAddress = IPAddress("172.18.0.2")!

  private struct Endpoint {
    var ip: String
    var node: String
    var ready = true
    var terminating = false
  }

  /// A NodePort Service with one TCP and one UDP port, an external IP and a load-balancer
  /// ingress IP, and its slice.
  private func yaml(
    _ endpoints: [Endpoint], external externalPolicy: String? = nil,
    internal internalPolicy: String? = nil
  ) -> String {
    let entries = endpoints.map {
      """
      - addresses: ["\($0.ip)"]
        conditions: {ready: \($0.ready), serving: \($0.ready || $0.terminating), terminating: \($0.terminating)}
        nodeName: \($0.node)
      """
    }
    var policies = ""
    if let externalPolicy { policies += "  externalTrafficPolicy: \(externalPolicy)\n" }
    if let internalPolicy { policies += "  internalTrafficPolicy: \(internalPolicy)\n" }
    return """
      apiVersion: v1
      kind: Service
      metadata: {name: edge, namespace: default}
      spec:
        type: LoadBalancer
        clusterIP: 10.96.0.50
        externalIPs: [192.0.2.10]
      \(policies)  ports:
        - {name: web, port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP}
        - {name: dns, port: 53, targetPort: 5353, nodePort: 30053, protocol: UDP}
      status:
        loadBalancer:
          ingress: [{ip: 198.51.100.7}]
      ---
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata: {name: edge-1, namespace: default, labels: {kubernetes.io/service-name: edge}}
      addressType: IPv4
      ports: [{name: web, port: 8080, protocol: TCP}, {name: dns, port: 5353, protocol: UDP}]
      endpoints:
      \(entries.joined(separator: "\n"))
      """
  }

  private func plan(
    _ yaml: String, dsr: Set<L4Protocol> = [], wildcard: Bool? = nil, nodeName: String? = "node1"
  ) throws -> [String: ServiceFrontend] {
    var ids = LoadBalancerIDs()
    let resources = try ApplyPlan(.apply, yaml: yaml).result(applyingTo: ResourceSet())
    let state = ServicePlanner.plan(
      resources, ids: &ids,
      northSouth: NorthSouthPolicy(
        nodeAddresses: [nodeAddress], nodePortWildcard: wildcard, dsrProtocols: dsr),
      nodeName: nodeName)
    return Dictionary(uniqueKeysWithValues: state.frontends.map { ($0.key.description, $0) })
  }

  private let local = Endpoint(ip: "10.240.1.5", node: "node1")
  private let remote = Endpoint(ip: "10.240.2.5", node: "node2")

  func testNodePortIsOnEveryNodeAddressAndTheWildcard() throws {
    let frontends = try plan(yaml([local, remote]))
    XCTAssertEqual(
      frontends.values.sorted { $0.key < $1.key }.map { "\($0.key) \($0.type.rawValue)" },
      [
        "0.0.0.0:30053/UDP NodePort", "0.0.0.0:30080/TCP NodePort",
        "10.96.0.50:53/UDP ClusterIP", "10.96.0.50:80/TCP ClusterIP",
        "172.18.0.2:30053/UDP NodePort", "172.18.0.2:30080/TCP NodePort",
        "192.0.2.10:53/UDP ExternalIPs", "192.0.2.10:80/TCP ExternalIPs",
        "198.51.100.7:53/UDP LoadBalancer", "198.51.100.7:80/TCP LoadBalancer",
      ])
    // The wildcard can be asked for alone (socket LB without devices) or left out.
    let alone = NorthSouthPolicy(nodePortWildcard: true)
    XCTAssertEqual(alone.nodePortAddresses.map(\.description), ["0.0.0.0"])
    XCTAssertNil(try plan(yaml([local]), wildcard: false)["0.0.0.0:30080/TCP"])
    // Without node addresses, no NodePort frontend at all (as before).
    XCTAssertTrue(NorthSouthPolicy().nodePortAddresses.isEmpty)
  }

  /// NodePort on the node's IPv6 address too, for the Services of that family only (as
  /// kube-proxy's per-family proxiers): an IPv4 Service is not served on the IPv6 address,
  /// an IPv6 one not on the IPv4 address nor on the (IPv4) wildcard, a dual-stack one on both,
  /// each frontend with its own family's backends.
  func testNodePortOnIPv6NodeAddressesFollowsTheServiceFamilies() throws {
    let node6 = IPAddress("fd00:172:30::11")!
    let policy = NorthSouthPolicy(nodeAddresses: [nodeAddress, node6], dsrProtocols: [.tcp])
    XCTAssertEqual(
      policy.nodePortAddresses.map(\.description), ["172.18.0.2", "fd00:172:30::11", "0.0.0.0"])
    XCTAssertEqual(
      NorthSouthPolicy(nodeAddresses: [node6]).nodePortAddresses.map(\.description),
      ["fd00:172:30::11"], "the IPv4 wildcard only with an IPv4 node address")
    func nodePorts(_ families: String, _ clusterIPs: String) throws -> [String] {
      let yaml = """
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: default}
        spec:
          type: NodePort
          ipFamilyPolicy: PreferDualStack
          ipFamilies: \(families)
          clusterIPs: \(clusterIPs)
          ports: [{port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP}]
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: web-6, namespace: default, labels: {kubernetes.io/service-name: web}}
        addressType: IPv6
        ports: [{port: 8080, protocol: TCP}]
        endpoints:
        - addresses: ["fd00:10:240:2::5"]
          conditions: {ready: true}
          nodeName: node2
        """
      var ids = LoadBalancerIDs()
      let resources = try ApplyPlan(.apply, yaml: yaml).result(applyingTo: ResourceSet())
      let state = ServicePlanner.plan(resources, ids: &ids, northSouth: policy, nodeName: "node1")
      return state.frontends.filter { $0.type == .nodePort }.map {
        "\($0.key) \($0.backends.map(\.key.address.description)) dsr=\($0.usesDSR)"
      }.sorted()
    }
    XCTAssertEqual(
      try nodePorts("[IPv4]", "[10.96.0.7]"),
      ["0.0.0.0:30080/TCP [] dsr=true", "172.18.0.2:30080/TCP [] dsr=true"])
    XCTAssertEqual(
      try nodePorts("[IPv6]", "[\"fd00:10:96::7\"]"),
      ["[fd00:172:30::11]:30080/TCP [\"fd00:10:240:2::5\"] dsr=true"])
    XCTAssertEqual(
      try nodePorts("[IPv4, IPv6]", "[10.96.0.7, \"fd00:10:96::7\"]").count, 3)
  }

  func testExternalAndDSRFlagsFollowTheFrontendTypeAndProtocol() throws {
    // hybrid: DSR for TCP only.
    let hybrid = try plan(yaml([local, remote]), dsr: [.tcp])
    for (key, frontend) in hybrid {
      XCTAssertEqual(frontend.isExternal, frontend.type != .clusterIP, key)
      XCTAssertEqual(
        frontend.usesDSR, frontend.type != .clusterIP && frontend.key.proto == .tcp, key)
    }
    XCTAssertTrue(hybrid["0.0.0.0:30080/TCP"]!.usesDSR)
    XCTAssertFalse(hybrid["0.0.0.0:30053/UDP"]!.usesDSR)
    XCTAssertFalse(hybrid["10.96.0.50:80/TCP"]!.usesDSR, "ClusterIP never uses DSR")
    // dsr: both; snat: neither.
    XCTAssertTrue(try plan(yaml([local]), dsr: [.tcp, .udp])["192.0.2.10:53/UDP"]!.usesDSR)
    XCTAssertTrue(try plan(yaml([local]))["198.51.100.7:80/TCP"]!.isExternal)
    XCTAssertFalse(try plan(yaml([local]))["198.51.100.7:80/TCP"]!.usesDSR)
  }

  func testChangingTheModeChangesTheFrontendsSoTheDiffRewritesThem() throws {
    let resources = try ApplyPlan(.apply, yaml: yaml([local])).result(applyingTo: ResourceSet())
    var ids = LoadBalancerIDs()
    let snat = ServicePlanner.plan(
      resources, ids: &ids, northSouth: NorthSouthPolicy(nodeAddresses: [nodeAddress]),
      nodeName: "node1")
    let dsr = ServicePlanner.plan(
      resources, ids: &ids,
      northSouth: NorthSouthPolicy(nodeAddresses: [nodeAddress], dsrProtocols: [.tcp, .udp]),
      nodeName: "node1")
    let diff = DesiredStateDiff(from: snat, to: dsr)
    XCTAssertEqual(
      Set(diff.changedFrontends.map { $0.new.key.description }),
      Set(dsr.frontends.filter(\.isExternal).map(\.key.description)))
    XCTAssertTrue(diff.changedFrontends.allSatisfy(\.settingsChanged))
    XCTAssertTrue(diff.addedFrontends.isEmpty && diff.removedFrontends.isEmpty)
  }

  func testBackendsOnThisNodeAreLocal() throws {
    let frontends = try plan(yaml([local, remote]))
    let backends = frontends["10.96.0.50:80/TCP"]!.backends
    XCTAssertEqual(
      backends.map { "\($0.key.address) \($0.isLocal)" },
      [
        "10.240.1.5 true", "10.240.2.5 false",
      ])
    // Without a node name nothing is local.
    XCTAssertFalse(
      try plan(yaml([local]), nodeName: nil)["10.96.0.50:80/TCP"]!.backends[0].isLocal)
  }

  func testExternalTrafficPolicyLocalKeepsOnlyThisNodesBackendsOnExternalFrontends() throws {
    let frontends = try plan(yaml([local, remote], external: "Local"))
    for key in [
      "172.18.0.2:30080/TCP", "0.0.0.0:30080/TCP", "192.0.2.10:80/TCP", "198.51.100.7:80/TCP",
    ] {
      XCTAssertEqual(frontends[key]!.selectable.map(\.key.description), ["10.240.1.5:8080/TCP"])
      XCTAssertEqual(frontends[key]!.backends.count, 1, key)
      XCTAssertTrue(frontends[key]!.isLocalPolicy, key)
    }
    // ClusterIP keeps every backend.
    let clusterIP = frontends["10.96.0.50:80/TCP"]!
    XCTAssertEqual(clusterIP.selectable.count, 2)
    XCTAssertFalse(clusterIP.isLocalPolicy)
  }

  func testExternalTrafficPolicyLocalWithoutALocalBackendHasNothingSelectable() throws {
    let frontends = try plan(yaml([remote], external: "Local"))
    XCTAssertEqual(frontends["172.18.0.2:30080/TCP"]!.selectable, [])
    XCTAssertEqual(frontends["0.0.0.0:30053/UDP"]!.selectable, [])
    XCTAssertEqual(frontends["10.96.0.50:80/TCP"]!.selectable.count, 1)
  }

  func testLocalPolicyFallsBackToTerminatingLocalBackendsOnly() throws {
    // A ready remote backend and a terminating local one: the local one, not the remote.
    let draining = Endpoint(ip: "10.240.1.6", node: "node1", ready: false, terminating: true)
    let frontends = try plan(yaml([draining, remote], external: "Local"))
    XCTAssertEqual(
      frontends["172.18.0.2:30080/TCP"]!.selectable.map(\.key.description),
      ["10.240.1.6:8080/TCP"])
    // A terminating remote one is not a fallback.
    let remoteDraining = Endpoint(ip: "10.240.2.6", node: "node2", ready: false, terminating: true)
    XCTAssertEqual(
      try plan(yaml([remoteDraining], external: "Local"))["172.18.0.2:30080/TCP"]!.selectable,
      [])
  }

  func testInternalTrafficPolicyLocalKeepsOnlyThisNodesBackendsOnClusterIP() throws {
    let frontends = try plan(yaml([local, remote], internal: "Local"))
    XCTAssertEqual(
      frontends["10.96.0.50:80/TCP"]!.selectable.map(\.key.description), ["10.240.1.5:8080/TCP"])
    XCTAssertTrue(frontends["10.96.0.50:80/TCP"]!.isLocalPolicy)
    // External frontends keep the cluster-wide set.
    XCTAssertEqual(frontends["172.18.0.2:30080/TCP"]!.selectable.count, 2)
    XCTAssertEqual(try plan(yaml([remote], internal: "Local"))["10.96.0.50:53/UDP"]!.selectable, [])
  }

  func testALocalPolicyServiceIsReplannedWhenTheNodeChanges() throws {
    let resources = try ApplyPlan(.apply, yaml: yaml([local], external: "Local")).resources
    let service = try XCTUnwrap(
      resources.compactMap { resource -> Service? in
        if case .service(let service) = resource { return service }
        return nil
      }.first)
    let contribution = ServicePlanner.contribution(
      of: service, slices: [], topology: NodeTopology(nodeName: "node1"))
    XCTAssertTrue(contribution.isTopologyAware)
    var plain = service
    plain.externalTrafficPolicy = "Cluster"
    XCTAssertFalse(
      ServicePlanner.contribution(of: plain, slices: [], topology: NodeTopology(nodeName: "node1"))
        .isTopologyAware)
  }
}
