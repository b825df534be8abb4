import AgentAPI
import BPFKit
import CNIKit
import DatapathABI
import ServiceDatapath

/// Reads the service maps back from the kernel for GET /v1/bpf/lb: what the datapath sees,
/// whatever the agent meant to write. Keys are walked with bpf_map_get_next_key while the
/// datapath and the service manager may change entries, so a key can show up twice (the
/// walk restarts when the key it stood on is deleted): duplicates are dropped, and an entry
/// deleted between its key and its lookup is skipped.
struct LBMapReader {
  let services: BPFMap
  let backends: BPFMap
  let reverseNAT: BPFMap
  let maglev: BPFMap
  let affinity: BPFMap
  let conntrack: BPFMap
  let nodeConfig: NodeConfigMap
  /// The IPv6 twins (jnc_lb6_svc, jnc_lb6_be, jnc_lb6_revnat, jnc_lb6_aff, jnc_ct6).
  let services6: BPFMap
  let backends6: BPFMap
  let reverseNAT6: BPFMap
  let affinity6: BPFMap
  let conntrack6: BPFMap

  /// Each map's name and max_entries, as loaded.
  func maps() -> [LBMapInfo] {
    [
      services, backends, reverseNAT, maglev, affinity, conntrack, services6, backends6,
      reverseNAT6, affinity6, conntrack6,
    ].map {
      LBMapInfo(name: $0.name, maxEntries: $0.maxEntries)
    }
  }

  func dump() throws(BPFError) -> LBMapDump {
    var dump = LBMapDump()
    let maglevIDs = Set(
      try maglev.keys(as: junction_lb4_revnat_key.self).map { Int($0.rev_nat_id) })
    dump.maglevTables = maglevIDs.sorted()

    // Sorted by family, then address (IPv4 numerically), port, protocol, slot. The IPv4
    // order key comes from the map's own bytes: parsing the printed addresses inside the
    // comparison cost seconds at 110,000 entries (GET /v1/bpf/lb at 10,000 Services × 10).
    var entries: [LBServiceEntry] = []
    var order: [(family: UInt8, address4: UInt32, index: Int)] = []
    var seenServices = Set<ServiceKey4>()
    for key in try services.keys(as: junction_lb4_service_key.self) {
      guard seenServices.insert(ServiceKey4(key)).inserted,
        let value = try services.lookup(key, as: junction_lb4_service.self)
      else { continue }
      order.append((0, UInt32(bigEndian: key.address), entries.count))
      entries.append(
        Self.serviceEntry(
          address: Self.address(key.address), port: key.port, proto: key.proto, slot: key.slot,
          value))
    }
    var seenServices6 = Set<[UInt8]>()
    for key in try services6.keys(as: junction_lb6_service_key.self) {
      guard seenServices6.insert(Self.bytes(of: key)).inserted,
        let value = try services6.lookup(key, as: junction_lb4_service.self)
      else { continue }
      order.append((1, 0, entries.count))
      entries.append(
        Self.serviceEntry(
          address: Self.address6(key.address), port: key.port, proto: key.proto, slot: key.slot,
          value))
    }
    order.sort { a, b in
      if a.family != b.family { return a.family < b.family }
      if a.family == 0, a.address4 != b.address4 { return a.address4 < b.address4 }
      let x = entries[a.index]
      let y = entries[b.index]
      return (x.address, x.port, x.proto, x.slot) < (y.address, y.port, y.proto, y.slot)
    }
    dump.services = order.map { entries[$0.index] }
    entries = []

    var seenBackends = Set<UInt32>()
    for key in try backends.keys(as: junction_lb4_backend_key.self) {
      guard seenBackends.insert(key.backend_id).inserted,
        let value = try backends.lookup(key, as: junction_lb4_backend.self)
      else { continue }
      dump.backends.append(
        Self.backendEntry(
          id: key.backend_id, address: Self.address(value.address), port: value.port,
          proto: value.proto, flags: value.flags))
    }
    for key in try backends6.keys(as: junction_lb4_backend_key.self) {
      guard seenBackends.insert(key.backend_id).inserted,
        let value = try backends6.lookup(key, as: junction_lb6_backend.self)
      else { continue }
      dump.backends.append(
        Self.backendEntry(
          id: key.backend_id, address: Self.address6(value.address), port: value.port,
          proto: value.proto, flags: value.flags))
    }
    dump.backends.sort { $0.id < $1.id }

    var seenRevNAT = Set<UInt16>()
    for key in try reverseNAT.keys(as: junction_lb4_revnat_key.self) {
      guard seenRevNAT.insert(key.rev_nat_id).inserted,
        let value = try reverseNAT.lookup(key, as: junction_lb4_revnat.self)
      else { continue }
      dump.reverseNAT.append(
        LBRevNATEntry(
          id: Int(key.rev_nat_id), address: Self.address(value.address),
          port: Int(UInt16(bigEndian: value.port)), maglev: maglevIDs.contains(Int(key.rev_nat_id))
        ))
    }
    for key in try reverseNAT6.keys(as: junction_lb4_revnat_key.self) {
      guard seenRevNAT.insert(key.rev_nat_id).inserted,
        let value = try reverseNAT6.lookup(key, as: junction_lb6_revnat.self)
      else { continue }
      dump.reverseNAT.append(
        LBRevNATEntry(
          id: Int(key.rev_nat_id), address: Self.address6(value.address),
          port: Int(UInt16(bigEndian: value.port)), maglev: maglevIDs.contains(Int(key.rev_nat_id))
        ))
    }
    dump.reverseNAT.sort { $0.id < $1.id }
    let config = try nodeConfig.read()
    dump.nodeConfig = LBNodeConfig(
      nodePortMin: Int(config.nodeport_min), nodePortMax: Int(config.nodeport_max),
      snatPortMin: Int(config.snat_port_min), snatPortMax: Int(config.snat_port_max),
      hostNetnsCookie: config.host_netns_cookie)
    dump.maps = maps()
    return dump
  }

