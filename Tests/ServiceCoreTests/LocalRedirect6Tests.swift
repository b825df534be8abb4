import CNIKit
import XCTest

@testable import ServiceCore

/// Local Redirect Policies over IPv6 (`LocalRedirectPlanner` through `ServiceTable`): each
/// family's frontend goes to the local pods' addresses of that family, by Service and by
/// address; a family no local pod has keeps the Service's backends.
final class LocalRedirect6Tests: XCTestCase, LocalRedirectScenario {
  /// A dual-stack Service, IPv4 first, with one backend per family on each of two nodes.
  private let droids = """
    apiVersion: v1
    kind: Service
    metadata: {name: droids, namespace: landspeeder}
    spec:
      clusterIP: 10.96.0.10
      clusterIPs: [10.96.0.10, fd00:96::10]
      ipFamilies: [IPv4, IPv6]
      ipFamilyPolicy: RequireDualStack
      selector: {role: jedi}
      ports: [{port: 80, protocol: TCP, targetPort: 80}]
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: droids-v4, namespace: landspeeder, labels: {kubernetes.io/service-name: droids}}
    addressType: IPv4
    ports: [{port: 80, protocol: TCP}]
    endpoints:
    - {addresses: [10.0.1.5], nodeName: node1}
    - {addresses: [10.0.2.5], nodeName: node2}
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: droids-v6, namespace: landspeeder, labels: {kubernetes.io/service-name: droids}}
    addressType: IPv6
    ports: [{port: 80, protocol: TCP}]
    endpoints:
    - {addresses: ["fd00:10:244:1::5"], nodeName: node1}
    - {addresses: ["fd00:10:244:2::5"], nodeName: node2}
    """

  private let vip4 = FrontendKey(address: IPAddress("10.96.0.10")!, port: 80, proto: .tcp)
  private let vip6 = FrontendKey(address: IPAddress("fd00:96::10")!, port: 80, proto: .tcp)

  func testAServiceMatcherRedirectsEachFamilyToTheLocalPodsAddressOfThatFamily() throws {
    var table = ServiceTable(nodeName: "node1")
    try apply(&table, droids)
    let original6 = try XCTUnwrap(table.frontends[vip6])
    try apply(
      &table, droidsPolicy(), pod("r2-d2", ips: ["10.0.1.9", "fd00:10:244:1::9"]),
      pod("c3-po", node: "node2", ips: ["10.0.2.9", "fd00:10:244:2::9"]))

    let frontend4 = try XCTUnwrap(table.frontends[vip4])
    XCTAssertEqual(frontend4.type, .localRedirect)
    XCTAssertEqual(frontend4.backends.map(\.key.description), ["10.0.1.9:80/TCP"])
    let frontend6 = try XCTUnwrap(table.frontends[vip6])
    XCTAssertEqual(frontend6.type, .localRedirect)
    XCTAssertEqual(frontend6.id, original6.id, "the same rev-NAT id as the Service's")
    XCTAssertEqual(frontend6.backends.map(\.key.description), ["[fd00:10:244:1::9]:80/TCP"])
    XCTAssertTrue(frontend6.backends.allSatisfy(\.isLocal))

    // What `junctionctl lrp list` shows: both frontends, the pod once per family.
    let status = try XCTUnwrap(table.localRedirects.first)
    XCTAssertEqual(
      status.frontends.map { "\($0.key) \($0.redirected) \($0.backends)" },
      [
        "10.96.0.10:80/TCP true [10.0.1.9:80/TCP]",
        "[fd00:96::10]:80/TCP true [[fd00:10:244:1::9]:80/TCP]",
      ])
    XCTAssertEqual(
      status.pods.map { "\($0.name) \($0.address)" },
      ["landspeeder/r2-d2 10.0.1.9", "landspeeder/r2-d2 fd00:10:244:1::9"])

    // The policy goes: both families get the Service back.
    try apply(&table, droidsPolicy(), delete: true)
    XCTAssertEqual(table.frontends[vip6]?.type, .clusterIP)
    XCTAssertEqual(
      table.frontends[vip6]?.backends.map(\.key.address.description),
      ["fd00:10:244:1::5", "fd00:10:244:2::5"])
  }

