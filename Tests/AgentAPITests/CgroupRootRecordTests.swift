import AgentCore
import XCTest

final class CgroupRootRecordTests: XCTestCase {
  func testARecordSurvivesTheRoundTripAndGarbageClaimsNothing() {
    let record = CgroupRootRecord(
      path: "/run/junction/cgroupv2", mounted: true,
      createdDirectories: ["/run/junction", "/run/junction/cgroupv2"])
    XCTAssertEqual(CgroupRootRecord.decode(record.encoded()), record)
    XCTAssertTrue(record.ownsSomething)
    XCTAssertFalse(
      CgroupRootRecord(path: "/x", mounted: false, createdDirectories: []).ownsSomething)
    XCTAssertNil(CgroupRootRecord.decode(Array("{\"path\": \"/x\"".utf8)))
    XCTAssertNil(CgroupRootRecord.decode([]))
  }
}
