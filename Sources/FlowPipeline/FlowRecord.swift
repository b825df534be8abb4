import DatapathABI

/// One datapath flow event (struct junction_flow_event, bpf/junction_abi.h) in plain Swift:
/// what the ring carried, with its time on the wall clock. Addresses are host-order IPv4
/// values (10.0.1.5 is 0x0a000105), ports host order.
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

  /// Reads one ring record; nil when it is not a junction_flow_event (wrong size, unknown
  /// kind). `monotonicToWall`: nanoseconds to add to the datapath's CLOCK_MONOTONIC stamp to
  /// get the wall clock (CLOCK_REALTIME − CLOCK_MONOTONIC, read by the consumer).
  /// Kept out of cross-module optimization: it reads an imported C struct (see
  /// ServiceDatapath/NodeConfigMap.swift for the Swift 6.3.1 release-build crash).
  @_semantics("optimize.no.crossmodule")
  public init?(record: UnsafeRawBufferPointer, monotonicToWall: Int64) {
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

/// "10.0.1.5" for 0x0a000105.
public func dottedQuad(_ address: UInt32) -> String {
  "\(address >> 24).\(address >> 16 & 0xff).\(address >> 8 & 0xff).\(address & 0xff)"
}
