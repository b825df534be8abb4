#if canImport(Glibc)
  import Glibc
#endif

/// Address syntax the API accepts: CIDR prefixes ("10.244.1.5/32", "fd00::5/128") and
/// Ethernet MACs ("0a:58:0a:f4:01:05").
public enum AddressRules {
  /// Why `text` is not an IPv4/IPv6 address with a prefix length, or nil when it is one.
  public static func cidr(_ text: String) -> String? {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2 else { return "\"\(NameRules.printable(text))\" is not ADDRESS/LENGTH" }
    let lengthText = parts[1]
    guard !lengthText.isEmpty, lengthText.utf8.count <= 3,
      lengthText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
      let length = Int(lengthText)
    else { return "\"\(NameRules.printable(text))\" has no valid prefix length" }
    guard let bits = addressBits(String(parts[0])) else {
      return "\"\(NameRules.printable(text))\" is not an IPv4 or IPv6 address"
    }
    guard length <= bits else {
      return "\"\(NameRules.printable(text))\": prefix length \(length) is longer than \(bits)"
    }
    return nil
  }

  /// The address's bytes and the prefix length of a valid CIDR, nil for anything else: two
  /// spellings of one IPv6 address ("fd00::5/128", "fd00:0:0::5/128") compare equal.
  public static func cidrKey(_ text: String) -> [UInt8]? {
    guard cidr(text) == nil, let slash = text.firstIndex(of: "/"),
      let length = UInt8(text[text.index(after: slash)...])
    else { return nil }
    let address = String(text[..<slash])
    var v4 = in_addr()
    if inet_pton(AF_INET, address, &v4) == 1 {
      return withUnsafeBytes(of: &v4) { Array($0) } + [length]
    }
    var v6 = in6_addr()
    guard inet_pton(AF_INET6, address, &v6) == 1 else { return nil }
    return withUnsafeBytes(of: &v6) { Array($0) } + [length]
  }

  /// 32 for IPv4, 128 for IPv6, nil for anything else.
  public static func addressBits(_ text: String) -> Int? {
    guard !text.isEmpty, !text.utf8.contains(0) else { return nil }
    var v4 = in_addr()
    if inet_pton(AF_INET, text, &v4) == 1 { return 32 }
    var v6 = in6_addr()
    if inet_pton(AF_INET6, text, &v6) == 1 { return 128 }
    return nil
  }

  /// Why `text` is not six colon-separated hex octets, or nil when it is.
  public static func mac(_ text: String) -> String? {
    let octets = text.split(separator: ":", omittingEmptySubsequences: false)
    let isHex = { (byte: UInt8) -> Bool in
      (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
        || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
        || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "F"))
    }
    guard octets.count == 6, octets.allSatisfy({ $0.utf8.count == 2 && $0.utf8.allSatisfy(isHex) })
    else { return "\"\(NameRules.printable(text))\" is not a MAC address (aa:bb:cc:dd:ee:ff)" }
    return nil
  }
}
