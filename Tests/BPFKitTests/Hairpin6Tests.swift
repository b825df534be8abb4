import BPFKit
import DatapathABI
import XCTest

/// IPv6 hairpin (a pod whose IPv6 service connection lands on itself), run with
/// BPF_PROG_TEST_RUN on bpf/endpoint.c: the request gets the IPv6 service loopback address
/// as source and goes back out of the veth it came in on; the pod's answer to that address
/// gets VIP:port -> pod. Checksums are recomputed from scratch over the pseudo-header.
final class Hairpin6Tests: EndpointTestCase {
  private let vip = ipv6("fd00:96::a")
  private let pod = ipv6("fd00:10:244:1::5")
  private let other = ipv6("fd00:10:244:1::6")
  /// JUNCTION_SERVICE_LOOPBACK_IPV6_W0..W3 written out: 100::a9fe:2a01.
  private let loopback = ipv6("100::a9fe:2a01")
  private let podMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0x01]
  private let hostMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0x02]

  /// [VIP]:80 → [`backend`]:8080 (backend id 1, rev-NAT id 1), in the agent's order.
  private func program(backend: [UInt8], proto: PacketBuilder.L4) throws {
    try fixture.writeBackend6(1, backend, 8080, proto)
    try fixture.writeFrontend6(vip, 80, proto, revNatID: 1, backendIDs: [1])
  }

  /// What the pod's socket must see, byte for byte: `expected` with the MACs turned round.
  private func assertReturnedToPod(
    _ result: ProgramTestRun.Result, as expected: PacketBuilder6, file: StaticString = #filePath,
    line: UInt = #line
  ) {
    XCTAssertEqual(result.verdict, .redirect, "handed back to the pod", file: file, line: line)
    XCTAssertTrue(
      ParsedFrame6(result.output).l4ChecksumValid, "L4 checksum", file: file, line: line)
    var frame = expected.build()
    frame.replaceSubrange(0..<12, with: podMAC + hostMAC)
    XCTAssertEqual(result.output, frame, file: file, line: line)
  }

  func testTheABIConstantIsTheDocumentedAddress() {
    let words = [
      UInt32(JUNCTION_SERVICE_LOOPBACK_IPV6_W0), UInt32(JUNCTION_SERVICE_LOOPBACK_IPV6_W1),
      UInt32(JUNCTION_SERVICE_LOOPBACK_IPV6_W2), UInt32(JUNCTION_SERVICE_LOOPBACK_IPV6_W3),
    ]
    let bytes = words.flatMap { word in
      (0..<4).map { UInt8(truncatingIfNeeded: word >> (24 - 8 * $0)) }
    }
    XCTAssertEqual(bytes, loopback)
  }

  /// Both halves over TCP and UDP: [pod]:40000 → [VIP]:80 becomes [loopback]:40000 →
  /// [pod]:8080, redirected back; the pod's answer [pod]:8080 → [loopback]:40000 becomes
  /// [VIP]:80 → [pod]:40000, redirected back; to_endpoint leaves both translated packets.
  func testAPodReachingItselfThroughItsIPv6ServiceGetsTheLoopbackSourceAndTheVIPBack() throws {
    for l4 in [PacketBuilder.L4.tcp, .udp] {
      try program(backend: pod, proto: l4)
      let request = PacketBuilder6(l4, from: pod, 40000, to: vip, 80)

      let sent = try ProgramTestRun.run(program: fixture.from, packet: request.build())

      var delivered = request
      delivered.source = loopback
      delivered.destination = pod
      delivered.destinationPort = 8080
      assertReturnedToPod(sent, as: delivered)
      let service = try fixture.conntrack6.lookup(
        EndpointFixture.conntrackKey6(pod, 40000, vip, 80, l4, JUNCTION_CT_SERVICE),
        as: junction_ct6_entry.self)
      XCTAssertEqual(service?.flags, UInt16(JUNCTION_CT_F_HAIRPIN), "\(l4)")
      let reply = try fixture.conntrack6.lookup(
        EndpointFixture.conntrackKey6(pod, 8080, loopback, 40000, l4, JUNCTION_CT_REPLY),
        as: junction_ct6_entry.self)
      XCTAssertEqual(reply?.flags, UInt16(JUNCTION_CT_F_HAIRPIN), "reply keyed as it arrives")
      XCTAssertNil(
        try fixture.conntrack6.lookup(
          EndpointFixture.conntrackKey6(pod, 8080, pod, 40000, l4, JUNCTION_CT_REPLY),
          as: junction_ct6_entry.self))

      // The request delivered to the pod is not a reply: to_endpoint leaves it.
      let onEgress = try ProgramTestRun.run(program: fixture.to, packet: sent.output)
      XCTAssertEqual(onEgress.verdict, .next)
      XCTAssertEqual(onEgress.output, sent.output)

      var answer = PacketBuilder6(l4, from: pod, 8080, to: loopback, 40000, tcpFlags: 0x12)
      answer.payload = Array("it is me".utf8)
      let answered = try ProgramTestRun.run(program: fixture.from, packet: answer.build())

      var expected = PacketBuilder6(l4, from: vip, 80, to: pod, 40000, tcpFlags: 0x12)
      expected.payload = answer.payload
      assertReturnedToPod(answered, as: expected)
      let back = try ProgramTestRun.run(program: fixture.to, packet: answered.output)
      XCTAssertEqual(back.output, answered.output, "not translated twice")

      // Later requests of the same connection take the same way.
      var next = request
      next.tcpFlags = 0x10
      var nextExpected = delivered
      nextExpected.tcpFlags = 0x10
      assertReturnedToPod(
        try ProgramTestRun.run(program: fixture.from, packet: next.build()), as: nextExpected)
    }
  }

  /// A client other than the backend is DNATed only (no loopback, not redirected, no hairpin
  /// flag), and a packet to the loopback address without a hairpin entry passes untouched.
  func testOnlyTheBackendItselfIsHairpinnedOverIPv6() throws {
    try program(backend: pod, proto: .tcp)
    let result = try ProgramTestRun.run(
      program: fixture.from, packet: PacketBuilder6(.tcp, from: other, 41000, to: vip, 80).build())
    XCTAssertEqual(result.verdict, .next)
    XCTAssertEqual(
      result.output, PacketBuilder6(.tcp, from: other, 41000, to: pod, 8080).build())
    let reply = try fixture.conntrack6.lookup(
      EndpointFixture.conntrackKey6(pod, 8080, other, 41000, .tcp, JUNCTION_CT_REPLY),
      as: junction_ct6_entry.self)
    XCTAssertEqual(reply?.flags, 0)

    let stray = PacketBuilder6(.tcp, from: pod, 8080, to: loopback, 41000).build()
    let passed = try ProgramTestRun.run(program: fixture.from, packet: stray)
    XCTAssertEqual(passed.verdict, .next)
    XCTAssertEqual(passed.output, stray)
  }
}
