import CNIKit
import XCTest

@testable import ServiceCore

/// `ipFamilies`, `ipFamilyPolicy`, `clusterIPs` and IPv6 EndpointSlices: decoded and
/// validated as the API server does, and planned one family per frontend.
final class DualStackServiceTests: XCTestCase {
  private func service(_ spec: String, type: String = "ClusterIP") -> String {
    """
    apiVersion: v1
    kind: Service
    metadata: {name: web}
    spec:
      type: \(type)
      ports:
      - {port: 80, targetPort: 8080}
    \(spec)
    """
  }

  private func decode(_ yaml: String, file: StaticString = #filePath, line: UInt = #line)
    -> Service?
  {
    let decoded = ResourceDecoder.decode(yaml: yaml)
    XCTAssertEqual(decoded.problems, [], file: file, line: line)
    guard case .service(let service)? = decoded.resources.first else { return nil }
    return service
  }

  private func errors(_ yaml: String) -> [String] { ApplyPlan(.apply, yaml: yaml).errors }

  func testADualStackServiceKeepsBothClusterIPsInFamilyOrder() throws {
    let yaml = service(
      """
        clusterIP: fd00:96::a
        clusterIPs: [fd00:96::a, 10.96.0.10]
        ipFamilies: [IPv6, IPv4]
        ipFamilyPolicy: RequireDualStack
      """)
    let decoded = try XCTUnwrap(decode(yaml))
    XCTAssertEqual(decoded.clusterIPs, [IPAddress("fd00:96::a")!, IPAddress("10.96.0.10")!])
    XCTAssertEqual(decoded.ipFamilies, [.ipv6, .ipv4])
    XCTAssertEqual(decoded.ipFamilyPolicy, .requireDualStack)
  }

  func testFamiliesDefaultFromTheClusterIPsAndPolicyStaysUnset() throws {
    let decoded = try XCTUnwrap(decode(service("  clusterIP: fd00:96::b")))
    XCTAssertEqual(decoded.clusterIPs, [IPAddress("fd00:96::b")!])
    XCTAssertEqual(decoded.ipFamilies, [.ipv6])
    XCTAssertNil(decoded.ipFamilyPolicy)
    // PreferDualStack in a single-stack cluster: one IP, valid.
    let prefer = try XCTUnwrap(
      decode(service("  clusterIP: 10.96.0.10\n  ipFamilyPolicy: PreferDualStack")))
    XCTAssertEqual(prefer.ipFamilies, [.ipv4])
    XCTAssertEqual(prefer.ipFamilyPolicy, .preferDualStack)
  }

  func testBadFamilyCombinationsAreRefusedWithTheirField() {
    let prefix = "Service default/web: "
    let cases: [(String, String, [String])] = [
      (
        "  ipFamilies: [IPv4, IPv4]\n  ipFamilyPolicy: RequireDualStack", "ClusterIP",
        ["spec.ipFamilies[1]: duplicate family \"IPv4\""]
      ),
      (
        "  ipFamilies: [IPv5]", "ClusterIP",
        ["spec.ipFamilies[0]: unsupported value \"IPv5\": supported values: \"IPv4\", \"IPv6\""]
      ),
      (
        "  ipFamilies: [IPv4, IPv6]", "ClusterIP",
        [
          "spec.ipFamilyPolicy: must be RequireDualStack or PreferDualStack when multiple 'ipFamilies' are specified"
        ]
      ),
      (
        "  ipFamilies: [IPv4, IPv6, IPv4]\n  ipFamilyPolicy: RequireDualStack", "ClusterIP",
        [
          "spec.ipFamilies[2]: duplicate family \"IPv4\"",
          "spec.ipFamilies: may contain at most 2 entries",
        ]
      ),
      (
        "  clusterIPs: [10.96.0.10, 10.96.0.11]\n  ipFamilyPolicy: RequireDualStack", "ClusterIP",
        ["spec.clusterIPs: may specify no more than one IP for each IP family"]
      ),
      (
        "  clusterIPs: [10.96.0.10, fd00:96::a]\n  ipFamilyPolicy: SingleStack", "ClusterIP",
        [
          "spec.ipFamilyPolicy: must be RequireDualStack or PreferDualStack when multiple 'clusterIPs' are specified"
        ]
      ),
      (
        "  clusterIP: 10.96.0.10\n  ipFamilies: [IPv6]", "ClusterIP",
        [
          "spec.ipFamilies[0]: \"IPv6\" must be the family of spec.clusterIPs[0] (\"10.96.0.10\")"
        ]
      ),
      (
        "  ipFamilyPolicy: DualStack", "ClusterIP",
        [
          "spec.ipFamilyPolicy: unsupported value \"DualStack\": supported values: \"SingleStack\", \"PreferDualStack\", \"RequireDualStack\""
        ]
      ),
      (
        "  externalName: db.example.com\n  ipFamilies: [IPv4]\n  ipFamilyPolicy: SingleStack",
        "ExternalName",
        [
          "spec.ipFamilies: must not be set for ExternalName services",
          "spec.ipFamilyPolicy: must not be set for ExternalName services",
        ]
      ),
    ]
    for (spec, type, expected) in cases {
      XCTAssertEqual(errors(service(spec, type: type)), expected.map { prefix + $0 }, spec)
    }
  }

  private func slice(_ name: String, family: String, _ addresses: [String]) -> String {
    """
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: \(name)
      labels: {kubernetes.io/service-name: web}
    addressType: \(family)
    ports:
    - port: 8080
    endpoints:
    \(addresses.map { "- addresses: [\"\($0)\"]" }.joined(separator: "\n"))
    """
  }

  private func plan(_ yaml: String, file: StaticString = #filePath, line: UInt = #line)
    -> DesiredState
  {
    var ids = LoadBalancerIDs()
    do {
      let set = try ApplyPlan(.apply, yaml: yaml).result(applyingTo: ResourceSet())
      return ServicePlanner.plan(set, ids: &ids)
    } catch {
      XCTFail("\(error)", file: file, line: line)
      return DesiredState()
    }
  }

  /// Each family's frontend is served by that family's endpoints only (kube-proxy's
  /// per-family proxiers); the IPv6 frontend is written [address]:port.
  func testEachFamilysFrontendGetsItsOwnFamilysBackends() {
    let yaml =
      service(
        """
          clusterIPs: [10.96.0.10, fd00:96::a]
          ipFamilies: [IPv4, IPv6]
          ipFamilyPolicy: PreferDualStack
        """)
      + "\n" + slice("web-v4", family: "IPv4", ["10.244.1.7", "10.244.2.9"])
      + "\n" + slice("web-v6", family: "IPv6", ["fd00:10:244:1::7", "fd00:10:244:2::9"])
    let state = plan(yaml)
    XCTAssertEqual(state.conflicts, [])
    XCTAssertEqual(
      state.frontends.map(\.key.description), ["10.96.0.10:80/TCP", "[fd00:96::a]:80/TCP"])
    XCTAssertEqual(
      state.frontends[0].backends.map(\.key.description),
      ["10.244.1.7:8080/TCP", "10.244.2.9:8080/TCP"])
    XCTAssertEqual(
      state.frontends[1].backends.map(\.key.description),
      ["[fd00:10:244:1::7]:8080/TCP", "[fd00:10:244:2::9]:8080/TCP"])
    XCTAssertNotEqual(state.frontends[0].id, state.frontends[1].id, "one rev-NAT id each")
    XCTAssertTrue(
      Set(state.frontends[0].backends.map(\.id)).isDisjoint(
        with: state.frontends[1].backends.map(\.id)))
  }

  /// An IPv6-only Service whose cluster has only IPv4 slices for it has a frontend with no
  /// backends (the datapath answers port unreachable), never an IPv4 backend.
  func testAnIPv6ServiceNeverGetsIPv4Backends() {
    let yaml =
      service("  clusterIP: fd00:96::a") + "\n" + slice("web-v4", family: "IPv4", ["10.244.1.7"])
    let state = plan(yaml)
    XCTAssertEqual(state.frontends.map(\.key.description), ["[fd00:96::a]:80/TCP"])
    XCTAssertEqual(state.frontends[0].backends, [])
  }

  /// IPv6 externalIPs and load-balancer ingress addresses are IPv6 north-south frontends
  /// (external, DSR as the IPv4 ones when asked), served by the IPv6 endpoints only; an IPv4
  /// one beside them by the IPv4 endpoints.
  func testIPv6ExternalAndLoadBalancerAddressesAreIPv6NorthSouthFrontends() throws {
    let yaml =
      service(
        """
          clusterIPs: [10.96.0.10, fd00:96::a]
          ipFamilies: [IPv4, IPv6]
          ipFamilyPolicy: RequireDualStack
          externalIPs: [192.0.2.10, "2001:db8::10"]
        status:
          loadBalancer:
            ingress: [{ip: "2001:db8::20"}, {ip: 198.51.100.20}]
        """, type: "LoadBalancer")
      + "\n" + slice("web-v4", family: "IPv4", ["10.244.1.7"])
      + "\n" + slice("web-v6", family: "IPv6", ["fd00:10:244:1::7"])
    let decoded = try XCTUnwrap(decode(yaml))
    XCTAssertEqual(decoded.externalIPs, [IPAddress("192.0.2.10")!, IPAddress("2001:db8::10")!])
    XCTAssertEqual(
      decoded.loadBalancerIngress, [IPAddress("2001:db8::20")!, IPAddress("198.51.100.20")!])

    var ids = LoadBalancerIDs()
    let set = try ApplyPlan(.apply, yaml: yaml).result(applyingTo: ResourceSet())
    let state = ServicePlanner.plan(
      set, ids: &ids, northSouth: NorthSouthPolicy(dsrProtocols: [.tcp]))
    XCTAssertEqual(state.conflicts, [])
    func frontend(_ key: String) -> ServiceFrontend? {
      state.frontends.first { $0.key.description == key }
    }
    for (key, type) in [
      ("[2001:db8::10]:80/TCP", FrontendType.externalIP),
      ("[2001:db8::20]:80/TCP", FrontendType.loadBalancer),
    ] {
      let v6 = try XCTUnwrap(frontend(key), "\(state.frontends.map(\.key.description))")
      XCTAssertEqual(v6.type, type, key)
      XCTAssertTrue(v6.isExternal, key)
      XCTAssertTrue(v6.usesDSR, key)
      XCTAssertEqual(v6.backends.map(\.key.description), ["[fd00:10:244:1::7]:8080/TCP"], key)
    }
    for key in ["192.0.2.10:80/TCP", "198.51.100.20:80/TCP"] {
      XCTAssertEqual(
        frontend(key)?.backends.map(\.key.description), ["10.244.1.7:8080/TCP"], key)
    }
  }

  /// eTP Local on an IPv6 load-balancer address keeps this node's IPv6 endpoints only.
  func testExternalTrafficPolicyLocalOnAnIPv6LoadBalancerAddress() throws {
    let yaml =
      service(
        """
          clusterIP: fd00:96::a
          externalTrafficPolicy: Local
        status:
          loadBalancer:
            ingress: [{ip: "2001:db8::20"}]
        """, type: "LoadBalancer")
      + "\n"
      + slice("web-v6", family: "IPv6", ["fd00:10:244:1::7", "fd00:10:244:2::9"])
      .replacingOccurrences(
        of: "- addresses: [\"fd00:10:244:1::7\"]",
        with: "- addresses: [\"fd00:10:244:1::7\"]\n  nodeName: n1")
    var ids = LoadBalancerIDs()
    let set = try ApplyPlan(.apply, yaml: yaml).result(applyingTo: ResourceSet())
    let state = ServicePlanner.plan(set, ids: &ids, nodeName: "n1")
    let lb = try XCTUnwrap(state.frontends.first { $0.type == .loadBalancer })
    XCTAssertEqual(lb.key.description, "[2001:db8::20]:80/TCP")
    XCTAssertTrue(lb.isLocalPolicy)
    XCTAssertEqual(lb.backends.map(\.key.description), ["[fd00:10:244:1::7]:8080/TCP"])
    let cluster = try XCTUnwrap(state.frontends.first { $0.type == .clusterIP })
    XCTAssertEqual(cluster.backends.count, 2, "iTP Cluster: both")
  }
}
