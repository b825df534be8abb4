import CNIKit
import XCTest

@testable import ServiceCore

/// Proxy redirects (`ProxyRedirect`) as the service table applies them: which frontends get
/// the proxy port, and that a redirect change made through `prepare`/`commit` leaves the
/// table where a whole-set plan with the new redirects puts it.
final class ProxyRedirectTests: XCTestCase {
  private let web = NamespacedName(namespace: "default", name: "web")
  private let api = NamespacedName(namespace: "default", name: "api")

  /// web: NodePort + LoadBalancer with ports 80 (nodePort 30080) and 53/UDP (30053); api: a
  /// plain ClusterIP on port 80. Each with one backend.
  private var yaml: String {
    """
    apiVersion: v1
    kind: Service
    metadata: {name: web, namespace: default}
    spec:
      type: LoadBalancer
      clusterIP: 10.96.0.10
      externalIPs: [192.0.2.7]
      ports:
      - {name: http, port: 80, targetPort: 8080, nodePort: 30080}
      - {name: dns, port: 53, protocol: UDP, targetPort: 5353, nodePort: 30053}
    status:
      loadBalancer: {ingress: [{ip: 198.51.100.9}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: api, namespace: default}
    spec:
      clusterIP: 10.96.0.20
      ports: [{port: 80, targetPort: 8080}]
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
    addressType: IPv4
    ports: [{name: http, port: 8080}, {name: dns, port: 5353, protocol: UDP}]
    endpoints: [{addresses: [10.244.1.5], conditions: {ready: true}}]
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: api-1, namespace: default, labels: {kubernetes.io/service-name: api}}
    addressType: IPv4
    ports: [{port: 8080}]
    endpoints: [{addresses: [10.244.1.6], conditions: {ready: true}}]
    """
  }

  private let northSouth = NorthSouthPolicy(nodeAddresses: [IPAddress("192.168.1.1")!])

  private func resources() throws -> ResourceSet {
    try ApplyPlan(.apply, yaml: yaml).result(applyingTo: ResourceSet())
  }

  /// frontend "address:port/PROTO" → proxy port, for the frontends that have one.
  private func proxied(_ state: DesiredState) -> [String: UInt16] {
    var result: [String: UInt16] = [:]
    for frontend in state.frontends {
      if let port = frontend.proxyPort { result[frontend.key.description] = port }
    }
    return result
  }

  func testEveryTCPFrontendOfTheServicePortIsFlagged() throws {
    var ids = LoadBalancerIDs()
    let state = ServicePlanner.plan(
      try resources(), ids: &ids, northSouth: northSouth,
      proxyRedirects: [ProxyRedirect(service: web, proxyPort: 15001, owner: "test")])
    XCTAssertEqual(
      proxied(state),
      [
        "10.96.0.10:80/TCP": 15001, "192.0.2.7:80/TCP": 15001, "198.51.100.9:80/TCP": 15001,
        "192.168.1.1:30080/TCP": 15001, "0.0.0.0:30080/TCP": 15001,
      ])
    // UDP and the other Service keep their backends and no flag.
    XCTAssertNil(
      state.frontend(L4Address(address: IPAddress("10.96.0.10")!, port: 53, proto: .udp))?.proxyPort
    )
    XCTAssertNil(
      state.frontend(L4Address(address: IPAddress("10.96.0.20")!, port: 80, proto: .tcp))?.proxyPort
    )
    // The backends stay listed (and programmed): removing the redirect is one flag write.
    XCTAssertEqual(
      state.frontend(L4Address(address: IPAddress("10.96.0.10")!, port: 80, proto: .tcp))?.backends
        .count, 1)
  }

  func testPortListLimitsTheRedirectToThoseServicePorts() throws {
    var ids = LoadBalancerIDs()
    let other = ServicePlanner.plan(
      try resources(), ids: &ids, northSouth: northSouth,
      proxyRedirects: [ProxyRedirect(service: web, ports: [8443], proxyPort: 15001, owner: "t")])
    XCTAssertEqual(proxied(other), [:])
    XCTAssertTrue(
      other.notes.allSatisfy { !$0.contains("no such Service") }, "\(other.notes)")
  }

