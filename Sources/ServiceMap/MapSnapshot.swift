import AgentAPI
import FlowPipeline

/// What the page fetches on every refresh (GET /api/map?FILTERS): the graph of all the
/// agent's buffered flows that match the filters, and the newest of them as table rows.
/// Built from the same flows, so the map and the table never disagree.
public struct MapSnapshot: Codable, Equatable, Sendable {
  public var graph: ServiceGraph
  /// Newest first, at most the rows asked for.
  public var flows: [FlowRow]
  /// How many flows matched (the graph counts them all; the table shows `flows.count`).
  public var matched: Int
  /// Flows the agent reported lost (its datapath ring was full), when it reported any.
  public var lost: UInt64?

  public init(graph: ServiceGraph, flows: [FlowRow], matched: Int, lost: UInt64? = nil) {
    self.graph = graph
    self.flows = flows
    self.matched = matched
    self.lost = lost
  }

  /// The snapshot of the lines of one GET /v1/flows answer (oldest first), keeping the
  /// newest `rows` flows for the table.
  public static func build(_ lines: [FlowsLine], rows: Int) -> MapSnapshot {
    let flows = lines.compactMap(\.flow)
    let lost = lines.compactMap(\.lostEvents).map(\.count).reduce(0, +)
    return MapSnapshot(
      graph: ServiceGraph.build(flows),
      flows: flows.suffix(max(rows, 0)).reversed().map(FlowRow.init),
      matched: flows.count, lost: lost == 0 ? nil : lost)
  }
}

/// One line of the page's flow table: the columns of `junctionctl observe`'s compact line.
public struct FlowRow: Codable, Equatable, Sendable {
  /// "Dec  6 03:08:02.123" (UTC), as observe prints it.
  public var time: String
  /// "NS/POD:PORT" or "IP:PORT", in the packet's direction.
  public var source: String
  public var destination: String
  /// The Service asked for (or answering, for a reply): "NS/NAME".
  public var service: String?
  /// The trace point, or the drop reason for a drop.
  public var type: String
  public var verdict: String
  /// "SYN, ACK" for TCP; else the protocol.
  public var summary: String
  /// "->", "<-" (a reply) or "<>" (not known).
  public var arrow: String

  public init(_ flow: Flow) {
    time = FlowCompact.stampMilli(flow.time)
    source = Self.side(flow.source)
    destination = Self.side(flow.destination)
    service = (flow.destinationService ?? flow.sourceService).map { "\($0.namespace)/\($0.name)" }
    type = flow.type == "drop" ? (flow.dropReason ?? "drop") : flow.tracePoint
    verdict = flow.verdict
    switch flow.proto {
    case "TCP": summary = "TCP Flags: " + (flow.tcpFlags ?? []).joined(separator: ", ")
    case let proto?: summary = proto
    case nil: summary = "protocol unknown"
    }
    switch flow.isReply {
    case true?: arrow = "<-"
    case false?: arrow = "->"
    case nil: arrow = "<>"
    }
  }

  static func side(_ peer: FlowPeer) -> String {
    let port = peer.port.map { ":\($0)" } ?? ""
    if let namespace = peer.namespace, let name = peer.podName {
      return "\(namespace)/\(name)\(port)"
    }
    // IPv6 with a port: "[fd00::5]:80", as `junctionctl observe` prints it.
    return peer.ip.contains(":") && peer.port != nil ? "[\(peer.ip)]\(port)" : peer.ip + port
  }
}
