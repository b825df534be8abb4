import AgentAPI
import AgentCore

/// GET /v1/flows?QUERY: the filter, how many of the buffered flows to send (`last`), from
/// when (`since`), and whether to keep streaming new ones (`follow`). Parameter names are
/// `junctionctl observe`'s flags: from-pod, to-pod, pod, namespace, from-ip, to-ip, ip,
/// port, to-port, protocol, verdict, type, to-service, from-service, last, since, follow.
public struct FlowQuery: Equatable, Sendable {
  public var filter = FlowFilter()
  /// The last N matching flows of the buffer (all of them when nil).
  public var last: Int?
  /// Only flows at or after this time (nanoseconds since the epoch).
  public var since: Int64?
  public var follow = false

  public init() {}

  public struct Problem: Error, Equatable, CustomStringConvertible {
    public var description: String
  }

  /// Parses a raw (percent-encoded) query string: "a=b&c=d".
  public static func parse(_ query: String) throws(Problem) -> FlowQuery {
    var result = FlowQuery()
    for item in query.split(separator: "&") where !item.isEmpty {
      let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      guard let name = APIRoute.percentDecode(String(pair[0])),
        let value = APIRoute.percentDecode(pair.count == 2 ? String(pair[1]) : "")
      else { throw Problem(description: "the query \"\(item)\" is not valid percent-encoding") }
      func number() throws(Problem) -> Int {
        guard let number = Int(value), number >= 0 else {
          throw Problem(description: "\(name) \"\(value)\" is not a number")
        }
        return number
      }
      switch name {
      case "from-pod": result.filter.fromPod = value
      case "to-pod": result.filter.toPod = value
      case "pod": result.filter.pod = value
      case "namespace": result.filter.namespace = value
      case "from-ip": result.filter.fromIP = value
      case "to-ip": result.filter.toIP = value
      case "ip": result.filter.ip = value
      case "port": result.filter.port = try number()
      case "to-port": result.filter.toPort = try number()
      case "protocol": result.filter.proto = value
      case "verdict": result.filter.verdict = value
      case "type": result.filter.type = value
      case "to-service": result.filter.toService = value
      case "from-service": result.filter.fromService = value
      case "last": result.last = try number()
      case "since":
        guard let time = Timestamp.parse(value) else {
          throw Problem(description: "since \"\(value)\" is not an RFC 3339 UTC time")
        }
        result.since = time
      case "follow":
        guard value == "true" || value == "false" else {
          throw Problem(description: "follow \"\(value)\" is not true or false")
        }
        result.follow = value == "true"
      default:
        throw Problem(description: "unknown flow query parameter \"\(name)\"")
      }
    }
    if let problem = result.filter.problem() { throw Problem(description: problem) }
    return result
  }

  /// The flows of `records` (oldest first) this query asks for: at or after `since`, named
  /// with `directory`, matching the filter, and (with `limited`) the last `last` of them.
  public func select(
    _ records: [FlowRecord], directory: FlowDirectory, nodeName: String, limited: Bool = true
  ) -> [Flow] {
    let flows = records.lazy.filter { record in since.map { record.time >= $0 } ?? true }
      .map { $0.flow(directory: directory, nodeName: nodeName) }
      .filter { filter.matches($0) }
    guard limited, let count = last else { return Array(flows) }
    return Array(flows.suffix(count))
  }

  /// The query string that parses back to this query (for the CLI).
  public var queryString: String {
    let filter = self.filter
    var items: [(String, String?)] = [
      ("from-pod", filter.fromPod), ("to-pod", filter.toPod), ("pod", filter.pod),
      ("namespace", filter.namespace), ("from-ip", filter.fromIP), ("to-ip", filter.toIP),
      ("ip", filter.ip), ("port", filter.port.map(String.init)),
      ("to-port", filter.toPort.map(String.init)), ("protocol", filter.proto),
      ("verdict", filter.verdict), ("type", filter.type), ("to-service", filter.toService),
      ("from-service", filter.fromService), ("last", last.map(String.init)),
      ("since", since.map { Timestamp.format(nanoseconds: $0) }),
    ]
    if follow { items.append(("follow", "true")) }
    return items.compactMap { name, value in value.map { "\(name)=\(percentEncode($0))" } }
      .joined(separator: "&")
  }
}

/// Unreserved characters (RFC 3986) and '/' and ':' kept; everything else %XX.
func percentEncode(_ text: String) -> String {
  var result = ""
  for byte in text.utf8 {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
      UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"), UInt8(ascii: ":"):
      result.append(Character(Unicode.Scalar(byte)))
    default:
      let hex = String(byte, radix: 16, uppercase: true)
      result += "%" + (hex.count == 1 ? "0" + hex : hex)
    }
  }
  return result
}
