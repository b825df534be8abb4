import AgentAPI
import CNIKit

/// Which flows a reader wants (GET /v1/flows query, `junctionctl observe` flags), after
/// Hubble's FlowFilter: every criterion given must hold (AND); "either side" criteria (pod,
/// ip, port, namespace) hold when the source or the destination matches.
public struct FlowFilter: Equatable, Sendable {
  /// "namespace/pod-name-prefix"; a bare prefix means the "default" namespace, "ns/" any
  /// pod of the namespace (as Hubble).
  public var fromPod: String?
  public var toPod: String?
  public var pod: String?
  public var namespace: String?
  /// An address or a CIDR, IPv4 or IPv6 ("10.0.0.0/8", "fd00:10:244::/48"); an address of
  /// the other family never matches.
  public var fromIP: String?
  public var toIP: String?
  public var ip: String?
  public var port: Int?
  /// The destination port, or the port of the Service address dialled (before translation).
  public var toPort: Int?
  /// "tcp", "udp", ... (any case).
  public var proto: String?
  /// "FORWARDED", "DROPPED", "TRANSLATED" (any case).
  public var verdict: String?
  /// "trace", "drop", "sock".
  public var type: String?
  /// "namespace/name"; a bare name means the "default" namespace.
  public var toService: String?
  public var fromService: String?

  public init() {}

  public func matches(_ flow: Flow) -> Bool {
    if let fromPod, !Self.pod(fromPod, flow.source) { return false }
    if let toPod, !Self.pod(toPod, flow.destination) { return false }
    if let pod, !Self.pod(pod, flow.source) && !Self.pod(pod, flow.destination) { return false }
    if let namespace, flow.source.namespace != namespace && flow.destination.namespace != namespace
    {
      return false
    }
    if let fromIP, !Self.address(fromIP, flow.source.ip) { return false }
    if let toIP, !Self.address(toIP, flow.destination.ip) { return false }
    if let ip, !Self.address(ip, flow.source.ip) && !Self.address(ip, flow.destination.ip) {
      return false
    }
    if let port, flow.source.port != port && flow.destination.port != port { return false }
    if let toPort,
      flow.destination.port != toPort
        && (flow.sourceService != nil || flow.original.flatMap(Self.portOf) != toPort)
    {
      return false
    }
    if let proto, flow.proto?.lowercased() != proto.lowercased() { return false }
    if let verdict, flow.verdict != verdict.uppercased() { return false }
    if let type, flow.type != type.lowercased() { return false }
    if let toService, !Self.service(toService, flow.destinationService) { return false }
    if let fromService, !Self.service(fromService, flow.sourceService) { return false }
    return true
  }

  static func pod(_ wanted: String, _ peer: FlowPeer) -> Bool {
    guard let namespace = peer.namespace, let name = peer.podName else { return false }
    let parts = wanted.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
    let (wantedNamespace, prefix) =
      parts.count == 2 ? (String(parts[0]), String(parts[1])) : ("default", wanted)
    return namespace == wantedNamespace && name.hasPrefix(prefix)
  }

  static func service(_ wanted: String, _ service: FlowService?) -> Bool {
    guard let service else { return false }
    let parts = wanted.split(separator: "/", maxSplits: 1).map(String.init)
    let (namespace, name) = parts.count == 2 ? (parts[0], parts[1]) : ("default", wanted)
    return service.namespace == namespace && service.name == name
  }

  static func address(_ wanted: String, _ ip: String) -> Bool {
    guard let (network, bits) = CIDR.parse(wanted), let address = IPAddress(ip) else {
      return false
    }
    return CIDR.contains(network: network.bytes, bits: bits, address.bytes)
  }

  static func portOf(_ endpoint: String) -> Int? {
    endpoint.split(separator: ":").last.flatMap { Int($0) }
  }

  /// Why `wanted` is not a valid value for its criterion; nil when it is.
  public func problem() -> String? {
    for (name, value) in [("from-ip", fromIP), ("to-ip", toIP), ("ip", ip)] {
      if let value, CIDR.parse(value) == nil {
        return "\(name) \"\(value)\" is not an IPv4 or IPv6 address or CIDR"
      }
    }
    if let verdict, !["FORWARDED", "DROPPED", "TRANSLATED"].contains(verdict.uppercased()) {
      return "verdict \"\(verdict)\" is not FORWARDED, DROPPED or TRANSLATED"
    }
    if let type, !["trace", "drop", "sock", "l7"].contains(type.lowercased()) {
      return "type \"\(type)\" is not trace, drop, sock or l7"
    }
    for (name, value) in [("port", port), ("to-port", toPort)] {
      if let value, !(0...65535).contains(value) { return "\(name) \(value) is not a port" }
    }
    return nil
  }
}

enum CIDR {
  /// "10.0.0.0/8" → (10.0.0.0, 8); "10.0.1.5" → (10.0.1.5, 32); "fd00::/8" → (fd00::, 8);
  /// "fd00::5" → (fd00::5, 128).
  static func parse(_ text: String) -> (IPAddress, Int)? {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count <= 2, let address = IPAddress(String(parts[0])) else { return nil }
    let maximum = address.bytes.count * 8
    guard parts.count == 2 else { return (address, maximum) }
    guard let bits = Int(parts[1]), (0...maximum).contains(bits) else { return nil }
    return (address, bits)
  }

  /// Whether `address` has the first `bits` bits of `network` (both network-order bytes,
  /// of one family: a different length never matches).
  static func contains(network: [UInt8], bits: Int, _ address: [UInt8]) -> Bool {
    guard network.count == address.count else { return false }
    for index in 0..<network.count {
      let remaining = bits - index * 8
      guard remaining > 0 else { break }
      let mask: UInt8 = remaining >= 8 ? 0xff : ~(0xff >> UInt8(remaining))
      if network[index] & mask != address[index] & mask { return false }
    }
    return true
  }
}
