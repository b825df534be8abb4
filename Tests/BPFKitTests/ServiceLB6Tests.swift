import BPFKit
import DatapathABI
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// The IPv6 service datapath (bpf/endpoint.c over jnc_lb6_* and jnc_ct6) run with
/// BPF_PROG_TEST_RUN on frames built byte by byte (PacketBuilder6), services programmed
/// through the maps the way the agent does. Every checksum the programs touch is recomputed
/// from scratch in Swift over the IPv6 pseudo-header and compared.
final class ServiceLB6Tests: EndpointTestCase {
  private let vip = ipv6("fd00:96::a")
  private let client = ipv6("fd00:10:244:1::5")
  private let backendAddresses = [
    ipv6("fd00:10:244:2::b"), ipv6("fd00:10:244:2::c"), ipv6("fd00:10:244:3::d"),
  ]

  // MARK: - Programming services, as the agent does (ServicePrograms' order)

  /// A service at `vip`:`port` with `backends` (id, address, port), all active.
  private func program(
    port: UInt16 = 80, proto: PacketBuilder.L4 = .tcp, revNatID: UInt16 = 1,
    backends: [(UInt32, [UInt8], UInt16)], flags: Int32 = 0
  ) throws {
    for (id, address, backendPort) in backends {
      try fixture.writeBackend6(id, address, backendPort, proto)
    }
    try fixture.writeFrontend6(
      vip, port, proto, revNatID: revNatID, backendIDs: backends.map(\.0), flags: flags)
  }

  private func request(_ l4: PacketBuilder.L4 = .tcp, sourcePort: UInt16 = 40000)
    -> PacketBuilder6
  {
    PacketBuilder6(l4, from: client, sourcePort, to: vip, l4 == .tcp ? 80 : 53)
  }

  // MARK: - DNAT and reverse NAT

  func testTCPAndUDPToAnIPv6ServiceAreDNATedWithPseudoHeaderChecksumsRight() throws {
    try program(backends: [(2, backendAddresses[1], 8080)])
    try program(port: 53, proto: .udp, revNatID: 2, backends: [(3, backendAddresses[2], 5353)])

    for (l4, backend, backendPort) in [
      (PacketBuilder.L4.tcp, backendAddresses[1], UInt16(8080)), (.udp, backendAddresses[2], 5353),
    ] {
      let packet = request(l4)
      let input = packet.build()
      XCTAssertTrue(ParsedFrame6(input).l4ChecksumValid, "the builder's own checksum")

      let result = try ProgramTestRun.run(program: fixture.from, packet: input)

      XCTAssertEqual(result.verdict, .next)
      let out = ParsedFrame6(result.output)
      XCTAssertEqual(out.destination, backend, "\(l4)")
      XCTAssertEqual(out.destinationPort, backendPort)
      XCTAssertEqual(out.source, client)
      XCTAssertEqual(out.sourcePort, packet.sourcePort)
      XCTAssertTrue(out.l4ChecksumValid, "\(l4) checksum over the new pseudo-header")
      XCTAssertNotEqual(out.l4ChecksumField, 0)
      // Byte for byte what a sender to the backend would have built.
      var expected = packet
      expected.destination = backend
      expected.destinationPort = backendPort
      XCTAssertEqual(result.output, expected.build(), "\(l4)")
    }

    let forward = try fixture.conntrack6.lookup(
      EndpointFixture.conntrackKey6(client, 40000, vip, 80, .tcp, JUNCTION_CT_SERVICE),
      as: junction_ct6_entry.self)
    XCTAssertEqual(forward?.backend_id, 2)
    XCTAssertEqual(forward?.rev_nat_id, 1)
    let reply = try fixture.conntrack6.lookup(
      EndpointFixture.conntrackKey6(
        backendAddresses[1], 8080, client, 40000, .tcp, JUNCTION_CT_REPLY),
      as: junction_ct6_entry.self)
    XCTAssertEqual(reply?.backend_id, 2)
    XCTAssertEqual(try fixture.datapath.conntrack.keys(as: junction_ct4_key.self).count, 0)
  }

