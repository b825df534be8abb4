import BPFKit
import DatapathABI
import Foundation

/// A service datapath object (bpf/endpoint.c or bpf/netdev.c) loaded with its pins in a
/// scratch bpffs, and the maps every service program shares (bpf/lib/maps.h), read the way
/// the tests check them. Drop the value before `remove()`: that closes the object first.
struct ServiceObject {
  let bpffs: ScratchBPFFilesystem
  let object: BPFObject
  let services: BPFMap
  let backends: BPFMap
  let revNat: BPFMap
  let conntrack: BPFMap
  let drops: BPFMap

  /// `mapSizes`: max_entries set before the load, by map name (a small conntrack map to
  /// fill, say).
  init(path: String, mapSizes: [String: Int] = [:]) throws {
    bpffs = try ScratchBPFFilesystem()
    do {
      object = try BPFObject.open(path: path, pinRoot: bpffs.path)
      for (name, size) in mapSizes { try object.setMaxEntries(size, forMap: name) }
      try object.load()
      services = try object.map(named: JUNCTION_MAP_LB4_SERVICES)
      backends = try object.map(named: JUNCTION_MAP_LB4_BACKENDS)
      revNat = try object.map(named: JUNCTION_MAP_LB4_REVNAT)
      conntrack = try object.map(named: JUNCTION_MAP_CT4)
      drops = try object.map(named: JUNCTION_MAP_DROPS)
    } catch {
      bpffs.remove()
      throw error
    }
  }

  /// The conntrack key of one direction of a flow.
  static func conntrackKey(
    _ source: [UInt8], _ sourcePort: UInt16, _ destination: [UInt8], _ destinationPort: UInt16,
    _ proto: PacketBuilder.L4 = .tcp, _ direction: junction_ct_direction
  ) -> junction_ct4_key {
    var key = junction_ct4_key()
    key.saddr = be32(source)
    key.daddr = be32(destination)
    key.sport = be16(sourcePort)
    key.dport = be16(destinationPort)
    key.proto = proto.rawValue
    key.direction = UInt8(direction.rawValue)
    return key
  }

  /// Packets dropped for `reason` in `direction`, summed over the CPUs.
  func dropCount(_ reason: junction_drop_reason, _ direction: junction_direction) throws -> UInt64 {
    try drops.lookupSum(
      junction_drop_key(reason: reason.rawValue, direction: direction.rawValue),
      as: junction_drop_counters.self)?.packets ?? 0
  }
}
