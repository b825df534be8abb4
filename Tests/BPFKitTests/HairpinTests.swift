import BPFKit
import DatapathABI
import XCTest

/// Hairpin (a pod whose service connection lands on itself), run with BPF_PROG_TEST_RUN on
/// bpf/endpoint.c: the request gets the service loopback address as source and goes back
/// out of the veth it came in on; the pod's answer to that address gets VIP:port -> pod.
final class HairpinTests: EndpointTestCase {
  private let vip: [UInt8] = [10, 96, 0, 10]
  private let pod: [UInt8] = [10, 0, 1, 5]
  private let other: [UInt8] = [10, 0, 1, 6]
  /// JUNCTION_SERVICE_LOOPBACK_IPV4 written out: 169.254.42.1, Cilium's default.
  private let loopback: [UInt8] = [169, 254, 42, 1]
  private let podMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0x01]
  private let hostMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0x02]

  /// VIP:80 → `backend`:8080 (backend id 1, rev-NAT id 1), written in the agent's order.
  private func program(backend: [UInt8], proto: PacketBuilder.L4) throws {
    try fixture.writeBackend(1, backend, 8080, proto)
    try fixture.writeFrontend(vip, 80, proto, revNatID: 1, backendIDs: [1])
  }

  private func packet(
    _ l4: PacketBuilder.L4, from source: [UInt8], _ sourcePort: UInt16, to destination: [UInt8],
    _ destinationPort: UInt16
  ) -> PacketBuilder {
    PacketBuilder(l4, from: source, sourcePort, to: destination, destinationPort)
  }

  /// What the pod's socket must see, byte for byte: `expected` with the MACs turned round.
  private func assertReturnedToPod(
    _ result: ProgramTestRun.Result, as expected: PacketBuilder, file: StaticString = #filePath,
    line: UInt = #line
  ) {
    XCTAssertEqual(result.verdict, .redirect, "handed back to the pod", file: file, line: line)
    let out = ParsedFrame(result.output)
    XCTAssertTrue(out.ipChecksumValid, "IPv4 checksum", file: file, line: line)
    XCTAssertTrue(out.l4ChecksumValid, "L4 checksum", file: file, line: line)
    var frame = expected.build()
    frame.replaceSubrange(0..<12, with: podMAC + hostMAC)
    XCTAssertEqual(result.output, frame, file: file, line: line)
  }

  func testTheABIConstantIsTheDocumentedAddress() {
    XCTAssertEqual(JUNCTION_SERVICE_LOOPBACK_IPV4, 0xa9fe_2a01)
  }

  /// Both halves over TCP and UDP: pod:40000 → VIP:80 becomes loopback:40000 → pod:8080,
  /// redirected back; the pod's answer pod:8080 → loopback:40000 becomes VIP:80 → pod:40000,
  /// redirected back; to_endpoint leaves both translated packets alone.
  func testAPodReachingItselfThroughItsServiceGetsTheLoopbackSourceAndTheVIPBack() throws {
    for l4 in [PacketBuilder.L4.tcp, .udp] {
      try program(backend: pod, proto: l4)
      let request = packet(l4, from: pod, 40000, to: vip, 80)

      let sent = try ProgramTestRun.run(program: fixture.from, packet: request.build())

      assertReturnedToPod(sent, as: packet(l4, from: loopback, 40000, to: pod, 8080))
      let service = try fixture.datapath.conntrack.lookup(
        ServiceObject.conntrackKey(pod, 40000, vip, 80, l4, JUNCTION_CT_SERVICE),
        as: junction_ct4_entry.self)
      XCTAssertEqual(service?.flags, UInt16(JUNCTION_CT_F_HAIRPIN))
      let reply = try fixture.datapath.conntrack.lookup(
        ServiceObject.conntrackKey(pod, 8080, loopback, 40000, l4, JUNCTION_CT_REPLY),
        as: junction_ct4_entry.self)
      XCTAssertEqual(reply?.flags, UInt16(JUNCTION_CT_F_HAIRPIN), "reply keyed as it arrives")
      XCTAssertNil(
        try fixture.datapath.conntrack.lookup(
          ServiceObject.conntrackKey(pod, 8080, pod, 40000, l4, JUNCTION_CT_REPLY),
          as: junction_ct4_entry.self))

      // The request delivered to the pod is not a reply: to_endpoint leaves it.
      let delivered = try ProgramTestRun.run(program: fixture.to, packet: sent.output)
      XCTAssertEqual(delivered.verdict, .next)
      XCTAssertEqual(delivered.output, sent.output)

      var answer = packet(l4, from: pod, 8080, to: loopback, 40000)
      answer.tcpFlags = 0x12
      answer.payload = Array("it is me".utf8)
      let answered = try ProgramTestRun.run(program: fixture.from, packet: answer.build())

      var expected = packet(l4, from: vip, 80, to: pod, 40000)
      expected.tcpFlags = 0x12
      expected.payload = answer.payload
      assertReturnedToPod(answered, as: expected)
      let back = try ProgramTestRun.run(program: fixture.to, packet: answered.output)
      XCTAssertEqual(back.output, answered.output, "not translated twice")

      // Later requests of the same connection take the same way.
      var next = request
      next.tcpFlags = 0x10
      var nextExpected = packet(l4, from: loopback, 40000, to: pod, 8080)
      nextExpected.tcpFlags = 0x10
      assertReturnedToPod(
        try ProgramTestRun.run(program: fixture.from, packet: next.build()), as: nextExpected)
    }
  }

  /// A client other than the backend is DNATed only (no loopback, not redirected), and a
  /// packet to the loopback address without a hairpin entry passes untouched.
  func testOnlyTheBackendItselfIsHairpinned() throws {
    try program(backend: pod, proto: .tcp)
    let result = try ProgramTestRun.run(
      program: fixture.from, packet: packet(.tcp, from: other, 41000, to: vip, 80).build())
    XCTAssertEqual(result.verdict, .next)
    XCTAssertEqual(result.output, packet(.tcp, from: other, 41000, to: pod, 8080).build())
    let reply = try fixture.datapath.conntrack.lookup(
      ServiceObject.conntrackKey(pod, 8080, other, 41000, .tcp, JUNCTION_CT_REPLY),
      as: junction_ct4_entry.self)
    XCTAssertEqual(reply?.flags, 0)

    let stray = packet(.tcp, from: pod, 8080, to: loopback, 41000).build()
    let passed = try ProgramTestRun.run(program: fixture.from, packet: stray)
    XCTAssertEqual(passed.verdict, .next)
    XCTAssertEqual(passed.output, stray)
  }
}
