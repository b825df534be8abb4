import XCTest

/// ICMP and ICMPv6 error frames built in Swift, every checksum computed here (not by the
/// datapath), for the tests of the datapath's error translation (ICMPErrorTests,
/// ICMPErrorNorthSouthTests).

private let icmpEthernet4: [UInt8] = [0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00]

/// An ICMP message (`type`, `code`, the 4-byte `rest`, `quote`) in an IPv4 frame from
/// `source` to `destination` with `ttl`, both checksums computed here.
func icmpFrame(
  type: UInt8, code: UInt8, rest: [UInt8] = [0, 0, 0, 0], from source: [UInt8],
  to destination: [UInt8], quote: [UInt8], ttl: UInt8 = 64
) -> [UInt8] {
  var message = [type, code, 0, 0] + rest + quote
  message.replaceSubrange(2..<4, with: bytes(Checksum.internet(message)))
  var ip: [UInt8] = [0x45, 0xc0] + bytes(UInt16(20 + message.count)) + [0xab, 0xcd, 0, 0]
  ip += [ttl, 1, 0, 0] + source + destination
  ip.replaceSubrange(10..<12, with: bytes(Checksum.internet(ip)))
  return icmpEthernet4 + ip + message
}

/// The ICMPv6 twin: the checksum over the pseudo-header (PacketBuilder6's icmp6Frame).
func icmp6ErrorFrame(
  type: UInt8, code: UInt8, rest: [UInt8] = [0, 0, 0, 0], from source: [UInt8],
  to destination: [UInt8], quote: [UInt8], hopLimit: UInt8 = 64
) -> [UInt8] {
  icmp6Frame(
    type: type, code: code, from: source, to: destination, body: rest + quote,
    hopLimit: hopLimit)
}

/// The first `length` bytes of `frame`'s IP packet (all of it when nil): an error's quote.
func quote(_ frame: [UInt8], _ length: Int?) -> [UInt8] {
  let packet = Array(frame[14...])
  return Array(packet.prefix(length ?? packet.count))
}

/// Checks the stored checksums of an ICMPv4 error frame (outer IPv4 header, ICMP, quoted
/// IPv4 header) independently of any expected frame.
func assertIPv4ChecksumsValid(
  _ frame: [UInt8], file: StaticString = #filePath, line: UInt = #line
) {
  var outer = Array(frame[14..<34])
  let storedOuter = UInt16(outer[10]) << 8 | UInt16(outer[11])
  outer[10] = 0
  outer[11] = 0
  XCTAssertEqual(Checksum.internet(outer), storedOuter, "outer IPv4", file: file, line: line)
  var message = Array(frame[34...])
  let storedICMP = UInt16(message[2]) << 8 | UInt16(message[3])
  message[2] = 0
  message[3] = 0
  XCTAssertEqual(Checksum.internet(message), storedICMP, "ICMP", file: file, line: line)
  var inner = Array(frame[42..<62])
  let storedInner = UInt16(inner[10]) << 8 | UInt16(inner[11])
  inner[10] = 0
  inner[11] = 0
  XCTAssertEqual(Checksum.internet(inner), storedInner, "quoted IPv4", file: file, line: line)
}
