import CNIKit
import XCTest

@testable import ServiceCore

final class DecodingTests: XCTestCase {
  private func decodeOne(_ yaml: String, file: StaticString = #filePath, line: UInt = #line)
    -> Resource?
  {
    let decoded = ResourceDecoder.decode(yaml: yaml)
    XCTAssertEqual(decoded.problems, [], file: file, line: line)
    XCTAssertEqual(decoded.resources.count, 1, file: file, line: line)
    return decoded.resources.first
  }

  private func errors(_ yaml: String) -> [String] {
    ApplyPlan(.apply, yaml: yaml).errors
  }

  func testServiceAsKubectlPrintsIt() throws {
    guard case .service(let service)? = decodeOne(Fixtures.webService) else { return XCTFail() }
    XCTAssertEqual(service.meta.namespacedName, NamespacedName(namespace: "default", name: "web"))
    XCTAssertEqual(service.meta.uid, "3f6c2a8e-7d1b-4f4e-9c55-0b8a1e2d9f10")
    XCTAssertEqual(service.meta.labels, ["app": "web"])
    XCTAssertEqual(service.type, .clusterIP)
    XCTAssertEqual(service.clusterIPs, [IPAddress("10.96.12.34")!])
    XCTAssertFalse(service.isHeadless)
    XCTAssertEqual(
      service.ports,
      [
        ServicePort(name: "http", proto: .tcp, port: 80, targetPort: .string("http")),
        ServicePort(name: "metrics", proto: .tcp, port: 9090, targetPort: .int(9100)),
      ])
    XCTAssertEqual(service.selector, ["app": "web"])
    XCTAssertEqual(service.sessionAffinity, .clientIP(timeoutSeconds: 600))
    XCTAssertEqual(service.internalTrafficPolicy, "Cluster")
    XCTAssertEqual(service.algorithm, .maglev)
  }

  func testEndpointSliceConditionsDefaultAsKubernetesSays() throws {
    guard case .endpointSlice(let slice)? = decodeOne(Fixtures.webSlice) else { return XCTFail() }
    XCTAssertEqual(slice.serviceName, NamespacedName(namespace: "default", name: "web"))
    XCTAssertEqual(slice.addressType, .ipv4)
    XCTAssertEqual(
      slice.ports,
      [EndpointPort(name: "metrics", port: 9100), EndpointPort(name: "http", port: 8080)])
    XCTAssertEqual(slice.endpoints.count, 4)
    let ready = slice.endpoints[0]
    XCTAssertEqual(ready.addresses, [IPAddress("10.244.1.7")!])
    XCTAssertEqual(ready.nodeName, "node-a")
    XCTAssertEqual(ready.zone, "zone-1")
    XCTAssertTrue(ready.ready && ready.serving && !ready.terminating)
    let terminating = slice.endpoints[1]
    XCTAssertTrue(!terminating.ready && terminating.serving && terminating.terminating)
    // `conditions: {}`: ready nil → true, serving defers to ready, terminating nil → false.
    let unset = slice.endpoints[2]
    XCTAssertTrue(unset.ready && unset.serving && !unset.terminating)
    XCTAssertFalse(slice.endpoints[3].serving)
  }

  func testEndpointTargetRefNamesThePodBehindTheAddresses() throws {
    guard case .endpointSlice(let slice)? = decodeOne(Fixtures.webSlice) else { return XCTFail() }
    XCTAssertEqual(
      slice.endpoints.map(\.target),
      [
        EndpointTarget(kind: "Pod", namespace: "default", name: "web-5d9c7b8f4-abcde"),
        EndpointTarget(kind: "Pod", namespace: "default", name: "web-5d9c7b8f4-fghij"),
        nil, nil,
      ])
    // A targetRef without a namespace is in the slice's.
    let yaml = """
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata: {name: api-1, namespace: shop, labels: {kubernetes.io/service-name: api}}
      addressType: IPv4
      endpoints:
      - addresses: [10.244.5.6]
        targetRef: {kind: Pod, name: api-0}
      """
    guard case .endpointSlice(let other)? = decodeOne(yaml) else { return XCTFail() }
    XCTAssertEqual(
      other.endpoints.first?.target, EndpointTarget(kind: "Pod", namespace: "shop", name: "api-0"))
  }

  func testListAndMultiDocumentGiveTheSameObjects() {
    let fromList = ResourceDecoder.decode(yaml: Fixtures.list)
    XCTAssertEqual(fromList.problems, [])
    XCTAssertEqual(
      fromList.resources.map(\.key.description),
      ["Service default/web", "EndpointSlice default/web-x7k2p"])

    let fromDocuments = ResourceDecoder.decode(yaml: Fixtures.multiDocument)
    XCTAssertEqual(fromDocuments.problems, [])
    XCTAssertEqual(fromDocuments.resources, fromList.resources)
    // Unknown kinds are reported with kind, apiVersion and name, and skipped.
    XCTAssertEqual(
      fromDocuments.skipped.map { "\($0.kind) \($0.apiVersion) \($0.name)" },
      ["Deployment apps/v1 web", "ConfigMap v1 settings"])
    XCTAssertEqual(fromDocuments.skipped.first?.location, "document 1")
    XCTAssertTrue(ApplyPlan(.apply, yaml: Fixtures.multiDocument).isValid)
  }

  func testNodePodAndRedirectPolicies() {
    let yaml = """
      apiVersion: v1
      kind: Node
      metadata:
        name: node-a
        labels:
          topology.kubernetes.io/zone: zone-1
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: web-1
        namespace: shop
        labels: {app: web}
      spec:
        nodeName: node-a
      status:
        podIP: 10.244.1.7
        podIPs:
        - ip: 10.244.1.7
        conditions:
        - type: Ready
          status: "True"
      ---
      apiVersion: cilium.io/v2
      kind: CiliumLocalRedirectPolicy
      metadata:
        name: dns
        namespace: kube-system
      spec:
        redirectFrontend:
          serviceMatcher: {serviceName: kube-dns, namespace: kube-system}
        redirectBackend:
          localEndpointSelector: {matchLabels: {k8s-app: node-local-dns}}
          toPorts: [{port: "53", protocol: UDP}]
      ---
      apiVersion: junction.io/v1alpha1
      kind: LocalRedirectPolicy
      metadata:
        name: dns
        namespace: kube-system
      spec:
        redirectFrontend:
          addressMatcher: {ip: 169.254.20.10, toPorts: [{port: 53, protocol: UDP}]}
        redirectBackend:
          localEndpointSelector: {}
          toPorts: [{port: 53, protocol: UDP}]
      """
    let decoded = ResourceDecoder.decode(yaml: yaml)
    XCTAssertEqual(decoded.problems, [])
    let set = ResourceSet(decoded.resources)
    XCTAssertEqual(
      set.nodes, [KubeNode(name: "node-a", labels: ["topology.kubernetes.io/zone": "zone-1"])])
    XCTAssertEqual(set.pods.first?.podIPs, [IPAddress("10.244.1.7")!])
    XCTAssertEqual(set.pods.first?.ready, true)
    XCTAssertEqual(set.pods.first?.nodeName, "node-a")
    XCTAssertEqual(
      set.redirectPolicies.map(\.kind), ["LocalRedirectPolicy", "CiliumLocalRedirectPolicy"])
  }

  // MARK: bad YAML: each error names the object and the field path.

  func testWrongAPIVersion() {
    XCTAssertEqual(
      errors(
        Fixtures.service(name: "web").replacingOccurrences(
          of: "apiVersion: v1", with: "apiVersion: apps/v1")),
      [
        "Service default/web: apiVersion: \"apps/v1\" is not supported for kind Service (expected \"v1\")"
      ])
    let beta = Fixtures.slice(endpoints: [("10.0.0.1", true, true, false)])
      .replacingOccurrences(of: "discovery.k8s.io/v1", with: "discovery.k8s.io/v1beta1")
    XCTAssertEqual(
      errors(beta),
      [
        "EndpointSlice default/api-1: apiVersion: \"discovery.k8s.io/v1beta1\" is not supported for kind EndpointSlice (expected \"discovery.k8s.io/v1\")"
      ])
  }

  func testClusterIPNotAnIP() {
    XCTAssertEqual(
      errors(Fixtures.service(name: "web", clusterIP: "10.0.0.300")),
      ["Service default/web: spec.clusterIP: \"10.0.0.300\" is not an IP address"])
  }

  func testPort70000() {
    let yaml = """
      apiVersion: v1
      kind: Service
      metadata: {name: web}
      spec:
        clusterIP: 10.96.0.5
        ports:
        - {name: http, port: 80}
        - {name: admin, port: 70000}
      """
    XCTAssertEqual(
      errors(yaml), ["Service default/web: spec.ports[1].port: 70000 is not a valid port (1-65535)"]
    )
  }

  func testDuplicatePortNamesAndMissingNames() {
    let yaml = """
      apiVersion: v1
      kind: Service
      metadata: {name: web, namespace: shop}
      spec:
        clusterIP: 10.96.0.5
        ports:
        - {name: http, port: 80}
        - {name: http, port: 8080}
        - {port: 9090}
      """
    XCTAssertEqual(
      errors(yaml),
      [
        "Service shop/web: spec.ports[1].name: duplicate port name \"http\"",
        "Service shop/web: spec.ports[2].name: is required when a service has more than one port",
      ])
  }

  func testEveryProblemOfADocumentIsReported() {
    let yaml = """
      apiVersion: v1
      kind: Service
      metadata: {name: Web_1}
      spec:
        type: Magic
        clusterIP: 10.96.0.5
        sessionAffinity: ClientIP
        sessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}}
        externalIPs: [not-an-ip]
        ports:
        - {name: dns, port: 53, protocol: ICMP, targetPort: Not_A_Name}
        - {name: x, port: "80", targetPort: 0, nodePort: 30080}
      """
    let messages = errors(yaml)
    let paths = [
      "metadata.name: \"Web_1\" is not valid",
      "spec.type: unsupported value \"Magic\"",
      "spec.ports[0].protocol: \"ICMP\" is not a supported protocol (TCP, UDP, SCTP)",
      "spec.ports[0].targetPort: \"Not_A_Name\" is not a valid port name (IANA_SVC_NAME)",
      "spec.ports[1].port: must be an integer, got string \"80\"",
      "spec.ports[1].targetPort: 0 is not a valid port (1-65535)",
      "spec.sessionAffinityConfig.clientIP.timeoutSeconds: 86401 is out of range (1-86400)",
      "spec.externalIPs[0]: \"not-an-ip\" is not an IP address",
    ]
    for path in paths {
      XCTAssertTrue(messages.contains { $0.contains(path) }, "missing \(path) in \(messages)")
    }
    // The invalid type means nodePort is not judged against it; with ClusterIP it would be.
    let clusterIP = errors(
      Fixtures.service(extra: "").replacingOccurrences(
        of: "targetPort: 8080", with: "nodePort: 30080"))
    XCTAssertEqual(
      clusterIP,
      ["Service default/api: spec.ports[0].nodePort: may not be used when type is 'ClusterIP'"])
  }

  func testEndpointSliceProblems() {
    let yaml = """
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata: {name: api-1}
      ports:
      - {name: http, port: 0}
      endpoints:
      - addresses: ["10.0.0.1", "fd00::1"]
        conditions: {ready: "yes please"}
      - conditions: {ready: true}
      """
    XCTAssertEqual(
      errors(yaml),
      [
        "EndpointSlice default/api-1: addressType: is required",
        "EndpointSlice default/api-1: ports[0].port: 0 is not a valid port (1-65535)",
        "EndpointSlice default/api-1: endpoints[0].addresses[1]: \"fd00::1\" is not an IPv4 address",
        "EndpointSlice default/api-1: endpoints[0].conditions.ready: must be a boolean, got string \"yes please\"",
        "EndpointSlice default/api-1: endpoints[1].addresses: is required",
      ])
  }

  func testIPv6SliceIsAcceptedAndFQDNIsNoted() {
    let yaml = """
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata: {name: api-v6, labels: {kubernetes.io/service-name: api}}
      addressType: IPv6
      endpoints:
      - addresses: ["fd00::1"]
      """
    let decoded = ResourceDecoder.decode(yaml: yaml)
    XCTAssertEqual(decoded.problems, [])
    XCTAssertEqual(decoded.notes, [])
    guard case .endpointSlice(let slice)? = decoded.resources.first else { return XCTFail() }
    XCTAssertEqual(slice.addressType, .ipv6)
    XCTAssertEqual(slice.endpoints.first?.addresses, [IPAddress("fd00::1")!])

    let fqdn = ResourceDecoder.decode(
      yaml: yaml.replacingOccurrences(of: "addressType: IPv6", with: "addressType: FQDN")
        .replacingOccurrences(of: "fd00::1", with: "api.example.com"))
    XCTAssertEqual(fqdn.problems, [])
    XCTAssertEqual(fqdn.notes.count, 1)
    XCTAssertTrue(fqdn.notes[0].contains("addressType FQDN"))
  }

  func testSyntaxErrorAndNonObject() {
    XCTAssertEqual(errors("apiVersion: v1\nkind: [unclosed").count, 1)
    XCTAssertEqual(errors("- just\n- a list"), ["document 1: must be a map, got list"])
  }

  func testNameRules() {
    XCTAssertNil(KubernetesNames.dns1123Label("web-1"))
    XCTAssertNotNil(KubernetesNames.dns1123Label("-web"))
    XCTAssertNotNil(KubernetesNames.dns1035Label("1web"))
    XCTAssertNil(KubernetesNames.dns1123Subdomain("web-x7k2p.a"))
    XCTAssertNotNil(KubernetesNames.dns1123Subdomain("a..b"))
    XCTAssertNil(KubernetesNames.ianaServiceName("http"))
    XCTAssertNotNil(KubernetesNames.ianaServiceName("8080"))
    XCTAssertNotNil(KubernetesNames.ianaServiceName("my--port"))
    XCTAssertNotNil(KubernetesNames.ianaServiceName("a-very-long-port-name"))
  }
}
