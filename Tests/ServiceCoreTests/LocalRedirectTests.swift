import CNIKit
import XCTest

@testable import ServiceCore

/// Local Redirect Policies: decoding with field errors, and the frontends a node plans for
/// them (`LocalRedirectPlanner` through `ServiceTable`).
final class LocalRedirectTests: XCTestCase, LocalRedirectScenario {
  private let droids = """
    apiVersion: v1
    kind: Service
    metadata: {name: droids, namespace: landspeeder}
    spec:
      clusterIP: 10.96.0.10
      selector: {role: jedi}
      ports: [{port: 80, protocol: TCP, targetPort: 80}]
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: droids-1, namespace: landspeeder, labels: {kubernetes.io/service-name: droids}}
    addressType: IPv4
    ports: [{port: 80, protocol: TCP}]
    endpoints:
    - {addresses: [10.0.1.5], nodeName: node1}
    - {addresses: [10.0.2.5], nodeName: node2}
    """

  /// A CiliumLocalRedirectPolicy `name` in namespace "ns": `frontend` and `backend` are the
  /// YAML lines under redirectFrontend and redirectBackend.
  private func policy(_ name: String, frontend: [String], backend: [String]) -> String {
    let head = [
      "apiVersion: cilium.io/v2", "kind: CiliumLocalRedirectPolicy",
      "metadata: {name: \(name), namespace: ns}", "spec:", "  redirectFrontend:",
    ]
    return
      (head + frontend.map { "    " + $0 } + ["  redirectBackend:"] + backend.map { "    " + $0 })
      .joined(separator: "\n")
  }

  private let vip = FrontendKey(address: IPAddress("10.96.0.10")!, port: 80, proto: .tcp)

  // MARK: - Decoding

