import CNIKit

/// An L4 address, "10.96.0.10:53/UDP": a frontend's (what a packet's destination is matched
/// against) or a backend's (its description is also its Maglev name, and the id tables' key).
public struct L4Address: Hashable, Sendable, Comparable, CustomStringConvertible {
  public var address: IPAddress
  public var port: UInt16
  public var proto: L4Protocol

  public init(address: IPAddress, port: UInt16, proto: L4Protocol) {
    self.address = address
    self.port = port
    self.proto = proto
  }

  public var description: String { "\(address):\(port)/\(proto.rawValue)" }

  public static func < (lhs: L4Address, rhs: L4Address) -> Bool {
    (lhs.address.bytes.lexicographicallyPrecedes(rhs.address.bytes))
      || (lhs.address == rhs.address && (lhs.port, lhs.proto) < (rhs.port, rhs.proto))
  }
}

/// The names say which side an address is on; the shape is the same.
public typealias FrontendKey = L4Address
public typealias BackendKey = L4Address

/// Cilium's names for the Service Type column.
public enum FrontendType: String, Hashable, Sendable, Codable {
  case clusterIP = "ClusterIP"
  case nodePort = "NodePort"
  case externalIP = "ExternalIPs"
  case loadBalancer = "LoadBalancer"
}

/// What a backend may be used for.
/// - `active`: ready; chosen for new connections.
/// - `terminating`: not ready but serving and terminating (a pod in its grace period). Keeps its
///   existing connections (its backend entry stays, conntrack still points at it) and gets no
///   new ones, unless the frontend has no active backend at all: then terminating backends take
///   new connections too, as kube-proxy does (CategorizeEndpoints: "if no ready endpoints, fall
///   back to serving∧terminating"), so a rolling update of a one-replica service does not
///   refuse connections.
/// - `excluded`: not serving; never chosen (existing connections may still drain to it while
///   its backend entry exists).
public enum BackendState: String, Hashable, Sendable, Codable {
  case active
  case terminating
  case excluded

  fileprivate var rank: Int {
    switch self {
    case .active: 2
    case .terminating: 1
    case .excluded: 0
    }
  }

  static func from(_ endpoint: Endpoint) -> BackendState {
    if endpoint.ready { return .active }
    if endpoint.serving && endpoint.terminating { return .terminating }
    return .excluded
  }
}

public struct ServiceBackend: Hashable, Sendable {
  public var id: UInt32
  public var key: BackendKey
  public var state: BackendState
  public var nodeName: String?
  public var zone: String?

  public init(
    id: UInt32, key: BackendKey, state: BackendState, nodeName: String? = nil, zone: String? = nil
  ) {
    self.id = id
    self.key = key
    self.state = state
    self.nodeName = nodeName
    self.zone = zone
  }
}

/// One frontend and everything the datapath needs to load-balance it.
public struct ServiceFrontend: Hashable, Sendable {
  /// Reverse-NAT id, stable for as long as the frontend exists (see `StableIDTable`).
  public var id: UInt16
  public var key: FrontendKey
  public var type: FrontendType
  public var service: NamespacedName
  public var portName: String
  /// Every backend with its state, sorted by (address, port).
  public var backends: [ServiceBackend]
  /// ClientIP affinity timeout in seconds; nil = no affinity.
  public var affinityTimeout: Int?
  public var algorithm: LBAlgorithm

  public init(
    id: UInt16, key: FrontendKey, type: FrontendType, service: NamespacedName, portName: String,
    backends: [ServiceBackend], affinityTimeout: Int? = nil, algorithm: LBAlgorithm = .random
  ) {
    self.id = id
    self.key = key
    self.type = type
    self.service = service
    self.portName = portName
    self.backends = backends
    self.affinityTimeout = affinityTimeout
    self.algorithm = algorithm
  }

  /// The backends new connections may go to, in slot order (slots 1...count): the active
  /// ones, or, when there are none, the terminating ones (kube-proxy's fallback). Empty means
  /// the frontend answers like kube-proxy with no endpoints: reject.
  public var selectable: [ServiceBackend] {
    let active = backends.filter { $0.state == .active }
    return active.isEmpty ? backends.filter { $0.state == .terminating } : active
  }

  /// The Maglev lookup table as backend ids (empty when nothing is selectable). Names are the
  /// backends' "address:port/PROTO", so every node computes the same table.
  public func maglevTable(size: Int = Maglev.defaultTableSize, seed: Maglev.Seed = .standard)
    -> [UInt32]
  {
    let chosen = selectable
    return Maglev.table(backends: chosen.map(\.key.description), size: size, seed: seed).map {
      chosen[$0].id
    }
  }
}

/// The node's desired load-balancing state: a pure function of the resources plus the id
/// tables (which only make ids stable, never change what is programmed).
public struct DesiredState: Equatable, Sendable {
  /// Sorted by frontend key.
  public var frontends: [ServiceFrontend]
  /// Things left out on purpose (headless, ExternalName, unresolvable ports, ...).
  public var notes: [String]
  /// Frontends claimed by more than one service: the first service by namespace/name keeps
  /// it; an apply that introduces a conflict is refused (see `ApplyPlan`).
  public var conflicts: [String]

  public init(frontends: [ServiceFrontend] = [], notes: [String] = [], conflicts: [String] = []) {
    self.frontends = frontends
    self.notes = notes
    self.conflicts = conflicts
  }

