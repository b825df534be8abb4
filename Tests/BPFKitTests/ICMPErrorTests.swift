import BPFKit
import DatapathABI
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// ICMP and ICMPv6 errors about a translated service connection, translated back on
/// to_endpoint (bpf/lib/icmp_error.h, icmp_error6.h), run with BPF_PROG_TEST_RUN. The
/// connection is made by from_endpoint itself (client -> VIP:port DNATed to backend:8080);
/// the error quotes the translated packet, as the backend's (or a router's) kernel sends it.
/// What comes out must be byte for byte the error the client would have got had it talked to
/// the backend as VIP:port: every checksum (outer IPv4 header, quoted IPv4 header, quoted
/// TCP/UDP, ICMP / ICMPv6 over its pseudo-header) recomputed from scratch in Swift.
final class ICMPErrorTests: EndpointTestCase {
  private let vip: [UInt8] = [10, 96, 0, 10]
  private let client: [UInt8] = [10, 0, 1, 5]
  private let backend: [UInt8] = [10, 0, 2, 11]
  private let router: [UInt8] = [10, 0, 0, 1]

  private let vip6 = ipv6("fd00:96::a")
  private let client6 = ipv6("fd00:10:244:1::5")
  private let backend6 = ipv6("fd00:10:244:2::b")
  private let router6 = ipv6("fd00:10:244::1")

  // MARK: - Services, as the agent programs them (one backend each)

  /// VIP:80/TCP and VIP:53/UDP, both to the backend's port 8080.
  private func programIPv4() throws {
    for (proto, port, id) in [(PacketBuilder.L4.tcp, UInt16(80), UInt16(1)), (.udp, 53, 2)] {
      try fixture.writeBackend(UInt32(id), backend, 8080, proto)
      try fixture.writeFrontend(vip, port, proto, revNatID: id, backendIDs: [UInt32(id)])
    }
  }

  /// The same at [VIP6]:80/TCP and [VIP6]:53/UDP to [backend6]:8080.
  private func programIPv6() throws {
    for (proto, port, id) in [(PacketBuilder.L4.tcp, UInt16(80), UInt16(1)), (.udp, 53, 2)] {
      try fixture.writeBackend6(UInt32(id), backend6, 8080, proto)
      try fixture.writeFrontend6(vip6, port, proto, revNatID: id, backendIDs: [UInt32(id)])
    }
  }

  // MARK: - IPv4

  /// The backend has no socket on the target port: its port unreachable comes back with the
  /// VIP:53 quoted and the VIP as source, so the client's connected socket gets ECONNREFUSED.
  /// Byte for byte the error the client would get from a server at the VIP, for a whole
  /// quoted datagram (as Linux quotes) and for RFC 792's minimal 8 L4 bytes.
  func testAPortUnreachableFromTheBackendComesBackFromTheVIPWithTheVIPQuoted() throws {
    try programIPv4()
    var request = PacketBuilder(.udp, from: client, 40000, to: vip, 53)
    request.payload = Array("a question".utf8)
    XCTAssertEqual(
      try ProgramTestRun.run(program: fixture.from, packet: request.build()).verdict, .next)
    var translated = request
    translated.destination = backend
    translated.destinationPort = 8080

    for length in [nil, 28] {
      let error = icmpFrame(
        type: 3, code: 3, from: backend, to: client, quote: quote(translated.build(), length))
      let result = try ProgramTestRun.run(program: fixture.to, packet: error)

      XCTAssertEqual(result.verdict, .next)
      let expected = icmpFrame(
        type: 3, code: 3, from: vip, to: client, quote: quote(request.build(), length))
      XCTAssertEqual(result.output, expected, "quote of \(length ?? 0) bytes")
      assertIPv4ChecksumsValid(result.output)
      XCTAssertEqual(Array(result.output[26..<30]), vip, "the outer source")
      XCTAssertEqual(Array(result.output[58..<62]), vip, "the quoted destination")
      XCTAssertEqual(Array(result.output[64..<66]), bytes(53), "the quoted destination port")
      if length == nil {
        // The whole datagram is quoted: its UDP checksum is right over client -> VIP:53.
        let parsed = ParsedFrame(ethernet4 + Array(result.output[42...]))
        XCTAssertTrue(parsed.l4ChecksumValid, "the quoted UDP checksum")
        XCTAssertEqual(parsed.destination, vip)
      }
    }
  }

