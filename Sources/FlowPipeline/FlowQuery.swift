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
        guard let time = parseRFC3339(value) else {
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
      ("since", since.map { rfc3339(nanoseconds: $0) }),
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

/// "2026-12-06T02:59:24.123456789Z" (or without the fraction, or with fewer digits) →
/// nanoseconds since the epoch; nil for anything else (only UTC, "Z").
public func parseRFC3339(_ text: String) -> Int64? {
  let bytes = Array(text.utf8)
  guard bytes.count >= 20, bytes.last == UInt8(ascii: "Z") else { return nil }
  func number(_ range: Range<Int>) -> Int64? {
    guard range.upperBound <= bytes.count else { return nil }
    var value: Int64 = 0
    for byte in bytes[range] {
      guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
      value = value * 10 + Int64(byte - UInt8(ascii: "0"))
    }
    return value
  }
  guard bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
    bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"),
    bytes[16] == UInt8(ascii: ":"),
    let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
    let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
    (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
  else { return nil }
  var nanoseconds: Int64 = 0
  if bytes.count > 20 {
    guard bytes[19] == UInt8(ascii: "."), bytes.count - 21 <= 9, bytes.count > 21,
      let fraction = number(20..<(bytes.count - 1))
    else { return nil }
    var scale: Int64 = 1
    for _ in 0..<(9 - (bytes.count - 21)) { scale *= 10 }
    nanoseconds = fraction * scale
  } else if bytes[19] != UInt8(ascii: "Z") {
    return nil
  }
  // days_from_civil (Howard Hinnant).
  let y = month <= 2 ? year - 1 : year
  let era = (y >= 0 ? y : y - 399) / 400
  let yearOfEra = y - era * 400
  let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
  let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
  let days = era * 146_097 + dayOfEra - 719_468
  return ((days * 86_400 + hour * 3600 + minute * 60 + second) * 1_000_000_000) + nanoseconds
}
