import AgentAPI
import Foundation
import XCTest

/// GET /v1/services' direct writer gives JSONEncoder's bytes (the shape junctionctl and
/// scripts parse): every optional present and absent, no backend, and strings to escape.
final class ServiceStatusJSONTests: XCTestCase {
  private func encoded(_ statuses: [ServiceStatus]) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try encoder.encode(statuses), as: UTF8.self) + "\n"
  }

  private var varied: [ServiceStatus] {
    [
      ServiceStatus(
        id: 7, frontend: "192.168.1.2:30080/TCP", type: "NodePort",
        service: "shop/front", portName: "http",
        backends: [
          .init(id: 1, address: "10.244.1.5:8080/TCP", state: "active", local: true),
          .init(id: 42, address: "[fd00:10::5]:8080/TCP", state: "terminating", local: false),
          .init(id: UInt32.max, address: "10.244.2.9:8080/TCP", state: "excluded"),
        ],
        affinityTimeout: 10800, algorithm: "maglev", mode: "DSR", trafficPolicy: "Local",
        proxyPort: 15001),
      ServiceStatus(
        id: 1, frontend: "10.96.0.10:53/UDP", type: "ClusterIP", service: "kube-system/kube-dns",
        portName: "", backends: [], affinityTimeout: nil, algorithm: "random"),
      ServiceStatus(
        id: 65535, frontend: "10.96.0.1:443/TCP", type: "ClusterIP",
        service: "odd/quote\" back\\ slash/ tab\t nl\n ctl\u{01} é ☃", portName: "p/1",
        backends: [.init(id: 3, address: "10.0.0.1:443/TCP", state: "not-preferred")],
        affinityTimeout: 0, algorithm: "random", trafficPolicy: "Cluster"),
    ]
  }

  func testTheListingIsJSONEncodersBytes() throws {
    for statuses in [varied, [], [varied[1]]] {
      XCTAssertEqual(
        String(decoding: ServiceStatus.jsonArray(statuses), as: UTF8.self), try encoded(statuses))
    }
  }

  func testTheListingDecodesBackToTheStatuses() throws {
    let bytes = ServiceStatus.jsonArray(varied)
    XCTAssertEqual(try JSONDecoder().decode([ServiceStatus].self, from: Data(bytes)), varied)
  }
}