  /// A router's errors (fragmentation needed with its MTU, time exceeded) keep the router
  /// as source; the quote is translated, the quoted TCP checksum too when the quote holds it.
  func testErrorsFromARouterKeepItsSourceAndHaveTheQuoteTranslated() throws {
    try programIPv4()
    let tcp = PacketBuilder(.tcp, from: client, 40000, to: vip, 80)
    let udp = PacketBuilder(.udp, from: client, 40001, to: vip, 53)
    for packet in [tcp, udp] {
      XCTAssertEqual(
        try ProgramTestRun.run(program: fixture.from, packet: packet.build()).verdict, .next)
    }
    let cases: [(PacketBuilder, UInt8, UInt8, [UInt8], Int?)] = [
      (tcp, 3, 4, [0, 0, 0x05, 0x78], nil),  // fragmentation needed, MTU 1400, whole quote
      (tcp, 3, 4, [0, 0, 0x05, 0x78], 28),  // the TCP checksum is not quoted
      (udp, 11, 0, [0, 0, 0, 0], 28),  // time exceeded in transit
    ]
    for (packet, type, code, rest, length) in cases {
      var translated = packet
      translated.destination = backend
      translated.destinationPort = 8080
      let error = icmpFrame(
        type: type, code: code, rest: rest, from: router, to: client,
        quote: quote(translated.build(), length))
      let result = try ProgramTestRun.run(program: fixture.to, packet: error)

      XCTAssertEqual(result.verdict, .next)
      let expected = icmpFrame(
        type: type, code: code, rest: rest, from: router, to: client,
        quote: quote(packet.build(), length))
      XCTAssertEqual(result.output, expected, "type \(type) quote \(length ?? 0)")
      assertIPv4ChecksumsValid(result.output)
      if length == nil {
        let parsed = ParsedFrame(ethernet4 + Array(result.output[42...]))
        XCTAssertTrue(parsed.l4ChecksumValid, "the quoted TCP checksum")
        XCTAssertEqual(parsed.destinationPort, 80)
      }
    }
  }

  /// Errors about connections the datapath did not translate, and ICMP that is no error,
  /// pass byte for byte.
  func testICMPAboutAnUnknownConnectionPassesUntouched() throws {
    try programIPv4()
    XCTAssertEqual(
      try ProgramTestRun.run(
        program: fixture.from, packet: PacketBuilder(.udp, from: client, 40000, to: vip, 53).build()
      ).verdict, .next)
    let frames = [
      // Another client port: no conntrack entry.
      icmpFrame(
        type: 3, code: 3, from: backend, to: client,
        quote: quote(PacketBuilder(.udp, from: client, 40999, to: backend, 8080).build(), 28)),
      // Straight to the backend, never through the VIP.
      icmpFrame(
        type: 3, code: 3, from: backend, to: client,
        quote: quote(PacketBuilder(.tcp, from: client, 40000, to: backend, 8080).build(), 28)),
      // An echo reply from the backend.
      icmpFrame(type: 0, code: 0, rest: [0, 1, 0, 1], from: backend, to: client, quote: []),
    ]
    for frame in frames {
      let result = try ProgramTestRun.run(program: fixture.to, packet: frame)
      XCTAssertEqual(result.verdict, .next)
      XCTAssertEqual(result.output, frame)
    }
  }

  // MARK: - IPv6

