import AgentCore
import BPFKit
import DatapathABI
import Synchronization

/// Reads the datapath's counters for a scrape from the maps pinned under --bpf-fs, opened
/// on first use and kept (a map the datapath never pinned, e.g. no datapath loaded, reads
/// as zero and is tried again next scrape). Read-only, and never on the packet path: the
/// kernel's per-CPU counters are summed here, at scrape time.
///
/// Cost: the drop and endpoint counter maps are small; the conntrack and affinity maps are
/// walked key by key (bpf_map_get_next_key), the conntrack map also looked up per entry to
/// find the SNAT ones, so a scrape costs O(connections), never O(Services). It runs on the
/// scrape's own thread (MetricsServer), not on the agent's tasks.
public final class DatapathReader: Sendable {
  private let bpfFS: String
  private let snatPorts: Int
  private let maps = Mutex<[String: BPFMap]>([:])

  /// `snatPorts`: how many ports --snat-port-range holds (the SNAT "map size").
  public init(bpfFS: String, snatPorts: Int) {
    self.bpfFS = bpfFS
    self.snatPorts = snatPorts
  }

  public func read() -> DatapathSample {
    var sample = DatapathSample()
    sample.snat.max = snatPorts
    if let drops = map(JUNCTION_MAP_DROPS) {
      sample.drops =
        (try? drops.keys(as: junction_drop_key.self).compactMap { key in
          guard let sum = try drops.lookupSum(key, as: junction_drop_counters.self) else {
            return nil
          }
          return DatapathNames.RawDrop(
            reason: key.reason, direction: key.direction, packets: sum.packets, bytes: sum.bytes)
        }) ?? []
    }
    if let counters = map(JUNCTION_MAP_ENDPOINT_COUNTERS) {
      for key in (try? counters.keys(as: junction_endpoint_key.self)) ?? [] {
        guard let sum = try? counters.lookupSum(key, as: junction_endpoint_counters.self) else {
          continue
        }
        sample.forwarded.fromEndpointPackets &+= sum.from_packets
        sample.forwarded.fromEndpointBytes &+= sum.from_bytes
        sample.forwarded.toEndpointPackets &+= sum.to_packets
        sample.forwarded.toEndpointBytes &+= sum.to_bytes
      }
    }
    if let conntrack = map(JUNCTION_MAP_CT4) {
      let keys = (try? conntrack.keys(as: junction_ct4_key.self)) ?? []
      // A key seen twice (a walk restarted by a concurrent delete) counts once.
      let unique = Set(keys.map(KeyBytes.init))
      sample.conntrack = MapUsage(entries: unique.count, max: conntrack.maxEntries)
      sample.snat.entries = keys.reduce(into: 0) { count, key in
        guard key.direction == UInt8(JUNCTION_CT_REPLY.rawValue),
          let entry = try? conntrack.lookup(key, as: junction_ct4_entry.self),
          MetricsModel.isSNATPort(direction: key.direction, flags: entry.flags)
        else { return }
        count += 1
      }
    }
    if let affinity = map(JUNCTION_MAP_LB4_AFFINITY) {
      let keys = (try? affinity.keys(as: junction_lb4_affinity_key.self)) ?? []
      sample.affinity = MapUsage(
        entries: Set(keys.map(KeyBytes.init)).count, max: affinity.maxEntries)
    }
    if let lost = map(JUNCTION_MAP_EVENTS_LOST),
      let sum = try? lost.lookupSum(UInt32(0), as: junction_events_lost.self)
    {
      sample.flowEventsLost = sum.events
    }
    return sample
  }

  private func map(_ name: String) -> BPFMap? {
    if let open = maps.withLock({ $0[name] }) { return open }
    guard let opened = try? BPFMap.openPinned(at: bpfFS + "/" + name) else { return nil }
    maps.withLock { $0[name] = opened }
    return opened
  }
}

/// A key's bytes, to count distinct keys of any ABI struct.
private struct KeyBytes: Hashable {
  var bytes: [UInt8]

  init<Key: BitwiseCopyable>(_ key: Key) {
    bytes = withUnsafeBytes(of: key) { Array($0) }
  }
}
