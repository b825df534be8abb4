import AgentAPI
import AgentCore
import XCTest

final class DatapathNamesTests: XCTestCase {
  /// Every reason the datapath can count has words (1...14 today; 0 is "not dropped").
  func testEveryDropReasonHasWords() {
    for code in UInt32(1)...14 {
      XCTAssertNotNil(DatapathNames.dropReasons[code], "reason \(code) has no text")
    }
    XCTAssertNil(DatapathNames.dropReasons[0])
    XCTAssertEqual(DatapathNames.dropReason(5), "Service backend not found")
    XCTAssertEqual(DatapathNames.dropReason(12), "FIB lookup failed")
    XCTAssertEqual(DatapathNames.dropReason(999), "reason 999")
    XCTAssertEqual(Set(DatapathNames.dropReasons.values).count, DatapathNames.dropReasons.count)
  }

  func testDirectionsAreHubblesTracePoints() {
    XCTAssertEqual(
      (0...4).map { DatapathNames.direction($0) },
      ["from-endpoint", "to-endpoint", "from-netdev", "to-netdev", "sock"])
    XCTAssertEqual(DatapathNames.direction(9), "direction 9")
  }

  func testDropDumpIsNamedSortedAndCountsARepeatedKeyOnce() {
    let raw = [
      DatapathNames.RawDrop(reason: 12, direction: 2, packets: 3, bytes: 180),
      DatapathNames.RawDrop(reason: 5, direction: 1, packets: 1, bytes: 60),
      DatapathNames.RawDrop(reason: 5, direction: 0, packets: 2, bytes: 120),
      DatapathNames.RawDrop(reason: 12, direction: 2, packets: 3, bytes: 180),
    ]
    XCTAssertEqual(
      DatapathNames.dropDump(raw).drops,
      [
        DropCounter(
          reason: "Service backend not found", reasonCode: 5, direction: "from-endpoint",
          packets: 2, bytes: 120),
        DropCounter(
          reason: "Service backend not found", reasonCode: 5, direction: "to-endpoint",
          packets: 1, bytes: 60),
        DropCounter(
          reason: "FIB lookup failed", reasonCode: 12, direction: "from-netdev", packets: 3,
          bytes: 180),
      ])
  }
}
