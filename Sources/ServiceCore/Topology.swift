/// Where this agent's node is: its name (`--node-name`) and its zone (the
/// `topology.kubernetes.io/zone` label of the `Node` of that name, when one was applied).
public struct NodeTopology: Hashable, Sendable {
  public static let zoneLabel = "topology.kubernetes.io/zone"

  public var nodeName: String?
  public var zone: String?

  public init(nodeName: String? = nil, zone: String? = nil) {
    self.nodeName = nodeName
    self.zone = zone
  }
}

/// Topology-aware backend choice, per node, with kube-proxy's rules (pkg/proxy/topology.go):
///
/// - Only **ready** endpoints decide. If every ready endpoint carries node hints (`forNodes`)
///   and at least one names this node, new connections go to the ready endpoints hinted for
///   this node. Else, if every ready endpoint carries zone hints (`forZones`) and at least
///   one names this node's zone, to the ready endpoints hinted for this zone. Else topology is
///   off for the whole Service and every ready endpoint is used.
/// - So a zone with no ready endpoint falls back to all of them instead of refusing
///   connections (Cilium #41022), and a pod that is still starting (not ready, and so
///   without a hint yet) does not switch zone routing off for everyone (Cilium #47960).
/// - Serving-but-terminating endpoints take new connections only when nothing is ready
///   (`ServiceFrontend.selectable`), topology ignored then, as kube-proxy's fallback.
///
/// Hints normally come from the EndpointSlice controller, which writes them for
/// `trafficDistribution: PreferClose` / `PreferSameZone` (zone hints) and `PreferSameNode`
/// (node and zone hints). Slices written by hand or by a lab carry none; for a Service that
/// asks for a traffic distribution, an endpoint without hints is then treated as hinted for
/// its own zone (and, for PreferSameNode, its own node), as the controller would hint it.
///
/// Backends left out keep their entries and existing connections (state `notPreferred`),
/// exactly like terminating ones, so a zone change never cuts a connection.
public enum TopologyFilter {
  public enum Mode: Equatable, Sendable {
    case none
    case sameNode
    case sameZone
  }

  /// The mode for one Service port's backends on this node.
  public static func mode(
    _ backends: [PlannedBackend], distribution: String?, node: NodeTopology
  ) -> Mode {
    let ready = backends.filter { $0.state == .active }
    guard !ready.isEmpty else { return .none }
    if let name = node.nodeName {
      let hints = ready.map { nodeHints($0, distribution) }
      if hints.allSatisfy({ !$0.isEmpty }), hints.contains(where: { $0.contains(name) }) {
        return .sameNode
      }
    }
    if let zone = node.zone {
      let hints = ready.map { zoneHints($0, distribution) }
      if hints.allSatisfy({ !$0.isEmpty }), hints.contains(where: { $0.contains(zone) }) {
        return .sameZone
      }
    }
    return .none
  }

  /// `backends` with the ready ones outside this node's topology marked `notPreferred`.
  public static func apply(
    _ backends: [PlannedBackend], distribution: String?, node: NodeTopology
  ) -> [PlannedBackend] {
    let chosen = mode(backends, distribution: distribution, node: node)
    guard chosen != .none else { return backends }
    return backends.map { backend in
      guard backend.state == .active else { return backend }
      let preferred =
        chosen == .sameNode
        ? nodeHints(backend, distribution).contains(node.nodeName ?? "")
        : zoneHints(backend, distribution).contains(node.zone ?? "")
      var result = backend
      if !preferred { result.state = .notPreferred }
      return result
    }
  }

  /// Whether a Service's backends depend on where the node is (so a zone change re-plans it).
  public static func isTopologyAware(_ service: Service, _ backends: [PlannedBackend]) -> Bool {
    distributionHintsItself(service.trafficDistribution)
      || backends.contains { !$0.hintZones.isEmpty || !$0.hintNodes.isEmpty }
  }

  private static func distributionHintsItself(_ distribution: String?) -> Bool {
    ["PreferClose", "PreferSameZone", "PreferSameNode"].contains(distribution ?? "")
  }

  private static func zoneHints(_ backend: PlannedBackend, _ distribution: String?) -> [String] {
    if !backend.hintZones.isEmpty { return backend.hintZones }
    guard distributionHintsItself(distribution), let zone = backend.zone else { return [] }
    return [zone]
  }

  private static func nodeHints(_ backend: PlannedBackend, _ distribution: String?) -> [String] {
    if !backend.hintNodes.isEmpty { return backend.hintNodes }
    guard distribution == "PreferSameNode", let name = backend.nodeName else { return [] }
    return [name]
  }
}
