#if canImport(Glibc)
  import Glibc
#endif

/// An IPv4 or IPv6 address as network-order bytes, parsed and printed the way `ip` does.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
  public let bytes: [UInt8]

  public var isIPv4: Bool { bytes.count == 4 }
  public var family: Int32 { isIPv4 ? AF_INET : AF_INET6 }
  /// The host-route length: /32 or /128.
  public var hostPrefixLength: Int { bytes.count * 8 }

  public init?(bytes: [UInt8]) {
    guard bytes.count == 4 || bytes.count == 16 else { return nil }
    self.bytes = bytes
  }

  public init?(_ text: String) {
    var v4 = in_addr()
    if inet_pton(AF_INET, text, &v4) == 1 {
      bytes = withUnsafeBytes(of: &v4) { Array($0) }
      return
    }
    var v6 = in6_addr()
    if inet_pton(AF_INET6, text, &v6) == 1 {
      bytes = withUnsafeBytes(of: &v6) { Array($0) }
      return
    }
    return nil
  }

  public var description: String {
    var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    let printed = bytes.withUnsafeBytes { raw in
      inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count))
    }
    guard printed != nil else { return "?" }
    return String(
      decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// The unspecified address of the same family (0.0.0.0 or ::), for default routes.
  public static func any(likeIPv4 ipv4: Bool) -> IPAddress {
    IPAddress(bytes: [UInt8](repeating: 0, count: ipv4 ? 4 : 16))!
  }
}

/// An address with a prefix length, "10.1.0.5/24": the CNI result's `address` and `dst`.
public struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
  public let address: IPAddress
  public let length: Int

  public init?(address: IPAddress, length: Int) {
    guard length >= 0, length <= address.hostPrefixLength else { return nil }
    self.address = address
    self.length = length
  }

  public init?(_ text: String) {
    guard let slash = text.firstIndex(of: "/"),
      let address = IPAddress(String(text[..<slash])),
      text[text.index(after: slash)...].allSatisfy(\.isASCIIDigit),
      let length = Int(text[text.index(after: slash)...])
    else { return nil }
    self.init(address: address, length: length)
  }

  public var description: String { "\(address)/\(length)" }

  /// The same address as a host prefix (/32 or /128): pods get only their own address.
  public var hostPrefix: IPPrefix { IPPrefix(address: address, length: address.hostPrefixLength)! }

  /// 0.0.0.0/0 or ::/0.
  public var isDefault: Bool { length == 0 }

  public static func defaultRoute(ipv4: Bool) -> IPPrefix {
    IPPrefix(address: .any(likeIPv4: ipv4), length: 0)!
  }

  /// The network address: host bits cleared. Routes compare by it.
  public var network: IPPrefix {
    var bytes = address.bytes
    for index in bytes.indices {
      let bitsBefore = index * 8
      if bitsBefore >= length {
        bytes[index] = 0
      } else if bitsBefore + 8 > length {
        bytes[index] &= ~UInt8(0xFF >> (length - bitsBefore))
      }
    }
    return IPPrefix(address: IPAddress(bytes: bytes)!, length: length)!
  }
}
