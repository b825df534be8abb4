import BPFKit
import DatapathABI
import Foundation
import NetKit
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// North-south over IPv6 (bpf/lib/nodeport6.h, reached from from_netdev by a tail call) run
/// with BPF_PROG_TEST_RUN on NetdevFixture's ve0, given IPv6 too: fd00:192::1/64, backends
/// fd00:10:2::/64 via fd00:192::2 and clients fd00:198::/64 via fd00:192::3, both permanent
/// neighbours with the fixture's MACs. Checksums are checked by `Checksum6` (computed from
/// the RFC in Swift, not by the datapath) over the rewritten pseudo-header.
final class NetdevIPv6Tests: XCTestCase {
  private var fixture: NetdevFixture!
  private var datapath: ServiceObject! { fixture.datapath }
  private var from: BPFProgram! { fixture.from }
  private var to: BPFProgram! { fixture.to }

  private let node = ipv6("fd00:192::1")
  private let client = ipv6("fd00:198::5")
  private let backend = ipv6("fd00:10:2::b")
  private let localBackend = ipv6("fd00:10:9::7")
  private let backendGatewayMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0x22]
  private let nodePort: UInt16 = 30080

  override func setUpWithError() throws {
    try requireRoot()
    try makeFixture()
  }

  /// NetdevFixture with IPv6, ve0's device entry carrying the node's IPv6 address.
  private func makeFixture(mapSizes: [String: Int] = [:]) throws {
    fixture?.remove()
    fixture = try NetdevFixture(prefix: "jnc-nd6", mapSizes: mapSizes)
    try fixture.addIPv6()
    var entry = junction_device()
    entry.mtu = UInt32(fixture.device.mtu)
    entry.address6 = be128(node)
    try datapath.object.map(named: JUNCTION_MAP_DEVICES).update(
      junction_device_key(ifindex: UInt32(bitPattern: fixture.device.index)), entry)
  }

  override func tearDown() {
    fixture?.remove()
    fixture = nil
  }

  /// The NodePort [node]:30080 with one remote backend [backend]:8080 (id 5, rev-NAT id 1).
  /// `local`: the backend [local]:8080 on this node instead.
  private func program(proto: PacketBuilder.L4 = .tcp, dsr: Bool, local: Bool = false) throws {
    var entry = junction_lb6_backend()
    entry.address = be128(local ? localBackend : backend)
    entry.flags = local ? UInt8(JUNCTION_BE_F_LOCAL) : 0
    entry.port = be16(8080)
    entry.proto = proto.rawValue
    try datapath.object.map(named: JUNCTION_MAP_LB6_BACKENDS).update(
      junction_lb4_backend_key(backend_id: 5), entry)
    var reverse = junction_lb6_revnat()
    reverse.address = be128(node)
    reverse.port = be16(nodePort)
    try datapath.object.map(named: JUNCTION_MAP_LB6_REVNAT).update(
      junction_lb4_revnat_key(rev_nat_id: 1, pad: 0), reverse)
    let services = try datapath.object.map(named: JUNCTION_MAP_LB6_SERVICES)
    var key = junction_lb6_service_key()
    key.address = be128(node)
    key.port = be16(nodePort)
    key.proto = proto.rawValue
    key.slot = 1
    var slot = junction_lb4_service()
    slot.backend_id = 5
    try services.update(key, slot)
    key.slot = 0
    var frontend = junction_lb4_service()
    frontend.count = 1
    frontend.rev_nat_id = 1
    frontend.flags = UInt16(JUNCTION_SVC_F_EXTERNAL) | UInt16(dsr ? JUNCTION_SVC_F_DSR : 0)
    try services.update(key, frontend)
  }

  private func run(_ program: BPFProgram, _ frame: [UInt8]) throws -> ProgramTestRun.Result {
    try fixture.run(program, frame)
  }

  func testSNATForwardsFromTheNodesIPv6AddressAndTranslatesTheReplyBack() throws {
    for proto in [PacketBuilder.L4.tcp, .udp] {
      try program(proto: proto, dsr: false)
      let request = PacketBuilder6(proto, from: client, 40000, to: node, nodePort)
      let result = try run(from, request.build())

      XCTAssertEqual(result.verdict, .redirect, "\(proto): forwarded by FIB")
      XCTAssertEqual(Array(result.output[0..<6]), backendGatewayMAC)
      let out = ParsedFrame6(result.output)
      XCTAssertEqual(out.destination, backend)
      XCTAssertEqual(out.destinationPort, 8080)
      XCTAssertEqual(out.source, node, "SNAT to the device's IPv6 address")
      XCTAssertTrue((32768...65535).contains(out.sourcePort), "\(out.sourcePort)")
      XCTAssertTrue(out.l4ChecksumValid, "\(proto) checksum over the new pseudo-header")
      XCTAssertEqual(result.output[21], 63, "hop limit decremented")

      var answer = PacketBuilder6(proto, from: backend, 8080, to: node, out.sourcePort)
      answer.tcpFlags = 0x12
      let back = try run(from, answer.build())
      XCTAssertEqual(back.verdict, .redirect, "\(proto): the reply, back to the client")
      let reply = ParsedFrame6(back.output)
      XCTAssertEqual(reply.source, node)
      XCTAssertEqual(reply.sourcePort, nodePort, "from the frontend")
      XCTAssertEqual(reply.destination, client)
      XCTAssertEqual(reply.destinationPort, 40000)
      XCTAssertTrue(reply.l4ChecksumValid, "\(proto) reply checksum")
    }
  }

  func testSNATClaimRefusedByAFullConntrackMapIsCountedAsMapFullNotAsNoFreePort() throws {
    // jnc_ct6 of one entry, taken by another flow: the port claim's insert gets -E2BIG.
    try makeFixture(mapSizes: [JUNCTION_MAP_CT6: 1])
    try program(dsr: false)
    var other = junction_ct6_key()
    other.saddr = be128(ipv6("fd00:198::99"))
    other.daddr = be128(node)
    other.proto = PacketBuilder.L4.tcp.rawValue
    try datapath.object.map(named: JUNCTION_MAP_CT6).update(other, junction_ct6_entry())

    let request = PacketBuilder6(.tcp, from: client, 40000, to: node, nodePort)
    XCTAssertEqual(try run(from, request.build()).verdict, .shot, "refused")
    XCTAssertEqual(
      try datapath.dropCount(JUNCTION_DROP_CT_MAP_FULL, JUNCTION_DIR_FROM_NETDEV), 1,
      "counted as the conntrack map full")
    XCTAssertEqual(
      try datapath.dropCount(JUNCTION_DROP_NO_NAT_PORT, JUNCTION_DIR_FROM_NETDEV), 0,
      "not as no free SNAT port: the range has them all")
  }

  func testDSRInsertsCiliumsDestinationOptionsHeaderOnTheSYN() throws {
    try program(dsr: true)
    let syn = PacketBuilder6(.tcp, from: client, 40000, to: node, nodePort)
    let input = syn.build()
    let result = try run(from, input)

    XCTAssertEqual(result.verdict, .redirect)
    let output = result.output
    XCTAssertEqual(output[20], 60, "next header: destination options")
    let payload = Int(output[18]) << 8 | Int(output[19])
    XCTAssertEqual(payload, (Int(input[18]) << 8 | Int(input[19])) + 24)
    XCTAssertEqual(
      Array(output[54..<78]), [6, 2, 0x1b, 20] + node + bytes(nodePort) + [0, 0],
      "Cilium's dsr_opt_v6: TCP next, length 2, option 0x1b of 20 naming the frontend")
    let out = ParsedFrame6(output)
    XCTAssertEqual(out.source, client, "the client's address kept")
    XCTAssertEqual(out.destination, backend)
    XCTAssertEqual(out.destinationPort, 8080)
    XCTAssertTrue(out.l4ChecksumValid, "the header changes no checksum; DNAT's is right")

    // The backend's node reads it back: the reply leaves with the frontend as source.
    let backendNode = try run(from, output)
    XCTAssertEqual(backendNode.verdict, .next, "up to the pod")
    var answer = PacketBuilder6(.tcp, from: backend, 8080, to: client, 40000)
    answer.tcpFlags = 0x12
    let egress = try run(to, answer.build())
    let reply = ParsedFrame6(egress.output)
    XCTAssertEqual(reply.source, node)
    XCTAssertEqual(reply.sourcePort, nodePort)
    XCTAssertTrue(reply.l4ChecksumValid)

    // A later segment of the connection carries no header.
    let ack = PacketBuilder6(.tcp, from: client, 40000, to: node, nodePort, tcpFlags: 0x10)
    let later = try run(from, ack.build())
    XCTAssertEqual(later.verdict, .redirect)
    XCTAssertEqual(later.output[20], 6, "TCP straight after the IPv6 header")
  }

  func testNeighborDiscoveryPassesTheDeviceUntouched() throws {
    try program(dsr: false)
    let solicitation = icmp6Frame(
      type: 135, from: client, to: ipv6("ff02::1:ff00:1"), body: [0, 0, 0, 0] + node,
      hopLimit: 255)
    let result = try run(from, solicitation)
    XCTAssertEqual(result.verdict, .next)
    XCTAssertEqual(Array(result.output.prefix(solicitation.count)), solicitation)
  }

  // MARK: - ICMPv6 errors about SNAT connections (bpf/lib/icmp_error_ns.h)

  /// The backend's ICMPv6 port unreachable (addressed to the node, quoting
  /// [node]:snatPort -> [backend]:8080) and a router's Packet Too Big (TCP, with its MTU) go
  /// back to the client, forwarded toward it (hop limit one less): the quote
  /// [client]:40000 -> [node]:nodePort, from the frontend when the backend sent it; byte for
  /// byte what a server at the frontend would have sent, the ICMPv6 checksum over the new
  /// pseudo-header and the quoted UDP/TCP checksum checked independently too.
  func testICMPv6ErrorsAboutAnSNATConnectionGoBackToTheClient() throws {
    let router = ipv6("fd00:10:2::1")
    for proto in [PacketBuilder.L4.udp, .tcp] {
      try program(proto: proto, dsr: false)
      var sent = PacketBuilder6(proto, from: client, 40000, to: node, nodePort)
      sent.payload = Array("a question".utf8)
      let forwarded = try run(from, sent.build())
      XCTAssertEqual(forwarded.verdict, .redirect)
      var asForwarded = sent
      asForwarded.hopLimit = 63
      let (type, code, rest, source): (UInt8, UInt8, [UInt8], [UInt8]) =
        proto == .udp ? (1, 4, [0, 0, 0, 0], backend) : (2, 0, [0, 0, 0x05, 0x00], router)

      for length in [nil, 48] {
        let error = icmp6ErrorFrame(
          type: type, code: code, rest: rest, from: source, to: node,
          quote: quote(forwarded.output, length))
        let result = try run(from, error)

        XCTAssertEqual(result.verdict, .redirect, "\(proto) quote \(length ?? 0)")
        XCTAssertEqual(
          Array(result.output[0..<6]), [0x02, 0, 0, 0, 0, 0x33], "to the client's gateway")
        let expected = icmp6ErrorFrame(
          type: type, code: code, rest: rest, from: proto == .udp ? node : router, to: client,
          quote: quote(asForwarded.build(), length), hopLimit: 63)
        XCTAssertEqual(
          Array(result.output[12...]), Array(expected[12...]), "\(proto) quote \(length ?? 0)")
        let parsed = ParsedFrame6(result.output)
        XCTAssertEqual(parsed.destination, client)
        XCTAssertTrue(parsed.l4ChecksumValid, "ICMPv6 checksum over the new pseudo-header")
        if length == nil {
          let quoted = ParsedFrame6(ethernet6() + Array(result.output[62...]))
          XCTAssertTrue(quoted.l4ChecksumValid, "the quoted \(proto) checksum")
          XCTAssertEqual(quoted.destination, node)
          XCTAssertEqual(quoted.destinationPort, nodePort)
        }
      }
    }
  }

  /// An ICMPv6 error about no connection of this node's passes byte for byte.
  func testICMPv6AboutNoSNATConnectionPassesUntouched() throws {
    try program(proto: .udp, dsr: false)
    let error = icmp6ErrorFrame(
      type: 1, code: 4, from: backend, to: node,
      quote: quote(PacketBuilder6(.udp, from: node, 40300, to: backend, 8080).build(), 48))
    let result = try run(from, error)
    XCTAssertEqual(result.verdict, .next)
    XCTAssertEqual(result.output, error)
  }

  /// A backend on this node: its ICMPv6 port unreachable leaves by to_netdev with the
  /// frontend as source and in the quote (the ICMPv6 checksum over the new pseudo-header).
  func testAnICMPv6PortUnreachableFromALocalBackendLeavesFromTheFrontend() throws {
    try program(proto: .udp, dsr: false, local: true)
    let sent = PacketBuilder6(.udp, from: client, 40000, to: node, nodePort)
    let delivered = try run(from, sent.build())
    XCTAssertEqual(delivered.verdict, .next)

    for length in [nil, 48] {
      let error = icmp6ErrorFrame(
        type: 1, code: 4, from: localBackend, to: client, quote: quote(delivered.output, length))
      let result = try run(to, error)
      XCTAssertEqual(result.verdict, .next)
      let expected = icmp6ErrorFrame(
        type: 1, code: 4, from: node, to: client, quote: quote(sent.build(), length))
      XCTAssertEqual(result.output, expected, "quote of \(length ?? 0) bytes")
      XCTAssertTrue(ParsedFrame6(result.output).l4ChecksumValid, "ICMPv6 checksum")
    }
  }

}
