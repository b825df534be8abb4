import ProxyManager
import ServiceCore
import XCTest

final class TranslationTests: XCTestCase {
  let settings = TranslationSettings(
    layout: XDSLayout(directory: "/run/x/xds", accessLogPath: "/run/x/access.log"),
    listenAddress: "127.0.0.1")

  func decodeOne(_ yaml: String) throws -> Resource {
    let decoded = ResourceDecoder.decode(yaml: yaml)
    XCTAssertEqual(decoded.problems.flatMap(\.messages), [])
    return try XCTUnwrap(decoded.resources.first)
  }

  func seedConfig() throws -> EnvoyConfigResource {
    let resource = try decodeOne(SeedManifests.envoyConfig)
    guard case .envoyConfig(let config) = resource else {
      return try XCTUnwrap(nil, "the seed's CiliumEnvoyConfig decoded as another kind: \(resource)")
    }
    return config
  }

  func testSeedConfigDecodesWithItsServicesAndResources() throws {
    let config = try seedConfig()
    XCTAssertEqual(config.apiVersion, "cilium.io/v2alpha1")
    XCTAssertEqual(
      config.services.map(\.service.description),
      ["cilium-test/echo-other-node", "cilium-test/echo-same-node"])
    XCTAssertEqual(config.resources.count, 4)
  }

  func testSeedTranslationQualifiesNamesFillsTheRouterAndRedirectsToTheListener() throws {
    let config = try seedConfig()
    let ports = ProxyPortAllocator().allocate(CECTranslation.unaddressedListeners(config))
    XCTAssertEqual(Array(ports.keys), ["cilium-test/envoy-lb-listener/envoy-lb-listener"])
    let out = CECTranslation.translate(config, ports: ports, settings: settings)
    XCTAssertEqual(out.problems, [])
    let listener = try XCTUnwrap(out.listeners.first)
    XCTAssertEqual(listener["name"]?.stringValue, "cilium-test/envoy-lb-listener/envoy-lb-listener")
    XCTAssertEqual(listener["transparent"], .bool(true))
    let json = EnvoyJSON.encode(listener)
    XCTAssertTrue(json.contains("envoy.extensions.filters.http.router.v3.Router"), json)
    XCTAssertTrue(json.contains("original_dst"), json)
    XCTAssertTrue(
      json.contains("\"route_config_name\":\"cilium-test/envoy-lb-listener/lb_route\""), json)
    XCTAssertEqual(out.routes.first?["name"]?.stringValue, "cilium-test/envoy-lb-listener/lb_route")
    XCTAssertEqual(
      out.clusters.compactMap { $0["name"]?.stringValue },
      ["cilium-test/echo-same-node", "cilium-test/echo-other-node"])
    XCTAssertEqual(
      out.serviceClusters, ["cilium-test/echo-same-node", "cilium-test/echo-other-node"])
    let port = try XCTUnwrap(ports.values.first)
    XCTAssertEqual(out.redirects.map(\.proxyPort), [port, port])
    XCTAssertEqual(out.redirects.map(\.service.name), ["echo-other-node", "echo-same-node"])
    XCTAssertTrue(
      out.notes.contains { $0.contains("typed_config filled in (Router)") }, "\(out.notes)")
  }

  func testCiliumOnlyFiltersAreDroppedWithANoteAndInlineRoutesMoveToRDS() throws {
    let yaml = """
      apiVersion: cilium.io/v2
      kind: CiliumEnvoyConfig
      metadata: {name: c, namespace: ns}
      spec:
        resources:
        - "@type": type.googleapis.com/envoy.config.listener.v3.Listener
          name: l
          listener_filters: [{name: cilium.bpf_metadata}]
          filter_chains:
          - filters:
            - name: cilium.network
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: s
                route_config: {name: r, virtual_hosts: [{name: v, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: local}}]}]}
                http_filters: [{name: cilium.l7policy}, {name: envoy.filters.http.router}]
      """
    guard case .envoyConfig(let config) = try decodeOne(yaml) else { return XCTFail() }
    let out = CECTranslation.translate(
      config, ports: ["ns/c/l": 12000], settings: settings)
    let json = EnvoyJSON.encode(.list(out.listeners))
    XCTAssertFalse(json.contains("cilium."), json)
    XCTAssertEqual(out.notes.filter { $0.contains("Cilium-only") }.count, 3, "\(out.notes)")
    XCTAssertEqual(out.routes.first?["name"]?.stringValue, "ns/c/r")
    // A cluster named without "/" is the config's own, qualified like Cilium does.
    XCTAssertTrue(EnvoyJSON.encode(.list(out.routes)).contains("\"cluster\":\"ns/c/local\""))
  }

