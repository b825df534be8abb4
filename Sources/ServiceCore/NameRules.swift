/// Kubernetes' name syntaxes (k8s.io/apimachinery/pkg/util/validation). Each returns why a
/// value is refused, or nil when it is fine; messages follow the API server's wording.
public enum KubernetesNames {
  private static func isLowerAlnum(_ byte: UInt8) -> Bool {
    (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
      || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
  }

  private static func isLower(_ byte: UInt8) -> Bool {
    byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")
  }

  /// RFC 1123 label: at most 63 of [a-z0-9-], starting and ending alphanumeric. Namespaces,
  /// port names.
  public static func dns1123Label(_ name: String) -> String? {
    let bytes = Array(name.utf8)
    if bytes.isEmpty { return "must not be empty" }
    if bytes.count > 63 { return "must be no more than 63 characters" }
    guard isLowerAlnum(bytes.first!), isLowerAlnum(bytes.last!),
      bytes.allSatisfy({ isLowerAlnum($0) || $0 == UInt8(ascii: "-") })
    else {
      return
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
    }
    return nil
  }

  /// RFC 1035 label: an RFC 1123 label that starts with a letter. Service names (they become
  /// DNS names under the cluster domain).
  public static func dns1035Label(_ name: String) -> String? {
    if let problem = dns1123Label(name) {
      return problem.hasPrefix("a lowercase")
        ? "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character"
        : problem
    }
    guard isLower(name.utf8.first!) else {
      return
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character"
    }
    return nil
  }

  /// RFC 1123 subdomain: at most 253 bytes of dot-separated labels. EndpointSlice, Pod, Node
  /// names.
  public static func dns1123Subdomain(_ name: String) -> String? {
    if name.isEmpty { return "must not be empty" }
    if name.utf8.count > 253 { return "must be no more than 253 characters" }
    let labelsOK = name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy {
      let bytes = Array($0.utf8)
      return !bytes.isEmpty && isLowerAlnum(bytes.first!) && isLowerAlnum(bytes.last!)
        && bytes.allSatisfy { isLowerAlnum($0) || $0 == UInt8(ascii: "-") }
    }
    guard labelsOK else {
      return
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
    }
    return nil
  }

  /// IANA_SVC_NAME (RFC 6335): at most 15 of [a-z0-9-], at least one letter, no leading,
  /// trailing or doubled '-'. A named `targetPort` and container port names.
  public static func ianaServiceName(_ name: String) -> String? {
    let bytes = Array(name.utf8)
    if bytes.isEmpty { return "must not be empty" }
    if bytes.count > 15 { return "must be no more than 15 characters" }
    if !bytes.allSatisfy({ isLowerAlnum($0) || $0 == UInt8(ascii: "-") }) {
      return "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
    }
    if name.contains("--") { return "must not contain consecutive hyphens" }
    if !bytes.contains(where: isLower) { return "must contain at least one letter (a-z)" }
    if bytes.first == UInt8(ascii: "-") || bytes.last == UInt8(ascii: "-") {
      return "must not begin or end with a hyphen"
    }
    return nil
  }
}