  func testIPv6RepliesAreReverseNATedToTheVIP() throws {
    try program(backends: [(2, backendAddresses[1], 8080)])
    try program(port: 53, proto: .udp, revNatID: 2, backends: [(3, backendAddresses[2], 5353)])
    for (l4, backend, backendPort, servicePort) in [
      (PacketBuilder.L4.tcp, backendAddresses[1], UInt16(8080), UInt16(80)),
      (.udp, backendAddresses[2], 5353, 53),
    ] {
      XCTAssertEqual(
        try ProgramTestRun.run(program: fixture.from, packet: request(l4).build()).verdict, .next)
      var answer = PacketBuilder6(l4, from: backend, backendPort, to: client, 40000, tcpFlags: 0x12)
      answer.payload = Array("an answer".utf8)

      let result = try ProgramTestRun.run(program: fixture.to, packet: answer.build())

      XCTAssertEqual(result.verdict, .next)
      let out = ParsedFrame6(result.output)
      XCTAssertEqual(out.source, vip, "\(l4)")
      XCTAssertEqual(out.sourcePort, servicePort)
      XCTAssertEqual(out.destination, client)
      XCTAssertEqual(out.destinationPort, 40000)
      XCTAssertTrue(out.l4ChecksumValid, "\(l4) checksum")
      var expected = answer
      expected.source = vip
      expected.sourcePort = servicePort
      XCTAssertEqual(result.output, expected.build())
    }
    // Something from a backend that is no service reply passes untouched.
    let unrelated = PacketBuilder6(.tcp, from: backendAddresses[1], 8080, to: client, 40999).build()
    let result = try ProgramTestRun.run(program: fixture.to, packet: unrelated)
    XCTAssertEqual(result.verdict, .next)
    XCTAssertEqual(result.output, unrelated)
  }

  /// jnc_ct6 never evicts (a plain hash): a FIN or RST must mark both entries closing, so the
  /// agent's sweep drops them after the close timeout, not the 6 h TCP lifetime.
  func testAFINOrRSTMarksBothIPv6EntriesClosingAndASYNReopens() throws {
    try program(backends: [(2, backendAddresses[1], 8080)])
    let serviceKey = EndpointFixture.conntrackKey6(
      client, 40000, vip, 80, .tcp, JUNCTION_CT_SERVICE)
    let replyKey = EndpointFixture.conntrackKey6(
      backendAddresses[1], 8080, client, 40000, .tcp, JUNCTION_CT_REPLY)
    func closing(_ key: junction_ct6_key) throws -> Bool {
      let entry = try fixture.conntrack6.lookup(key, as: junction_ct6_entry.self)
      XCTAssertNotNil(entry)
      return (entry?.flags ?? 0) & UInt16(JUNCTION_CT_F_CLOSING) != 0
    }
    XCTAssertEqual(
      try ProgramTestRun.run(program: fixture.from, packet: request().build()).verdict, .next)
    XCTAssertFalse(try closing(serviceKey))
    XCTAssertFalse(try closing(replyKey))

    var fin = request()
    fin.tcpFlags = 0x11  // FIN, ACK
    XCTAssertEqual(
      try ProgramTestRun.run(program: fixture.from, packet: fin.build()).verdict, .next)
    XCTAssertTrue(try closing(serviceKey), "the client's FIN")
    XCTAssertFalse(try closing(replyKey))
    let reset = PacketBuilder6(
      .tcp, from: backendAddresses[1], 8080, to: client, 40000, tcpFlags: 0x04)
    XCTAssertEqual(
      try ProgramTestRun.run(program: fixture.to, packet: reset.build()).verdict, .next)
    XCTAssertTrue(try closing(replyKey), "the backend's RST")

    // The client reuses its port: the SYN opens the service entry again.
    XCTAssertEqual(
      try ProgramTestRun.run(program: fixture.from, packet: request().build()).verdict, .next)
    XCTAssertFalse(try closing(serviceKey), "a SYN reopens")
  }

