import CNIKit
import CNITestSupport
import JunctionPlugin
import XCTest

final class PodAddressingTests: XCTestCase {
  private func plan(_ ipam: CNIResult, dns: CNIResult.DNS? = nil) throws(CNIError) -> PodAddressing
  {
    try PodAddressing.plan(ipam: ipam, dnsOverride: dns)
  }

  func testIPAMAddressBecomesAHostPrefixBehindIPAMsGateway() throws {
    let planned = try plan(
      CNIResult(ips: [.init(address: prefix("10.1.0.5/24"), gateway: address("10.1.0.1"))]))
    let v4 = try XCTUnwrap(planned.ipv4)
    XCTAssertNil(planned.ipv6)
    XCTAssertEqual(v4.addresses, [prefix("10.1.0.5/32")])
    XCTAssertEqual(v4.gateway, address("10.1.0.1"))
    XCTAssertEqual(v4.routes, [.init(dst: prefix("0.0.0.0/0"), gw: address("10.1.0.1"))])
  }

  func testIPv6AddressBecomesA128() throws {
    let planned = try plan(
      CNIResult(ips: [.init(address: prefix("fd00:10::5/64"), gateway: address("fd00:10::1"))]))
    XCTAssertNil(planned.ipv4)
    let v6 = try XCTUnwrap(planned.ipv6)
    XCTAssertEqual(v6.addresses, [prefix("fd00:10::5/128")])
    XCTAssertEqual(v6.gateway, address("fd00:10::1"))
    XCTAssertEqual(v6.routes, [.init(dst: prefix("::/0"), gw: address("fd00:10::1"))])
  }

  func testLinkLocalGatewayWhenIPAMNamesNone() throws {
    let planned = try plan(
      CNIResult(ips: [.init(address: prefix("10.1.0.5/24")), .init(address: prefix("fd00::5/64"))]))
    XCTAssertEqual(planned.ipv4?.gateway, address("169.254.1.1"))
    XCTAssertEqual(planned.ipv6?.gateway, address("fe80::1"))
    XCTAssertEqual(
      planned.ipv4?.routes, [.init(dst: prefix("0.0.0.0/0"), gw: address("169.254.1.1"))])
    XCTAssertEqual(planned.ipv6?.routes, [.init(dst: prefix("::/0"), gw: address("fe80::1"))])
  }

  func testIPAMRoutesAreKeptWithTheGatewayFilledIn() throws {
    let planned = try plan(
      CNIResult(
        ips: [.init(address: prefix("10.1.0.5/24"), gateway: address("10.1.0.1"))],
        routes: [
          .init(dst: prefix("10.0.0.0/8")),
          .init(dst: prefix("192.168.0.0/16"), gw: address("10.1.0.254")),
          .init(dst: prefix("172.16.3.4/12"), priority: 5),
        ]))
    XCTAssertEqual(
      planned.ipv4?.routes,
      [
        .init(dst: prefix("10.0.0.0/8"), gw: address("10.1.0.1")),
        .init(dst: prefix("192.168.0.0/16"), gw: address("10.1.0.254")),
        // Host bits cleared, other fields kept.
        .init(dst: prefix("172.16.0.0/12"), gw: address("10.1.0.1"), priority: 5),
      ])
  }

  func testDualStack() throws {
    let planned = try plan(
      CNIResult(
        ips: [
          .init(address: prefix("10.1.0.5/24"), gateway: address("10.1.0.1")),
          .init(address: prefix("fd00::5/64"), gateway: address("fd00::1")),
        ],
        routes: [.init(dst: prefix("10.96.0.0/12"))]))
    XCTAssertEqual(planned.families.count, 2)
    XCTAssertEqual(planned.ipv4?.addresses, [prefix("10.1.0.5/32")])
    XCTAssertEqual(
      planned.ipv4?.routes, [.init(dst: prefix("10.96.0.0/12"), gw: address("10.1.0.1"))])
    XCTAssertEqual(planned.ipv6?.addresses, [prefix("fd00::5/128")])
    // IPAM gave IPv6 no routes, so it gets a default one.
    XCTAssertEqual(planned.ipv6?.routes, [.init(dst: prefix("::/0"), gw: address("fd00::1"))])
  }

