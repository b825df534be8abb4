import Foundation

/// Ethernet + IPv6 (+ extension headers) + TCP/UDP frames built byte by byte, with the
/// checksum computed over the IPv6 pseudo-header by `Checksum6` (RFC 8200 §8.1, written for
/// the tests from the RFC, not from the datapath), and read back by `ParsedFrame6`.
struct PacketBuilder6 {
  /// An extension header in the chain: hop-by-hop (0), routing (43), destination options (60)
  /// or fragment (44), `units` 8-byte units past the first 8 (the header's length field),
  /// filled with a PadN option (or zeros for a fragment / routing header).
  struct Extension {
    var type: UInt8
    var units: UInt8 = 0
    /// For a fragment header: offset (in 8-byte units) and the M flag.
    var fragmentOffset: UInt16 = 0
    var moreFragments = false
  }

  var l4: PacketBuilder.L4 = .tcp
  var source: [UInt8] = ipv6("fd00:10:244:1::5")
  var destination: [UInt8] = ipv6("fd00:96::a")
  var sourcePort: UInt16 = 40000
  var destinationPort: UInt16 = 80
  var extensions: [Extension] = []
  var tcpFlags: UInt8 = 0x02  // SYN
  var hopLimit: UInt8 = 64
  var payload: [UInt8] = Array("hello, service".utf8)

  init(
    _ l4: PacketBuilder.L4, from source: [UInt8], _ sourcePort: UInt16, to destination: [UInt8],
    _ destinationPort: UInt16, tcpFlags: UInt8 = 0x02
  ) {
    self.l4 = l4
    self.source = source
    self.sourcePort = sourcePort
    self.destination = destination
    self.destinationPort = destinationPort
    self.tcpFlags = tcpFlags
  }

  /// The TCP or UDP segment with its checksum.
  func segment() -> [UInt8] {
    var l4Header: [UInt8]
    switch l4 {
    case .tcp:
      l4Header = bytes(sourcePort) + bytes(destinationPort) + [0, 0, 0x10, 0x01, 0, 0, 0, 0]
      l4Header += [0x50, tcpFlags] + bytes(UInt16(64240)) + [0, 0, 0, 0]
    case .udp:
      l4Header = bytes(sourcePort) + bytes(destinationPort)
      l4Header += bytes(UInt16(8 + payload.count)) + [0, 0]
    }
    var segment = l4Header + payload
    var sum = Checksum6.upperLayer(
      source: source, destination: destination, nextHeader: l4.rawValue, body: segment)
    if l4 == .udp && sum == 0 { sum = 0xffff }
    let offset = l4 == .tcp ? 16 : 6
    segment.replaceSubrange(offset..<offset + 2, with: bytes(sum))
    return segment
  }

  func build() -> [UInt8] {
    var chain: [UInt8] = []
    for (index, extensionHeader) in extensions.enumerated() {
      let next = index + 1 < extensions.count ? extensions[index + 1].type : l4.rawValue
      if extensionHeader.type == 44 {
        let field = extensionHeader.fragmentOffset << 3 | (extensionHeader.moreFragments ? 1 : 0)
        chain += [next, 0] + bytes(field) + [0, 0, 0x12, 0x34]
      } else {
        let length = 8 * (Int(extensionHeader.units) + 1)
        // PadN (type 1) over the option area; a routing header gets type 0 with segments 0.
        let body: [UInt8] =
          extensionHeader.type == 43
          ? [UInt8](repeating: 0, count: length - 2)
          : [1, UInt8(length - 4)] + [UInt8](repeating: 0, count: length - 4)
        chain += [next, extensionHeader.units] + body
      }
    }
    let upper = segment()
    let first = extensions.first?.type ?? l4.rawValue
    var ip: [UInt8] = [0x60, 0, 0, 0] + bytes(UInt16(chain.count + upper.count))
    ip += [first, hopLimit] + source + destination
    return ethernet6() + ip + chain + upper
  }
}

func ethernet6() -> [UInt8] { [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x86, 0xdd] }

