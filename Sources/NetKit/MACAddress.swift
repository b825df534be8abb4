/// A 48-bit Ethernet address, printed as CNI results and `ip link` print it.
public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
  public let bytes: [UInt8]

  public init?(bytes: [UInt8]) {
    guard bytes.count == 6 else { return nil }
    self.bytes = bytes
  }

  public init?(_ text: String) {
    let parts = text.split(separator: ":")
    guard parts.count == 6 else { return nil }
    var bytes: [UInt8] = []
    for part in parts {
      guard part.count == 2, let byte = UInt8(part, radix: 16) else { return nil }
      bytes.append(byte)
    }
    self.bytes = bytes
  }

  /// A random locally administered unicast address. Junction sets MACs explicitly so that
  /// udev's MACAddressPolicy=persistent cannot change them under a running pod.
  public static func randomLocal<G: RandomNumberGenerator>(using generator: inout G) -> MACAddress {
    var bytes = (0..<6).map { _ in UInt8.random(in: 0...255, using: &generator) }
    bytes[0] = (bytes[0] & 0xFE) | 0x02
    return MACAddress(bytes: bytes)!
  }

  public var description: String {
    bytes.map { byte in
      let hex = String(byte, radix: 16)
      return hex.count == 1 ? "0" + hex : hex
    }.joined(separator: ":")
  }
}