  /// Every backend entry the frontends reference, by id.
  public var backends: [UInt32: BackendKey] {
    var result: [UInt32: BackendKey] = [:]
    for frontend in frontends {
      for backend in frontend.backends { result[backend.id] = backend.key }
    }
    return result
  }

  public func frontend(_ key: FrontendKey) -> ServiceFrontend? { frontends.first { $0.key == key } }
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
/// Frontends: every IPv4 cluster IP × port (ClusterIP), every externalIP × port
/// (ExternalIPs), every `status.loadBalancer.ingress[].ip` × port (LoadBalancer), and, when
/// `nodeAddresses` is given and the port has a nodePort, each node address × nodePort
/// (NodePort). Headless and ExternalName services have none.
///
/// Not applied yet (kept on `Service` for the topology issue): externalTrafficPolicy,
/// internalTrafficPolicy, trafficDistribution and hints.
public enum ServicePlanner {
  public static func plan(
    _ resources: ResourceSet, ids: inout LoadBalancerIDs, nodeAddresses: [IPAddress] = []
  ) -> DesiredState {
    var state = DesiredState()
    var slicesByService: [NamespacedName: [EndpointSlice]] = [:]
    for slice in resources.endpointSlices where slice.addressType == .ipv4 {
      if let owner = slice.serviceName { slicesByService[owner, default: []].append(slice) }
    }

    struct Pending {
      var key: FrontendKey
      var type: FrontendType
      var service: Service
      var port: ServicePort
      var backends: [(key: BackendKey, state: BackendState, node: String?, zone: String?)]
    }
    var pending: [FrontendKey: Pending] = [:]

    for service in resources.services {
      let name = service.meta.namespacedName
      if service.type == .externalName {
        state.notes.append("Service \(name): type ExternalName is DNS-only: no frontend")
        continue
      }
      if service.isHeadless {
        state.notes.append("Service \(name): headless (clusterIP None): no frontend")
        continue
      }
      if service.clusterIPs.isEmpty {
        state.notes.append("Service \(name): no IPv4 clusterIP: no ClusterIP frontend")
      }
      let slices = (slicesByService[name] ?? []).sorted { $0.meta.name < $1.meta.name }
      for port in service.ports {
        let backends = resolveBackends(
          service: service, port: port, slices: slices, notes: &state.notes)
        var claims: [(FrontendKey, FrontendType)] = []
        for address in service.clusterIPs {
          claims.append(
            (FrontendKey(address: address, port: port.port, proto: port.proto), .clusterIP))
        }
        for address in service.externalIPs {
          claims.append(
            (FrontendKey(address: address, port: port.port, proto: port.proto), .externalIP))
        }
        for address in service.loadBalancerIngress {
          claims.append(
            (FrontendKey(address: address, port: port.port, proto: port.proto), .loadBalancer))
        }
        if let nodePort = port.nodePort, service.type == .nodePort || service.type == .loadBalancer
        {
          for address in nodeAddresses where address.isIPv4 {
            claims.append(
              (FrontendKey(address: address, port: nodePort, proto: port.proto), .nodePort))
          }
        }
        for (key, type) in claims {
          if let holder = pending[key] {
            if holder.service.meta.namespacedName != name {
              state.conflicts.append(
                "frontend \(key) of Service \(name) is already used by Service \(holder.service.meta.namespacedName)"
              )
            }
            continue
          }
          pending[key] = Pending(
            key: key, type: type, service: service, port: port, backends: backends)
        }
      }
    }

    // Ids: existing keys keep theirs; new ones are allocated in key order so that the same
    // input on a fresh table always yields the same ids.
    var liveBackends: Set<String> = []
    for item in pending.values.sorted(by: { $0.key < $1.key }) {
      guard let id = ids.services.id(for: item.key) else {
        state.notes.append(
          "frontend \(item.key): no free service id (all \(ServiceIDAllocator.maxID) in use)")
        continue
      }
      var backends: [ServiceBackend] = []
      for backend in item.backends {
        guard let backendID = ids.backends.id(for: backend.key) else { continue }
        liveBackends.insert(backend.key.description)
        backends.append(
          ServiceBackend(
            id: backendID, key: backend.key, state: backend.state, nodeName: backend.node,
            zone: backend.zone))
      }
      state.frontends.append(
        ServiceFrontend(
          id: id, key: item.key, type: item.type, service: item.service.meta.namespacedName,
          portName: item.port.name, backends: backends,
          affinityTimeout: item.service.sessionAffinity.timeoutSeconds,
          algorithm: item.service.algorithm))
    }
    ids.services.table.retain(only: Set(state.frontends.map(\.key.description)))
    ids.backends.table.retain(only: liveBackends)
    return state
  }

  static func resolveBackends(
    service: Service, port: ServicePort, slices: [EndpointSlice], notes: inout [String]
  ) -> [(key: BackendKey, state: BackendState, node: String?, zone: String?)] {
    var best: [BackendKey: (state: BackendState, node: String?, zone: String?)] = [:]
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
          best[key] = (state, endpoint.nodeName, endpoint.zone)
        }
      }
    }
    return best.keys.sorted().map {
      (key: $0, state: best[$0]!.state, node: best[$0]!.node, zone: best[$0]!.zone)
    }
  }
}
