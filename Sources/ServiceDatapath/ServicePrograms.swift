import BPFKit
import CNIKit
import DatapathABI
import ServiceCore

/// Writes the service maps of the datapath (bpf/junction_abi.h) from a `DesiredStateDiff`,
/// in the diff's order, so that no frontend ever resolves to nothing: backends before the
/// slots that name them, slots before the frontend entry whose count makes them reachable;
/// when a service shrinks, its count first and the surplus slots after.
public struct ServicePrograms {
  public let services: BPFMap
  public let backends: BPFMap
  public let reverseNAT: BPFMap
  public let maglev: BPFMap

  public init(services: BPFMap, backends: BPFMap, reverseNAT: BPFMap, maglev: BPFMap) {
    self.services = services
    self.backends = backends
    self.reverseNAT = reverseNAT
    self.maglev = maglev
  }

  /// The service maps of a loaded datapath object.
  public init(_ object: BPFObject) throws(BPFError) {
    self.init(
      services: try object.map(named: JUNCTION_MAP_LB4_SERVICES),
      backends: try object.map(named: JUNCTION_MAP_LB4_BACKENDS),
      reverseNAT: try object.map(named: JUNCTION_MAP_LB4_REVNAT),
      maglev: try object.map(named: JUNCTION_MAP_LB4_MAGLEV))
  }

  public func apply(_ diff: DesiredStateDiff) throws(BPFError) {
    for step in diff.steps {
      switch step {
      case .createBackend(let id, let key):
        // Its flags (terminating, local) are written with the frontend that uses it, next.
        try backends.update(backendKey(id), backendValue(key, terminating: false, local: false))
      case .writeFrontend(let frontend):
        try write(frontend)
      case .deleteFrontend(let frontend):
        try delete(frontend)
      case .deleteBackend(let id, _):
        try backends.delete(backendKey(id))
      }
    }
  }

  private func write(_ frontend: ServiceFrontend) throws(BPFError) {
    // A backend's terminating flag is what stops new connections reaching it while its
    // existing ones (conntrack) keep resolving. A terminating backend this frontend selects
    // (kube-proxy's fallback when nothing is ready) must not carry it, or the datapath would
    // refuse the very backends the slots hold. The flag is per backend, not per frontend: a
    // backend two Services share takes the last frontend written, and as the frontends of
    // one Service agree on its endpoints' states that only matters for two Services
    // selecting the same pods with different fallbacks.
    let fallback = Set(
      (frontend.selectable + (frontend.redirect?.selectableOrigin ?? []))
        .filter { $0.state == .terminating }.map(\.id))
    for backend in frontend.allBackends where backend.state != .excluded {
      let terminating = backend.state == .terminating && !fallback.contains(backend.id)
      try backends.update(
        backendKey(backend.id),
        backendValue(backend.key, terminating: terminating, local: backend.isLocal))
    }
    try reverseNAT.update(
      junction_lb4_revnat_key(rev_nat_id: frontend.id, pad: 0),
      junction_lb4_revnat(
        address: beAddress(frontend.key.address), port: frontend.key.port.bigEndian, pad: 0))
    if frontend.algorithm == .maglev, !frontend.selectable.isEmpty {
      try MaglevTable.install(
        frontend.maglevTable(size: MaglevTable.size), revNatID: frontend.id, in: maglev)
    } else {
      try MaglevTable.remove(revNatID: frontend.id, in: maglev)
    }
    // A redirected frontend's origin entries go in before the flag that sends the policy's
    // own pods to them, and come out after it is gone.
    if let origin = frontend.redirect?.selectableOrigin {
      try writeEntry(frontend, slots: origin, flags: 0, scope: .origin)
    }
    try writeEntry(
      frontend, slots: frontend.selectable, flags: Self.flags(frontend), scope: .default)
    if frontend.redirect?.origin == nil { try deleteEntry(frontend.key, scope: .origin) }
  }

  /// The scopes of junction_lb4_service_key.
  private enum Scope {
    case `default`
    /// The original Service behind a redirected frontend (JUNCTION_SCOPE_REDIRECT_ORIGIN).
    case origin

    var value: UInt8 {
      switch self {
      case .default: UInt8(JUNCTION_SCOPE_DEFAULT)
      case .origin: UInt8(JUNCTION_SCOPE_REDIRECT_ORIGIN)
      }
    }
  }

