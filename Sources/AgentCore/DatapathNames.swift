import AgentAPI
import DatapathABI

/// The words for the datapath's codes (bpf/junction_abi.h), in one table each, keyed by the
/// ABI's enum constants so that a renumbering cannot go unnoticed here. Texts follow
/// Hubble's where Cilium has the same reason ("Service backend not found", "FIB lookup
/// failed"). Codes this agent does not know (a newer datapath) print as "reason N".
public enum DatapathNames {
  /// Drop reason code → its text.
  public static let dropReasons: [UInt32: String] = [
    JUNCTION_DROP_UNKNOWN.rawValue: "Unknown reason",
    JUNCTION_DROP_INVALID_PACKET.rawValue: "Invalid packet",
    JUNCTION_DROP_UNSUPPORTED_L3.rawValue: "Unsupported L3 protocol",
    JUNCTION_DROP_NO_SERVICE.rawValue: "Service not found",
    JUNCTION_DROP_NO_BACKEND.rawValue: "Service backend not found",
    JUNCTION_DROP_CT_MAP_FULL.rawValue: "CT: Map insertion failed",
    JUNCTION_DROP_NAT_FAILED.rawValue: "NAT failed",
    JUNCTION_DROP_CSUM_FAILED.rawValue: "Checksum fix-up failed",
    JUNCTION_DROP_POLICY.rawValue: "Policy denied",
    JUNCTION_DROP_FRAG_NEEDED.rawValue: "Fragmentation needed",
    JUNCTION_DROP_NO_NAT_PORT.rawValue: "No free SNAT port",
    JUNCTION_DROP_FIB_FAILED.rawValue: "FIB lookup failed",
    JUNCTION_DROP_PROXY_UNAVAILABLE.rawValue: "Proxy listener unavailable",
    // Cilium: DROP_INVALID_EXTHDR.
    JUNCTION_DROP_INVALID_EXTHDR.rawValue: "Invalid IPv6 extension header",
  ]

  /// Direction (trace point) code → its name, as Hubble names observation points.
  public static let directions: [UInt32: String] = [
    JUNCTION_DIR_FROM_ENDPOINT.rawValue: "from-endpoint",
    JUNCTION_DIR_TO_ENDPOINT.rawValue: "to-endpoint",
    JUNCTION_DIR_FROM_NETDEV.rawValue: "from-netdev",
    JUNCTION_DIR_TO_NETDEV.rawValue: "to-netdev",
    JUNCTION_DIR_SOCKET.rawValue: "sock",
    JUNCTION_DIR_TO_PROXY.rawValue: "to-proxy",
  ]

  public static func dropReason(_ code: UInt32) -> String {
    dropReasons[code] ?? "reason \(code)"
  }

  public static func direction(_ code: UInt32) -> String {
    directions[code] ?? "direction \(code)"
  }

  /// One jnc_drops entry as read from the kernel, summed over the CPUs.
  public struct RawDrop: Equatable, Sendable {
    public var reason: UInt32
    public var direction: UInt32
    public var packets: UInt64
    public var bytes: UInt64

    public init(reason: UInt32, direction: UInt32, packets: UInt64, bytes: UInt64) {
      self.reason = reason
      self.direction = direction
      self.packets = packets
      self.bytes = bytes
    }
  }

  /// The API's view of the counters: named, sorted by reason then direction, a key met
  /// twice (a map walk that restarted) counted once.
  public static func dropDump(_ raw: [RawDrop]) -> DropCounterDump {
    var seen = Set<[UInt32]>()
    let unique = raw.filter { seen.insert([$0.reason, $0.direction]).inserted }
    let sorted = unique.sorted { ($0.reason, $0.direction) < ($1.reason, $1.direction) }
    return DropCounterDump(
      drops: sorted.map {
        DropCounter(
          reason: dropReason($0.reason), reasonCode: Int($0.reason),
          direction: direction($0.direction), packets: $0.packets, bytes: $0.bytes)
      })
  }
}
