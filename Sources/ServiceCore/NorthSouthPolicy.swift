import CNIKit

/// How this node serves traffic from outside the cluster: where NodePorts listen, and which
/// protocols reach a remote backend by direct server return.
///
/// The agent fills it from its settings (`--devices`, `--lb-mode`: see
/// `LBMode.usesDSR(tcp:)` in AgentCore, the one place that decision is made); ServiceCore
/// only applies it, so it stays free of the agent's flags.
public struct NorthSouthPolicy: Hashable, Sendable {
  /// The node's addresses on its external devices, IPv4 and IPv6: one NodePort frontend each
  /// (for the Services of that family).
  public var nodeAddresses: [IPAddress]
  /// Whether every NodePort is also a frontend on 0.0.0.0:nodePort, the one the socket
  /// programs look up for a host process connecting to 0.0.0.0 or 127.x.
  public var nodePortWildcard: Bool
  /// The protocols whose external frontends (NodePort, ExternalIPs, LoadBalancer) reach
  /// remote backends by DSR rather than SNAT.
  public var dsrProtocols: Set<L4Protocol>

  /// The address of the wildcard NodePort frontends.
  public static let wildcardAddress = IPAddress("0.0.0.0")!

  /// `nodePortWildcard` defaults to "whenever NodePort is served on node addresses".
  public init(
    nodeAddresses: [IPAddress] = [], nodePortWildcard: Bool? = nil,
    dsrProtocols: Set<L4Protocol> = []
  ) {
    self.nodeAddresses = nodeAddresses
    // The wildcard is IPv4's 0.0.0.0 (socket LB's NodePort on any address): only with IPv4.
    self.nodePortWildcard = nodePortWildcard ?? self.nodeAddresses.contains(where: \.isIPv4)
    self.dsrProtocols = dsrProtocols
  }

  /// The addresses a Service's NodePorts are frontends on: each node address, then the
  /// wildcard.
  public var nodePortAddresses: [IPAddress] {
    nodeAddresses + (nodePortWildcard ? [Self.wildcardAddress] : [])
  }

  /// Those of `nodePortAddresses` a Service of `families` is served on: kube-proxy runs one
  /// proxier per family and a Service goes only to those of its `ipFamilies`, so a
  /// SingleStack IPv4 Service has no NodePort on the node's IPv6 addresses (and the reverse).
  /// No family known (no clusterIP, no ipFamilies): IPv4, as before IPv6 existed.
  public func nodePortAddresses(for families: [IPFamily]) -> [IPAddress] {
    let served = Set(families.isEmpty ? [.ipv4] : families)
    return nodePortAddresses.filter { served.contains(IPFamily(of: $0)) }
  }
}

extension FrontendType {
  /// Reachable from outside the cluster through the node's devices: NodePort, ExternalIPs
  /// and LoadBalancer (the datapath's JUNCTION_SVC_F_EXTERNAL).
  /// A Local Redirect Policy's frontend is for pods, like a ClusterIP.
  public var isExternal: Bool { self != .clusterIP && self != .localRedirect }
}

/// `externalTrafficPolicy` / `internalTrafficPolicy: Local` as kube-proxy applies them
/// (pkg/proxy/topology.go, CategorizeEndpoints): a frontend under a Local policy uses only
/// the endpoints on this node (`nodeName` equal to this node's name). Among those, ready ones
/// take new connections, and serving-but-terminating ones only when none is ready
/// (`ServiceFrontend.selectable`); with none at all the frontend has no selectable backend
/// and the datapath refuses (ICMP port unreachable), as kube-proxy drops it.
///
/// externalTrafficPolicy governs the external frontends (NodePort on every address including
/// the wildcard, ExternalIPs, LoadBalancer), internalTrafficPolicy the ClusterIP ones.
/// Simplification: which policy applies is decided by the frontend, not by where the client
/// is. A pod or host process of this node connecting to an external frontend gets the
/// external policy (kube-proxy would treat a pod's connection to a LoadBalancer IP as
/// cluster traffic, "short-circuiting" it to any endpoint).
///
/// Topology hints (`TopologyFilter`) do not apply under a Local policy, as in kube-proxy.
public enum TrafficPolicyFilter {
  /// Whether the frontends of `type` use only this node's endpoints for `service`.
  public static func isLocal(_ service: Service, for type: FrontendType) -> Bool {
    (type.isExternal ? service.externalTrafficPolicy : service.internalTrafficPolicy) == "Local"
  }

  /// Whether any of the Service's frontends depend on this node's name.
  public static func dependsOnNodeName(_ service: Service) -> Bool {
    service.externalTrafficPolicy == "Local" || service.internalTrafficPolicy == "Local"
  }

  /// The backends a Local-policy frontend keeps: this node's. The others are left out of
  /// the frontend altogether (not kept as `notPreferred`), as Cilium lists them: the backend
  /// entries they share with the Cluster-policy frontends of the same Service keep their
  /// own state there.
  public static func localOnly(_ backends: [PlannedBackend]) -> [PlannedBackend] {
    backends.filter(\.isLocal)
  }
}
