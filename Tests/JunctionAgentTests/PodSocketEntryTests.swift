import AgentAPI
import DatapathABI
import XCTest

@testable import JunctionAgent

/// What jnc_pod_netns holds for an endpoint: its first address of each family and the
/// socket LB opt-out.
final class PodSocketEntryTests: XCTestCase {
  private func spec(_ ips: [String], socketLB: Bool? = nil) -> EndpointSpec {
    EndpointSpec(
      containerID: "c1", ifname: "eth0", network: "pods", netns: "/var/run/netns/p1",
      hostInterface: "jx1", hostIfindex: 3, ips: ips, socketLB: socketLB)
  }

  func testAddressesAndFlags() {
    let entry = PodSocketEntry.make(spec(["fd00::5/128", "10.244.1.5/32", "10.244.1.6/32"]))
    XCTAssertEqual(withUnsafeBytes(of: entry.address4) { Array($0) }, [10, 244, 1, 5])
    XCTAssertEqual(
      withUnsafeBytes(of: entry.address6) { Array($0) },
      [0xfd, 0] + Array(repeating: 0, count: 13) + [5])
    XCTAssertEqual(entry.flags, 0)
    XCTAssertEqual(PodSocketEntry.make(spec(["10.0.0.1/32"], socketLB: true)).flags, 0)
    XCTAssertEqual(
      PodSocketEntry.make(spec(["10.0.0.1/32"], socketLB: false)).flags,
      UInt32(JUNCTION_POD_NETNS_F_NO_SOCKET_LB))
  }

  func testSameAddress() {
    let v4 = PodSocketEntry.make(spec(["10.0.0.1/32"]))
    let v6 = PodSocketEntry.make(spec(["fd00::1/128"]))
    let dual = PodSocketEntry.make(spec(["10.0.0.1/32", "fd00::1/128"]))
    XCTAssertTrue(PodSocketEntry.sameAddress(v4, dual))
    XCTAssertTrue(PodSocketEntry.sameAddress(v6, dual))
    XCTAssertFalse(PodSocketEntry.sameAddress(v4, v6))
    XCTAssertFalse(PodSocketEntry.sameAddress(v4, PodSocketEntry.make(spec(["10.0.0.2/32"]))))
  }
}