  func testSeveralAddressesOfOneFamilyShareTheFirstGateway() throws {
    let planned = try plan(
      CNIResult(ips: [
        .init(address: prefix("10.1.0.5/24")),
        .init(address: prefix("10.2.0.5/24"), gateway: address("10.2.0.1")),
      ]))
    XCTAssertEqual(planned.ipv4?.addresses, [prefix("10.1.0.5/32"), prefix("10.2.0.5/32")])
    XCTAssertEqual(planned.ipv4?.gateway, address("10.2.0.1"))
  }

  func testRouteViaAGatewayOfTheOtherFamilyIsCode102() {
    assertCNIError(
      try plan(
        CNIResult(
          ips: [
            .init(address: prefix("10.1.0.5/24"), gateway: address("10.1.0.1")),
            .init(address: prefix("fd00::5/64"), gateway: address("fd00::1")),
          ],
          routes: [.init(dst: prefix("::/0"), gw: address("10.1.0.1"))])),
      code: .delegatedPluginFailed, mentioning: ["::/0", "10.1.0.1", "other address family"])
  }

  func testNoIPsIsCode102() {
    assertCNIError(
      try plan(CNIResult(routes: [.init(dst: prefix("0.0.0.0/0"))])), code: .delegatedPluginFailed,
      mentioning: ["IP"])
  }

  func testPodAddressEqualToItsGatewayIsAnError() {
    assertCNIError(
      try plan(
        CNIResult(ips: [.init(address: prefix("10.1.0.1/24"), gateway: address("10.1.0.1"))])),
      code: .delegatedPluginFailed, mentioning: ["10.1.0.1", "gateway"])
    assertCNIError(
      try plan(CNIResult(ips: [.init(address: prefix("169.254.1.1/32"))])),
      code: .delegatedPluginFailed, mentioning: ["169.254.1.1"])
  }

  func testDNSOverrideWinsOverIPAM() throws {
    let ipam = CNIResult(
      ips: [.init(address: prefix("10.1.0.5/24"))], dns: .init(nameservers: ["10.1.0.1"]))
    let override = CNIResult.DNS(nameservers: ["10.96.0.10"], search: ["svc.cluster.local"])
    XCTAssertEqual(try plan(ipam, dns: override).dns, override)
    XCTAssertEqual(try plan(ipam).dns, .init(nameservers: ["10.1.0.1"]))
  }

  func testResultPutsTheHostFirstAndAddressesOnThePod() throws {
    let planned = try plan(
      CNIResult(
        ips: [
          .init(address: prefix("10.1.0.5/24"), gateway: address("10.1.0.1")),
          .init(address: prefix("fd00::5/64")),
        ],
        dns: .init(nameservers: ["10.1.0.1"])))
    let host = CNIResult.Interface(name: "jnc1050df138a67", mac: "02:00:00:00:00:01", mtu: 1500)
    let pod = CNIResult.Interface(
      name: "eth0", mac: "02:00:00:00:00:02", mtu: 1500, sandbox: "/var/run/netns/pod1")
    let result = planned.result(host: host, pod: pod)
    XCTAssertEqual(result.interfaces, [host, pod])
    XCTAssertNil(result.interfaces[0].sandbox)
    XCTAssertEqual(result.interfaces[1].sandbox, "/var/run/netns/pod1")
    XCTAssertEqual(
      result.ips,
      [
        .init(address: prefix("10.1.0.5/32"), gateway: address("10.1.0.1"), interface: 1),
        .init(address: prefix("fd00::5/128"), gateway: address("fe80::1"), interface: 1),
      ])
    XCTAssertEqual(
      result.routes,
      [
        .init(dst: prefix("0.0.0.0/0"), gw: address("10.1.0.1")),
        .init(dst: prefix("::/0"), gw: address("fe80::1")),
      ])
    XCTAssertEqual(result.dns, .init(nameservers: ["10.1.0.1"]))
  }
}
