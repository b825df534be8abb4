import CNIKit
import CNITestSupport
import JunctionPlugin
import XCTest

// LinkInfo and RouteInfo have only internal memberwise initialisers.
@testable import NetKit

final class CheckComparisonTests: XCTestCase {
  private let netns = "/var/run/netns/pod1"
  private let attachment = Attachment(containerID: "abc123", ifname: "eth0")
  private var hostName: String { HostInterface.name(for: attachment) }
  private var hostAlias: String { HostInterface.alias(network: "pods", attachment: attachment) }
  private let podIndex: Int32 = 2
  private let hostIndex: Int32 = 17

  private var request: CNIRequest {
    get throws {
      try CNIRequest.from(environment: [
        "CNI_COMMAND": "CHECK", "CNI_CONTAINERID": attachment.containerID, "CNI_NETNS": netns,
        "CNI_IFNAME": attachment.ifname,
      ])
    }
  }

  /// What ADD returned for a dual-stack pod with the link-local gateways.
  private var expected: CNIResult {
    CNIResult(
      interfaces: [
        .init(name: hostName, mac: "02:00:00:00:00:01", mtu: 1500),
        .init(name: "eth0", mac: "02:00:00:00:00:02", mtu: 1500, sandbox: netns),
      ],
      ips: [
        .init(address: prefix("10.1.0.5/32"), gateway: address("169.254.1.1"), interface: 1),
        .init(address: prefix("fd00::5/128"), gateway: address("fe80::1"), interface: 1),
      ],
      routes: [
        .init(dst: prefix("0.0.0.0/0"), gw: address("169.254.1.1")),
        .init(dst: prefix("::/0"), gw: address("fe80::1")),
      ])
  }

  private func route(_ destination: String, via gateway: String? = nil, dev index: Int32)
    -> RouteInfo
  {
    RouteInfo(
      destination: prefix(destination), gateway: gateway.map { address($0) }, interfaceIndex: index,
      scope: gateway == nil ? 253 : 0, table: 254)
  }

  /// The kernel exactly as ADD left it, plus the unrelated things a real node has.
  private var clean: ObservedAttachment {
    ObservedAttachment(
      podLink: LinkInfo(
        index: podIndex, name: "eth0", mac: MACAddress("02:00:00:00:00:02"), mtu: 1500, isUp: true,
        alias: nil, kind: "veth"),
      podAddresses: [prefix("10.1.0.5/32"), prefix("fd00::5/128"), prefix("fe80::2/64")],
      podRoutes: [
        route("169.254.1.1/32", dev: podIndex),
        route("0.0.0.0/0", via: "169.254.1.1", dev: podIndex),
        route("fe80::/64", dev: podIndex),
        route("::/0", via: "fe80::1", dev: podIndex),
      ],
      hostLink: LinkInfo(
        index: hostIndex, name: hostName, mac: MACAddress("02:00:00:00:00:01"), mtu: 1500,
        isUp: true, alias: hostAlias, kind: "veth"),
      hostRoutes: [
        route("10.0.0.0/8", via: "192.168.1.1", dev: 1),
        route("10.1.0.5/32", dev: hostIndex),
        route("fd00::5/128", dev: hostIndex),
      ])
  }

  private func differences(
    _ observed: ObservedAttachment, expected: CNIResult? = nil, alias: String? = nil
  ) throws -> [String] {
    CheckComparison.differences(
      expected: expected ?? self.expected, request: try request, hostName: hostName,
      hostAlias: alias ?? hostAlias, observed: observed)
  }

  /// Exactly one difference, which mentions every string in `needles`.
  private func assertOneDifference(
    _ problems: [String], mentioning needles: [String], file: StaticString = #filePath,
    line: UInt = #line
  ) {
    XCTAssertEqual(problems.count, 1, "\(problems)", file: file, line: line)
    for needle in needles {
      XCTAssertTrue(
        problems.first?.contains(needle) == true, "\(problems) does not mention \(needle)",
        file: file, line: line)
    }
  }

  // MARK: - Clean

  func testCleanObservationHasNoDifferences() throws {
    XCTAssertEqual(try differences(clean), [])
  }

  func testMACsCompareCaseInsensitively() throws {
    var expected = self.expected
    expected.interfaces[0].mac = "02:00:00:00:00:01".uppercased()
    expected.interfaces[1].mac = "02:00:00:00:00:02".uppercased()
    XCTAssertEqual(try differences(clean, expected: expected), [])
  }

  func testRoutesWithoutGatewayUseTheIPsGateway() throws {
    // A result whose routes leave gw out (allowed by the spec): the IP's gateway applies.
    var expected = self.expected
    expected.routes = [.init(dst: prefix("0.0.0.0/0")), .init(dst: prefix("::/0"))]
    XCTAssertEqual(try differences(clean, expected: expected), [])
  }

  // MARK: - The pod side

