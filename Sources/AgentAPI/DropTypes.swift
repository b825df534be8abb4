/// GET /v1/bpf/drops: the datapath's drop counters (jnc_drops, a per-CPU map) summed over
/// the CPUs, one entry per (reason, direction) that has dropped at least once since the map
/// was pinned. `junctionctl bpf drops` renders it.
public struct DropCounterDump: Codable, Equatable, Sendable {
  /// Sorted by reason code, then direction code.
  public var drops: [DropCounter]

  public init(drops: [DropCounter] = []) { self.drops = drops }
}

public struct DropCounter: Codable, Equatable, Sendable {
  /// The reason in words, as `junctionctl observe` prints it: "Service backend not found".
  public var reason: String
  /// The datapath's code (enum junction_drop_reason in bpf/junction_abi.h).
  public var reasonCode: Int
  /// Where the packet was dropped: "from-endpoint", "to-endpoint", "from-netdev",
  /// "to-netdev", "sock"; "direction N" for a code this agent does not know.
  public var direction: String
  public var packets: UInt64
  public var bytes: UInt64

  public init(reason: String, reasonCode: Int, direction: String, packets: UInt64, bytes: UInt64) {
    self.reason = reason
    self.reasonCode = reasonCode
    self.direction = direction
    self.packets = packets
    self.bytes = bytes
  }
}
