import CNIKit

/// The name rules the agent enforces on what it is given: CNI container ids, interface names,
/// Kubernetes object names. Each check returns why a value is refused, or nil.
public enum NameRules {
  /// CNI spec rules (CNIKit's, the same the plugin applies), plus a length bound: the id
  /// becomes a file name under the state dir.
  public static func containerID(_ id: String) -> String? {
    if id.utf8.count > 256 { return "is longer than 256 bytes" }
    return Validate.containerID(id)
  }

  /// Linux IFNAMSIZ rules, as the plugin applies them.
  public static func interfaceName(_ name: String) -> String? { Validate.interfaceName(name) }

  /// CNI network names follow the container id rule (libcni's ValidateNetworkName).
  public static func networkName(_ name: String) -> String? { containerID(name) }

  /// A Kubernetes DNS subdomain (namespaces are labels, a subset): 1 to 253 bytes of
  /// lowercase letters, digits, '-' and '.', starting and ending alphanumeric.
  public static func kubernetesName(_ name: String) -> String? {
    if name.isEmpty { return "must not be empty" }
    if name.utf8.count > 253 { return "is longer than 253 bytes" }
    let lowerOrDigit = { (byte: UInt8) -> Bool in
      (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
        || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }
    guard let first = name.utf8.first, let last = name.utf8.last, lowerOrDigit(first),
      lowerOrDigit(last),
      name.utf8.allSatisfy({
        lowerOrDigit($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".")
      })
    else {
      return "\"\(printable(name))\" must be lowercase letters, digits, '-' and '.', "
        + "starting and ending with a letter or digit"
    }
    return nil
  }

  /// A Kubernetes UID: 1 to 128 bytes of letters, digits and '-'.
  public static func kubernetesUID(_ uid: String) -> String? {
    if uid.isEmpty { return "must not be empty" }
    if uid.utf8.count > 128 { return "is longer than 128 bytes" }
    guard uid.utf8.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") }) else {
      return "\"\(printable(uid))\" may contain only letters, digits and '-'"
    }
    return nil
  }

  /// An absolute path without NUL bytes, at most PATH_MAX - 1 bytes.
  public static func absolutePath(_ path: String) -> String? {
    if path.isEmpty { return "must not be empty" }
    if !path.hasPrefix("/") { return "\"\(printable(path))\" is not an absolute path" }
    if path.utf8.count > 4095 { return "is longer than 4095 bytes" }
    if path.utf8.contains(0) { return "must not contain NUL bytes" }
    return nil
  }

  /// A value cut to 80 characters with control bytes escaped, safe to echo in a message.
  public static func printable(_ text: String) -> String {
    var result = ""
    for scalar in text.unicodeScalars.prefix(80) {
      if scalar.value < 0x20 || scalar.value == 0x7F {
        result += "\\u{\(String(scalar.value, radix: 16))}"
      } else {
        result.unicodeScalars.append(scalar)
      }
    }
    return text.unicodeScalars.count > 80 ? result + "…" : result
  }

  static func isAlphanumeric(_ byte: UInt8) -> Bool {
    (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
      || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
      || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
  }
}
