import CNIKit

/// A backend as one Service's port sees it, before ids are given out.
public struct PlannedBackend: Hashable, Sendable {
  public var key: BackendKey
  public var state: BackendState
  public var nodeName: String?
  public var zone: String?
  /// The EndpointSlice's topology hints (`hints.forZones`, `hints.forNodes`).
  public var hintZones: [String] = []
  public var hintNodes: [String] = []
  /// On this node (`nodeName` is this node's name).
  public var isLocal = false
}

/// One frontend a Service asks for. Whether it gets it (another Service may hold the same
/// address:port) and which id it has is settled by `ServiceTable`.
public struct FrontendClaim: Hashable, Sendable {
  public var key: FrontendKey
  public var type: FrontendType
  public var portName: String
  public var backends: [PlannedBackend]
  public var affinityTimeout: Int?
  public var algorithm: LBAlgorithm
  /// NodePort, ExternalIPs or LoadBalancer: served on the node's devices.
  public var isExternal = false
  /// An external frontend whose remote backends are reached by DSR (`NorthSouthPolicy`).
  public var usesDSR = false
  /// Under a Local traffic policy: `backends` are this node's only (`TrafficPolicyFilter`).
  public var isLocalPolicy = false
  /// Set when a Local Redirect Policy took the frontend over (`LocalRedirectPlanner`).
  public var redirect: Redirect? = nil
  /// The Service port this frontend serves (the nodePort frontends' own port differs): what
  /// a `ProxyRedirect` names. 0 for a frontend that is no Service's (a policy's address).
  public var servicePort: UInt16 = 0
}

/// Everything one Service contributes to the node's state, computed from that Service and its
/// own EndpointSlices alone, so a change to one Service re-plans that Service only.
public struct ServiceContribution: Hashable, Sendable {
  /// In the order the full planner always used: each port, then its cluster IPs, external
  /// IPs, load-balancer ingress IPs, node addresses and the wildcard. A key repeated within
  /// the Service is listed once.
  public var claims: [FrontendClaim] = []
  /// Things left out on purpose (headless, ExternalName, unresolvable ports, ...).
  public var notes: [String] = []
  /// Whether the backends depend on the node's zone or name (re-planned when they change):
  /// topology hints, or a Local traffic policy.
  public var isTopologyAware = false
}

/// Resources → desired state.
///
/// targetPort resolution (per service port, per EndpointSlice of the service, as kube-proxy
/// does it): the backend port is the port of the slice entry whose *name* equals the service
/// port's name (both "" when unnamed) and whose protocol matches; the EndpointSlice controller
/// already resolved `targetPort` (a number, or a container port name looked up per pod) into
/// that number. A slice that lists ports but none by that name contributes nothing to this
/// service port. Only a slice that lists no ports at all (hand-written) falls back to a
/// numeric `targetPort` (default: `port`); a named `targetPort` cannot be resolved without
/// the pods' container ports, so that case is a note.
///
/// Frontends: every cluster IP × port (ClusterIP; IPv4 and IPv6, each with the backends of
/// its own family), every externalIP × port
/// (ExternalIPs), every `status.loadBalancer.ingress[].ip` × port (LoadBalancer), and, when
/// the port has a nodePort, each of `NorthSouthPolicy.nodePortAddresses` × nodePort
/// (NodePort: the node's device addresses of the Service's families, and 0.0.0.0 for IPv4). Headless and ExternalName services
/// have none. All but ClusterIP are external; an external frontend uses DSR when its
/// protocol is in `NorthSouthPolicy.dsrProtocols`.
///
/// Backends: externalTrafficPolicy / internalTrafficPolicy Local keep this node's only
/// (`TrafficPolicyFilter`); otherwise topology (`trafficDistribution`, EndpointSlice hints)
/// applies: `TopologyFilter`, for the node in `topology`.
public enum ServicePlanner {
  /// The whole state at once: what `ServiceTable` keeps up to date change by change.
  public static func plan(
    _ resources: ResourceSet, ids: inout LoadBalancerIDs,
    northSouth: NorthSouthPolicy = NorthSouthPolicy(), nodeName: String? = nil,
    proxyRedirects: [ProxyRedirect] = []
  ) -> DesiredState {
    let table = ServiceTable(
      resources: resources, ids: ids, northSouth: northSouth, nodeName: nodeName,
      proxyRedirects: proxyRedirects)
    ids = table.ids
    return table.desiredState
  }

