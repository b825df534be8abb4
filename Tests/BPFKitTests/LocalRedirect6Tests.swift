import BPFKit
import DatapathABI
import XCTest

/// Local Redirect Policy over IPv6 in bpf/endpoint.c (lib/lrp6.h), run with BPF_PROG_TEST_RUN,
/// the maps written as the agent writes a redirected frontend (ServicePrograms): the
/// frontend's slots are this node's pods of the policy, flagged LOCAL_REDIRECT (and
/// SKIP_FROM_BACKEND), and with skipRedirectFromBackend on a service matcher the original
/// Service's backends sit under the REDIRECT_ORIGIN scope of the same key.
final class LocalRedirect6Tests: EndpointTestCase {
  /// A dual-stack Service's IPv6 cluster IP (service matcher) and a link-local-free metadata
  /// style address (address matcher).
  private let clusterIP = ipv6("fd00:96::35")
  private let address = ipv6("fd00:a9fe::fe")
  private let client = ipv6("fd00:10:244:1::5")
  /// The policy's pod on this node.
  private let localPod = ipv6("fd00:10:244:1::53")
  /// The Service's own backend, on another node.
  private let remoteBackend = ipv6("fd00:10:244:2::53")

  /// Service matcher: a client's UDP and TCP to the redirected IPv6 cluster IP land on the
  /// node's pod (DNAT with a right checksum), and the pod's answer comes back from the
  /// cluster IP.
  func testAnIPv6ClusterIPRedirectedByServiceGoesToTheLocalPodAndAnswersFromTheVIP() throws {
    try fixture.writeBackend6(1, localPod, 5353, .udp)
    try fixture.writeBackend6(2, localPod, 8053, .tcp)
    let redirect = JUNCTION_SVC_F_LOCAL_REDIRECT
    try fixture.writeFrontend6(clusterIP, 53, .udp, revNatID: 1, backendIDs: [1], flags: redirect)
    try fixture.writeFrontend6(clusterIP, 53, .tcp, revNatID: 2, backendIDs: [2], flags: redirect)

    for (l4, port) in [(PacketBuilder.L4.udp, UInt16(5353)), (.tcp, 8053)] {
      let request = PacketBuilder6(l4, from: client, 40000, to: clusterIP, 53)
      let result = try ProgramTestRun.run(program: fixture.from, packet: request.build())
      XCTAssertEqual(result.verdict, .next)
      var expected = request
      expected.destination = localPod
      expected.destinationPort = port
      XCTAssertEqual(result.output, expected.build(), "\(l4): to the node's pod")
      XCTAssertTrue(ParsedFrame6(result.output).l4ChecksumValid)

      var answer = PacketBuilder6(l4, from: localPod, port, to: client, 40000, tcpFlags: 0x12)
      answer.payload = Array("cached".utf8)
      let back = try ProgramTestRun.run(program: fixture.to, packet: answer.build())
      var reversed = answer
      reversed.source = clusterIP
      reversed.sourcePort = 53
      XCTAssertEqual(back.output, reversed.build(), "\(l4): from the cluster IP")
    }
  }

  /// Address matcher: an IPv6 address no Service has, redirected to the node's pod.
  func testAnIPv6AddressRedirectedByAddressGoesToTheLocalPod() throws {
    try fixture.writeBackend6(7, localPod, 8080, .tcp)
    try fixture.writeFrontend6(
      address, 80, .tcp, revNatID: 7, backendIDs: [7], flags: JUNCTION_SVC_F_LOCAL_REDIRECT)
    let request = PacketBuilder6(.tcp, from: client, 40100, to: address, 80)
    let result = try ProgramTestRun.run(program: fixture.from, packet: request.build())
    XCTAssertEqual(result.verdict, .next)
    var expected = request
    expected.destination = localPod
    expected.destinationPort = 8080
    XCTAssertEqual(result.output, expected.build())
    let entry = try fixture.conntrack6.lookup(
      EndpointFixture.conntrackKey6(client, 40100, address, 80, .tcp, JUNCTION_CT_SERVICE),
      as: junction_ct6_entry.self)
    XCTAssertEqual(entry?.backend_id, 7)
  }