  func testAConnectionKeepsItsBackendAndRandomSelectionUsesEveryBackend() throws {
    try program(
      backends: backendAddresses.enumerated().map { (UInt32($0.offset + 1), $0.element, 8080) })
    var seen = Set<[UInt8]>()
    for port in UInt16(41000)..<41060 {
      let result = try ProgramTestRun.run(
        program: fixture.from, packet: request(sourcePort: port).build())
      let first = ParsedFrame6(result.output).destination
      XCTAssertTrue(backendAddresses.contains(first))
      seen.insert(first)
      var again = request(sourcePort: port)
      again.tcpFlags = 0x10  // ACK
      let next = try ProgramTestRun.run(program: fixture.from, packet: again.build())
      XCTAssertEqual(ParsedFrame6(next.output).destination, first, "port \(port) keeps its backend")
    }
    XCTAssertEqual(seen.count, 3, "60 connections over 3 backends reach each")
  }

  /// Maglev tables are shared with IPv4 (jnc_lb4_maglev, by rev-NAT id); the IPv6 hash folds
  /// each address to the XOR of its four words (junction_abi.h), then hashes as IPv4 does.
  func testMaglevChoiceFollowsTheDocumentedIPv6Hash() throws {
    try program(
      backends: backendAddresses.enumerated().map { (UInt32($0.offset + 1), $0.element, 8080) },
      flags: JUNCTION_SVC_F_MAGLEV)
    let maglev = try fixture.datapath.object.map(named: JUNCTION_MAP_LB4_MAGLEV)
    let size = MaglevTable.size
    let table = (0..<size).map { UInt32($0 % 3 + 1) }
    try MaglevTable.install(table, revNatID: 1, in: maglev)
    func fold(_ address: [UInt8]) -> [UInt8] {
      (0..<4).map { address[$0] ^ address[$0 + 4] ^ address[$0 + 8] ^ address[$0 + 12] }
    }
    var seen = Set<Int>()
    for port in UInt16(43000)..<43030 {
      let slot = maglevSlot(
        source: fold(client), destination: fold(vip), sourcePort: port, destinationPort: 80,
        proto: 6, seed: UInt32(JUNCTION_MAGLEV_HASH_SEED), tableSize: size)
      let expected = Int(table[slot]) - 1
      for key in try fixture.conntrack6.keys(as: junction_ct6_key.self) {
        try fixture.conntrack6.delete(key)
      }
      let result = try ProgramTestRun.run(
        program: fixture.from, packet: request(sourcePort: port).build())
      XCTAssertEqual(
        ParsedFrame6(result.output).destination, backendAddresses[expected], "port \(port)")
      seen.insert(expected)
    }
    XCTAssertEqual(seen.count, 3, "the hash spreads over the table")
    XCTAssertTrue(try MaglevTable.remove(revNatID: 1, in: maglev))
  }

  func testClientIPAffinityKeepsOneIPv6ClientOnOneBackend() throws {
    try program(
      backends: backendAddresses.enumerated().map { (UInt32($0.offset + 1), $0.element, 8080) },
      flags: JUNCTION_SVC_F_AFFINITY)
    var frontend = try XCTUnwrap(
      fixture.services6.lookup(
        EndpointFixture.serviceKey6(vip, 80, .tcp, slot: 0), as: junction_lb4_service.self))
    frontend.affinity_timeout = 10800
    try fixture.services6.update(EndpointFixture.serviceKey6(vip, 80, .tcp, slot: 0), frontend)
    let first = ParsedFrame6(
      try ProgramTestRun.run(program: fixture.from, packet: request().build()).output
    ).destination
    for port in UInt16(45000)..<45030 {
      let result = try ProgramTestRun.run(
        program: fixture.from, packet: request(sourcePort: port).build())
      XCTAssertEqual(ParsedFrame6(result.output).destination, first, "port \(port)")
    }
    let affinity = try fixture.datapath.object.map(named: JUNCTION_MAP_LB6_AFFINITY)
    var key = junction_lb6_affinity_key()
    key.client = be128(client)
    key.rev_nat_id = 1
    let entry = try XCTUnwrap(affinity.lookup(key, as: junction_lb4_affinity.self))
    XCTAssertEqual(
      entry.backend_id, UInt32(try XCTUnwrap(backendAddresses.firstIndex(of: first)) + 1))
  }