  /// One jnc_lb4_svc or jnc_lb6_svc entry (same value layout), its address already printed.
  private static func serviceEntry(
    address: String, port: UInt16, proto: UInt8, slot: UInt16, _ value: junction_lb4_service
  ) -> LBServiceEntry {
    let flags = Int(value.flags)
    return
      LBServiceEntry(
        address: address, port: Int(UInt16(bigEndian: port)),
        proto: Self.protocolName(proto), slot: Int(slot), backendID: value.backend_id,
        count: Int(value.count), revNatID: Int(value.rev_nat_id), flags: flags,
        flagNames: Self.names(
          flags,
          [
            (Int(JUNCTION_SVC_F_AFFINITY), "affinity"), (Int(JUNCTION_SVC_F_MAGLEV), "maglev"),
            (Int(JUNCTION_SVC_F_EXTERNAL), "external"), (Int(JUNCTION_SVC_F_DSR), "dsr"),
            (Int(JUNCTION_SVC_F_LOCAL_REDIRECT), "local-redirect"),
            (Int(JUNCTION_SVC_F_SKIP_FROM_BACKEND), "skip-from-backend"),
            (Int(JUNCTION_SVC_F_L7_PROXY), "l7-proxy"),
          ]),
        affinityTimeout: Int(value.affinity_timeout),
        proxyPort: flags & Int(JUNCTION_SVC_F_L7_PROXY) != 0 ? Int(value.proxy_port) : nil)
  }

  private static func backendEntry(
    id: UInt32, address: String, port: UInt16, proto: UInt8, flags: UInt8
  ) -> LBBackendEntry {
    LBBackendEntry(
      id: id, address: address, port: Int(UInt16(bigEndian: port)),
      proto: Self.protocolName(proto), flags: Int(flags),
      flagNames: Self.names(
        Int(flags),
        [(Int(JUNCTION_BE_F_TERMINATING), "terminating"), (Int(JUNCTION_BE_F_LOCAL), "local")]))
  }

  /// The network-order address as the maps store it, dotted.
  static func address(_ stored: UInt32) -> String {
    withUnsafeBytes(of: stored) { $0.map(String.init).joined(separator: ".") }
  }

  /// A jnc_lb6_* address (four network-order words), printed as `ip` does.
  static func address6(_ stored: (UInt32, UInt32, UInt32, UInt32)) -> String {
    withUnsafeBytes(of: stored) { IPAddress(bytes: Array($0))?.description ?? "?" }
  }

  static func protocolName(_ proto: UInt8) -> String {
    switch proto {
    case 6: "TCP"
    case 17: "UDP"
    case 132: "SCTP"
    default: String(proto)
    }
  }

  /// The names of the bits set in `flags`, and "0x.." for any bits left over.
  static func names(_ flags: Int, _ known: [(bit: Int, name: String)]) -> [String] {
    var names: [String] = []
    var rest = flags
    for (bit, name) in known where flags & bit != 0 {
      names.append(name)
      rest &= ~bit
    }
    if rest != 0 { names.append("0x" + String(rest, radix: 16)) }
    return names
  }

  private static func bytes<T: BitwiseCopyable>(of value: T) -> [UInt8] {
    withUnsafeBytes(of: value) { Array($0) }
  }
}

/// A jnc_lb4_svc key as a Set element: the map may hand a key out twice while it changes.
private struct ServiceKey4: Hashable {
  let address: UInt32
  let port: UInt16
  let slot: UInt16
  let proto: UInt8
  let scope: UInt8

  init(_ key: junction_lb4_service_key) {
    address = key.address
    port = key.port
    slot = key.slot
    proto = key.proto
    scope = key.scope
  }
}
