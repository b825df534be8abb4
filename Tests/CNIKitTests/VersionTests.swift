import CNIKit
import XCTest

final class VersionTests: XCTestCase {
  private let hostLocalVersions = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"]

  func testParsesAndPrintsXYZ() throws {
    let version = try XCTUnwrap(CNIVersion("0.3.1"))
    XCTAssertEqual(version.major, 0)
    XCTAssertEqual(version.minor, 3)
    XCTAssertEqual(version.patch, 1)
    XCTAssertEqual(version.description, "0.3.1")
    XCTAssertEqual(CNIVersion("1.1.0"), .v110)
    XCTAssertEqual(CNIVersion("10.20.30")?.description, "10.20.30")
  }

  func testRejectsAnythingButThreeNonNegativeNumbers() {
    for text in ["", "1", "1.0", "1.0.0.0", "1..0", "a.b.c", "1.0.x", "-1.0.0", "1.0.0 ", "v1.0.0"]
    {
      XCTAssertNil(CNIVersion(text), text)
    }
  }

  func testOrdering() {
    let ascending = [
      "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "0.10.0", "1.0.0", "1.1.0", "2.0.0",
    ]
    .compactMap(CNIVersion.init)
    XCTAssertEqual(ascending.count, 9)
    for (lower, higher) in zip(ascending, ascending.dropFirst()) {
      XCTAssertLessThan(lower, higher)
      XCTAssertFalse(higher < lower)
    }
    XCTAssertEqual(ascending.shuffled().sorted(), ascending)
    XCTAssertLessThan(CNIVersion(0, 9, 9), CNIVersion(0, 10, 0), "numeric, not textual")
  }

  func testSupportedVersions() {
    XCTAssertEqual(
      CNIVersion.supported.map(\.description), ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    XCTAssertEqual(CNIVersion.latest, .v110)
    XCTAssertTrue(CNIVersion.v030.isSupported)
    XCTAssertFalse(CNIVersion(0, 2, 0).isSupported)
    XCTAssertFalse(CNIVersion(1, 2, 0).isSupported)
  }

  func testMinimumVersionPerCommand() {
    XCTAssertEqual(CNIVersion.minimum(for: .check), .v040)
    XCTAssertEqual(CNIVersion.minimum(for: .gc), .v110)
    XCTAssertEqual(CNIVersion.minimum(for: .status), .v110)
    XCTAssertEqual(CNIVersion.minimum(for: .add), .v030)
    XCTAssertEqual(CNIVersion.minimum(for: .del), .v030)
    XCTAssertEqual(CNIVersion.minimum(for: .version), .v030)
  }

  func testResultShapePerVersion() {
    XCTAssertTrue(CNIVersion.v040.resultHasIPVersionField)
    XCTAssertFalse(CNIVersion.v100.resultHasIPVersionField)
    XCTAssertFalse(CNIVersion.v100.resultHasExtendedFields)
    XCTAssertTrue(CNIVersion.v110.resultHasExtendedFields)
  }

  func testSelectPicksTheHighestSupportedOffer() {
    XCTAssertEqual(
      CNIVersion.select(cniVersion: "1.0.0", cniVersions: ["0.4.0", "1.1.0", "2.0.0"]), .v110)
    XCTAssertEqual(CNIVersion.select(cniVersion: "0.4.0", cniVersions: []), .v040)
    XCTAssertEqual(CNIVersion.select(cniVersion: nil, cniVersions: ["0.3.1", "0.2.0"]), .v031)
    XCTAssertEqual(
      CNIVersion.select(cniVersion: "garbage", cniVersions: ["1.0.0", "nonsense"]), .v100)
  }

  func testSelectWithNothingInCommonIsNil() {
    XCTAssertNil(CNIVersion.select(cniVersion: "0.2.0", cniVersions: ["0.1.0", "9.9.9"]))
    XCTAssertNil(CNIVersion.select(cniVersion: nil, cniVersions: []))
  }

  func testSelectHonoursAnExplicitSupportedList() {
    XCTAssertEqual(
      CNIVersion.select(
        cniVersion: "1.1.0", cniVersions: ["1.0.0"], supported: [.v040, .v100]),
      .v100)
  }

  func testNegotiateWithHostLocal() {
    XCTAssertEqual(CNIVersion.negotiate(ceiling: .v110, peer: hostLocalVersions), .v100)
    XCTAssertEqual(CNIVersion.negotiate(ceiling: .v100, peer: hostLocalVersions), .v100)
    XCTAssertEqual(CNIVersion.negotiate(ceiling: .v040, peer: hostLocalVersions), .v040)
    XCTAssertEqual(CNIVersion.negotiate(ceiling: .v030, peer: hostLocalVersions), .v030)
  }

  func testNegotiateSkipsVersionsJunctionDoesNotSpeak() {
    XCTAssertNil(CNIVersion.negotiate(ceiling: .v110, peer: ["0.1.0", "0.2.0"]))
    XCTAssertNil(CNIVersion.negotiate(ceiling: .v110, peer: []))
    XCTAssertEqual(CNIVersion.negotiate(ceiling: .v110, peer: ["1.1.0", "1.2.0", "x"]), .v110)
  }
}
