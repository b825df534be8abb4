/// GET /v1/bpf/lb: the service maps of the datapath (bpf/junction_abi.h) as the kernel holds
/// them, read back entry by entry, not the agent's desired state. `junctionctl bpf lb list`
/// renders it. Read while the datapath runs, so not a snapshot (an entry changed meanwhile
/// may show its old or new value).
public struct LBMapDump: Codable, Equatable, Sendable {
  /// Every jnc_lb4_svc entry, sorted by address, port, protocol, slot.
  public var services: [LBServiceEntry]
  /// Every jnc_lb4_be entry, sorted by id.
  public var backends: [LBBackendEntry]
  /// Every jnc_lb4_revnat entry, sorted by id.
  public var reverseNAT: [LBRevNATEntry]
  /// The rev-NAT ids with a Maglev table in jnc_lb4_maglev, sorted.
  public var maglevTables: [Int]
  /// Each service map's name and max_entries as the kernel reports them (also jnc_lb4_aff
  /// and jnc_ct4, whose entries are not listed).
  public var maps: [LBMapInfo]
  /// The jnc_node_cfg entry; nil when no datapath is loaded.
  public var nodeConfig: LBNodeConfig?

  public init(
    services: [LBServiceEntry] = [], backends: [LBBackendEntry] = [],
    reverseNAT: [LBRevNATEntry] = [], maglevTables: [Int] = [], maps: [LBMapInfo] = [],
    nodeConfig: LBNodeConfig? = nil
  ) {
    self.nodeConfig = nodeConfig
    self.services = services
    self.backends = backends
    self.reverseNAT = reverseNAT
    self.maglevTables = maglevTables
    self.maps = maps
  }

  public static let empty = LBMapDump()
}

/// One jnc_lb4_svc entry. Slot 0 is the frontend (count, rev-NAT id, flags, affinity
/// timeout); slots 1...count each name one backend.
public struct LBServiceEntry: Codable, Equatable, Sendable {
  /// The VIP, "10.96.0.10".
  public var address: String
  public var port: Int
  /// "TCP", "UDP", "SCTP", or the IP protocol number.
  public var proto: String
  public var slot: Int
  /// Slots only (0 on the frontend entry).
  public var backendID: UInt32
  /// Frontend only: how many slots are selectable.
  public var count: Int
  public var revNatID: Int
  /// JUNCTION_SVC_F_* bits (frontend only); `flagNames` spells them out.
  public var flags: Int
  /// "affinity", "maglev", "external", "dsr", or "0x.." for unknown bits.
  public var flagNames: [String]
  /// Seconds (frontend only, with the affinity flag).
  public var affinityTimeout: Int
  /// Frontend only, with the "l7-proxy" flag: the proxy listener port (nil otherwise).
  public var proxyPort: Int?

  public init(
    address: String, port: Int, proto: String, slot: Int, backendID: UInt32, count: Int,
    revNatID: Int, flags: Int, flagNames: [String], affinityTimeout: Int, proxyPort: Int? = nil
  ) {
    self.proxyPort = proxyPort
    self.address = address
    self.port = port
    self.proto = proto
    self.slot = slot
    self.backendID = backendID
    self.count = count
    self.revNatID = revNatID
    self.flags = flags
    self.flagNames = flagNames
    self.affinityTimeout = affinityTimeout
  }

  /// "10.96.0.10:80/TCP", "[fd00:10:96::a]:80/TCP".
  public var frontend: String { "\(hostPort(address, port))/\(proto)" }

  /// Whether the entry is a jnc_lb6_svc one.
  public var isIPv6: Bool { address.contains(":") }
}

/// "ADDRESS:PORT", an IPv6 address in brackets (as `service list` and Cilium print it), so
/// its port cannot be read as a ninth group.
func hostPort(_ address: String, _ port: Int) -> String {
  address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
}

/// One jnc_lb4_be entry.
public struct LBBackendEntry: Codable, Equatable, Sendable {
  public var id: UInt32
  public var address: String
  public var port: Int
  public var proto: String
  /// JUNCTION_BE_F_* bits; `flagNames` spells them out ("terminating", "local").
  public var flags: Int
  public var flagNames: [String]

  public init(
    id: UInt32, address: String, port: Int, proto: String, flags: Int, flagNames: [String]
  ) {
    self.id = id
    self.address = address
    self.port = port
    self.proto = proto
    self.flags = flags
    self.flagNames = flagNames
  }

  /// "10.240.8.2:8080/TCP", "[fd00:10:240:1::2]:8080/TCP".
  public var endpoint: String { "\(hostPort(address, port))/\(proto)" }
}

/// One jnc_lb4_revnat entry: the source a reply from this frontend's backends gets back.
public struct LBRevNATEntry: Codable, Equatable, Sendable {
  public var id: Int
  public var address: String
  public var port: Int
  /// Whether jnc_lb4_maglev holds a table for this id.
  public var maglev: Bool

  public init(id: Int, address: String, port: Int, maglev: Bool) {
    self.id = id
    self.address = address
    self.port = port
    self.maglev = maglev
  }

  /// "10.96.0.10:80", "[fd00:10:96::a]:80".
  public var source: String { hostPort(address, port) }
}

/// A map's size as loaded.
public struct LBMapInfo: Codable, Equatable, Sendable {
  public var name: String
  public var maxEntries: Int

  public init(name: String, maxEntries: Int) {
    self.name = name
    self.maxEntries = maxEntries
  }
}

/// The jnc_node_cfg entry (`junction_node_config`): the ranges the datapath checks NodePorts
/// against and takes SNAT source ports from, inclusive, and the node's netns cookie (socket
/// LB; 0 when off).
public struct LBNodeConfig: Codable, Equatable, Sendable {
  public var nodePortMin: Int
  public var nodePortMax: Int
  public var snatPortMin: Int
  public var snatPortMax: Int
  public var hostNetnsCookie: UInt64

  public init(
    nodePortMin: Int, nodePortMax: Int, snatPortMin: Int, snatPortMax: Int,
    hostNetnsCookie: UInt64
  ) {
    self.nodePortMin = nodePortMin
    self.nodePortMax = nodePortMax
    self.snatPortMin = snatPortMin
    self.snatPortMax = snatPortMax
    self.hostNetnsCookie = hostNetnsCookie
  }
}
