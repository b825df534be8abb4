import AgentAPI
import FlowPipeline
import Foundation
import XCTest

/// The direct NDJSON writer the agent streams flows with gives what JSONEncoder gave
/// (the shape clients and tests parse): the same bytes for ordinary flows, and the same
/// decoded lines for strings that need escaping.
final class FlowNDJSONTests: XCTestCase {
  private func encoded(_ lines: [FlowsLine]) -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    var bytes: [UInt8] = []
    for line in lines {
      bytes += (try? encoder.encode(line)).map(Array.init) ?? []
      bytes.append(UInt8(ascii: "\n"))
    }
    return bytes
  }

  private var varied: [FlowsLine] {
    let full = Flow(
      time: "2026-12-06T03:08:02.123456789Z", nodeName: "node-1", type: "trace",
      tracePoint: "from-netdev", verdict: "TRANSLATED", dropReason: "no backend",
      dropReasonCode: 3, proto: "TCP",
      source: FlowPeer(
        ip: "10.0.1.5", port: 40000, namespace: "default", podName: "client",
        labels: ["app=client", "io.k8s/tier=front"]),
      destination: FlowPeer(ip: "10.0.2.11", port: 8080, namespace: "droids", podName: "r2d2"),
      destinationService: FlowService(namespace: "droids", name: "web"),
      sourceService: FlowService(namespace: "kube-system", name: "dns"),
      original: "10.96.0.10:80", tcpFlags: ["SYN", "ACK"], isReply: false, newConnection: true,
      trafficDirection: "egress", interfaceIndex: 12, northSouth: "snat",
      snat: "192.168.1.2:32768", localRedirect: true)
    let bare = Flow(
      time: "2026-12-06T03:08:02.000000000Z", nodeName: "n", type: "drop",
      tracePoint: "to-endpoint", verdict: "DROPPED", proto: nil,
      source: FlowPeer(ip: "10.0.0.1"), destination: FlowPeer(ip: "10.0.0.2", labels: []),
      tcpFlags: [], isReply: nil, newConnection: false)
    return [
      FlowsLine(flow: full), FlowsLine(flow: bare),
      FlowsLine(lostEvents: LostEvents(source: "follower", count: UInt64.max)),
      FlowsLine(
        flow: full, lostEvents: LostEvents(source: "datapath-ring", count: 0)),
      FlowsLine(),
    ]
  }

  func testOrdinaryFlowsEncodeToJSONEncodersBytes() {
    let lines = varied
    XCTAssertEqual(
      String(decoding: FlowNDJSON.lines(lines), as: UTF8.self),
      String(decoding: encoded(lines), as: UTF8.self))
  }

  func testStringsThatNeedEscapingDecodeToTheSameFlow() throws {
    var flow = try XCTUnwrap(varied[0].flow)
    flow.nodeName = "quote\" back\\ slash/ tab\t nl\n cr\r bell\u{07} nul\u{00} é ☃ 🚀"
    flow.source.labels = ["k=\u{1F}v", "ü=ö"]
    let lines = [FlowsLine(flow: flow)]
    let ours = FlowNDJSON.lines(lines)
    XCTAssertEqual(ours.last, UInt8(ascii: "\n"))
    XCTAssertEqual(ours.filter { $0 == UInt8(ascii: "\n") }.count, 1, "one line per flow")
    let decoded = try JSONDecoder().decode(FlowsLine.self, from: Data(ours.dropLast()))
    XCTAssertEqual(decoded, lines[0])
    XCTAssertEqual(
      String(decoding: ours, as: UTF8.self), String(decoding: encoded(lines), as: UTF8.self))
  }
}