  /// The IPv6 twin: ICMPv6 port unreachable (type 1 code 4) from the backend, whose checksum
  /// covers the pseudo-header: the new source (the VIP) is in it.
  func testAnICMPv6PortUnreachableFromTheBackendComesBackFromTheVIP() throws {
    try programIPv6()
    var request = PacketBuilder6(.udp, from: client6, 40000, to: vip6, 53)
    request.payload = Array("a question".utf8)
    XCTAssertEqual(
      try ProgramTestRun.run(program: fixture.from, packet: request.build()).verdict, .next)
    var translated = request
    translated.destination = backend6
    translated.destinationPort = 8080

    for length in [nil, 48] {
      let error = icmp6ErrorFrame(
        type: 1, code: 4, from: backend6, to: client6, quote: quote(translated.build(), length))
      let result = try ProgramTestRun.run(program: fixture.to, packet: error)

      XCTAssertEqual(result.verdict, .next)
      let expected = icmp6ErrorFrame(
        type: 1, code: 4, from: vip6, to: client6, quote: quote(request.build(), length))
      XCTAssertEqual(result.output, expected, "quote of \(length ?? 0) bytes")
      let parsed = ParsedFrame6(result.output)
      XCTAssertEqual(parsed.source, vip6)
      XCTAssertEqual(parsed.nextHeader, 58)
      XCTAssertTrue(parsed.l4ChecksumValid, "ICMPv6 checksum over the new pseudo-header")
      XCTAssertEqual(Array(result.output[86..<102]), vip6, "the quoted destination")
      XCTAssertEqual(Array(result.output[104..<106]), bytes(53))
      if length == nil {
        let quoted = ParsedFrame6(ethernet6() + Array(result.output[62...]))
        XCTAssertTrue(quoted.l4ChecksumValid, "the quoted UDP checksum")
        XCTAssertEqual(quoted.destinationPort, 53)
      }
    }
  }

  /// Packet Too Big from a router about a translated TCP connection: the client learns the
  /// path MTU for the VIP; the router's source stays.
  func testAPacketTooBigFromARouterAboutAnIPv6ServiceConnectionIsTranslated() throws {
    try programIPv6()
    let request = PacketBuilder6(.tcp, from: client6, 40000, to: vip6, 80)
    XCTAssertEqual(
      try ProgramTestRun.run(program: fixture.from, packet: request.build()).verdict, .next)
    var translated = request
    translated.destination = backend6
    translated.destinationPort = 8080
    let mtu: [UInt8] = [0, 0, 0x05, 0x00]

    for length in [nil, 48] {
      let error = icmp6ErrorFrame(
        type: 2, code: 0, rest: mtu, from: router6, to: client6,
        quote: quote(translated.build(), length))
      let result = try ProgramTestRun.run(program: fixture.to, packet: error)

      XCTAssertEqual(result.verdict, .next)
      let expected = icmp6ErrorFrame(
        type: 2, code: 0, rest: mtu, from: router6, to: client6,
        quote: quote(request.build(), length))
      XCTAssertEqual(result.output, expected, "quote of \(length ?? 0) bytes")
      XCTAssertTrue(ParsedFrame6(result.output).l4ChecksumValid, "ICMPv6 checksum")
      if length == nil {
        let quoted = ParsedFrame6(ethernet6() + Array(result.output[62...]))
        XCTAssertTrue(quoted.l4ChecksumValid, "the quoted TCP checksum")
        XCTAssertEqual(quoted.destination, vip6)
      }
    }
  }

  func testICMPv6AboutAnUnknownConnectionPassesUntouched() throws {
    try programIPv6()
    XCTAssertEqual(
      try ProgramTestRun.run(
        program: fixture.from,
        packet: PacketBuilder6(.udp, from: client6, 40000, to: vip6, 53).build()
      ).verdict, .next)
    let frames = [
      icmp6ErrorFrame(
        type: 1, code: 4, from: backend6, to: client6,
        quote: quote(PacketBuilder6(.udp, from: client6, 40999, to: backend6, 8080).build(), 48)),
      icmp6ErrorFrame(
        type: 2, code: 0, rest: [0, 0, 0x05, 0x00], from: router6, to: client6,
        quote: quote(PacketBuilder6(.tcp, from: client6, 40000, to: backend6, 8080).build(), nil)),
      icmp6ErrorFrame(type: 129, code: 0, from: backend6, to: client6, quote: []),
    ]
    for frame in frames {
      let result = try ProgramTestRun.run(program: fixture.to, packet: frame)
      XCTAssertEqual(result.verdict, .next)
      XCTAssertEqual(result.output, frame)
    }
  }

  private let ethernet4: [UInt8] = [0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00]
}
