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
/// or `ip:port`; the backend side of a translated connection is followed by the Service and
/// the address dialled.
public enum FlowCompact {
  public static func line(_ flow: Flow) -> String {
    var source = side(flow.source, service: nil)
    var destination = side(flow.destination, service: nil)
    if let service = flow.destinationService {
      if let original = flow.original {
        destination += " (service \(service.namespace)/\(service.name) \(original))"
      } else if flow.destination.podName == nil {
        destination = side(flow.destination, service: service)
      }
    }
    if let service = flow.sourceService, let original = flow.original {
      source += " (service \(service.namespace)/\(service.name) \(original))"
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

  static func side(_ peer: FlowPeer, service: FlowService?) -> String {
    let port = peer.port.map { ":\($0)" } ?? ""
    if let namespace = peer.namespace, let name = peer.podName {
      return "\(namespace)/\(name)\(port)"
    }
    if let service { return "\(service.namespace)/\(service.name)\(port)" }
    return "\(peer.ip)\(port)"
  }

  static func summary(_ flow: Flow) -> String {
    switch flow.proto {
    case "TCP": "TCP Flags: \((flow.tcpFlags ?? []).joined(separator: ", "))"
    case let proto?: proto
    case nil: "non-IPv4"
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
