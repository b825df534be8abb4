import AgentAPI
import FlowPipeline
import FoundationEssentials
import XCTest

@testable import ServiceMap

/// Flows in the shapes the agent names them (FlowEnrichment): a connection to a Service
/// seen leaving the client (translated), arriving at the backend (no Service known there),
/// the backend's reply translated back, a drop for want of backends.
final class ServiceGraphTests: XCTestCase {
  private let client = FlowPeer(
    ip: "10.0.0.2", port: 40000, namespace: "default", podName: "client")
  private let backend = FlowPeer(ip: "10.0.0.3", port: 8080, namespace: "droids", podName: "r2d2")
  private let droids = FlowService(namespace: "default", name: "droids")

  private func flow(
    _ source: FlowPeer, _ destination: FlowPeer, verdict: String = "FORWARDED",
    type: String = "trace", point: String = "from-endpoint", to service: FlowService? = nil,
    from sourceService: FlowService? = nil, original: String? = nil, reply: Bool? = false,
    flags: [String] = ["SYN"], time: String = "2026-12-06T03:08:02.123456789Z"
  ) -> Flow {
    Flow(
      time: time, nodeName: "node1", type: type, tracePoint: point, verdict: verdict,
      dropReason: type == "drop" ? "Service backend not found" : nil,
      dropReasonCode: type == "drop" ? 5 : nil, proto: "TCP", source: source,
      destination: destination, destinationService: service, sourceService: sourceService,
      original: original, tcpFlags: flags, isReply: reply, newConnection: flags == ["SYN"])
  }

  private var connection: [Flow] {
    [
      flow(client, backend, to: droids, original: "10.96.27.10:80"),
      flow(client, backend, point: "to-endpoint"),
      flow(
        backend, client, from: droids, original: "10.96.27.10:80", reply: true,
        flags: ["SYN", "ACK"]),
      flow(client, backend, to: droids, original: "10.96.27.10:80", flags: ["FIN", "ACK"]),
      // The backend's FIN leaving it: the datapath does not know it is a reply.
      flow(backend, client, reply: nil, flags: ["FIN", "ACK"]),
    ]
  }

  func testAConnectionToAServiceIsClientToServiceToBackendWithEveryPacketOnBothHops() {
    let graph = ServiceGraph.build(connection)
    XCTAssertEqual(
      graph.nodes.map(\.id), ["pod:default/client", "pod:droids/r2d2", "service:default/droids"])
    XCTAssertEqual(graph.nodes.map(\.kind), [.pod, .pod, .service])
    XCTAssertEqual(graph.nodes.map(\.label), ["default/client", "droids/r2d2", "default/droids"])
    XCTAssertEqual(
      graph.edges,
      [
        ServiceGraph.Edge(
          from: "pod:default/client", to: "service:default/droids", verdicts: ["FORWARDED": 5],
          ports: ["80/TCP"]),
        ServiceGraph.Edge(
          from: "service:default/droids", to: "pod:droids/r2d2", verdicts: ["FORWARDED": 5],
          ports: ["8080/TCP"]),
      ])
    XCTAssertEqual(graph.edges.map(\.total), [5, 5])
    XCTAssertEqual(graph.edges.map(\.dropped), [0, 0])
  }

  func testADropForWantOfBackendsStopsAtTheServiceAndCountsAsDropped() {
    let empty = FlowService(namespace: "default", name: "empty")
    let frontend = FlowPeer(ip: "10.96.27.11", port: 80)
    let drop = flow(client, frontend, verdict: "DROPPED", type: "drop", to: empty, reply: nil)
    let graph = ServiceGraph.build(connection + [drop, drop])
    XCTAssertFalse(graph.nodes.contains { $0.id == "ip:10.96.27.11" }, "\(graph.nodes)")
    let edge = graph.edges.first { $0.to == "service:default/empty" }
    XCTAssertEqual(edge?.from, "pod:default/client")
    XCTAssertEqual(edge?.verdicts, ["DROPPED": 2])
    XCTAssertEqual(edge?.ports, ["80/TCP"])
    XCTAssertEqual(edge?.dropped, edge?.total)
    XCTAssertFalse(graph.edges.contains { $0.from == "service:default/empty" })
  }

  func testFlowsWithoutAServiceAreOneEdgeAndUnknownAddressesAreIPNodes() {
    let outside = FlowPeer(ip: "192.0.2.7", port: 443)
    let graph = ServiceGraph.build([
      flow(client, backend, point: "to-endpoint"),
      flow(backend, outside, verdict: "DROPPED", type: "drop"),
      flow(backend, outside),
    ])
    XCTAssertEqual(
      graph.edges,
      [
        ServiceGraph.Edge(
          from: "pod:default/client", to: "pod:droids/r2d2", verdicts: ["FORWARDED": 1],
          ports: ["8080/TCP"]),
        ServiceGraph.Edge(
          from: "pod:droids/r2d2", to: "ip:192.0.2.7", verdicts: ["DROPPED": 1, "FORWARDED": 1],
          ports: ["443/TCP"]),
      ])
    XCTAssertEqual(graph.nodes.first { $0.id == "ip:192.0.2.7" }?.kind, .ip)
    XCTAssertEqual(graph.nodes.first { $0.id == "ip:192.0.2.7" }?.label, "192.0.2.7")
  }

  func testTheSameFlowsInAnyOrderGiveTheSameGraph() {
    let flows = connection + [flow(client, FlowPeer(ip: "10.96.27.11", port: 80), to: droids)]
    XCTAssertEqual(ServiceGraph.build(flows), ServiceGraph.build(flows.reversed()))
    XCTAssertEqual(ServiceGraph.build([]), ServiceGraph())
  }

