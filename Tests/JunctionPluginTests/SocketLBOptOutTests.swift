import XCTest

@testable import JunctionPlugin

/// CNI_ARGS JUNCTION_SOCKET_LB: "false" opts a pod out of socket LB; anything else is the
/// default.
final class SocketLBOptOutTests: XCTestCase {
  func testOnlyFalseOptsOut() {
    XCTAssertEqual(SocketLBOptOut.socketLB("false"), false)
    XCTAssertEqual(SocketLBOptOut.socketLB("FALSE"), false)
    XCTAssertNil(SocketLBOptOut.socketLB("true"))
    XCTAssertNil(SocketLBOptOut.socketLB(nil))
    XCTAssertNil(SocketLBOptOut.socketLB(""))
  }
}
