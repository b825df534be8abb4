import AgentAPI

/// GET /v1/flows lines written straight into bytes: the same JSON as Foundation's
/// JSONEncoder with `.sortedKeys` gives for a FlowsLine (keys in byte order, nil fields
/// left out, "/" escaped as "\/"), without its per-value boxing, which capped a follower
/// at ~8,000 flows/s (bench/results/flow-events.md). FlowPipelineTests check that both
/// encoders agree. A field added to Flow must be added here, in sorted place.
public enum FlowNDJSON {
  /// The lines, each followed by "\n".
  public static func lines(_ lines: [FlowsLine]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(lines.count * 512)
    for line in lines { append(line, to: &out) }
    return out
  }

  /// One line and its "\n".
  public static func append(_ line: FlowsLine, to out: inout [UInt8]) {
    var w = SortedKeyJSONWriter(out: out)
    out = []  // `w` owns the buffer now: appends do not copy it
    w.open()
    if let flow = line.flow {
      w.key("flow")
      w.flow(flow)
    }
    if let lost = line.lostEvents {
      w.key("lostEvents")
      w.open()
      w.number("count", lost.count)
      w.string("source", lost.source)
      w.close()
    }
    w.close()
    w.out.append(UInt8(ascii: "\n"))
    swap(&out, &w.out)
  }
}

/// The flow types' members, in sorted key order.
extension SortedKeyJSONWriter {
  mutating func flow(_ flow: Flow) {
    open()
    key("destination")
    peer(flow.destination)
    if let service = flow.destinationService {
      key("destinationService")
      self.service(service)
    }
    string("dropReason", flow.dropReason)
    number("dropReasonCode", flow.dropReasonCode)
    number("interfaceIndex", flow.interfaceIndex)
    bool("isReply", flow.isReply)
    if let http = flow.l7 {
      key("l7")
      open()
      number("code", http.code)
      number("latencyNs", http.latencyNs)
      string("method", http.method)
      string("protocol", http.protocol)
      string("url", http.url)
      close()
    }
    bool("localRedirect", flow.localRedirect)
    bool("newConnection", flow.newConnection)
    string("nodeName", flow.nodeName)
    string("northSouth", flow.northSouth)
    string("original", flow.original)
    string("proto", flow.proto)
    string("snat", flow.snat)
    key("source")
    peer(flow.source)
    if let service = flow.sourceService {
      key("sourceService")
      self.service(service)
    }
    strings("tcpFlags", flow.tcpFlags)
    string("time", flow.time)
    string("tracePoint", flow.tracePoint)
    string("trafficDirection", flow.trafficDirection)
    string("type", flow.type)
    string("verdict", flow.verdict)
    close()
  }

  mutating func peer(_ peer: FlowPeer) {
    open()
    string("ip", peer.ip)
    strings("labels", peer.labels)
    string("namespace", peer.namespace)
    string("podName", peer.podName)
    number("port", peer.port)
    close()
  }

  mutating func service(_ service: FlowService) {
    open()
    string("name", service.name)
    string("namespace", service.namespace)
    close()
  }
}
