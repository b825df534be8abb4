import CNIKit

/// An L4 address, "10.96.0.10:53/UDP" or "[fd00:96::a]:53/UDP": a frontend's (what a packet's destination is matched
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

  public var description: String {
    address.isIPv4
      ? "\(address):\(port)/\(proto.rawValue)" : "[\(address)]:\(port)/\(proto.rawValue)"
  }

  /// The address `description` gave ("10.96.0.10:53/UDP", "[fd00:96::a]:53/UDP"), nil for
  /// any other text.
  public init?(description text: String) {
    guard let slash = text.lastIndex(of: "/"),
      let proto = L4Protocol(rawValue: String(text[text.index(after: slash)...])),
      let colon = text[..<slash].lastIndex(of: ":"),
      let port = UInt16(text[text.index(after: colon)..<slash])
    else { return nil }
    var host = text[..<colon]
    let bracketed = host.hasPrefix("[") && host.hasSuffix("]")
    if bracketed { host = host.dropFirst().dropLast() }
    guard let address = IPAddress(String(host)), address.isIPv4 != bracketed else { return nil }
    self.init(address: address, port: port, proto: proto)
  }

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
  /// A Local Redirect Policy's frontend: this node's selected pods only.
  case localRedirect = "LocalRedirect"
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
/// - `notPreferred`: ready, but outside this node's topology (another zone or node, see
///   `TopologyFilter`); like terminating, it keeps its connections and gets no new ones.
public enum BackendState: String, Hashable, Sendable, Codable {
  case active
  case terminating
  case excluded
  case notPreferred = "not-preferred"

  var rank: Int {
    switch self {
    case .active: 2
    case .terminating: 1
    case .excluded, .notPreferred: 0
    }
  }

  static func from(_ endpoint: Endpoint) -> BackendState {
    if endpoint.ready { return .active }
    if endpoint.serving && endpoint.terminating { return .terminating }
    return .excluded
  }
}

/// One backend of a frontend as the datapath holds it. Where the backend runs (its node and
/// zone) is not kept: topology is decided while planning (`PlannedBackend`, `Topology`), and
/// what the datapath needs of it is `isLocal`. Without the two optional strings a backend
/// takes 24 bytes instead of 64 (4 MiB at 10,000 Services × 10, bench/results/agent-memory.md).
public struct ServiceBackend: Hashable, Sendable {
  public var id: UInt32
  public var key: BackendKey
  public var state: BackendState
  /// A pod on this node (the datapath's JUNCTION_BE_F_LOCAL): reached without SNAT or DSR.
  public var isLocal: Bool

  public init(id: UInt32, key: BackendKey, state: BackendState, isLocal: Bool = false) {
    self.id = id
    self.key = key
    self.state = state
    self.isLocal = isLocal
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
  /// NodePort, ExternalIPs or LoadBalancer: also served on the node's devices
  /// (JUNCTION_SVC_F_EXTERNAL).
  public var isExternal: Bool
  /// External, and remote backends are reached by DSR, not SNAT (JUNCTION_SVC_F_DSR).
  public var usesDSR: Bool
  /// Under externalTrafficPolicy / internalTrafficPolicy Local: `backends` are this node's.
  public var isLocalPolicy: Bool
  /// Set on a `localRedirect` frontend (see `FrontendRedirect`).
  public var redirect: FrontendRedirect?
  /// The node-local L7 proxy's listener port when the Service's connections on this frontend
  /// go to the proxy instead of `backends` (a `ProxyRedirect`; JUNCTION_SVC_F_L7_PROXY).
  public var proxyPort: UInt16?

  public init(
    id: UInt16, key: FrontendKey, type: FrontendType, service: NamespacedName, portName: String,
    backends: [ServiceBackend], affinityTimeout: Int? = nil, algorithm: LBAlgorithm = .random,
    isExternal: Bool? = nil, usesDSR: Bool = false, isLocalPolicy: Bool = false,
    redirect: FrontendRedirect? = nil, proxyPort: UInt16? = nil
  ) {
    self.proxyPort = proxyPort
    self.isExternal = isExternal ?? type.isExternal
    self.usesDSR = usesDSR
    self.isLocalPolicy = isLocalPolicy
    self.redirect = redirect
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
      for backend in frontend.allBackends { result[backend.id] = backend.key }
    }
    return result
  }

  public func frontend(_ key: FrontendKey) -> ServiceFrontend? { frontends.first { $0.key == key } }
}
