import CNIKit
import ServiceCore

/// Where an API server is followed, what the agent writes so an Ingress gets an address (as
/// Cilium's operator does in dedicated mode): the LoadBalancer Service
/// `junction-ingress-<name>` is created in the API (the cluster's LB provider then assigns
/// its `status.loadBalancer`), and that address is copied into the Ingress's status. Pure:
/// the followed state in, the writes out; every node's agent computes the same writes, and
/// once they are done the next plan is empty, so N agents converge without churn.
public enum IngressPublishing {
  public static let ingressLabel = "ingress.junction.io/name"

  public enum Action: Equatable, Sendable {
    /// POST the Service (409 AlreadyExists is success). Create only: an existing Service is
    /// never updated, so nobody fights over its fields (its ports stay as first created).
    case createService(namespace: String, name: String, object: JSONValue)
    /// Merge-patch the Ingress's `status` subresource.
    case patchIngressStatus(namespace: String, name: String, patch: JSONValue)
  }

  /// 80, and 443 when the Ingress has TLS.
  public static func servicePorts(_ ingress: IngressResource) -> [ServicePort] {
    var ports = [ServicePort(name: "http", port: 80)]
    if !ingress.tls.isEmpty { ports.append(ServicePort(name: "https", port: 443)) }
    return ports
  }

  static func portsJSON(_ ingress: IngressResource) -> JSONValue {
    .array(
      servicePorts(ingress).map {
        ["name": .string($0.name), "port": .number(Double($0.port)), "protocol": "TCP"]
      })
  }

  /// The Service as created: no selector (Envoy on the receiving node answers, the datapath
  /// redirects its frontends there), owned by the Ingress so the API's garbage collector
  /// deletes it with the Ingress.
  public static func serviceObject(_ ingress: IngressResource) -> JSONValue {
    var metadata: [String: JSONValue] = [
      "name": .string(IngressTranslation.serviceName(ingress)),
      "namespace": .string(ingress.meta.namespace),
      "labels": [ingressLabel: .string(ingress.meta.name)],
    ]
    if let uid = ingress.meta.uid {
      metadata["ownerReferences"] = [
        [
          "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
          "name": .string(ingress.meta.name), "uid": .string(uid), "controller": true,
        ]
      ]
    }
    return [
      "apiVersion": "v1", "kind": "Service", "metadata": .object(metadata),
      "spec": ["type": "LoadBalancer", "ports": portsJSON(ingress)],
    ]
  }

  /// The Ingress status patch carrying the Service's LB addresses; nil when the Ingress
  /// already shows them (order aside).
  public static func statusPatch(_ ingress: IngressResource, service: Service) -> JSONValue? {
    let addresses = service.loadBalancerIngress.map { "\($0)" }
    guard addresses.sorted() != ingress.loadBalancerIPs.sorted() else { return nil }
    return ["status": ["loadBalancer": ["ingress": .array(addresses.map { ["ip": .string($0)] })]]]
  }

  /// The writes that bring the API to what the served Ingresses ask for.
  public static func plan(ingresses: [IngressResource], services: [Service]) -> [Action] {
    var byName: [NamespacedName: Service] = [:]
    for service in services { byName[service.meta.namespacedName] = service }
    var actions: [Action] = []
    for ingress in ingresses.filter(\.isServed).sorted(by: {
      $0.meta.namespacedName < $1.meta.namespacedName
    }) {
      let namespace = ingress.meta.namespace
      let name = IngressTranslation.serviceName(ingress)
      guard let service = byName[NamespacedName(namespace: namespace, name: name)] else {
        actions.append(
          .createService(namespace: namespace, name: name, object: serviceObject(ingress)))
        continue
      }
      if let patch = statusPatch(ingress, service: service) {
        actions.append(
          .patchIngressStatus(namespace: namespace, name: ingress.meta.name, patch: patch))
      }
    }
    return actions
  }
}
