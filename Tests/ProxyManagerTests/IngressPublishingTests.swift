import CNIKit
import ProxyManager
import ServiceCore
import XCTest

/// The Ingress write side's pure parts: the Service Junction creates in the API, and the
/// status comparison that lets N agents converge without churn.
final class IngressPublishingTests: XCTestCase {
  private func ingress(uid: String? = "u-1", tls: Bool = false, ips: [String] = [])
    -> IngressResource
  {
    var ingress = IngressResource(
      meta: ObjectMeta(name: "web", namespace: "shop", uid: uid), ingressClassName: "cilium",
      defaultBackend: IngressBackend(service: "app", port: .int(80)),
      tls: tls ? [IngressTLS(hosts: ["a.example"], secretName: "cert")] : [])
    ingress.loadBalancerIPs = ips
    return ingress
  }

  private func service(ips: [String]) -> Service {
    Service(
      meta: ObjectMeta(name: "junction-ingress-web", namespace: "shop"), type: .loadBalancer,
      ports: [ServicePort(name: "http", port: 80)],
      loadBalancerIngress: ips.compactMap { IPAddress($0) })
  }

  func testTheCreatedServiceIsALoadBalancerOwnedByTheIngressAndDecodesAsGenerated() throws {
    let object = IngressPublishing.serviceObject(ingress(tls: true))
    XCTAssertEqual(object["metadata"]?["name"], "junction-ingress-web")
    XCTAssertEqual(object["metadata"]?["namespace"], "shop")
    XCTAssertEqual(object["metadata"]?["labels"]?["ingress.junction.io/name"], "web")
    XCTAssertEqual(
      object["metadata"]?["ownerReferences"],
      [
        [
          "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web", "uid": "u-1",
          "controller": true,
        ]
      ])
    XCTAssertNil(object["spec"]?["selector"], "Envoy answers: no selector, no endpoints")
    XCTAssertNil(object["status"])
    let decoded = ResourceDecoder.decode(documents: [YAMLValue(json: object)])
    XCTAssertEqual(decoded.problems.flatMap(\.messages), [])
    guard case .service(let service) = decoded.resources.first else { return XCTFail() }
    XCTAssertEqual(service.type, .loadBalancer)
    XCTAssertEqual(service.ports.map(\.port), [80, 443])
    XCTAssertEqual(service.ports.map(\.proto), [.tcp, .tcp])
    // Without a uid (not from an API server) there is nothing to own it by.
    XCTAssertNil(IngressPublishing.serviceObject(ingress(uid: nil))["metadata"]?["ownerReferences"])
  }

  func testTheStatusIsPatchedOnlyWhenItDiffersFromTheServiceAddresses() {
    XCTAssertNil(IngressPublishing.statusPatch(ingress(), service: service(ips: [])))
    XCTAssertNil(
      IngressPublishing.statusPatch(
        ingress(ips: ["192.0.2.9", "192.0.2.8"]), service: service(ips: ["192.0.2.8", "192.0.2.9"])),
      "order aside, the same addresses: no write")
    XCTAssertEqual(
      IngressPublishing.statusPatch(ingress(), service: service(ips: ["192.0.2.8"])),
      ["status": ["loadBalancer": ["ingress": [["ip": "192.0.2.8"]]]]])
    XCTAssertEqual(
      IngressPublishing.statusPatch(ingress(ips: ["192.0.2.8"]), service: service(ips: [])),
      ["status": ["loadBalancer": ["ingress": []]]], "an address the Service lost is removed")
  }

  func testThePlanCreatesThenCopiesTheAddressThenIsEmpty() {
    var other = ingress()
    other.ingressClassName = "nginx"
    other.meta.name = "theirs"
    XCTAssertEqual(
      IngressPublishing.plan(ingresses: [ingress(), other], services: []),
      [
        .createService(
          namespace: "shop", name: "junction-ingress-web",
          object: IngressPublishing.serviceObject(ingress()))
      ], "only a served Ingress gets a Service")
    XCTAssertEqual(
      IngressPublishing.plan(ingresses: [ingress()], services: [service(ips: [])]), [],
      "the Service exists (never updated) and has no address yet")
    XCTAssertEqual(
      IngressPublishing.plan(ingresses: [ingress()], services: [service(ips: ["192.0.2.8"])]),
      [
        .patchIngressStatus(
          namespace: "shop", name: "web",
          patch: ["status": ["loadBalancer": ["ingress": [["ip": "192.0.2.8"]]]]])
      ])
    XCTAssertEqual(
      IngressPublishing.plan(
        ingresses: [ingress(ips: ["192.0.2.8"])], services: [service(ips: ["192.0.2.8"])]), [],
      "converged: nothing to write")
  }
}