  func testEdgesCarryTheirTotalAndDroppedInJSONAndDecodeBack() throws {
    let graph = ServiceGraph.build(connection)
    let data = try JSONEncoder().encode(graph)
    let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    let edges = try XCTUnwrap(object["edges"] as? [[String: Any]])
    XCTAssertEqual(edges.first?["total"] as? Int, 5)
    XCTAssertEqual(edges.first?["dropped"] as? Int, 0)
    XCTAssertEqual(try JSONDecoder().decode(ServiceGraph.self, from: data), graph)
  }
}

final class MapSnapshotTests: XCTestCase {
  private func flow(_ second: Int, verdict: String = "FORWARDED", reply: Bool? = false) -> Flow {
    Flow(
      time: "2026-12-06T03:08:0\(second).000000000Z", nodeName: "node1", type: "trace",
      tracePoint: "to-endpoint", verdict: verdict, proto: "TCP",
      source: FlowPeer(ip: "10.0.0.2", port: 40000, namespace: "default", podName: "client"),
      destination: FlowPeer(ip: "10.0.0.9", port: 8080),
      destinationService: FlowService(namespace: "default", name: "droids"),
      tcpFlags: ["SYN"], isReply: reply, newConnection: true)
  }

  func testTheTableIsTheNewestRowsFirstAndTheGraphCountsEveryMatchedFlow() {
    let lines =
      (1...5).map { FlowsLine(flow: flow($0)) } + [
        FlowsLine(lostEvents: LostEvents(source: "datapath-ring", count: 3))
      ]
    let snapshot = MapSnapshot.build(lines, rows: 2)
    XCTAssertEqual(snapshot.matched, 5)
    XCTAssertEqual(snapshot.lost, 3)
    XCTAssertEqual(snapshot.flows.map(\.time), ["Dec  6 03:08:05.000", "Dec  6 03:08:04.000"])
    XCTAssertEqual(snapshot.graph.edges.map(\.total), [5])
    XCTAssertEqual(MapSnapshot.build(lines, rows: 0).flows, [])
    XCTAssertNil(MapSnapshot.build([FlowsLine(flow: flow(1))], rows: 1).lost)
  }

  func testARowHasObservesColumns() {
    let row = FlowRow(flow(1, reply: nil))
    XCTAssertEqual(row.source, "default/client:40000")
    XCTAssertEqual(row.destination, "10.0.0.9:8080")
    XCTAssertEqual(row.service, "default/droids")
    XCTAssertEqual(row.type, "to-endpoint")
    XCTAssertEqual(row.verdict, "FORWARDED")
    XCTAssertEqual(row.summary, "TCP Flags: SYN")
    XCTAssertEqual(row.arrow, "<>")
    XCTAssertEqual(FlowRow(flow(1, reply: true)).arrow, "<-")
  }

  func testAnIPv6AddressWithAPortIsBracketedAsObserveShowsIt() {
    var ipv6 = flow(1)
    ipv6.destination = FlowPeer(ip: "fd00:10:244:2::b", port: 8080)
    ipv6.source = FlowPeer(ip: "::")
    let row = FlowRow(ipv6)
    XCTAssertEqual(row.destination, "[fd00:10:244:2::b]:8080")
    XCTAssertEqual(row.source, "::", "no port: bare")
  }
}

final class MapRequestTests: XCTestCase {
  func testFiltersGoToTheAgentAsObserveWouldSendThemAndRowsStayHere() throws {
    let request = try MapRequest.parse("to-service=default%2Fdroids&verdict=DROPPED&rows=5")
    XCTAssertEqual(request.rows, 5)
    XCTAssertEqual(request.query.filter.toService, "default/droids")
    XCTAssertEqual(request.agentPath, "/v1/flows?verdict=DROPPED&to-service=default/droids")
    XCTAssertEqual(try MapRequest.parse("").agentPath, "/v1/flows")
    XCTAssertEqual(try MapRequest.parse("").rows, MapRequest.defaultRows)
  }

  func testWrongFiltersRowsAndFollowAreRefusedInWords() {
    for (query, words) in [
      ("verdict=MAYBE", "MAYBE"), ("rows=x", "rows"), ("rows=100000", "rows"),
      ("follow=true", "follow"), ("colour=red", "colour"),
    ] {
      XCTAssertThrowsError(try MapRequest.parse(query), query) { error in
        XCTAssertTrue("\(error)".contains(words), "\(query): \(error)")
      }
    }
  }
}

final class ServiceMapPageTests: XCTestCase {
  func testThePageLoadsNothingFromElsewhere() {
    let html = ServiceMapPage.html
    // The SVG namespace is a name, not a fetch.
    let withoutNamespace = html.replacing("http://www.w3.org/2000/svg", with: "")
    XCTAssertFalse(withoutNamespace.contains("http://"))
    XCTAssertFalse(withoutNamespace.contains("https://"))
    XCTAssertFalse(html.contains("<link"))
    XCTAssertFalse(html.contains("src="))
    XCTAssertTrue(html.contains("const REFRESH_MS = \(ServiceMapPage.refreshMilliseconds);"))
  }

  func testEveryFilterFieldIsAParameterTheAgentTakes() throws {
    let names = ServiceMapPage.html.matches(of: #/<(?:input|select) name="([a-z-]+)"/#).map {
      String($0.output.1)
    }
    XCTAssertEqual(names.count, 16, "\(names)")
    for name in names {
      let value =
        switch name {
        case "port", "to-port", "rows": "80"
        case "verdict": "DROPPED"
        case "type": "drop"
        case "protocol": "tcp"
        case "since": "2026-12-06T03:08:02Z"
        case "from-ip", "to-ip", "ip": "10.0.0.0/8"
        default: "default/x"
        }
      XCTAssertNoThrow(try MapRequest.parse("\(name)=\(value)"), name)
    }
  }
}
