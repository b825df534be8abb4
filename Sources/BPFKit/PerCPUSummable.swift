import DatapathABI

/// A per-CPU map value that readers add up across CPUs (counters). The datapath increments
/// its own CPU's slot without atomics; the total is only ever the sum of the slots. (Not
/// refining BitwiseCopyable: C structs are BitwiseCopyable already, and Swift refuses
/// restating that from another module; `BPFMap.lookupSum` asks for both.)
public protocol PerCPUSummable {
  /// All zero.
  init()
  /// Adds `other` field by field, wrapping like the datapath's u64 counters do.
  mutating func add(_ other: Self)
}

extension junction_endpoint_counters: PerCPUSummable {
  public mutating func add(_ other: Self) {
    from_packets &+= other.from_packets
    from_bytes &+= other.from_bytes
    to_packets &+= other.to_packets
    to_bytes &+= other.to_bytes
  }
}

extension junction_drop_counters: PerCPUSummable {
  public mutating func add(_ other: Self) {
    packets &+= other.packets
    bytes &+= other.bytes
  }
}

extension junction_events_lost: PerCPUSummable {
  public mutating func add(_ other: Self) {
    events &+= other.events
  }
}
