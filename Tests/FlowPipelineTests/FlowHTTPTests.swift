import AgentAPI
import FlowPipeline
import XCTest

/// L7 flows from Envoy's access log: a request and a response record, shown Hubble-style.
final class FlowHTTPTests: XCTestCase {
  func testAnExchangeIsARequestAndAResponseWithStatusAndLatency() {
    let records = FlowRecord.httpExchange(
      startNanoseconds: 1_000_000_000, durationMilliseconds: 4, method: "GET",
      url: "http://echo:8080/foo", protocolName: "HTTP/1.1", status: 200,
      client: "10.0.1.5:40000", server: "10.96.0.10:8080")
    let flows = records.map { $0.flow(directory: FlowDirectory(), nodeName: "n") }
    XCTAssertEqual(flows.map(\.type), ["l7", "l7"])
    XCTAssertEqual(flows.map(\.tracePoint), ["http-request", "http-response"])
    XCTAssertEqual(flows[1].l7?.code, 200)
    XCTAssertEqual(flows[1].l7?.latencyNs, 4_000_000)
    XCTAssertEqual(flows[0].source.ip, "10.0.1.5")
    XCTAssertEqual(flows[0].destination.port, 8080)
    XCTAssertEqual(
      FlowCompact.line(flows[1]).split(separator: " ", maxSplits: 3).last,
      "10.0.1.5:40000 -> 10.96.0.10:8080 http-response FORWARDED (HTTP/1.1 200 4ms GET http://echo:8080/foo)"
    )
    var filter = FlowFilter()
    filter.type = "l7"
    XCTAssertNil(filter.problem())
  }
}