  /// skipRedirectFromBackend: other clients are redirected to the local pod; the pod itself
  /// passes untouched while there is no origin entry (an address matcher), and gets the
  /// original Service's backend from the REDIRECT_ORIGIN-scope entry when there is one (a
  /// service matcher), with its replies reverse-NATed to the cluster IP.
  func testTheLRPsOwnPodGetsTheOriginalServiceOrPassesUntouched() throws {
    let skip = JUNCTION_SVC_F_LOCAL_REDIRECT | JUNCTION_SVC_F_SKIP_FROM_BACKEND
    try fixture.writeBackend6(1, localPod, 8080, .tcp)
    try fixture.writeFrontend6(clusterIP, 80, .tcp, revNatID: 1, backendIDs: [1], flags: skip)
    let redirected = try ProgramTestRun.run(
      program: fixture.from,
      packet: PacketBuilder6(.tcp, from: client, 40000, to: clusterIP, 80).build())
    XCTAssertEqual(ParsedFrame6(redirected.output).destination, localPod, "others: redirected")

    let own = PacketBuilder6(.tcp, from: localPod, 40001, to: clusterIP, 80).build()
    let untouched = try ProgramTestRun.run(program: fixture.from, packet: own)
    XCTAssertEqual(untouched.verdict, .next)
    XCTAssertEqual(untouched.output, own, "no origin: untouched")
    XCTAssertNil(
      try fixture.conntrack6.lookup(
        EndpointFixture.conntrackKey6(localPod, 40001, clusterIP, 80, .tcp, JUNCTION_CT_SERVICE),
        as: junction_ct6_entry.self))

    // The origin goes in (as the agent writes it: before the flag that uses it).
    try fixture.writeBackend6(2, remoteBackend, 8080, .tcp)
    try fixture.writeFrontend6(
      clusterIP, 80, .tcp, revNatID: 1, backendIDs: [2], flags: 0,
      scope: JUNCTION_SCOPE_REDIRECT_ORIGIN)
    let result = try ProgramTestRun.run(program: fixture.from, packet: own)
    XCTAssertEqual(result.verdict, .next)
    let out = ParsedFrame6(result.output)
    XCTAssertEqual(out.destination, remoteBackend, "the original Service's backend")
    XCTAssertEqual(out.source, localPod)
    XCTAssertTrue(out.l4ChecksumValid)
    var answer = PacketBuilder6(
      .tcp, from: remoteBackend, 8080, to: localPod, 40001, tcpFlags: 0x12)
    answer.payload = Array("the origin".utf8)
    let back = ParsedFrame6(
      try ProgramTestRun.run(program: fixture.to, packet: answer.build()).output)
    XCTAssertEqual(back.source, clusterIP)
    XCTAssertEqual(back.sourcePort, 80)
    XCTAssertTrue(back.l4ChecksumValid)

    // Another client still goes to the local pod.
    let other = try ProgramTestRun.run(
      program: fixture.from,
      packet: PacketBuilder6(.tcp, from: client, 40002, to: clusterIP, 80).build())
    XCTAssertEqual(ParsedFrame6(other.output).destination, localPod)

    // Without the skip flag the pod is redirected like anyone else: to itself, a hairpin.
    try fixture.writeFrontend6(
      clusterIP, 80, .tcp, revNatID: 1, backendIDs: [1], flags: JUNCTION_SVC_F_LOCAL_REDIRECT)
    let itself = try ProgramTestRun.run(
      program: fixture.from,
      packet: PacketBuilder6(.tcp, from: localPod, 40003, to: clusterIP, 80).build())
    XCTAssertEqual(itself.verdict, .redirect)
    XCTAssertEqual(ParsedFrame6(itself.output).destination, localPod)
    XCTAssertEqual(ParsedFrame6(itself.output).source, ipv6("100::a9fe:2a01"))
  }
}