/// An IPv6 address's 16 bytes, from its text.
func ipv6(_ text: String) -> [UInt8] {
  var address = in6_addr()
  precondition(inet_pton(AF_INET6, text, &address) == 1, text)
  return withUnsafeBytes(of: &address) { Array($0) }
}

/// The ABI's four __be32 of an IPv6 address: the bytes as in the packet.
func be128(_ address: [UInt8]) -> (UInt32, UInt32, UInt32, UInt32) {
  address.withUnsafeBytes {
    (
      $0.loadUnaligned(fromByteOffset: 0, as: UInt32.self),
      $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self),
      $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self),
      $0.loadUnaligned(fromByteOffset: 12, as: UInt32.self)
    )
  }
}

enum Checksum6 {
  /// TCP, UDP and ICMPv6 checksums (RFC 8200 §8.1): over the pseudo-header (source,
  /// destination, 32-bit upper-layer length, 24 zero bits, next header) and the body, whose
  /// checksum field must be zero here.
  static func upperLayer(source: [UInt8], destination: [UInt8], nextHeader: UInt8, body: [UInt8])
    -> UInt16
  {
    let length = UInt32(body.count)
    let pseudo =
      source + destination
      + [
        UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff),
        UInt8(length & 0xff),
      ]
      + [0, 0, 0, nextHeader]
    return Checksum.internet(pseudo + body)
  }
}

/// A frame from PacketBuilder6 (or a program's output) read back: the extension headers
/// walked, the L4 checksum recomputed from scratch over the pseudo-header.
struct ParsedFrame6 {
  var source: [UInt8]
  var destination: [UInt8]
  var nextHeader: UInt8
  var l4Offset: Int
  var sourcePort: UInt16
  var destinationPort: UInt16
  var l4ChecksumField: UInt16
  var l4ChecksumValid: Bool

  init(_ frame: [UInt8]) {
    source = Array(frame[22..<38])
    destination = Array(frame[38..<54])
    var next = frame[20]
    var offset = 54
    while [0, 43, 60].contains(next) {
      let length = 8 * (Int(frame[offset + 1]) + 1)
      next = frame[offset]
      offset += length
    }
    nextHeader = next
    l4Offset = offset
    let payloadLength = Int(frame[18]) << 8 | Int(frame[19])
    var body = Array(frame[offset..<(54 + payloadLength)])
    sourcePort = UInt16(body[0]) << 8 | UInt16(body[1])
    destinationPort = UInt16(body[2]) << 8 | UInt16(body[3])
    let field = next == 6 ? 16 : (next == 17 ? 6 : 2)
    l4ChecksumField = UInt16(body[field]) << 8 | UInt16(body[field + 1])
    body[field] = 0
    body[field + 1] = 0
    var computed = Checksum6.upperLayer(
      source: source, destination: destination, nextHeader: next, body: body)
    if next == 17 && computed == 0 { computed = 0xffff }
    // Over IPv6 a zero UDP checksum is invalid (RFC 8200 §8.1): no exception here.
    l4ChecksumValid = computed == l4ChecksumField
  }
}

/// ICMPv6 frames the datapath must leave alone: `type` 135 (Neighbor Solicitation), 136
/// (Neighbor Advertisement) with hop limit 255 (RFC 4861), or 2 (Packet Too Big, quoting
/// `quote`), with a correct checksum. `code`: other messages' (ICMPErrorFrames.swift).
func icmp6Frame(
  type: UInt8, code: UInt8 = 0, from source: [UInt8], to destination: [UInt8], body: [UInt8],
  hopLimit: UInt8
) -> [UInt8] {
  var message: [UInt8] = [type, code, 0, 0] + body
  let sum = Checksum6.upperLayer(
    source: source, destination: destination, nextHeader: 58, body: message)
  message.replaceSubrange(2..<4, with: bytes(sum))
  let ip: [UInt8] =
    [0x60, 0, 0, 0] + bytes(UInt16(message.count)) + [58, hopLimit] + source + destination
  return ethernet6() + ip + message
}