  func testProxyPortsAreStableAndDistinct() {
    let allocator = ProxyPortAllocator(range: 10000...10009)
    let names = (0..<10).map { "ns/c/l\($0)" }
    let first = allocator.allocate(names)
    XCTAssertEqual(first, allocator.allocate(names.reversed()))
    XCTAssertEqual(Set(first.values).count, 10)
    XCTAssertEqual(allocator.allocate(names, taken: [10000]).count, 9)
  }

  func testInvalidConfigFieldsAreReportedWithTheirPaths() {
    let yaml = """
      apiVersion: cilium.io/v2
      kind: CiliumEnvoyConfig
      metadata: {name: c, namespace: ns}
      spec:
        services: [{name: web, namespace: other, ports: [70000]}]
        resources: [{name: x}, 5]
      """
    let messages = ResourceDecoder.decode(yaml: yaml).problems.flatMap(\.messages)
    XCTAssertTrue(messages.contains { $0.contains("spec.services[0].namespace") }, "\(messages)")
    XCTAssertTrue(messages.contains { $0.contains("spec.services[0].ports[0]") }, "\(messages)")
    XCTAssertTrue(
      messages.contains { $0.contains("spec.resources[0].@type: is required") }, "\(messages)")
    XCTAssertTrue(
      messages.contains { $0.contains("spec.resources[1]: must be a map") }, "\(messages)")
  }

  func testSeedIngressRoutesPrefixesAndMakesALoadBalancerService() throws {
    guard case .ingress(let ingress) = try decodeOne(SeedManifests.ingress) else {
      return XCTFail()
    }
    XCTAssertTrue(ingress.isServed)
    let out = IngressTranslation.translate(ingress, secrets: [:], port: 12345, settings: settings)
    let routes = EnvoyJSON.encode(.list(out.routes))
    XCTAssertTrue(routes.contains("\"path_separated_prefix\":\"/foo\""), routes)
    XCTAssertTrue(routes.contains("\"cluster\":\"default/foo-app:5678\""), routes)
    XCTAssertEqual(out.serviceClusters, ["default/foo-app:5678", "default/bar-app:5678"])
    XCTAssertEqual(out.generatedService?.meta.name, "junction-ingress-cilium-ingress")
    XCTAssertEqual(out.generatedService?.type, .loadBalancer)
    XCTAssertEqual(out.redirects.first?.proxyPort, 12345)
    XCTAssertEqual(out.redirects.first?.ports, [80])
  }

  func testIngressOrdersExactThenRegexThenLongestPrefix() throws {
    let yaml = """
      apiVersion: networking.k8s.io/v1
      kind: Ingress
      metadata: {name: i}
      spec:
        ingressClassName: junction
        defaultBackend: {service: {name: d, port: {number: 80}}}
        rules:
        - host: a.example
          http:
            paths:
            - {path: /, pathType: Prefix, backend: {service: {name: root, port: {number: 80}}}}
            - {path: /api/v1, pathType: Prefix, backend: {service: {name: v1, port: {name: http}}}}
            - {path: "/x/[0-9]+", pathType: ImplementationSpecific, backend: {service: {name: re, port: {number: 80}}}}
            - {path: /exact, pathType: Exact, backend: {service: {name: ex, port: {number: 80}}}}
      """
    guard case .ingress(let ingress) = try decodeOne(yaml) else { return XCTFail() }
    let out = IngressTranslation.translate(ingress, secrets: [:], port: 1, settings: settings)
    let json = EnvoyJSON.encode(.list(out.routes))
    let order = [
      "default/ex:80", "default/re:80", "default/v1:http", "default/root:80", "default/d:80",
    ]
    .map { json.range(of: "\"cluster\":\"\($0)\"")!.lowerBound }
    XCTAssertEqual(order, order.sorted())
    XCTAssertTrue(json.contains("\"domains\":[\"a.example\",\"a.example:*\"]"), json)
  }

  func testServiceEndpointsAreNamedPerPortNumberNameAndWhole() {
    let set = ServiceBackendSet(
      service: NamespacedName(namespace: "ns", name: "web"),
      ports: [.init(name: "http", port: 80, backends: [.init(address: "10.0.0.1", port: 8080)])])
    XCTAssertEqual(
      Set(ServiceEndpoints.assignments([set]).keys), ["ns/web", "ns/web:80", "ns/web:http"])
  }

  func testAccessLogLinesBecomeRequests() {
    let line: Substring =
      #"{"method":"GET","path":"/foo","authority":"echo:8080","response_code":200,"duration_ms":4,"upstream_host":"10.0.0.1:80","start_time":"2026-12-06T08:00:00.000Z"}"#
    let request = L7Request(line: line)
    XCTAssertEqual(request?.method, "GET")
    XCTAssertEqual(request?.status, 200)
    XCTAssertEqual(request?.url, "http://echo:8080/foo")
    XCTAssertNil(L7Request(line: "not json"))
  }
}
