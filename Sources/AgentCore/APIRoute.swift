import AgentAPI

/// Where a request goes, decided from its method and raw (still percent-encoded) path alone.
///
/// The agent serves a handful of paths, so it routes them here, as pure code the unit tests
/// cover, instead of through a router trie: endpoint ids are percent-decoded and checked
/// with `EndpointID.problem`, and the answers for "almost" paths are explicit:
/// - `/v1/endpoints/a%2Fb` (an id with '/'), `/v1/endpoints/..`, `/v1/endpoints/%2E%2E`
///   → 400 naming the rule;
/// - `/v1/endpoints/a/b` (extra segments: an id with a raw '/') → 400 as well, since ids
///   never contain '/';
/// - a known path with another method → 405 with the allowed methods;
/// - anything else → 404.
public enum APIRoute: Equatable, Sendable {
  case health
  case config
  case listEndpoints
  case getEndpoint(id: String)
  case putEndpoint(id: String)
  case deleteEndpoint(id: String)
  /// POST /v1/resources/apply and /v1/resources/delete: Kubernetes YAML.
  case changeResources(delete: Bool)
  case listServices
  /// GET /v1/lrp: the Local Redirect Policies.
  case listRedirectPolicies
  /// GET /v1/bpf/lb: the service maps read back from the kernel.
  case loadBalancerMaps
  /// GET /v1/bpf/drops: the drop counters by reason and direction.
  case dropCounters
  /// GET /v1/flows: the flow buffer as NDJSON, filtered by the query; follow=true streams.
  case flows
  /// GET /v1/envoy/configs: the L7 configs the node's Envoy serves (`junctionctl envoy list`).
  case envoyConfigs
  /// 400: the path names an endpoint in a way that can never be valid.
  case badEndpointID(message: String)
  /// 405.
  case methodNotAllowed(allowed: [String])
  /// 404.
  case notFound(path: String)

  public static let endpointsPrefix = "/v1/endpoints"

  public static func resolve(method: String, path: String) -> APIRoute {
    let segments = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    guard segments.count >= 3, segments[0].isEmpty, segments[1] == "v1" else {
      return .notFound(path: path)
    }
    switch (segments[2], segments.count) {
    case ("healthz", 3):
      return method == "GET" ? .health : .methodNotAllowed(allowed: ["GET"])
    case ("config", 3):
      return method == "GET" ? .config : .methodNotAllowed(allowed: ["GET"])
    case ("endpoints", 3):
      return method == "GET" ? .listEndpoints : .methodNotAllowed(allowed: ["GET"])
    case ("services", 3):
      return method == "GET" ? .listServices : .methodNotAllowed(allowed: ["GET"])
    case ("flows", 3):
      return method == "GET" ? .flows : .methodNotAllowed(allowed: ["GET"])
    case ("envoy", 4) where segments[3] == "configs":
      return method == "GET" ? .envoyConfigs : .methodNotAllowed(allowed: ["GET"])
    case ("lrp", 3):
      return method == "GET" ? .listRedirectPolicies : .methodNotAllowed(allowed: ["GET"])
    case ("bpf", 4) where segments[3] == "lb":
      return method == "GET" ? .loadBalancerMaps : .methodNotAllowed(allowed: ["GET"])
    case ("bpf", 4) where segments[3] == "drops":
      return method == "GET" ? .dropCounters : .methodNotAllowed(allowed: ["GET"])
    case ("resources", 4) where segments[3] == "apply" || segments[3] == "delete":
      return method == "POST"
        ? .changeResources(delete: segments[3] == "delete") : .methodNotAllowed(allowed: ["POST"])
    case ("endpoints", 4) where segments[3].isEmpty:
      // "/v1/endpoints/": the collection, for a GET; an empty id otherwise.
      if method == "GET" { return .listEndpoints }
      if method == "PUT" || method == "DELETE" {
        return .badEndpointID(message: "the endpoint id in the path is empty")
      }
      return .methodNotAllowed(allowed: ["GET"])
    case ("endpoints", 4):
      guard let id = percentDecode(segments[3]) else {
        return .badEndpointID(
          message:
            "the endpoint id \"\(NameRules.printable(segments[3]))\" is not valid percent-encoding")
      }
      if let problem = EndpointID.problem(id) {
        return .badEndpointID(
          message: "invalid endpoint id \"\(NameRules.printable(id))\": \(problem)")
      }
      switch method {
      case "GET": return .getEndpoint(id: id)
      case "PUT": return .putEndpoint(id: id)
      case "DELETE": return .deleteEndpoint(id: id)
      default: return .methodNotAllowed(allowed: ["GET", "PUT", "DELETE"])
      }
    case ("endpoints", _):
      let rest = segments[3...].joined(separator: "/")
      return .badEndpointID(
        message:
          "invalid endpoint id \"\(NameRules.printable(rest))\": must not contain '/' or '..'")
    default:
      return .notFound(path: path)
    }
  }

  /// RFC 3986 percent-decoding of one path segment; nil for a bad escape, a NUL byte or
  /// bytes that are not UTF-8.
  public static func percentDecode(_ text: String) -> String? {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count)
    var iterator = text.utf8.makeIterator()
    while let byte = iterator.next() {
      if byte == UInt8(ascii: "%") {
        guard let high = iterator.next().flatMap(hexValue),
          let low = iterator.next().flatMap(hexValue)
        else { return nil }
        bytes.append(high << 4 | low)
      } else {
        bytes.append(byte)
      }
    }
    if bytes.contains(0) { return nil }
    return String(validating: bytes, as: UTF8.self)
  }

  private static func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
  }
}
