import CNIKit
import DatapathABI

/// One datapath flow event (struct junction_flow_event or junction_flow_event6,
/// bpf/junction_abi.h) in plain Swift: what the ring carried, with its time on the wall clock.
/// IPv4 addresses are host-order values (10.0.1.5 is 0x0a000105) in `source`, `destination`,
/// `natAddress` and `snatAddress`; an IPv6 event has them in `ipv6` instead (those four then
/// 0). Ports host order. `sourceIP` and the like give either family as text.
public struct FlowRecord: Equatable, Sendable {
  public enum Kind: UInt8, Sendable {
    case trace = 1
    case drop = 2
    case sock = 3
    /// An HTTP request or response from the node's Envoy (its access log), never from the
    /// ring (the datapath has no kind this high).
    case l7 = 128
  }

  /// An L7 flow's HTTP side (Hubble's `l7.http`).
  public struct HTTP: Equatable, Sendable {
    public var method: String
    public var url: String
    public var protocolName: String
    /// The response's status; nil on the request.
    public var code: Int?
    /// Request to response, on the response.
    public var latencyNanoseconds: Int64?
    public var isResponse: Bool

    public init(
      method: String, url: String, protocolName: String, code: Int? = nil,
      latencyNanoseconds: Int64? = nil, isResponse: Bool
    ) {
      self.method = method
      self.url = url
      self.protocolName = protocolName
      self.code = code
      self.latencyNanoseconds = latencyNanoseconds
      self.isResponse = isResponse
    }
  }

  /// Nanoseconds since the Unix epoch.
  public var time: Int64
  public var kind: Kind
  /// enum junction_direction: where it was seen.
  public var point: UInt32
  /// Hubble's verdict numbers: 1 FORWARDED, 2 DROPPED, 7 TRANSLATED.
  public var verdict: UInt8
  public var dropReason: UInt32
  public var proto: UInt8
  public var tcpFlags: UInt8
  /// JUNCTION_FLOW_F_*.
  public var flags: UInt8
  public var source: UInt32
  public var sourcePort: UInt16
  public var destination: UInt32
  public var destinationPort: UInt16
  public var natAddress: UInt32
  public var natPort: UInt16
  public var revNatID: UInt16
  public var ifindex: UInt32
  /// With JUNCTION_FLOW_F_SNAT: the node's address and port a request left with, or the
  /// client a reply went back to.
  public var snatAddress: UInt32
  public var snatPort: UInt16
  /// Set on `.l7` records only.
  public var http: HTTP? = nil
  /// An IPv6 event's addresses; nil for IPv4.
  public var ipv6: IPv6Addresses? = nil

  /// The four addresses of an IPv6 event (junction_flow_event6), the roles of the IPv4 fields.
  public struct IPv6Addresses: Equatable, Sendable {
    public var source: FlowIPv6
    public var destination: FlowIPv6
    public var nat: FlowIPv6
    public var snat: FlowIPv6

    public init(
      source: FlowIPv6, destination: FlowIPv6, nat: FlowIPv6 = .zero, snat: FlowIPv6 = .zero
    ) {
      self.source = source
      self.destination = destination
      self.nat = nat
      self.snat = snat
    }
  }

  public init(
    time: Int64, kind: Kind, point: UInt32, verdict: UInt8, dropReason: UInt32 = 0,
    proto: UInt8, tcpFlags: UInt8 = 0, flags: UInt8 = 0, source: UInt32, sourcePort: UInt16,
    destination: UInt32, destinationPort: UInt16, natAddress: UInt32 = 0, natPort: UInt16 = 0,
    revNatID: UInt16 = 0, ifindex: UInt32 = 0, snatAddress: UInt32 = 0, snatPort: UInt16 = 0
  ) {
    self.time = time
    self.kind = kind
    self.point = point
    self.verdict = verdict
    self.dropReason = dropReason
    self.proto = proto
    self.tcpFlags = tcpFlags
    self.flags = flags
    self.source = source
    self.sourcePort = sourcePort
    self.destination = destination
    self.destinationPort = destinationPort
    self.natAddress = natAddress
    self.natPort = natPort
    self.revNatID = revNatID
    self.ifindex = ifindex
    self.snatAddress = snatAddress
    self.snatPort = snatPort
  }

  /// Reads one ring record; nil when it is neither a junction_flow_event nor a
  /// junction_flow_event6 (told apart by their sizes, as junction_abi.h says) or its kind is
  /// unknown. `monotonicToWall`: nanoseconds to add to the datapath's CLOCK_MONOTONIC stamp
  /// to get the wall clock (CLOCK_REALTIME − CLOCK_MONOTONIC, read by the consumer).
  /// Kept out of cross-module optimization: it reads an imported C struct (see
  /// ServiceDatapath/NodeConfigMap.swift for the Swift 6.3.1 release-build crash).
  @_semantics("optimize.no.crossmodule")
  public init?(record: UnsafeRawBufferPointer, monotonicToWall: Int64) {
    if record.count == MemoryLayout<junction_flow_event6>.size {
      self.init(event6: record.loadUnaligned(as: junction_flow_event6.self), monotonicToWall)
      return
    }
    guard record.count == MemoryLayout<junction_flow_event>.size else { return nil }
    let event = record.loadUnaligned(as: junction_flow_event.self)
    guard let kind = Kind(rawValue: event.kind) else { return nil }
    self.init(
      time: Int64(bitPattern: event.timestamp) &+ monotonicToWall, kind: kind,
      point: UInt32(event.point), verdict: event.verdict, dropReason: UInt32(event.drop_reason),
      proto: event.proto, tcpFlags: event.tcp_flags, flags: event.flags,
      source: UInt32(bigEndian: event.saddr), sourcePort: UInt16(bigEndian: event.sport),
      destination: UInt32(bigEndian: event.daddr),
      destinationPort: UInt16(bigEndian: event.dport),
      natAddress: UInt32(bigEndian: event.nat_address), natPort: UInt16(bigEndian: event.nat_port),
      revNatID: event.rev_nat_id, ifindex: event.ifindex,
      snatAddress: UInt32(bigEndian: event.snat_address),
      snatPort: UInt16(bigEndian: event.snat_port))
  }

