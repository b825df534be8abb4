import AgentAPI
import XCTest

@testable import AgentCore

/// The plugin's requests per endpoint, ordered by when it issued them (see RequestOrder).
final class RequestOrderTests: XCTestCase {
  func testARequestIssuedBeforeAnAppliedOneIsStale() {
    var order = RequestOrder()
    XCTAssertFalse(order.isStale("c:eth0", issuedAt: 100), "nothing applied yet")
    order.applied("c:eth0", issuedAt: 200, now: 1)
    XCTAssertTrue(order.isStale("c:eth0", issuedAt: 100))
    XCTAssertFalse(order.isStale("c:eth0", issuedAt: 200), "the same reading is not older")
    XCTAssertFalse(order.isStale("c:eth0", issuedAt: 300))
    XCTAssertFalse(order.isStale("other:eth0", issuedAt: 100), "per endpoint")
  }

  func testRequestsWithoutAReadingTakeNoPart() {
    var order = RequestOrder()
    order.applied("c:eth0", issuedAt: 200, now: 1)
    XCTAssertFalse(order.isStale("c:eth0", issuedAt: nil))
    order.applied("c:eth0", issuedAt: nil, now: 2)
    XCTAssertTrue(order.isStale("c:eth0", issuedAt: 100), "a request without one moves nothing")
  }

  func testAnOlderAppliedRequestDoesNotMoveTheOrderBack() {
    var order = RequestOrder()
    order.applied("c:eth0", issuedAt: 300, now: 1)
    order.applied("c:eth0", issuedAt: 100, now: 2)
    XCTAssertTrue(order.isStale("c:eth0", issuedAt: 200))
  }

  func testEntriesOlderThanTheRetentionGoOncePastTheThreshold() {
    var order = RequestOrder()
    let second: UInt64 = 1_000_000_000
    let start: UInt64 = 1_000 * second
    order.applied("old:eth0", issuedAt: 5, now: start)
    // Past the threshold within the retention: a prune runs and keeps everything.
    let later = start + RequestOrder.retention - 1
    for index in 0..<RequestOrder.pruneThreshold {
      order.applied("c\(index):eth0", issuedAt: 5, now: later)
    }
    XCTAssertEqual(order.count, RequestOrder.pruneThreshold + 1)
    // Within a minute of that prune: none, however many come.
    order.applied("soon:eth0", issuedAt: 5, now: start + RequestOrder.retention + 1)
    XCTAssertEqual(order.count, RequestOrder.pruneThreshold + 2)
    // A minute on: the entry past the retention goes, the rest stay.
    order.applied("last:eth0", issuedAt: 5, now: later + 61 * second)
    XCTAssertEqual(order.count, RequestOrder.pruneThreshold + 2)
    XCTAssertFalse(order.isStale("old:eth0", issuedAt: 1), "forgotten")
    XCTAssertTrue(order.isStale("c0:eth0", issuedAt: 1))
  }

  func testTheHeaderIsADecimalNumberOrNothing() {
    XCTAssertEqual(IssuedAt.parse("123456789"), 123_456_789)
    XCTAssertEqual(IssuedAt.parse("18446744073709551615"), UInt64.max)
    for bad in [nil, "", "-1", "1e9", " 12", "0x10", "18446744073709551616", "١٢"] {
      XCTAssertNil(IssuedAt.parse(bad), "\(bad ?? "nil")")
    }
    XCTAssertGreaterThan(IssuedAt.now(), 0)
  }
}
