import AgentAPI
import AgentCore

/// `junctionctl observe`'s default output, Hubble's compact line:
///
///     Dec  6 03:08:02.123: default/client:40000 -> default/r2d2:8080 (service default/droids 10.96.0.10:80) from-endpoint FORWARDED (TCP Flags: SYN)
///
/// time (UTC, Go's StampMilli), source, arrow, destination, type (the trace point, or the
/// drop reason for a drop), verdict, summary. The arrow is `->`, or `<-` for a reply with
/// the two sides swapped so the client stays on the left, or `<>` when the datapath does not
/// know. A side is `namespace/pod:port`, or `namespace/service:port` for a Service address,
/// or `ip:port` (`[ip]:port` for IPv6); the backend side of a translated connection is followed by the Service and
/// the address dialled, then how it was reached: `SNAT ip:port` or `DSR` (north-south), `local
/// backend` (north-south to a pod of this node), `local redirect` (a Local Redirect Policy):
///
///     ... 198.51.100.5:40000 -> 10.0.2.11:8080 (service default/droids 192.0.2.1:30080, DSR) from-netdev FORWARDED (TCP Flags: SYN)
public enum FlowCompact {
  public static func line(_ flow: Flow) -> String {
    var source = side(flow.source, service: nil)
    var destination = side(flow.destination, service: nil)
    if let service = flow.destinationService, flow.original == nil,
      flow.destination.podName == nil
    {
      destination = side(flow.destination, service: service)
    }
    if flow.isReply == true {
      source += translation(flow.sourceService, flow)
    } else {
      destination += translation(flow.destinationService, flow)
    }
    let arrow: String
    switch flow.isReply {
    case true?:
      arrow = "<-"
      swap(&source, &destination)
    case false?: arrow = "->"
    case nil: arrow = "<>"
    }
    let type = flow.type == "drop" ? (flow.dropReason ?? "drop") : flow.tracePoint
    return
      "\(stampMilli(flow.time)): \(source) \(arrow) \(destination) \(type) \(flow.verdict) (\(summary(flow)))"
  }

  /// " (service ns/name frontend, how)" for the backend's side of a translated flow; "" when
  /// there is nothing to say.
  static func translation(_ service: FlowService?, _ flow: Flow) -> String {
    var parts: [String] = []
    var how: [String] = []
    switch flow.northSouth {
    case "snat"?: how.append("SNAT" + (flow.snat.map { " \($0)" } ?? ""))
    case "dsr"?: how.append("DSR")
    case "local"?: how.append("local backend")
    default: break
    }
    if flow.localRedirect == true { how.append("local redirect") }
    if let original = flow.original {
      if let service {
        parts.append("service \(service.namespace)/\(service.name) \(original)")
      } else if !how.isEmpty {
        parts.append(original)
      }
    }
    parts += how
    return parts.isEmpty ? "" : " (\(parts.joined(separator: ", ")))"
  }

  static func side(_ peer: FlowPeer, service: FlowService?) -> String {
    let port = peer.port.map { ":\($0)" } ?? ""
    if let namespace = peer.namespace, let name = peer.podName {
      return "\(namespace)/\(name)\(port)"
    }
    if let service { return "\(service.namespace)/\(service.name)\(port)" }
    // An IPv6 address with a port is bracketed, as in a URL: "[fd00::5]:80".
    return peer.ip.contains(":") && peer.port != nil ? "[\(peer.ip)]\(port)" : "\(peer.ip)\(port)"
  }

  static func summary(_ flow: Flow) -> String {
    // Hubble's L7 summary: "HTTP/1.1 GET http://web/" and, on the response, the status and
    // the latency ("HTTP/1.1 200 4ms GET http://web/").
    if let http = flow.l7 {
      let status = http.code.map { " \($0)" } ?? ""
      let latency = http.latencyNs.map { " \($0 / 1_000_000)ms" } ?? ""
      return "\(http.protocol)\(status)\(latency) \(http.method) \(http.url)"
    }
    return switch flow.proto {
    case "TCP": "TCP Flags: \((flow.tcpFlags ?? []).joined(separator: ", "))"
    case let proto?: proto
    case nil: "protocol unknown"
    }
  }

  static let months = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
  ]

  /// "2026-12-06T03:08:02.123456789Z" → "Dec  6 03:08:02.123"; the input when it is not
  /// RFC 3339.
  public static func stampMilli(_ time: String) -> String {
    guard let nanoseconds = Timestamp.parse(time) else { return time }
    let utc = Timestamp.utc(nanoseconds: nanoseconds)
    func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
    let day = utc.day < 10 ? " \(utc.day)" : "\(utc.day)"
    let millis = utc.nanoseconds / 1_000_000
    let milli = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
    return "\(months[utc.month - 1]) \(day) \(two(utc.hour)):\(two(utc.minute)):"
      + "\(two(utc.second)).\(milli)"
  }
}
