import CNIKit
import XCTest

@testable import ServiceCore

/// What the Local Redirect Policy planner tests (IPv4 and IPv6) build their tables from: the
/// "droids" policy over the landspeeder/droids Service, ready pods, and manifests applied to
/// a `ServiceTable` as the agent applies them.
protocol LocalRedirectScenario {}

extension LocalRedirectScenario {
  /// A service-matcher policy for landspeeder/droids onto the pods labelled role=droid, port
  /// 80/TCP.
  func droidsPolicy(skip: Bool = false) -> String {
    """
    apiVersion: cilium.io/v2
    kind: CiliumLocalRedirectPolicy
    metadata: {name: droids, namespace: landspeeder}
    spec:
      redirectFrontend:
        serviceMatcher: {serviceName: droids, namespace: landspeeder}
      redirectBackend:
        localEndpointSelector: {matchLabels: {role: droid}}
        toPorts: [{port: "80", protocol: TCP}]
      skipRedirectFromBackend: \(skip)
    """
  }

  /// A pod in "landspeeder" (unless told) on `node` with `ips` as podIPs (the first as
  /// podIP), ready unless told.
  func pod(
    _ name: String, node: String = "node1", ips: [String], labels: String = "{role: droid}",
    namespace: String = "landspeeder", ready: Bool = true
  ) -> String {
    """
    apiVersion: v1
    kind: Pod
    metadata: {name: \(name), namespace: \(namespace), labels: \(labels)}
    spec: {nodeName: \(node)}
    status:
      podIP: "\(ips[0])"
      podIPs: [\(ips.map { "{ip: \"\($0)\"}" }.joined(separator: ", "))]
      conditions: [{type: Ready, status: "\(ready ? "True" : "False")"}]
    """
  }

  /// `pod` with the one address `ip`.
  func pod(
    _ name: String, node: String, ip: String, labels: String = "{role: droid}",
    namespace: String = "landspeeder", ready: Bool = true
  ) -> String {
    pod(name, node: node, ips: [ip], labels: labels, namespace: namespace, ready: ready)
  }

  /// Applies (or deletes) `documents` to `table`; the manifests must decode without errors.
  func apply(
    _ table: inout ServiceTable, _ documents: String..., delete: Bool = false,
    file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let plan = ApplyPlan(delete ? .delete : .apply, yaml: documents.joined(separator: "\n---\n"))
    XCTAssertEqual(plan.errors, [], file: file, line: line)
    table.commit(try plan.update(for: table))
  }
}
