import CNIKit
import XCTest

@testable import ServiceCore

/// A slice keeps its endpoints packed; what comes out must be what went in, field by field.
final class PackedEndpointsTests: XCTestCase {
  private func address(_ text: String) -> IPAddress { IPAddress(text)! }

  func testEveryFieldComesBack() {
    let long = String(repeating: "x", count: 300)  // a length over one LEB128 byte
    let endpoints: [Endpoint] = [
      Endpoint(addresses: [address("10.0.0.1")]),
      Endpoint(
        addresses: [address("fd00::1"), address("fd00::2")], ready: false, serving: true,
        terminating: true, nodeName: "node-1", zone: "zone-a", hintZones: ["zone-a", "zone-b"],
        hintNodes: ["node-1"], target: EndpointTarget(kind: "Pod", namespace: "shop", name: long)),
      // Empty strings are not absent ones.
      Endpoint(addresses: [], ready: false, serving: false, nodeName: "", zone: ""),
      Endpoint(
        addresses: [address("10.0.0.2")], target: EndpointTarget(kind: "", namespace: "", name: "ü")
      ),
    ]
    XCTAssertEqual(PackedEndpoints(endpoints).endpoints, endpoints)
    XCTAssertEqual(PackedEndpoints([]).endpoints, [])
    // 200 endpoints: a count over one LEB128 byte.
    let many = (0..<200).map {
      Endpoint(addresses: [address("10.1.0.\($0 % 250)")], nodeName: "n\($0)")
    }
    XCTAssertEqual(PackedEndpoints(many).endpoints, many)
  }

  func testSlicesCompareByTheirEndpoints() {
    let meta = ObjectMeta(name: "web-abc", namespace: "shop")
    let one = EndpointSlice(meta: meta, endpoints: [Endpoint(addresses: [address("10.0.0.1")])])
    var other = one
    XCTAssertEqual(one, other)
    other.endpoints[0].terminating = true
    XCTAssertNotEqual(one, other)
    XCTAssertTrue(other.endpoints[0].terminating)
    other.endpoints[0].terminating = false
    XCTAssertEqual(one, other)
    XCTAssertEqual(Set([one, other]).count, 1)
  }

  /// What it is for: 10 endpoints without a targetRef take well under their former slots.
  func testTenEndpointsTakeAFewBytesEach() {
    let endpoints = (1...10).map {
      Endpoint(addresses: [address("10.128.0.\($0)")], nodeName: "node-\($0 % 3)")
    }
    XCTAssertLessThan(PackedEndpoints(endpoints).bytes.count, 10 * 20)
  }
}