  // MARK: - Extension headers, ICMPv6, malformed headers

  /// bpf/lib/parse6.h walks the chain: the ports come from past it, the headers stay.
  func testAHopByHopAndDestinationOptionsChainIsTranslated() throws {
    try program(backends: [(2, backendAddresses[0], 8080)])
    try program(port: 53, proto: .udp, revNatID: 2, backends: [(3, backendAddresses[0], 5353)])
    for (l4, backendPort) in [(PacketBuilder.L4.tcp, UInt16(8080)), (.udp, 5353)] {
      var packet = request(l4)
      packet.extensions = [.init(type: 0, units: 0), .init(type: 60, units: 1)]
      let input = packet.build()
      XCTAssertEqual(input[20], 0, "hop-by-hop first")

      let result = try ProgramTestRun.run(program: fixture.from, packet: input)

      XCTAssertEqual(result.verdict, .next)
      let out = ParsedFrame6(result.output)
      XCTAssertEqual(out.l4Offset, 54 + 8 + 16)
      XCTAssertEqual(out.destination, backendAddresses[0])
      XCTAssertEqual(out.destinationPort, backendPort)
      XCTAssertTrue(out.l4ChecksumValid, "\(l4)")
      var expected = packet
      expected.destination = backendAddresses[0]
      expected.destinationPort = backendPort
      XCTAssertEqual(result.output, expected.build())

      // And the reply, with a routing header on the way back.
      var answer = PacketBuilder6(l4, from: backendAddresses[0], backendPort, to: client, 40000)
      answer.extensions = [.init(type: 43, units: 0)]
      let back = try ProgramTestRun.run(program: fixture.to, packet: answer.build())
      XCTAssertEqual(ParsedFrame6(back.output).source, vip)
      XCTAssertTrue(ParsedFrame6(back.output).l4ChecksumValid)
    }
  }

  func testNeighborDiscoveryAndPacketTooBigPassUntouched() throws {
    try program(backends: [(2, backendAddresses[0], 8080)])
    let mac: [UInt8] = [0x02, 0, 0, 0, 0, 0x01]
    // NS for the VIP itself, to its solicited-node group; NA answering it; both hop limit 255.
    let solicit = icmp6Frame(
      type: 135, from: client, to: ipv6("ff02::1:ff00:a"),
      body: [0, 0, 0, 0] + vip + [1, 1] + mac, hopLimit: 255)
    let advert = icmp6Frame(
      type: 136, from: backendAddresses[0], to: client,
      body: [0x60, 0, 0, 0] + backendAddresses[0] + [2, 1] + mac, hopLimit: 255)
    // Packet Too Big about the service connection (MTU 1280), quoting its translated packet.
    let quoted = Array(
      PacketBuilder6(.tcp, from: client, 40000, to: backendAddresses[0], 8080).build()[14...])
    let tooBig = icmp6Frame(
      type: 2, from: ipv6("fd00:10:244:2::1"), to: client, body: [0, 0, 5, 0] + quoted,
      hopLimit: 64)
    let echo = icmp6Frame(type: 128, from: client, to: vip, body: [0, 1, 0, 1], hopLimit: 64)
    for frame in [solicit, advert, tooBig, echo] {
      XCTAssertTrue(ParsedFrame6(frame).l4ChecksumValid)
      for program in [fixture.from, fixture.to] {
        let result = try ProgramTestRun.run(program: program, packet: frame)
        XCTAssertEqual(result.verdict, .next, "ICMPv6 type \(frame[54])")
        XCTAssertEqual(result.output, frame, "ICMPv6 type \(frame[54]) untouched")
      }
    }
    XCTAssertEqual(try fixture.conntrack6.keys(as: junction_ct6_key.self).count, 0)
  }