  func testDecodesTheSeedsPolicies() throws {
    let plan = ApplyPlan(
      .apply,
      yaml: [
        policy(
          "bad",
          frontend: [
            "serviceMatcher: {serviceName: web, namespace: other}",
            #"addressMatcher: {ip: "1.2.3", toPorts: []}"#,
          ],
          backend: [
            "localEndpointSelector:",
            "  matchExpressions: [{key: app, operator: Near, values: [x]}, {key: b, operator: In}]",
            #"toPorts: [{port: "99999", protocol: SCTP}, {port: 53}]"#,
          ]),
        """
        apiVersion: cilium.io/v2
        kind: CiliumLocalRedirectPolicy
        metadata: {name: empty, namespace: ns}
        spec: {}
        """,
      ].joined(separator: "\n---\n"))
    let errors = plan.errors.joined(separator: "\n")
    for expected in [
      "spec.redirectFrontend: serviceMatcher and addressMatcher are mutually exclusive",
      "spec.redirectBackend.localEndpointSelector.matchExpressions[0].operator: unsupported value \"Near\"",
      "spec.redirectBackend.localEndpointSelector.matchExpressions[1].values: must be non-empty",
      "spec.redirectBackend.toPorts[0].port: \"99999\" is not a port number",
      "spec.redirectBackend.toPorts[0].protocol: unsupported value \"SCTP\"",
      "spec.redirectBackend.toPorts[0].name: is required when toPorts has more than one port",
      "spec.redirectFrontend: is required",
      "spec.redirectBackend: is required",
    ] {
      XCTAssertTrue(errors.contains(expected), "missing \(expected) in:\n\(errors)")
    }
    let backend = ["localEndpointSelector: {}", "toPorts: [{port: 80}]"]
    let service = ApplyPlan(
      .apply,
      yaml: [
        policy(
          "bad", frontend: ["serviceMatcher: {serviceName: web, namespace: other}"],
          backend: backend),
        policy(
          "bad2", frontend: [#"addressMatcher: {ip: "1.2.3", toPorts: []}"#], backend: backend),
      ].joined(separator: "\n---\n")
    ).errors.joined(separator: "\n")
    XCTAssertTrue(
      service.contains(
        "spec.redirectFrontend.serviceMatcher.namespace: \"other\" must be the policy's own namespace \"ns\""
      ), service)
    XCTAssertTrue(
      service.contains("spec.redirectFrontend.addressMatcher.ip: \"1.2.3\" is not an IP address"),
      service)
    XCTAssertTrue(
      service.contains(
        "spec.redirectFrontend.addressMatcher.toPorts: at least one port is required"),
      service)
  }

  // MARK: - Planning

  func testServiceMatcherRedirectsToTheLocalPodsAndFallsBack() throws {
    var table = ServiceTable(nodeName: "node1")
    try apply(&table, droids)
    let original = try XCTUnwrap(table.frontends[vip])
    try apply(
      &table, droidsPolicy(), pod("r2-d2", node: "node1", ip: "10.0.1.9"),
      pod("c3-po", node: "node2", ip: "10.0.2.9"),
      pod("r2-not-ready", node: "node1", ip: "10.0.1.10", ready: false),
      pod("other-ns", node: "node1", ip: "10.0.1.11", namespace: "default"),
      pod("jedi", node: "node1", ip: "10.0.1.12", labels: "{role: jedi}"))
    var frontend = try XCTUnwrap(table.frontends[vip])
    XCTAssertEqual(frontend.type, .localRedirect)
    XCTAssertEqual(frontend.id, original.id, "the same rev-NAT id as the Service")
    XCTAssertEqual(frontend.service, NamespacedName(namespace: "landspeeder", name: "droids"))
    XCTAssertEqual(frontend.backends.map(\.key.description), ["10.0.1.9:80/TCP"])
    XCTAssertNil(frontend.redirect?.origin)
    XCTAssertEqual(table.localRedirects.first?.pods.map(\.name.name), ["r2-d2"])
    XCTAssertEqual(table.localRedirects.first?.frontends.first?.redirected, true)

    // The local droid goes: back to the Service, same id.
    try apply(&table, pod("r2-d2", node: "node1", ip: "10.0.1.9", ready: false))
    frontend = try XCTUnwrap(table.frontends[vip])
    XCTAssertEqual(frontend.type, .clusterIP)
    XCTAssertEqual(frontend.backends.map(\.key.address.description), ["10.0.1.5", "10.0.2.5"])
    XCTAssertEqual(frontend.id, original.id)
    XCTAssertEqual(table.localRedirects.first?.frontends.first?.redirected, false)

    // It comes back; then the policy is deleted: the Service again.
    try apply(&table, pod("r2-d2", node: "node1", ip: "10.0.1.9"))
    XCTAssertEqual(table.frontends[vip]?.type, .localRedirect)
    try apply(&table, droidsPolicy(), delete: true)
    XCTAssertEqual(table.frontends[vip]?.type, .clusterIP)
    XCTAssertEqual(table.frontends[vip]?.backends.count, 2)
    XCTAssertEqual(table.localRedirects, [])
  }

  func testSkipRedirectFromBackendKeepsTheServicesBackendsAsOrigin() throws {
    var table = ServiceTable(nodeName: "node1")
    try apply(&table, droids, droidsPolicy(skip: true), pod("r2-d2", node: "node1", ip: "10.0.1.9"))
    let frontend = try XCTUnwrap(table.frontends[vip])
    XCTAssertEqual(frontend.redirect?.skipFromBackend, true)
    XCTAssertEqual(
      frontend.redirect?.origin?.map(\.key.description), ["10.0.1.5:80/TCP", "10.0.2.5:80/TCP"])
    // Every referenced backend has an entry.
    XCTAssertEqual(
      Set(table.desiredState.backends.values.map(\.description)),
      ["10.0.1.5:80/TCP", "10.0.2.5:80/TCP", "10.0.1.9:80/TCP"])
  }

  func testPortsMapByNameAndAddressFrontendsExistOnlyWithABackend() throws {
    var table = ServiceTable(nodeName: "node1")
    try apply(
      &table,
      """
      apiVersion: v1
      kind: Service
      metadata: {name: kube-dns, namespace: kube-system}
      spec:
        clusterIP: 10.96.0.53
        ports:
        - {name: dns, port: 53, protocol: UDP}
        - {name: dns-tcp, port: 53, protocol: TCP}
        - {name: metrics, port: 9153, protocol: TCP}
      """,
      """
      apiVersion: cilium.io/v2
      kind: CiliumLocalRedirectPolicy
      metadata: {name: nodelocaldns, namespace: kube-system}
      spec:
        redirectFrontend: {serviceMatcher: {serviceName: kube-dns, namespace: kube-system}}
        redirectBackend:
          localEndpointSelector: {matchLabels: {k8s-app: node-local-dns}}
          toPorts:
          - {port: "5353", name: dns, protocol: UDP}
          - {port: "5354", name: dns-tcp, protocol: TCP}
      """,
      pod(
        "cache", node: "node1", ip: "10.0.1.20", labels: "{k8s-app: node-local-dns}",
        namespace: "kube-system"),
      """
      apiVersion: junction.io/v1alpha1
      kind: LocalRedirectPolicy
      metadata: {name: metadata, namespace: default}
      spec:
        redirectFrontend:
          addressMatcher: {ip: 169.254.169.254, toPorts: [{port: "8081", protocol: TCP}]}
        redirectBackend:
          localEndpointSelector: {matchLabels: {app: proxy}}
          toPorts: [{port: "80", protocol: TCP}]
      """)
    let types = table.desiredState.frontends.map {
      "\($0.key) \($0.type.rawValue) \($0.backends.map(\.key.description))"
    }
    XCTAssertEqual(
      types,
      [
        "10.96.0.53:53/TCP LocalRedirect [\"10.0.1.20:5354/TCP\"]",
        "10.96.0.53:53/UDP LocalRedirect [\"10.0.1.20:5353/UDP\"]",
        "10.96.0.53:9153/TCP ClusterIP []",
      ])
    XCTAssertTrue(
      table.desiredState.notes.contains {
        $0.contains("9153/TCP has no matching redirectBackend port")
      },
      "\(table.desiredState.notes)")

    // The address frontend appears with the proxy pod, and goes with it.
    try apply(
      &table,
      pod("proxy", node: "node1", ip: "10.0.1.30", labels: "{app: proxy}", namespace: "default"))
    let address = FrontendKey(address: IPAddress("169.254.169.254")!, port: 8081, proto: .tcp)
    XCTAssertEqual(table.frontends[address]?.type, .localRedirect)
    XCTAssertEqual(table.frontends[address]?.backends.map(\.key.description), ["10.0.1.30:80/TCP"])
    XCTAssertEqual(table.frontends[address]?.service.name, "metadata")
    try apply(
      &table,
      pod("proxy", node: "node1", ip: "10.0.1.30", labels: "{app: proxy}", namespace: "default"),
      delete: true)
    XCTAssertNil(table.frontends[address])
  }

  func testAnAddressAServiceHoldsIsNotTakenOver() throws {
    var table = ServiceTable(nodeName: "node1")
    try apply(
      &table, droids,
      """
      apiVersion: cilium.io/v2
      kind: CiliumLocalRedirectPolicy
      metadata: {name: grab, namespace: landspeeder}
      spec:
        redirectFrontend:
          addressMatcher: {ip: 10.96.0.10, toPorts: [{port: "80", protocol: TCP}]}
        redirectBackend:
          localEndpointSelector: {matchLabels: {role: droid}}
          toPorts: [{port: "80", protocol: TCP}]
      """, pod("r2-d2", node: "node1", ip: "10.0.1.9"))
    XCTAssertEqual(table.frontends[vip]?.type, .clusterIP)
    XCTAssertEqual(table.localRedirects.first?.frontends.first?.redirected, false)
  }
}