  /// An IPv6 record (junction_flow_event6).
  @_semantics("optimize.no.crossmodule")
  init?(event6 event: junction_flow_event6, _ monotonicToWall: Int64) {
    guard let kind = Kind(rawValue: event.kind) else { return nil }
    self.init(
      time: Int64(bitPattern: event.timestamp) &+ monotonicToWall, kind: kind,
      point: UInt32(event.point), verdict: event.verdict, dropReason: UInt32(event.drop_reason),
      proto: event.proto, tcpFlags: event.tcp_flags, flags: event.flags, source: 0,
      sourcePort: UInt16(bigEndian: event.sport), destination: 0,
      destinationPort: UInt16(bigEndian: event.dport), natPort: UInt16(bigEndian: event.nat_port),
      revNatID: event.rev_nat_id, ifindex: event.ifindex,
      snatPort: UInt16(bigEndian: event.snat_port))
    ipv6 = IPv6Addresses(
      source: FlowIPv6(words: event.saddr), destination: FlowIPv6(words: event.daddr),
      nat: FlowIPv6(words: event.nat_address), snat: FlowIPv6(words: event.snat_address))
  }

  /// The addresses as text, either family: "10.0.1.5", "fd00:10:244:1::5".
  public var sourceIP: String { ipv6?.source.description ?? dottedQuad(source) }
  public var destinationIP: String { ipv6?.destination.description ?? dottedQuad(destination) }
  public var natIP: String { ipv6?.nat.description ?? dottedQuad(natAddress) }
  public var snatIP: String { ipv6?.snat.description ?? dottedQuad(snatAddress) }
  /// Whether the source is unset (a socket LB event of an unbound socket).
  public var sourceIsUnspecified: Bool { ipv6.map { $0.source == .zero } ?? (source == 0) }

  /// "10.0.1.5:80", or for IPv6 "[fd00::5]:80" (the form Services' frontends are named in).
  public func endpoint(_ ip: String, _ port: UInt16) -> String {
    ipv6 == nil ? "\(ip):\(port)" : "[\(ip)]:\(port)"
  }

  public var isReplyKnown: Bool { flags & UInt8(JUNCTION_FLOW_F_REPLY_KNOWN) != 0 }
  public var isReply: Bool { flags & UInt8(JUNCTION_FLOW_F_REPLY) != 0 }
  public var isNew: Bool { flags & UInt8(JUNCTION_FLOW_F_NEW) != 0 }
  public var isTranslated: Bool { flags & UInt8(JUNCTION_FLOW_F_XLATED) != 0 }
  /// North-south: forwarded (or received) with direct server return.
  public var isDSR: Bool { flags & UInt8(JUNCTION_FLOW_F_DSR) != 0 }
  /// North-south: forwarded from the node's address (snatAddress:snatPort).
  public var isSNAT: Bool { flags & UInt8(JUNCTION_FLOW_F_SNAT) != 0 }
  /// A Local Redirect Policy's frontend, redirected to a pod of this node.
  public var isLocalRedirect: Bool { flags & UInt8(JUNCTION_FLOW_F_LRP) != 0 }
}

/// An IPv6 address as a flow event carries it: 16 bytes, kept as two host-order halves
/// (fd00::5 is high 0xfd00_0000_0000_0000, low 5).
public struct FlowIPv6: Hashable, Sendable, CustomStringConvertible {
  public var high: UInt64
  public var low: UInt64

  public static let zero = FlowIPv6(high: 0, low: 0)

  public init(high: UInt64, low: UInt64) {
    self.high = high
    self.low = low
  }

  /// From the datapath's four network-order words (`__be32 addr[4]`).
  public init(words: (UInt32, UInt32, UInt32, UInt32)) {
    high = UInt64(UInt32(bigEndian: words.0)) << 32 | UInt64(UInt32(bigEndian: words.1))
    low = UInt64(UInt32(bigEndian: words.2)) << 32 | UInt64(UInt32(bigEndian: words.3))
  }

  /// "fd00::5" (any form inet_pton takes); nil for anything else, IPv4 included.
  public init?(_ text: String) {
    guard let address = IPAddress(text), !address.isIPv4 else { return nil }
    self.init(bytes: address.bytes)
  }

  /// 16 network-order bytes.
  public init(bytes: [UInt8]) {
    precondition(bytes.count == 16, "an IPv6 address is 16 bytes")
    high = bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
    low = bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
  }

  public var bytes: [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
      + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
  }

  /// RFC 5952's form, as `ip` prints it (inet_ntop): "fd00:10:244:1::5".
  public var description: String { IPAddress(bytes: bytes)?.description ?? "?" }
}

/// "10.0.1.5" for 0x0a000105.
public func dottedQuad(_ address: UInt32) -> String {
  "\(address >> 24).\(address >> 16 & 0xff).\(address >> 8 & 0xff).\(address & 0xff)"
}