  func testAMalformedIPv6HeaderIsDroppedWithItsReasonCounted() throws {
    try program(backends: [(2, backendAddresses[0], 8080)])
    let full = request().build()
    var wrongVersion = full  // an IPv4 version nibble behind the IPv6 EtherType
    wrongVersion[14] = 0x40
    var longPayload = full  // payload length past the end of the frame
    longPayload[19] &+= 8
    var shortTCP = Array(full[..<64])  // a payload length that agrees, a TCP header of 10
    shortTCP[18] = 0
    shortTCP[19] = 10
    let invalid = [
      Array(full[..<64]),  // the IPv6 header and half a TCP header (payload length says more)
      shortTCP, wrongVersion, longPayload,
    ]
    for frame in invalid {
      XCTAssertEqual(
        try ProgramTestRun.run(program: fixture.from, packet: frame).verdict, .shot,
        "\(frame.count) bytes")
    }
    XCTAssertEqual(
      try fixture.datapath.dropCount(JUNCTION_DROP_INVALID_PACKET, JUNCTION_DIR_FROM_ENDPOINT),
      UInt64(invalid.count))
    // Less than a whole IPv6 header the kernel refuses to even build as a test skb (as for
    // IPv4); the programs still check it (bpf_skb_load_bytes fails: INVALID_PACKET).
    XCTAssertThrowsError(try ProgramTestRun.run(program: fixture.from, packet: Array(full[..<44])))
    {
      XCTAssertEqual(($0 as? BPFError)?.errno, EINVAL)
    }

    // A hop-by-hop header claiming 88 bytes in a frame that has 28 after it, and a chain of
    // five extension headers (one more than the walk follows).
    var cut = request()
    cut.extensions = [.init(type: 0, units: 0)]
    var cutFrame = cut.build()
    cutFrame[55] = 10
    var long = request()
    long.extensions = [
      .init(type: 0), .init(type: 60), .init(type: 43), .init(type: 60), .init(type: 60),
    ]
    for frame in [cutFrame, long.build()] {
      XCTAssertEqual(try ProgramTestRun.run(program: fixture.from, packet: frame).verdict, .shot)
    }
    XCTAssertEqual(
      try fixture.datapath.dropCount(JUNCTION_DROP_INVALID_EXTHDR, JUNCTION_DIR_FROM_ENDPOINT), 2)
    XCTAssertEqual(try ProgramTestRun.run(program: fixture.to, packet: cutFrame).verdict, .shot)
    XCTAssertEqual(
      try fixture.datapath.dropCount(JUNCTION_DROP_INVALID_EXTHDR, JUNCTION_DIR_TO_ENDPOINT), 1)
    // Four headers are walked: the same service packet is translated.
    long.extensions.removeLast()
    let four = try ProgramTestRun.run(program: fixture.from, packet: long.build())
    XCTAssertEqual(four.verdict, .next)
    XCTAssertEqual(ParsedFrame6(four.output).destination, backendAddresses[0])
    XCTAssertTrue(ParsedFrame6(four.output).l4ChecksumValid)
  }

  func testFragmentsPassUntouched() throws {
    try program(port: 53, proto: .udp, backends: [(2, backendAddresses[0], 5353)])
    var first = request(.udp)
    first.extensions = [.init(type: 44, moreFragments: true)]
    var later = request(.udp)
    later.extensions = [.init(type: 44, fragmentOffset: 3)]
    for frame in [first.build(), later.build()] {
      let result = try ProgramTestRun.run(program: fixture.from, packet: frame)
      XCTAssertEqual(result.verdict, .next)
      XCTAssertEqual(result.output, frame)
    }
  }

