import Foundation

/// Ethernet + IPv4 + TCP/UDP frames built byte by byte, with checksums computed by the
/// reference functions below (not by anything the datapath uses), and read back by
/// `ParsedFrame` to check what a program wrote.
struct PacketBuilder {
  enum L4: UInt8 {
    case tcp = 6
    case udp = 17
  }

  var l4: L4 = .tcp
  var source: [UInt8] = [10, 0, 1, 5]
  var destination: [UInt8] = [10, 96, 0, 10]
  var sourcePort: UInt16 = 40000
  var destinationPort: UInt16 = 80
  /// IPv4 options, a multiple of 4 bytes (ihl = 5 + options.count / 4).
  var options: [UInt8] = []
  /// Flags and fragment offset (host order): 0x4000 don't fragment, 0x2000 more fragments.
  var fragment: UInt16 = 0x4000
  var tcpFlags: UInt8 = 0x02  // SYN
  var ttl: UInt8 = 64
  /// false: UDP checksum 0 ("none").
  var udpChecksum = true
  var payload: [UInt8] = Array("hello, service".utf8)

  /// The defaults above: a TCP SYN from 10.0.1.5:40000 to 10.96.0.10:80.
  init() {}

  /// One flow's packet: `l4` from `source`:`sourcePort` to `destination`:`destinationPort`,
  /// with `tcpFlags` (SYN unless told).
  init(
    _ l4: L4, from source: [UInt8], _ sourcePort: UInt16, to destination: [UInt8],
    _ destinationPort: UInt16, tcpFlags: UInt8 = 0x02
  ) {
    self.l4 = l4
    self.source = source
    self.sourcePort = sourcePort
    self.destination = destination
    self.destinationPort = destinationPort
    self.tcpFlags = tcpFlags
  }

  func build() -> [UInt8] {
    precondition(options.count % 4 == 0)
    var l4Header: [UInt8]
    switch l4 {
    case .tcp:
      l4Header = bytes(sourcePort) + bytes(destinationPort)
      l4Header += [0, 0, 0x10, 0x01, 0, 0, 0, 0]  // sequence, acknowledgement
      // Data offset 5, flags, window, checksum (filled below), urgent pointer.
      l4Header += [0x50, tcpFlags] + bytes(UInt16(64240)) + [0, 0, 0, 0]
    case .udp:
      l4Header = bytes(sourcePort) + bytes(destinationPort)
      l4Header += bytes(UInt16(8 + payload.count)) + [0, 0]
    }
    var segment = l4Header + payload
    let checksumOffset = l4 == .tcp ? 16 : 6
    if l4 == .tcp || udpChecksum {
      var sum = Checksum.transport(
        source: source, destination: destination, protocol: l4.rawValue, segment: segment)
      if l4 == .udp && sum == 0 { sum = 0xffff }
      segment.replaceSubrange(checksumOffset..<checksumOffset + 2, with: bytes(sum))
    }

    let headerLength = 20 + options.count
    var ip: [UInt8] = [0x40 | UInt8(headerLength / 4), 0]
    ip += bytes(UInt16(headerLength + segment.count)) + [0x12, 0x34] + bytes(fragment)
    ip += [ttl, l4.rawValue, 0, 0] + source + destination + options
    ip.replaceSubrange(10..<12, with: bytes(Checksum.internet(ip)))

    let ethernet: [UInt8] = [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]
    return ethernet + ip + segment
  }
}

func bytes(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }

/// The RFC 1071 Internet checksum, written for the tests from the RFC, not from the datapath.
enum Checksum {
  /// One's complement of the one's complement sum of 16-bit big-endian words (an odd last
  /// byte padded with zero).
  static func internet<C: Collection<UInt8>>(_ data: C) -> UInt16 {
    var sum: UInt32 = 0
    var iterator = data.makeIterator()
    while let high = iterator.next() {
      let low = iterator.next() ?? 0
      sum += UInt32(high) << 8 | UInt32(low)
    }
    while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
    return ~UInt16(sum)
  }

  /// TCP/UDP checksum: over the pseudo-header (source, destination, zero, protocol, L4
  /// length) and the segment, whose checksum field must be zero here.
  static func transport(source: [UInt8], destination: [UInt8], protocol: UInt8, segment: [UInt8])
    -> UInt16
  {
    let pseudo = source + destination + [0, `protocol`] + bytes(UInt16(segment.count))
    return internet(pseudo + segment)
  }
}

