import AgentCore
import XCTest

/// The conntrack and affinity entries the agent drops with a deregistered endpoint.
final class FlowPurgeTests: XCTestCase {
  /// 10.243.0.4 as the datapath's __be32 holds it, read on this (little-endian) host.
  private let pod: UInt32 = 0x0400_F30A
  private let backend: UInt32 = 0x0200_F30A
  private let vip: UInt32 = 0x0AFA_600A

  func testAddressesAreTheIPv4OnesInNetworkOrder() {
    XCTAssertEqual(FlowPurge.addresses(ofCIDRs: ["10.243.0.4/32"]), [pod])
    XCTAssertEqual(FlowPurge.addresses(ofCIDRs: ["10.243.0.4"]), [pod])
    XCTAssertEqual(
      FlowPurge.addresses(ofCIDRs: ["fd00::4/128", "10.243.0.4/16", "10.243.0.2/32"]),
      [pod, backend])
  }

  func testIPv6AddressesAreTheirSixteenBytes() {
    XCTAssertEqual(
      FlowPurge.addresses6(ofCIDRs: ["10.243.0.4/32", "fd00:10:244:1::5/128", "fd00::9", "x::y"]),
      [
        [0xfd, 0, 0, 0x10, 0x02, 0x44, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x05],
        [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x09],
      ])
  }

  func testUnreadableAddressesAreLeftOut() {
    XCTAssertEqual(
      FlowPurge.addresses(ofCIDRs: ["", "10.243.0/32", "10.243.0.256/32", "a.b.c.d", "1.2.3.4.5"]),
      [])
  }

  func testEitherEndOfTheKeyMakesTheEntryTheEndpoints() {
    // Service direction: the pod as the client.
    XCTAssertTrue(FlowPurge.isEndpoints(saddr: pod, daddr: vip, addresses: [pod]))
    // Reply direction: the backend answering the pod.
    XCTAssertTrue(FlowPurge.isEndpoints(saddr: backend, daddr: pod, addresses: [pod]))
    // Another pod's connection to the same backend stays.
    XCTAssertFalse(FlowPurge.isEndpoints(saddr: 0x0500_F30A, daddr: vip, addresses: [pod]))
    XCTAssertFalse(FlowPurge.isEndpoints(saddr: pod, daddr: vip, addresses: []))
  }
}
