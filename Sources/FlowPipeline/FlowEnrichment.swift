import AgentAPI
import AgentCore

extension FlowRecord {
  /// The API's flow: codes named (DatapathNames), addresses given their pods and Services
  /// from `directory`, the time in RFC 3339.
  ///
  /// A translated connection (client → frontend, DNATed) has the backend as destination,
  /// the Service and the frontend it dialled as `destinationService` and `original`; a
  /// reply translated back has the backend as source and its Service as `sourceService`; a
  /// socket LB translation is shown as the connection it becomes (the backend), with the
  /// frontend the application asked for. Anything else, drops included, is the packet's own
  /// addresses, and a destination that is a Service frontend names its Service.
  public func flow(directory: FlowDirectory, nodeName: String) -> Flow {
    let protoName = Self.protocolName(proto)
    func peer(_ address: UInt32, _ port: UInt16) -> FlowPeer {
      let ip = dottedQuad(address)
      let pod = directory.pods[ip]
      return FlowPeer(
        ip: ip, port: protoName == "TCP" || protoName == "UDP" ? Int(port) : nil,
        namespace: pod?.namespace, podName: pod?.name)
    }
    var source = peer(self.source, sourcePort)
    var destination = peer(self.destination, destinationPort)
    var destinationService: FlowService?
    var sourceService: FlowService?
    var original: String?
    let service = revNatID == 0 ? nil : directory.servicesByID[Int(revNatID)]
    if isTranslated && isReply {
      sourceService = service
      original = "\(dottedQuad(natAddress)):\(natPort)"
    } else if isTranslated {
      destinationService = service
      original = "\(dottedQuad(self.destination)):\(destinationPort)"
      destination = peer(natAddress, natPort)
    } else {
      destinationService =
        service
        ?? directory.servicesByFrontend[
          "\(dottedQuad(self.destination)):\(destinationPort)/\(protoName ?? "")"]
      if kind == .sock, self.source == 0 { source = FlowPeer(ip: "0.0.0.0") }
    }
    let pointName = DatapathNames.direction(point)
    return Flow(
      time: rfc3339(nanoseconds: time), nodeName: nodeName, type: Self.typeName(kind),
      tracePoint: pointName, verdict: Self.verdictName(verdict),
      dropReason: kind == .drop ? DatapathNames.dropReason(dropReason) : nil,
      dropReasonCode: kind == .drop ? Int(dropReason) : nil, proto: protoName, source: source,
      destination: destination, destinationService: destinationService,
      sourceService: sourceService, original: original,
      tcpFlags: proto == 6 ? Self.tcpFlagNames(tcpFlags) : nil,
      isReply: isReplyKnown ? isReply : nil, newConnection: isNew,
      trafficDirection: pointName == "from-endpoint"
        ? "egress" : pointName == "to-endpoint" ? "ingress" : nil,
      interfaceIndex: kind == .sock ? nil : Int(ifindex))
  }

  static func typeName(_ kind: Kind) -> String {
    switch kind {
    case .trace: "trace"
    case .drop: "drop"
    case .sock: "sock"
    }
  }

  static func verdictName(_ verdict: UInt8) -> String {
    switch verdict {
    case 1: "FORWARDED"
    case 2: "DROPPED"
    case 7: "TRANSLATED"
    default: "VERDICT_\(verdict)"
    }
  }

  static func protocolName(_ proto: UInt8) -> String? {
    switch proto {
    case 0: nil
    case 1: "ICMP"
    case 6: "TCP"
    case 17: "UDP"
    case 132: "SCTP"
    default: String(proto)
    }
  }

  /// In Hubble's order.
  static let tcpFlagBits: [(UInt8, String)] = [
    (0x02, "SYN"), (0x01, "FIN"), (0x04, "RST"), (0x08, "PSH"), (0x10, "ACK"), (0x20, "URG"),
    (0x40, "ECE"), (0x80, "CWR"),
  ]

  static func tcpFlagNames(_ flags: UInt8) -> [String] {
    tcpFlagBits.filter { flags & $0.0 != 0 }.map(\.1)
  }
}

/// "2026-12-06T02:59:24.123456789Z" for nanoseconds since the Unix epoch (UTC).
public func rfc3339(nanoseconds: Int64) -> String {
  let seconds =
    nanoseconds >= 0 ? nanoseconds / 1_000_000_000 : (nanoseconds - 999_999_999) / 1_000_000_000
  let fraction = nanoseconds - seconds * 1_000_000_000
  let civil = CivilTime(secondsSinceEpoch: seconds)
  func pad(_ value: Int64, _ width: Int) -> String {
    let text = String(value)
    return String(repeating: "0", count: max(0, width - text.count)) + text
  }
  return "\(pad(civil.year, 4))-\(pad(civil.month, 2))-\(pad(civil.day, 2))T"
    + "\(pad(civil.hour, 2)):\(pad(civil.minute, 2)):\(pad(civil.second, 2))."
    + "\(pad(fraction, 9))Z"
}

/// A UTC date and time of day (proleptic Gregorian), from Howard Hinnant's civil_from_days.
public struct CivilTime: Equatable, Sendable {
  public var year: Int64
  public var month: Int64
  public var day: Int64
  public var hour: Int64
  public var minute: Int64
  public var second: Int64

  public init(secondsSinceEpoch: Int64) {
    var days = secondsSinceEpoch / 86_400
    var rest = secondsSinceEpoch % 86_400
    if rest < 0 {
      rest += 86_400
      days -= 1
    }
    hour = rest / 3600
    minute = rest % 3600 / 60
    second = rest % 60
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let monthIndex = (5 * dayOfYear + 2) / 153
    day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
    month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
    year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
  }
}