  func testMissingDefaultRoute() throws {
    var observed = clean
    observed.podRoutes.removeAll { $0.destination == prefix("0.0.0.0/0") }
    assertOneDifference(try differences(observed), mentioning: ["route 0.0.0.0/0", "169.254.1.1"])
  }

  func testDefaultRouteViaTheWrongGatewayOrDevice() throws {
    var observed = clean
    observed.podRoutes[1] = route("0.0.0.0/0", via: "169.254.1.2", dev: podIndex)
    assertOneDifference(try differences(observed), mentioning: ["route 0.0.0.0/0 via 169.254.1.1"])
    observed = clean
    observed.podRoutes[3] = route("::/0", via: "fe80::1", dev: 99)
    assertOneDifference(try differences(observed), mentioning: ["route ::/0 via fe80::1"])
  }

  func testPodMACMismatch() throws {
    var observed = clean
    observed.podLink?.mac = MACAddress("02:00:00:00:00:99")
    assertOneDifference(
      try differences(observed), mentioning: ["eth0", "02:00:00:00:00:99", "02:00:00:00:00:02"])
  }

  func testPodLinkDown() throws {
    var observed = clean
    observed.podLink?.isUp = false
    assertOneDifference(try differences(observed), mentioning: ["eth0 is down"])
  }

  func testPodLinkNotAVeth() throws {
    var observed = clean
    observed.podLink?.kind = "macvlan"
    assertOneDifference(try differences(observed), mentioning: ["eth0", "macvlan", "veth"])
  }

  func testMissingAddress() throws {
    var observed = clean
    observed.podAddresses.removeAll { $0 == prefix("fd00::5/128") }
    assertOneDifference(try differences(observed), mentioning: ["fd00::5/128", "eth0"])
  }

  func testTentativeOrDADFailedAddress() throws {
    var observed = clean
    observed.unusablePodAddresses = [AddressInfo(prefix: prefix("fd00::5/128"), isTentative: true)]
    assertOneDifference(
      try differences(observed), mentioning: ["fd00::5/128", "eth0", "tentative"])
    observed.unusablePodAddresses = [AddressInfo(prefix: prefix("fd00::5/128"), dadFailed: true)]
    assertOneDifference(try differences(observed), mentioning: ["fd00::5/128", "failed"])
    // A tentative address ADD did not give (the kernel's link-local) is not ours to judge.
    observed.unusablePodAddresses = [AddressInfo(prefix: prefix("fe80::2/64"), isTentative: true)]
    XCTAssertEqual(try differences(observed), [])
  }

  func testMissingPodLink() throws {
    var observed = clean
    observed.podLink = nil
    assertOneDifference(try differences(observed), mentioning: ["eth0", netns])
  }

  func testPrevResultWithoutThePodInterface() throws {
    var expected = self.expected
    expected.interfaces[1].sandbox = "/var/run/netns/other"
    let problems = try differences(clean, expected: expected)
    assertOneDifference(problems, mentioning: ["prevResult", "eth0", netns])
  }

  // MARK: - The host side

  func testMissingHostLink() throws {
    var observed = clean
    observed.hostLink = nil
    assertOneDifference(try differences(observed), mentioning: ["host interface", hostName])
  }

  func testWrongAlias() throws {
    var observed = clean
    observed.hostLink?.alias = "junction/pods/other/eth0"
    assertOneDifference(
      try differences(observed), mentioning: [hostName, "junction/pods/other/eth0", hostAlias])
    observed.hostLink?.alias = nil
    assertOneDifference(try differences(observed), mentioning: [hostName, hostAlias])
  }

  func testHostMACMismatch() throws {
    var observed = clean
    observed.hostLink?.mac = MACAddress("02:00:00:00:00:aa")
    assertOneDifference(
      try differences(observed), mentioning: [hostName, "02:00:00:00:00:aa", "02:00:00:00:00:01"])
  }

  func testHostLinkDown() throws {
    var observed = clean
    observed.hostLink?.isUp = false
    assertOneDifference(try differences(observed), mentioning: [hostName, "down"])
  }

  func testMissingHostRoute() throws {
    var observed = clean
    observed.hostRoutes.removeAll { $0.destination == prefix("10.1.0.5/32") }
    assertOneDifference(
      try differences(observed), mentioning: ["host route 10.1.0.5/32", hostName])
  }

  func testHostRouteOnTheWrongDevice() throws {
    var observed = clean
    observed.hostRoutes[2] = route("fd00::5/128", dev: 99)
    assertOneDifference(
      try differences(observed), mentioning: ["host route fd00::5/128", hostName])
  }

  // MARK: - Several at once

  func testEveryDifferenceIsReported() throws {
    var observed = clean
    observed.podLink?.isUp = false
    observed.podAddresses = []
    observed.hostLink?.alias = nil
    let problems = try differences(observed)
    XCTAssertEqual(problems.count, 4, "\(problems)")
  }
}
