import AgentAPI
import AgentCore
import DatapathABI

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
  ///
  /// North-south: a request SNATed by this node shows the node's address and port it left
  /// with as `snat`; a reply to it has the client (not the node's port) as destination; on
  /// the backend's node of a DSR connection the frontend comes from the option, so the
  /// Service is found by that frontend (or the NodePort's 0.0.0.0 one).
  ///
  /// IPv6 addresses are written as `ip` prints them ("fd00::5"), and "address:port" values
  /// (`original`, `snat`) as "[fd00::5]:80", the form Service frontends are named in.
  public func flow(directory: FlowDirectory, nodeName: String) -> Flow {
    let protoName = Self.protocolName(proto)
    func peer(_ ip: String, _ port: UInt16) -> FlowPeer {
      let pod = directory.pods[ip]
      return FlowPeer(
        ip: ip, port: protoName == "TCP" || protoName == "UDP" ? Int(port) : nil,
        namespace: pod?.namespace, podName: pod?.name,
        labels: pod.flatMap { $0.labels.isEmpty ? nil : $0.labels })
    }
    func byFrontend(_ ip: String, _ port: UInt16) -> FlowService? {
      directory.servicesByFrontend["\(endpoint(ip, port))/\(protoName ?? "")"]
    }
    let (sourceIP, destinationIP) = (self.sourceIP, self.destinationIP)
    var source = peer(sourceIP, sourcePort)
    var destination = peer(destinationIP, destinationPort)
    var destinationService: FlowService?
    var sourceService: FlowService?
    var original: String?
    let service = revNatID == 0 ? nil : directory.servicesByID[Int(revNatID)]
    var snat: String?
    if isTranslated && isReply {
      sourceService = service
      original = endpoint(natIP, natPort)
      if isSNAT {
        snat = endpoint(destinationIP, destinationPort)
        destination = peer(snatIP, snatPort)
      }
    } else if isTranslated {
      // A NodePort's wildcard frontend is IPv4's only (0.0.0.0:port, socket LB).
      destinationService =
        service ?? byFrontend(destinationIP, destinationPort)
        ?? (ipv6 == nil ? byFrontend("0.0.0.0", destinationPort) : nil)
      original = endpoint(destinationIP, destinationPort)
      destination = peer(natIP, natPort)
      if isSNAT { snat = endpoint(snatIP, snatPort) }
    } else {
      destinationService = service ?? byFrontend(destinationIP, destinationPort)
      if kind == .sock, sourceIsUnspecified { source = FlowPeer(ip: sourceIP) }
    }
    let pointName =
      http.map { $0.isResponse ? "http-response" : "http-request" }
      ?? DatapathNames.direction(point)
    let northSouth: String? =
      isSNAT
      ? "snat"
      : isDSR
        ? "dsr"
        : isTranslated && (pointName == "from-netdev" || pointName == "to-netdev")
          ? "local" : nil
    var flow = Flow(
      time: Timestamp.format(nanoseconds: time), nodeName: nodeName, type: Self.typeName(kind),
      tracePoint: pointName, verdict: Self.verdictName(verdict),
      dropReason: kind == .drop ? DatapathNames.dropReason(dropReason) : nil,
      dropReasonCode: kind == .drop ? Int(dropReason) : nil, proto: protoName, source: source,
      destination: destination, destinationService: destinationService,
      sourceService: sourceService, original: original,
      tcpFlags: proto == 6 && kind != .l7 ? Self.tcpFlagNames(tcpFlags) : nil,
      isReply: isReplyKnown ? isReply : nil, newConnection: isNew,
      trafficDirection: pointName == "from-endpoint"
        ? "egress" : pointName == "to-endpoint" ? "ingress" : nil,
      interfaceIndex: kind == .sock || kind == .l7 ? nil : Int(ifindex), northSouth: northSouth,
      snat: snat, localRedirect: isLocalRedirect ? true : nil,
      proxyPort: point == JUNCTION_DIR_TO_PROXY.rawValue && kind != .l7 ? Int(natPort) : nil)
    if let http {
      flow.l7 = FlowHTTP(
        method: http.method, url: http.url, protocol: http.protocolName, code: http.code,
        latencyNs: http.latencyNanoseconds)
    }
    return flow
  }

  static func typeName(_ kind: Kind) -> String {
    switch kind {
    case .trace: "trace"
    case .drop: "drop"
    case .sock: "sock"
    case .l7: "l7"
    }
  }

  static func verdictName(_ verdict: UInt8) -> String {
    switch verdict {
    case 1: "FORWARDED"
    case 2: "DROPPED"
    case 5: "REDIRECTED"
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
