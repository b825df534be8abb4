import BPFKit
import CNIKit
import DatapathABI
import ServiceCore

/// Writes the service maps of the datapath (bpf/junction_abi.h) from a `DesiredStateDiff`,
/// in the diff's order, so that no frontend ever resolves to nothing: backends before the
/// slots that name them, slots before the frontend entry whose count makes them reachable;
/// when a service shrinks, its count first and the surplus slots after.
///
/// Each frontend and backend goes to the maps of its address family (jnc_lb4_* or
/// jnc_lb6_*); ids come from one allocator for both, and Maglev tables share one map, keyed
/// by the frontend's id.
public struct ServicePrograms {
  public let services: BPFMap
  public let backends: BPFMap
  public let reverseNAT: BPFMap
  public let maglev: BPFMap
  /// The IPv6 twins: jnc_lb6_svc, jnc_lb6_be, jnc_lb6_revnat.
  public let services6: BPFMap
  public let backends6: BPFMap
  public let reverseNAT6: BPFMap

  public init(
    services: BPFMap, backends: BPFMap, reverseNAT: BPFMap, maglev: BPFMap, services6: BPFMap,
    backends6: BPFMap, reverseNAT6: BPFMap
  ) {
    self.services = services
    self.backends = backends
    self.reverseNAT = reverseNAT
    self.maglev = maglev
    self.services6 = services6
    self.backends6 = backends6
    self.reverseNAT6 = reverseNAT6
  }

  /// The service maps of a loaded datapath object.
  public init(_ object: BPFObject) throws(BPFError) {
    self.init(
      services: try object.map(named: JUNCTION_MAP_LB4_SERVICES),
      backends: try object.map(named: JUNCTION_MAP_LB4_BACKENDS),
      reverseNAT: try object.map(named: JUNCTION_MAP_LB4_REVNAT),
      maglev: try object.map(named: JUNCTION_MAP_LB4_MAGLEV),
      services6: try object.map(named: JUNCTION_MAP_LB6_SERVICES),
      backends6: try object.map(named: JUNCTION_MAP_LB6_BACKENDS),
      reverseNAT6: try object.map(named: JUNCTION_MAP_LB6_REVNAT))
  }

  public func apply(_ diff: DesiredStateDiff) throws(BPFError) {
    try diff.forEachStep { (step) throws(BPFError) in
      switch step {
      case .createBackend(let id, let key):
        // Its flags (terminating, local) are written with the frontend that uses it, next.
        try updateBackend(id, key, terminating: false, local: false)
      case .writeFrontend(let frontend):
        try write(frontend)
      case .deleteFrontend(let frontend):
        try delete(frontend)
      case .deleteBackend(let id, let key):
        _ = try (key.address.isIPv4 ? backends : backends6).delete(backendKey(id))
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
      try updateBackend(
        backend.id, backend.key, terminating: terminating, local: backend.isLocal)
    }
    let revNATKey = junction_lb4_revnat_key(rev_nat_id: frontend.id, pad: 0)
    if frontend.key.address.isIPv4 {
      try reverseNAT.update(
        revNATKey,
        junction_lb4_revnat(
          address: beAddress(frontend.key.address), port: frontend.key.port.bigEndian, pad: 0))
    } else {
      try reverseNAT6.update(
        revNATKey,
        junction_lb6_revnat(
          address: beAddress6(frontend.key.address), port: frontend.key.port.bigEndian, pad: 0))
    }
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
      try updateService(
        frontend.key, slot: UInt16(index + 1), scope: scope,
        junction_lb4_service(
          backend_id: backend.id, affinity_timeout: 0, count: 0, rev_nat_id: frontend.id, flags: 0,
          proxy_port: 0))
    }
    try updateService(
      frontend.key, slot: 0, scope: scope,
      junction_lb4_service(
        backend_id: 0,
        affinity_timeout: UInt32(scope == .default ? frontend.affinityTimeout ?? 0 : 0),
        count: UInt16(slots.count), rev_nat_id: frontend.id, flags: flags,
        proxy_port: scope == .default ? frontend.proxyPort ?? 0 : 0))
    if previousCount > slots.count {
      for slot in (slots.count + 1)...previousCount {
        try deleteService(frontend.key, slot: UInt16(slot), scope: scope)
      }
    }
  }