  /// The two families are two tables: IPv6 traffic never matches an IPv4-only Service, not
  /// even at its IPv4-mapped address, and IPv4 traffic never matches an IPv6 frontend.
  func testAnIPv4OnlyServiceIsNeverMatchedByIPv6() throws {
    var frontend = junction_lb4_service_key()
    frontend.address = be32([10, 96, 0, 10])
    frontend.port = be16(80)
    frontend.proto = 6
    var backend = junction_lb4_backend()
    backend.address = be32([10, 0, 2, 11])
    backend.port = be16(8080)
    backend.proto = 6
    try fixture.datapath.backends.update(junction_lb4_backend_key(backend_id: 9), backend)
    var slot = junction_lb4_service()
    slot.backend_id = 9
    frontend.slot = 1
    try fixture.datapath.services.update(frontend, slot)
    var master = junction_lb4_service()
    master.count = 1
    master.rev_nat_id = 9
    frontend.slot = 0
    try fixture.datapath.services.update(frontend, master)

    let mapped = PacketBuilder6(.tcp, from: client, 40000, to: ipv6("::ffff:10.96.0.10"), 80)
      .build()
    let result = try ProgramTestRun.run(program: fixture.from, packet: mapped)
    XCTAssertEqual(result.verdict, .next)
    XCTAssertEqual(result.output, mapped)
    XCTAssertEqual(try fixture.conntrack6.keys(as: junction_ct6_key.self).count, 0)

    // The IPv4 Service itself still works beside the IPv6 tables.
    let v4 = PacketBuilder(.tcp, from: [10, 0, 1, 5], 40000, to: [10, 96, 0, 10], 80).build()
    let translated = try ProgramTestRun.run(program: fixture.from, packet: v4)
    XCTAssertEqual(ParsedFrame(translated.output).destination, [10, 0, 2, 11])
  }

  /// As for IPv4 (kube-proxy's REJECT): an ICMPv6 port unreachable back to the client, from
  /// the VIP, its checksum over the pseudo-header, counted as NO_BACKEND.
  func testAnIPv6ServiceWithoutBackendsAnswersPortUnreachable() throws {
    try program(backends: [])
    for packet in [
      request(),
      {
        var p = request(sourcePort: 40001)
        p.extensions = [.init(type: 60, units: 1)]
        return p
      }(),
    ] {
      let input = packet.build()
      let result = try ProgramTestRun.run(program: fixture.from, packet: input)
      XCTAssertEqual(result.verdict, .redirect)
      let out = result.output
      let quoteLength = input.count - 14 - (packet.payload.count)  // headers + 20-byte TCP header
      XCTAssertEqual(quoteLength, 40 + 16 * packet.extensions.count + 20)
      let quoted = min(40 + 16 * packet.extensions.count + 8, 128)
      XCTAssertEqual(out.count, 14 + 40 + 8 + quoted)
      XCTAssertEqual(Array(out[0..<6]), Array(input[6..<12]), "back to the sender's MAC")
      XCTAssertEqual(Array(out[12..<14]), [0x86, 0xdd])
      XCTAssertEqual(out[14] >> 4, 6)
      XCTAssertEqual(Int(out[18]) << 8 | Int(out[19]), 8 + quoted)
      XCTAssertEqual(out[20], 58, "ICMPv6")
      let parsed = ParsedFrame6(out)
      XCTAssertEqual(parsed.source, vip, "from the VIP")
      XCTAssertEqual(parsed.destination, client)
      XCTAssertEqual(Array(out[54..<56]), [1, 4], "destination unreachable, port unreachable")
      XCTAssertTrue(parsed.l4ChecksumValid, "ICMPv6 checksum over the pseudo-header")
      XCTAssertEqual(Array(out[62...]), Array(input[14..<(14 + quoted)]), "the quote")
    }
    XCTAssertEqual(
      try fixture.datapath.dropCount(JUNCTION_DROP_NO_BACKEND, JUNCTION_DIR_FROM_ENDPOINT), 2)
    XCTAssertEqual(try fixture.conntrack6.keys(as: junction_ct6_key.self).count, 0)
  }
}
