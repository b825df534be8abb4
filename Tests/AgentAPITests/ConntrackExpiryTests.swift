import AgentCore
import XCTest

/// The conntrack sweep's rule: an entry expires when idle past its protocol's lifetime, or
/// the close timeout once closing; the lifetimes are the datapath's (junction_abi.h).
final class ConntrackExpiryTests: XCTestCase {
  private let second: UInt64 = 1_000_000_000
  private let expiry = ConntrackExpiry.datapath
  private let tcp: UInt8 = 6
  private let udp: UInt8 = 17
  private let closing: UInt16 = 16  // JUNCTION_CT_F_CLOSING
  private let snat: UInt16 = 2  // JUNCTION_CT_F_SNAT

  func testLifetimesAreTheDatapathsSeconds() {
    XCTAssertEqual(expiry.closeTimeout, 10 * second)
    XCTAssertEqual(expiry.tcpLifetime, 21_600 * second)
    XCTAssertEqual(expiry.nonTCPLifetime, 60 * second)
  }

  func testOpenTCPLivesSixHoursIdle() {
    let seen: UInt64 = 1_000 * second
    XCTAssertFalse(
      expiry.isExpired(lastSeen: seen, flags: 0, proto: tcp, now: seen + 21_600 * second))
    XCTAssertTrue(
      expiry.isExpired(lastSeen: seen, flags: 0, proto: tcp, now: seen + 21_601 * second))
  }

  func testClosingTCPGoesAfterTheCloseTimeout() {
    let seen: UInt64 = 5 * second
    XCTAssertFalse(
      expiry.isExpired(lastSeen: seen, flags: closing, proto: tcp, now: seen + 9 * second))
    XCTAssertTrue(
      expiry.isExpired(lastSeen: seen, flags: closing | snat, proto: tcp, now: seen + 11 * second))
  }

  func testUDPGoesAfterAMinuteClosingFlagOrNot() {
    let seen: UInt64 = 0
    XCTAssertFalse(expiry.isExpired(lastSeen: seen, flags: 0, proto: udp, now: 59 * second))
    XCTAssertTrue(expiry.isExpired(lastSeen: seen, flags: 0, proto: udp, now: 61 * second))
    // Closing means nothing without TCP: UDP keeps its minute.
    XCTAssertFalse(expiry.isExpired(lastSeen: seen, flags: closing, proto: udp, now: 30 * second))
  }

  func testAnEntrySeenAfterNowIsNotExpired() {
    // Refreshed by a packet while the sweep ran: its last_seen is past the sweep's clock.
    XCTAssertFalse(expiry.isExpired(lastSeen: 100 * second, flags: closing, proto: tcp, now: 0))
  }
}