  func testRedirectOfAMissingServiceIsANote() throws {
    var ids = LoadBalancerIDs()
    let missing = NamespacedName(namespace: "default", name: "nope")
    let state = ServicePlanner.plan(
      try resources(), ids: &ids,
      proxyRedirects: [ProxyRedirect(service: missing, proxyPort: 15001, owner: "t")])
    XCTAssertEqual(proxied(state), [:])
    XCTAssertTrue(
      state.notes.contains { $0.contains("default/nope") && $0.contains("no such Service") })
  }

  func testConflictingRedirectsKeepTheFirstAndSaySo() throws {
    var ids = LoadBalancerIDs()
    let state = ServicePlanner.plan(
      try resources(), ids: &ids,
      proxyRedirects: [
        ProxyRedirect(service: api, proxyPort: 15002, owner: "b"),
        ProxyRedirect(service: api, ports: [80], proxyPort: 15001, owner: "a"),
      ])
    XCTAssertEqual(proxied(state), ["10.96.0.20:80/TCP": 15001])
    XCTAssertTrue(state.notes.contains { $0.contains("15002") }, "\(state.notes)")
  }

  /// Setting, changing and removing redirects through prepare/commit: each step's table
  /// equals a whole-set plan with the same redirects, and its diff rewrites only the
  /// redirected Service's frontends (settings changed, no backend touched).
  func testIncrementalChangesEqualTheWholeSetPlan() throws {
    let resources = try resources()
    var table = ServiceTable(resources: resources, ids: LoadBalancerIDs(), northSouth: northSouth)
    let steps: [[ProxyRedirect]] = [
      [ProxyRedirect(service: web, proxyPort: 15001, owner: "cec")],
      [ProxyRedirect(service: web, proxyPort: 15002, owner: "cec")],
      [
        ProxyRedirect(service: web, proxyPort: 15002, owner: "cec"),
        ProxyRedirect(service: api, ports: [80], proxyPort: 15003, owner: "ingress"),
      ],
      [ProxyRedirect(service: api, ports: [80], proxyPort: 15003, owner: "ingress")],
      [],
    ]
    for redirects in steps {
      let update = try table.prepare([], proxyRedirects: redirects)
      XCTAssertTrue(update.diff.addedFrontends.isEmpty)
      XCTAssertTrue(update.diff.removedFrontends.isEmpty)
      XCTAssertTrue(update.diff.createdBackends.isEmpty && update.diff.deletedBackends.isEmpty)
      for change in update.diff.changedFrontends {
        XCTAssertTrue(change.settingsChanged)
        XCTAssertTrue(change.addedBackends.isEmpty && change.removedBackends.isEmpty)
      }
      table.commit(update)
      var ids = table.ids
      let whole = ServicePlanner.plan(
        resources, ids: &ids, northSouth: northSouth, proxyRedirects: redirects)
      XCTAssertEqual(table.desiredState, whole, "\(redirects)")
    }
    XCTAssertEqual(proxied(table.desiredState), [:])
    // The same set again changes nothing.
    XCTAssertTrue(try table.prepare([], proxyRedirects: []).diff.isEmpty)
  }

  /// A resource change keeps the redirects in force: a new frontend of a redirected Service
  /// (an external IP added) comes flagged.
  func testResourceChangesKeepTheRedirects() throws {
    var table = ServiceTable(resources: try resources(), ids: LoadBalancerIDs())
    table.commit(
      try table.prepare(
        [], proxyRedirects: [ProxyRedirect(service: api, proxyPort: 15001, owner: "t")]))
    let plan = ApplyPlan(
      .apply,
      yaml: """
        apiVersion: v1
        kind: Service
        metadata: {name: api, namespace: default}
        spec:
          clusterIP: 10.96.0.20
          externalIPs: [192.0.2.8]
          ports: [{port: 80, targetPort: 8080}]
        """)
    table.commit(try plan.update(for: table))
    XCTAssertEqual(
      proxied(table.desiredState), ["10.96.0.20:80/TCP": 15001, "192.0.2.8:80/TCP": 15001])
  }
}