  func testSkipRedirectFromBackendKeepsTheServicesIPv6BackendsAsTheIPv6Origin() throws {
    var table = ServiceTable(nodeName: "node1")
    try apply(
      &table, droids, droidsPolicy(skip: true), pod("r2-d2", ips: ["10.0.1.9", "fd00:10:244:1::9"]))
    let frontend = try XCTUnwrap(table.frontends[vip6])
    XCTAssertEqual(frontend.redirect?.skipFromBackend, true)
    XCTAssertEqual(
      frontend.redirect?.origin?.map(\.key.description),
      ["[fd00:10:244:1::5]:80/TCP", "[fd00:10:244:2::5]:80/TCP"])
    XCTAssertEqual(
      table.frontends[vip4]?.redirect?.origin?.map(\.key.description),
      ["10.0.1.5:80/TCP", "10.0.2.5:80/TCP"])
  }

  /// A local pod with an IPv4 address only: the IPv4 frontend is redirected, the IPv6 one
  /// keeps the Service's backends (never a pod of the other family), and a note says why.
  func testAFamilyNoLocalPodHasKeepsTheServicesBackends() throws {
    var table = ServiceTable(nodeName: "node1")
    try apply(&table, droids, droidsPolicy(), pod("r2-d2", ips: ["10.0.1.9"]))
    XCTAssertEqual(table.frontends[vip4]?.type, .localRedirect)
    XCTAssertEqual(table.frontends[vip6]?.type, .clusterIP)
    XCTAssertEqual(table.frontends[vip6]?.backends.count, 2)
    let status = try XCTUnwrap(table.localRedirects.first)
    XCTAssertEqual(status.frontends.map(\.redirected), [true, false])
    XCTAssertTrue(
      status.notes.contains { $0.contains("no selected pod here has an IPv6 address") },
      "\(status.notes)")

    // An IPv6-only pod: the other way round.
    try apply(&table, pod("r2-d2", ips: ["fd00:10:244:1::9"]))
    XCTAssertEqual(table.frontends[vip4]?.type, .clusterIP)
    XCTAssertEqual(table.frontends[vip6]?.type, .localRedirect)
    XCTAssertEqual(
      table.frontends[vip6]?.backends.map(\.key.description), ["[fd00:10:244:1::9]:80/TCP"])
  }

  /// An address matcher with an IPv6 address: a LocalRedirect frontend at [ip]:port with the
  /// local pod's IPv6 address, present only while such a pod is ready.
  func testAnAddressMatcherAcceptsAnIPv6AddressAndRedirectsToTheIPv6Pod() throws {
    let policy = """
      apiVersion: junction.io/v1alpha1
      kind: LocalRedirectPolicy
      metadata: {name: metadata6, namespace: default}
      spec:
        redirectFrontend:
          addressMatcher: {ip: "fd00:a9fe::fe", toPorts: [{port: "80", protocol: TCP}]}
        redirectBackend:
          localEndpointSelector: {matchLabels: {app: proxy}}
          toPorts: [{port: "8080", protocol: TCP}]
      """
    let address = FrontendKey(address: IPAddress("fd00:a9fe::fe")!, port: 80, proto: .tcp)
    var table = ServiceTable(nodeName: "node1")
    try apply(
      &table, policy,
      pod("proxy4", ips: ["10.0.1.30"], labels: "{app: proxy}", namespace: "default"))
    XCTAssertNil(table.frontends[address], "no local pod with an IPv6 address")

    try apply(
      &table,
      pod(
        "proxy", ips: ["10.0.1.31", "fd00:10:244:1::31"], labels: "{app: proxy}",
        namespace: "default"))
    let frontend = try XCTUnwrap(table.frontends[address])
    XCTAssertEqual(frontend.type, .localRedirect)
    XCTAssertEqual(frontend.backends.map(\.key.description), ["[fd00:10:244:1::31]:8080/TCP"])
    XCTAssertEqual(
      table.localRedirects.first?.frontends.map(\.key.description), ["[fd00:a9fe::fe]:80/TCP"])

    try apply(
      &table,
      pod(
        "proxy", ips: ["10.0.1.31", "fd00:10:244:1::31"], labels: "{app: proxy}",
        namespace: "default"),
      delete: true)
    XCTAssertNil(table.frontends[address])
  }
}