  /// Removes one frontend entry and its slots (nothing when it is not there).
  private func deleteEntry(_ key: FrontendKey, scope: Scope) throws(BPFError) {
    // One lookup when there is nothing (every write of a frontend that is not redirected).
    guard let entry = try lookupService(key, slot: 0, scope: scope) else { return }
    let count = Int(entry.count)
    try deleteService(key, slot: 0, scope: scope)
    if count > 0 {
      for slot in 1...count {
        try deleteService(key, slot: UInt16(slot), scope: scope)
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
    _ = try (frontend.key.address.isIPv4 ? reverseNAT : reverseNAT6).delete(
      junction_lb4_revnat_key(rev_nat_id: frontend.id, pad: 0))
  }

  /// The slot count the datapath sees now for `key` (0 when the frontend is not there).
  private func currentCount(_ key: FrontendKey, scope: Scope = .default) throws(BPFError) -> Int {
    Int(try lookupService(key, slot: 0, scope: scope)?.count ?? 0)
  }

  // MARK: - One entry, in the maps of its family (the service value is the same for both)

  private func updateService(
    _ key: FrontendKey, slot: UInt16, scope: Scope, _ value: junction_lb4_service
  ) throws(BPFError) {
    if key.address.isIPv4 {
      try services.update(serviceKey(key, slot: slot, scope: scope), value)
    } else {
      try services6.update(serviceKey6(key, slot: slot, scope: scope), value)
    }
  }

  private func lookupService(_ key: FrontendKey, slot: UInt16, scope: Scope) throws(BPFError)
    -> junction_lb4_service?
  {
    key.address.isIPv4
      ? try services.lookup(
        serviceKey(key, slot: slot, scope: scope), as: junction_lb4_service.self)
      : try services6.lookup(
        serviceKey6(key, slot: slot, scope: scope), as: junction_lb4_service.self)
  }

  private func deleteService(_ key: FrontendKey, slot: UInt16, scope: Scope) throws(BPFError) {
    if key.address.isIPv4 {
      _ = try services.delete(serviceKey(key, slot: slot, scope: scope))
    } else {
      _ = try services6.delete(serviceKey6(key, slot: slot, scope: scope))
    }
  }

  private func updateBackend(_ id: UInt32, _ key: BackendKey, terminating: Bool, local: Bool)
    throws(BPFError)
  {
    var flags: UInt8 = 0
    if terminating { flags |= UInt8(JUNCTION_BE_F_TERMINATING) }
    if local { flags |= UInt8(JUNCTION_BE_F_LOCAL) }
    if key.address.isIPv4 {
      try backends.update(
        backendKey(id),
        junction_lb4_backend(
          address: beAddress(key.address), port: key.port.bigEndian,
          proto: ipProtocol(key.proto), flags: flags))
    } else {
      try backends6.update(
        backendKey(id),
        junction_lb6_backend(
          address: beAddress6(key.address), port: key.port.bigEndian,
          proto: ipProtocol(key.proto), flags: flags))
    }
  }

  private func serviceKey6(_ key: FrontendKey, slot: UInt16, scope: Scope)
    -> junction_lb6_service_key
  {
    junction_lb6_service_key(
      address: beAddress6(key.address), port: key.port.bigEndian, proto: ipProtocol(key.proto),
      scope: scope.value, slot: slot, pad2: 0)
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
}

/// An IPv4 address as the datapath stores it: the network-order bytes as they are in memory.
public func beAddress(_ address: IPAddress) -> UInt32 {
  guard address.isIPv4 else { return 0 }
  return address.bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
}

/// An IPv6 address as the datapath stores it (junction_lb6_*: four __be32, the 16 bytes as in
/// the packet); zeros for an IPv4 address.
public func beAddress6(_ address: IPAddress) -> (UInt32, UInt32, UInt32, UInt32) {
  guard !address.isIPv4 else { return (0, 0, 0, 0) }
  return address.bytes.withUnsafeBytes {
    (
      $0.loadUnaligned(fromByteOffset: 0, as: UInt32.self),
      $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self),
      $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self),
      $0.loadUnaligned(fromByteOffset: 12, as: UInt32.self)
    )
  }
}

public func ipProtocol(_ proto: L4Protocol) -> UInt8 {
  switch proto {
  case .tcp: 6
  case .udp: 17
  case .sctp: 132
  }
}