  /// One frontend entry and its slots: slots first, then the master entry whose count makes
  /// them reachable, then the surplus slots of a shrunk frontend.
  private func writeEntry(
    _ frontend: ServiceFrontend, slots: [ServiceBackend], flags: UInt16, scope: Scope
  ) throws(BPFError) {
    let previousCount = try currentCount(frontend.key, scope: scope)
    for (index, backend) in slots.enumerated() {
      try services.update(
        serviceKey(frontend.key, slot: UInt16(index + 1), scope: scope),
        junction_lb4_service(
          backend_id: backend.id, affinity_timeout: 0, count: 0, rev_nat_id: frontend.id, flags: 0,
          proxy_port: 0))
    }
    try services.update(
      serviceKey(frontend.key, slot: 0, scope: scope),
      junction_lb4_service(
        backend_id: 0,
        affinity_timeout: UInt32(scope == .default ? frontend.affinityTimeout ?? 0 : 0),
        count: UInt16(slots.count), rev_nat_id: frontend.id, flags: flags,
        proxy_port: scope == .default ? frontend.proxyPort ?? 0 : 0))
    if previousCount > slots.count {
      for slot in (slots.count + 1)...previousCount {
        try services.delete(serviceKey(frontend.key, slot: UInt16(slot), scope: scope))
      }
    }
  }

  /// Removes one frontend entry and its slots (nothing when it is not there).
  private func deleteEntry(_ key: FrontendKey, scope: Scope) throws(BPFError) {
    // One lookup when there is nothing (every write of a frontend that is not redirected).
    guard
      let entry = try services.lookup(
        serviceKey(key, slot: 0, scope: scope), as: junction_lb4_service.self)
    else { return }
    let count = Int(entry.count)
    try services.delete(serviceKey(key, slot: 0, scope: scope))
    if count > 0 {
      for slot in 1...count {
        try services.delete(serviceKey(key, slot: UInt16(slot), scope: scope))
      }
    }
  }

  /// The frontend entry's JUNCTION_SVC_F_* bits.
  public static func flags(_ frontend: ServiceFrontend) -> UInt16 {
    var flags: UInt16 = 0
    if frontend.affinityTimeout != nil { flags |= UInt16(JUNCTION_SVC_F_AFFINITY) }
    if frontend.algorithm == .maglev { flags |= UInt16(JUNCTION_SVC_F_MAGLEV) }
    if frontend.isExternal { flags |= UInt16(JUNCTION_SVC_F_EXTERNAL) }
    if frontend.usesDSR { flags |= UInt16(JUNCTION_SVC_F_DSR) }
    if let redirect = frontend.redirect {
      flags |= UInt16(JUNCTION_SVC_F_LOCAL_REDIRECT)
      if redirect.skipFromBackend { flags |= UInt16(JUNCTION_SVC_F_SKIP_FROM_BACKEND) }
    }
    // The backends' slots stay written under it: taking the flag off (the redirect removed)
    // gives the frontend back to BPF balancing in one write.
    if frontend.proxyPort != nil { flags |= UInt16(JUNCTION_SVC_F_L7_PROXY) }
    return flags
  }

  private func delete(_ frontend: ServiceFrontend) throws(BPFError) {
    try deleteEntry(frontend.key, scope: .default)
    try deleteEntry(frontend.key, scope: .origin)
    try MaglevTable.remove(revNatID: frontend.id, in: maglev)
    try reverseNAT.delete(junction_lb4_revnat_key(rev_nat_id: frontend.id, pad: 0))
  }

  /// The slot count the datapath sees now for `key` (0 when the frontend is not there).
  private func currentCount(_ key: FrontendKey, scope: Scope = .default) throws(BPFError) -> Int {
    Int(
      try services.lookup(serviceKey(key, slot: 0, scope: scope), as: junction_lb4_service.self)?
        .count ?? 0)
  }

  private func serviceKey(_ key: FrontendKey, slot: UInt16, scope: Scope = .default)
    -> junction_lb4_service_key
  {
    junction_lb4_service_key(
      address: beAddress(key.address), port: key.port.bigEndian, proto: ipProtocol(key.proto),
      scope: scope.value, slot: slot, pad2: 0)
  }

  private func backendKey(_ id: UInt32) -> junction_lb4_backend_key {
    junction_lb4_backend_key(backend_id: id)
  }

  private func backendValue(_ key: BackendKey, terminating: Bool, local: Bool)
    -> junction_lb4_backend
  {
    var flags: UInt8 = 0
    if terminating { flags |= UInt8(JUNCTION_BE_F_TERMINATING) }
    if local { flags |= UInt8(JUNCTION_BE_F_LOCAL) }
    return junction_lb4_backend(
      address: beAddress(key.address), port: key.port.bigEndian, proto: ipProtocol(key.proto),
      flags: flags)
  }
}

/// An IPv4 address as the datapath stores it: the network-order bytes as they are in memory.
public func beAddress(_ address: IPAddress) -> UInt32 {
  guard address.isIPv4 else { return 0 }
  return address.bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
}

public func ipProtocol(_ proto: L4Protocol) -> UInt8 {
  switch proto {
  case .tcp: 6
  case .udp: 17
  case .sctp: 132
  }
}