  /// One Service's frontends and backends. `slices` are the Service's IPv4 and IPv6
  /// EndpointSlices.
  public static func contribution(
    of service: Service, slices: [EndpointSlice],
    northSouth: NorthSouthPolicy = NorthSouthPolicy(), topology: NodeTopology = NodeTopology()
  ) -> ServiceContribution {
    var result = ServiceContribution()
    let name = service.meta.namespacedName
    if service.type == .externalName {
      result.notes.append("Service \(name): type ExternalName is DNS-only: no frontend")
      return result
    }
    if service.isHeadless {
      result.notes.append("Service \(name): headless (clusterIP None): no frontend")
      return result
    }
    if service.clusterIPs.isEmpty {
      result.notes.append("Service \(name): no clusterIP: no ClusterIP frontend")
    }
    let slices = slices.sorted { $0.meta.name < $1.meta.name }
    var claimed: Set<FrontendKey> = []
    if TrafficPolicyFilter.dependsOnNodeName(service) { result.isTopologyAware = true }
    for port in service.ports {
      var resolved = resolveBackends(
        service: service, port: port, slices: slices, notes: &result.notes)
      for index in resolved.indices {
        resolved[index].isLocal =
          topology.nodeName != nil && resolved[index].nodeName == topology.nodeName
      }
      if TopologyFilter.isTopologyAware(service, resolved) { result.isTopologyAware = true }
      // Each family's frontends get that family's endpoints only (its own EndpointSlices),
      // filtered per family as kube-proxy's per-family proxiers do: an IPv6 VIP is never
      // DNATed to an IPv4 pod, and topology falls back within the family.
      let families = [true, false].map { ipv4 in
        // A single-stack Service's family shares `resolved` rather than copying it (a copy
        // per Service was 12 MiB of an apply's peak at 10,000 Services × 10).
        let own =
          resolved.allSatisfy { $0.key.address.isIPv4 == ipv4 }
          ? resolved : resolved.filter { $0.key.address.isIPv4 == ipv4 }
        return (
          clusterWide: TopologyFilter.apply(
            own, distribution: service.trafficDistribution, node: topology),
          local: TrafficPolicyFilter.localOnly(own)
        )
      }
      var keys: [(FrontendKey, FrontendType)] = []
      func claim(_ address: IPAddress, _ number: UInt16, _ type: FrontendType) {
        keys.append((FrontendKey(address: address, port: number, proto: port.proto), type))
      }
      for address in service.clusterIPs { claim(address, port.port, .clusterIP) }
      for address in service.externalIPs { claim(address, port.port, .externalIP) }
      for address in service.loadBalancerIngress { claim(address, port.port, .loadBalancer) }
      if let nodePort = port.nodePort, service.type == .nodePort || service.type == .loadBalancer {
        for address in northSouth.nodePortAddresses(for: service.ipFamilies) {
          claim(address, nodePort, .nodePort)
        }
      }
      for (key, type) in keys where claimed.insert(key).inserted {
        let isLocalPolicy = TrafficPolicyFilter.isLocal(service, for: type)
        let family = families[key.address.isIPv4 ? 0 : 1]
        result.claims.append(
          FrontendClaim(
            key: key, type: type, portName: port.name,
            backends: isLocalPolicy ? family.local : family.clusterWide,
            affinityTimeout: service.sessionAffinity.timeoutSeconds, algorithm: service.algorithm,
            isExternal: type.isExternal,
            usesDSR: type.isExternal && northSouth.dsrProtocols.contains(port.proto),
            isLocalPolicy: isLocalPolicy, servicePort: port.port))
      }
    }
    return result
  }

  static func resolveBackends(
    service: Service, port: ServicePort, slices: [EndpointSlice], notes: inout [String]
  ) -> [PlannedBackend] {
    var best: [BackendKey: PlannedBackend] = [:]
    for slice in slices {
      let target: UInt16?
      if let entry = slice.ports.first(where: { $0.name == port.name && $0.proto == port.proto }) {
        target = entry.port
      } else if slice.ports.isEmpty {
        switch port.targetPort {
        case .int(let number): target = UInt16(number)
        case .string(let name):
          notes.append(
            "Service \(service.meta.namespacedName): port \(port.name.isEmpty ? String(port.port) : port.name): targetPort \"\(name)\" cannot be resolved: EndpointSlice \(slice.meta.name) lists no ports"
          )
          target = nil
        }
      } else {
        target = nil
      }
      guard let target else { continue }
      for endpoint in slice.endpoints {
        let state = BackendState.from(endpoint)
        for address in endpoint.addresses {
          let key = BackendKey(address: address, port: target, proto: port.proto)
          // The same address:port in two slices (a slice being split or merged): keep the
          // most usable state, as kube-proxy merges endpoints by IP:port.
          if let existing = best[key], existing.state.rank >= state.rank { continue }
          best[key] = PlannedBackend(
            key: key, state: state, nodeName: endpoint.nodeName, zone: endpoint.zone,
            hintZones: endpoint.hintZones, hintNodes: endpoint.hintNodes)
        }
      }
    }
    return best.keys.sorted().map { best[$0]! }
  }
}
