import XCTest

@testable import AgentCore

/// Which per-endpoint counter entries the agent's sweep removes.
final class CounterSweepTests: XCTestCase {
  func testAnEntryOfNoEndpointAndNoLinkIsStale() {
    XCTAssertEqual(
      CounterSweep.staleKeys(
        counterKeys: [7, 12, 40], registeredIfindexes: [12], linkIndexes: [1, 12]),
      [7, 40])
  }

  func testARegisteredEndpointKeepsItsEntryEvenWhenItsLinkIsGone() {
    // DEL removes the link before deregistering; the deregistration forgets the entry.
    XCTAssertEqual(
      CounterSweep.staleKeys(counterKeys: [12], registeredIfindexes: [12], linkIndexes: []), [])
  }

  func testALinkNotRegisteredYetKeepsItsEntry() {
    // An ADD between attaching the programs and registering the endpoint.
    XCTAssertEqual(
      CounterSweep.staleKeys(counterKeys: [30], registeredIfindexes: [], linkIndexes: [30]), [])
  }

  func testAKeySeenTwiceInTheWalkIsReportedOnce() {
    XCTAssertEqual(
      CounterSweep.staleKeys(counterKeys: [5, 9, 5], registeredIfindexes: [], linkIndexes: []),
      [5, 9])
  }

  func testNothingToSweep() {
    XCTAssertEqual(
      CounterSweep.staleKeys(counterKeys: [], registeredIfindexes: [1], linkIndexes: [1]), [])
  }
}
