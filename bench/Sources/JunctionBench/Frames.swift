/// Ethernet + IPv4 or IPv6 + TCP frames for BPF_PROG_TEST_RUN (the layout of
/// Tests/BPFKitTests/Support/PacketBuilder.swift, restated: test support is not a library),
/// with valid IPv4 and TCP checksums so the datapath's incremental fix-ups start from a real
/// packet. Addresses are their network-order bytes: 4 of them make an IPv4 frame, 16 an
/// IPv6 one (`Frames.bytes(0x0A600001)` is 10.96.0.1).
enum Frames {
  static let syn: UInt8 = 0x02
  static let ack: UInt8 = 0x10

  static func tcp(
    source: [UInt8], destination: [UInt8], sourcePort: UInt16, destinationPort: UInt16,
    flags: UInt8
  ) -> [UInt8] {
    precondition(source.count == destination.count && [4, 16].contains(source.count))
    let ipv6 = source.count == 16
    let payload = Array("junction-bench".utf8)
    var segment = be16(sourcePort) + be16(destinationPort)
    segment += [0, 0, 0x10, 0x01, 0, 0, 0, 0]  // sequence, acknowledgement
    segment += [0x50, flags] + be16(64240) + [0, 0, 0, 0]  // offset 5, window, csum, urgent
    segment += payload
    // The pseudo-header of RFC 793, or of RFC 8200 section 8.1 for IPv6.
    let pseudo =
      ipv6
      ? source + destination + be32(UInt32(segment.count)) + [0, 0, 0, 6]
      : source + destination + [0, 6] + be16(UInt16(segment.count))
    segment.replaceSubrange(16..<18, with: be16(checksum(pseudo + segment)))

    if ipv6 {
      // Version 6, no traffic class or flow label, next header TCP, hop limit 64.
      let ip: [UInt8] = [0x60, 0, 0, 0] + be16(UInt16(segment.count)) + [6, 64]
      return ethernet(type: [0x86, 0xDD]) + ip + source + destination + segment
    }
    var ip: [UInt8] = [0x45, 0] + be16(UInt16(20 + segment.count)) + [0x12, 0x34, 0x40, 0]
    ip += [64, 6, 0, 0] + source + destination
    ip.replaceSubrange(10..<12, with: be16(checksum(ip)))
    return ethernet(type: [0x08, 0x00]) + ip + segment
  }

  /// An ARP request padded to 60 bytes: the non-IP frame the datapath passes untouched.
  static func arp() -> [UInt8] {
    var frame = [UInt8](repeating: 0xff, count: 6) + [0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06]
    frame += [0, 1, 0x08, 0, 6, 4, 0, 1, 0x02, 0, 0, 0, 0, 0x01, 10, 0, 1, 5]
    frame += [0, 0, 0, 0, 0, 0, 10, 0, 1, 1]
    return frame + [UInt8](repeating: 0, count: 60 - frame.count)
  }

  /// The destination address of a frame this file built (or the datapath rewrote).
  static func destination(_ frame: [UInt8]) -> [UInt8] {
    isIPv6(frame) ? Array(frame[38..<54]) : Array(frame[30..<34])
  }

  /// The source address of such a frame.
  static func source(_ frame: [UInt8]) -> [UInt8] {
    isIPv6(frame) ? Array(frame[22..<38]) : Array(frame[26..<30])
  }

  /// An IPv4 address's network-order bytes.
  static func bytes(_ address: UInt32) -> [UInt8] { be32(address) }

  private static func isIPv6(_ frame: [UInt8]) -> Bool { frame[12] == 0x86 && frame[13] == 0xDD }

  private static func ethernet(type: [UInt8]) -> [UInt8] {
    [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01] + type
  }

  private static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }

  private static func be32(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
  }

  /// RFC 1071.
  private static func checksum(_ data: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var index = 0
    while index < data.count {
      sum += UInt32(data[index]) << 8 | UInt32(index + 1 < data.count ? data[index + 1] : 0)
      index += 2
    }
    while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
    return ~UInt16(sum)
  }
}