/// A frame from PacketBuilder (or a program's output) read back, checksums re-verified from
/// scratch: each is recomputed with its field zeroed and compared with what is stored.
struct ParsedFrame {
  var source: [UInt8]
  var destination: [UInt8]
  var sourcePort: UInt16
  var destinationPort: UInt16
  var ipChecksumValid: Bool
  /// For UDP with a zero checksum field: true (no checksum is a valid UDP packet).
  var l4ChecksumValid: Bool
  var l4ChecksumField: UInt16

  init(_ frame: [UInt8]) {
    let headerLength = Int(frame[14] & 0x0f) * 4
    var ip = Array(frame[14..<(14 + headerLength)])
    let storedIP = UInt16(ip[10]) << 8 | UInt16(ip[11])
    ip[10] = 0
    ip[11] = 0
    ipChecksumValid = Checksum.internet(ip) == storedIP
    source = Array(ip[12..<16])
    destination = Array(ip[16..<20])
    let proto = ip[9]
    let totalLength = Int(UInt16(ip[2]) << 8 | UInt16(ip[3]))
    var segment = Array(frame[(14 + headerLength)..<(14 + totalLength)])
    sourcePort = UInt16(segment[0]) << 8 | UInt16(segment[1])
    destinationPort = UInt16(segment[2]) << 8 | UInt16(segment[3])
    let offset = proto == 6 ? 16 : 6
    l4ChecksumField = UInt16(segment[offset]) << 8 | UInt16(segment[offset + 1])
    segment[offset] = 0
    segment[offset + 1] = 0
    var computed = Checksum.transport(
      source: source, destination: destination, protocol: proto, segment: segment)
    if proto == 17 {
      if computed == 0 { computed = 0xffff }
      l4ChecksumValid = l4ChecksumField == 0 || computed == l4ChecksumField
    } else {
      l4ChecksumValid = computed == l4ChecksumField
    }
  }
}

/// An ARP request (who-has 10.0.1.1 tell 10.0.1.5), padded to 60 bytes.
func arpFrame() -> [UInt8] {
  var frame: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06]
  frame += [0, 1, 0x08, 0, 6, 4, 0, 1]  // Ethernet, IPv4, sizes, request
  frame += [0x02, 0, 0, 0, 0, 0x01, 10, 0, 1, 5]
  frame += [0, 0, 0, 0, 0, 0, 10, 0, 1, 1]
  frame += [UInt8](repeating: 0, count: 60 - frame.count)
  return frame
}

/// An IPv4 address in the ABI's network byte order (__be32): the bytes as in the packet.
func be32(_ address: [UInt8]) -> UInt32 {
  address.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
}

/// A port in the ABI's network byte order (__be16).
func be16(_ port: UInt16) -> UInt16 { port.bigEndian }

/// The datapath's Maglev hash (bpf/lib/jhash.h + maglev_hash in endpoint.c), restated here
/// from its documented formula so a test can predict the table slot of a connection.
func maglevSlot(
  source: [UInt8], destination: [UInt8], sourcePort: UInt16, destinationPort: UInt16,
  proto: UInt8, seed: UInt32, tableSize: Int
) -> Int {
  func rol(_ word: UInt32, _ shift: UInt32) -> UInt32 { (word << shift) | (word >> (32 - shift)) }
  let host = { (address: [UInt8]) in address.reduce(UInt32(0)) { $0 << 8 | UInt32($1) } }
  var a = host(source) &+ 0xdead_beef
  var b = host(destination) &+ 0xdead_beef
  var c = (UInt32(sourcePort) << 16 | UInt32(destinationPort)) &+ (seed &+ UInt32(proto))
  c ^= b
  c = c &- rol(b, 14)
  a ^= c
  a = a &- rol(c, 11)
  b ^= a
  b = b &- rol(a, 25)
  c ^= b
  c = c &- rol(b, 16)
  a ^= c
  a = a &- rol(c, 4)
  b ^= a
  b = b &- rol(a, 14)
  c ^= b
  c = c &- rol(b, 24)
  return Int(c % UInt32(tableSize))
}
