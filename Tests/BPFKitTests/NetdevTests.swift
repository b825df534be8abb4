import BPFKit
import DatapathABI
import Foundation
import NetKit
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// The north-south programs (bpf/netdev.c: from_netdev, to_netdev) run with
/// BPF_PROG_TEST_RUN as if on a node device (NetdevFixture: backends 10.0.2.0/24 via
/// 192.0.2.2, clients 198.51.100.0/24 via 192.0.2.3, with known MAC addresses). Services are
/// written into the maps the way the agent does.
final class NetdevTests: XCTestCase {
  private var fixture: NetdevFixture!
  private var datapath: ServiceObject! { fixture.datapath }
  private var device: NodeDevice! { fixture.device }
  private var from: BPFProgram! { fixture.from }
  private var to: BPFProgram! { fixture.to }
  private var devices: BPFMap!
  private var nodeConfig: BPFMap!

  private let nodeAddress: [UInt8] = [192, 0, 2, 1]
  private let nodeMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0x01]
  private let backendGatewayMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0x22]
  private let clientGatewayMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0x33]
  private let client: [UInt8] = [198, 51, 100, 5]
  private let remoteBackend: [UInt8] = [10, 0, 2, 11]
  private let localBackend: [UInt8] = [10, 0, 9, 7]
  private let nodePort: UInt16 = 30080

  override func setUpWithError() throws {
    try requireRoot()
    fixture = try NetdevFixture(prefix: "jnc-nd")
    devices = try datapath.object.map(named: JUNCTION_MAP_DEVICES)
    nodeConfig = try datapath.object.map(named: JUNCTION_MAP_NODE_CONFIG)
    try writeDevice(mtu: UInt32(device.mtu))
  }

  override func tearDown() {
    fixture?.remove()
    fixture = nil
  }

  // MARK: - Fixtures

  private func writeDevice(mtu: UInt32) throws {
    var entry = junction_device()
    entry.address = be32(device.addresses[0].bytes)
    entry.mtu = mtu
    try devices.update(junction_device_key(ifindex: UInt32(device.index)), entry)
  }

  /// The node's SNAT source port range in jnc_node_cfg.
  private func setSNATPorts(_ ports: ClosedRange<UInt16>) throws {
    var config = junction_node_config()
    config.snat_port_min = ports.lowerBound
    config.snat_port_max = ports.upperBound
    try nodeConfig.update(UInt32(0), config)
  }

  /// One external frontend (node address:nodePort) with one backend; rev_nat_id 1.
  private func program(
    backend: [UInt8], local: Bool, dsr: Bool, proto: PacketBuilder.L4 = .tcp,
    count: UInt16 = 1, external: Bool = true
  ) throws {
    var entry = junction_lb4_backend()
    entry.address = be32(backend)
    entry.port = be16(8080)
    entry.proto = proto.rawValue
    entry.flags = local ? UInt8(JUNCTION_BE_F_LOCAL) : 0
    try datapath.backends.update(junction_lb4_backend_key(backend_id: 5), entry)
    var reverse = junction_lb4_revnat()
    reverse.address = be32(nodeAddress)
    reverse.port = be16(nodePort)
    try datapath.revNat.update(junction_lb4_revnat_key(rev_nat_id: 1, pad: 0), reverse)
    var key = junction_lb4_service_key()
    key.address = be32(nodeAddress)
    key.port = be16(nodePort)
    key.proto = proto.rawValue
    key.slot = 1
    var slot = junction_lb4_service()
    slot.backend_id = 5
    try datapath.services.update(key, slot)
    key.slot = 0
    var frontend = junction_lb4_service()
    frontend.count = count
    frontend.rev_nat_id = 1
    frontend.flags =
      UInt16(external ? JUNCTION_SVC_F_EXTERNAL : 0) | UInt16(dsr ? JUNCTION_SVC_F_DSR : 0)
    try datapath.services.update(key, frontend)
  }

  private func request(_ l4: PacketBuilder.L4 = .tcp, flags: UInt8 = 0x02) -> PacketBuilder {
    PacketBuilder(l4, from: client, 40000, to: nodeAddress, nodePort, tcpFlags: flags)
  }

  /// Runs `program` on `frame` as if it arrived on (from_netdev) or left by (to_netdev) ve0;
  /// `gsoSize`: as a GSO skb whose segments carry that many payload bytes.
  private func run(_ program: BPFProgram, _ frame: [UInt8], gsoSize: UInt32? = nil) throws
    -> ProgramTestRun.Result
  {
    // The segments the kernel would cut: the payload (past 14 + 20 + L4 header) in gsoSize
    // pieces.
    let gso = gsoSize.map { size in
      (size: size, segments: (UInt32(frame.count - 54) + size - 1) / size)
    }
    return try fixture.run(program, frame, gso: gso)
  }

  private func entry(
    _ source: [UInt8], _ sourcePort: UInt16, _ destination: [UInt8], _ destinationPort: UInt16,
    _ direction: junction_ct_direction, _ proto: PacketBuilder.L4 = .tcp
  ) throws -> junction_ct4_entry? {
    let key = ServiceObject.conntrackKey(
      source, sourcePort, destination, destinationPort, proto, direction)
    return try datapath.conntrack.lookup(key, as: junction_ct4_entry.self)
  }

  private func dropCount(_ reason: junction_drop_reason) throws -> UInt64 {
    try datapath.dropCount(reason, JUNCTION_DIR_FROM_NETDEV)
  }

  private func reply(
    from source: [UInt8], _ sourcePort: UInt16, to destination: [UInt8],
    _ destinationPort: UInt16, _ l4: PacketBuilder.L4 = .tcp
  ) -> PacketBuilder {
    PacketBuilder(l4, from: source, sourcePort, to: destination, destinationPort, tcpFlags: 0x12)
  }

  private func macs(_ frame: [UInt8]) -> (destination: [UInt8], source: [UInt8]) {
    (Array(frame[0..<6]), Array(frame[6..<12]))
  }

  private func assertChecksums(_ frame: [UInt8], file: StaticString = #filePath, line: UInt = #line)
  {
    let parsed = ParsedFrame(frame)
    XCTAssertTrue(parsed.ipChecksumValid, "IPv4 header checksum", file: file, line: line)
    XCTAssertTrue(parsed.l4ChecksumValid, "L4 checksum", file: file, line: line)
  }

  // MARK: - Untouched

  func testTrafficThatIsNotNorthSouthPassesUntouched() throws {
    // A ClusterIP-only frontend (no EXTERNAL flag) on the node address: not served here.
    try program(backend: remoteBackend, local: false, dsr: false, external: false)
    var toNode = request()
    toNode.destinationPort = 22
    for frame in [arpFrame(), request().build(), toNode.build()] {
      let result = try run(from, frame)
      XCTAssertEqual(result.verdict, .next)
      XCTAssertEqual(result.output, frame)
      let egress = try run(to, frame)
      XCTAssertEqual(egress.verdict, .next)
      XCTAssertEqual(egress.output, frame)
    }
    XCTAssertTrue(try datapath.conntrack.keys(as: junction_ct4_key.self).isEmpty)
  }

  // MARK: - Local backend

  func testALocalBackendIsDNATedAndItsRepliesGetTheFrontendOnEgress() throws {
    try program(backend: localBackend, local: true, dsr: true)
    let result = try run(from, request().build())
    XCTAssertEqual(result.verdict, .next, "the kernel routes it to the pod")
    let out = ParsedFrame(result.output)
    XCTAssertEqual(out.destination, localBackend)
    XCTAssertEqual(out.destinationPort, 8080)
    XCTAssertEqual(out.source, client, "the client's address is kept")
    assertChecksums(result.output)
    let service = try XCTUnwrap(
      try entry(client, 40000, nodeAddress, nodePort, JUNCTION_CT_SERVICE))
    XCTAssertEqual(service.flags, UInt16(JUNCTION_CT_F_EXTERNAL))
    let back = try XCTUnwrap(try entry(localBackend, 8080, client, 40000, JUNCTION_CT_REPLY))
    XCTAssertEqual(back.flags, UInt16(JUNCTION_CT_F_EXTERNAL))

    let answer = try run(to, reply(from: localBackend, 8080, to: client, 40000).build())
    XCTAssertEqual(answer.verdict, .next)
    XCTAssertEqual(ParsedFrame(answer.output).source, nodeAddress)
    XCTAssertEqual(ParsedFrame(answer.output).sourcePort, nodePort)
    assertChecksums(answer.output)
  }

  func testAFrontendWithoutBackendsOnThisNodeRefuses() throws {
    // externalTrafficPolicy=Local on a node without a local backend: count 0.
    try program(backend: remoteBackend, local: false, dsr: false, count: 0)
    let result = try run(from, request().build())
    XCTAssertEqual(result.verdict, .redirect)
    let frame = result.output
    XCTAssertEqual(frame[14 + 9], 1, "ICMP")
    XCTAssertEqual(Array(frame[26..<30]), nodeAddress)
    XCTAssertEqual(Array(frame[30..<34]), client)
    XCTAssertEqual(Array(frame[34..<36]), [3, 3], "destination unreachable, port unreachable")
    XCTAssertEqual(try dropCount(JUNCTION_DROP_NO_BACKEND), 1)
  }

  // MARK: - SNAT

  func testSNATForwardsFromTheNodeAndTranslatesTheReplyBack() throws {
    try setSNATPorts(40100...40199)
    try program(backend: remoteBackend, local: false, dsr: false)

    let result = try run(from, request().build())
    XCTAssertEqual(result.verdict, .redirect, "forwarded by FIB, not up the stack")
    XCTAssertEqual(macs(result.output).destination, backendGatewayMAC)
    XCTAssertEqual(macs(result.output).source, nodeMAC)
    let out = ParsedFrame(result.output)
    XCTAssertEqual(out.source, nodeAddress)
    XCTAssertTrue((40100...40199).contains(out.sourcePort), "\(out.sourcePort)")
    XCTAssertEqual(out.destination, remoteBackend)
    XCTAssertEqual(out.destinationPort, 8080)
    assertChecksums(result.output)
    XCTAssertEqual(result.output[14 + 8], 63, "TTL decremented, as a router would")
    let natPort = out.sourcePort
    let service = try XCTUnwrap(
      try entry(client, 40000, nodeAddress, nodePort, JUNCTION_CT_SERVICE))
    XCTAssertEqual(service.flags, UInt16(JUNCTION_CT_F_SNAT))
    XCTAssertEqual(service.nat_address, be32(nodeAddress))
    XCTAssertEqual(service.nat_port, be16(natPort))
    let back = try XCTUnwrap(
      try entry(remoteBackend, 8080, nodeAddress, natPort, JUNCTION_CT_REPLY))
    XCTAssertEqual(back.nat_address, be32(client))
    XCTAssertEqual(back.nat_port, be16(40000))

    // The rest of the connection keeps its port.
    let next = try run(from, request(flags: 0x10).build())
    XCTAssertEqual(ParsedFrame(next.output).sourcePort, natPort)

    let answer = try run(from, reply(from: remoteBackend, 8080, to: nodeAddress, natPort).build())
    XCTAssertEqual(answer.verdict, .redirect)
    XCTAssertEqual(macs(answer.output).destination, clientGatewayMAC)
    let translated = ParsedFrame(answer.output)
    XCTAssertEqual(translated.source, nodeAddress)
    XCTAssertEqual(translated.sourcePort, nodePort)
    XCTAssertEqual(translated.destination, client)
    XCTAssertEqual(translated.destinationPort, 40000)
    assertChecksums(answer.output)
  }

  func testAForwardedPacketWhoseTTLRunsOutIsDropped() throws {
    try program(backend: remoteBackend, local: false, dsr: true)
    var syn = request()
    syn.ttl = 1
    XCTAssertEqual(try run(from, syn.build()).verdict, .shot)
    XCTAssertEqual(try dropCount(JUNCTION_DROP_FIB_FAILED), 1)
  }

  func testSNATDropsWhenNoSourcePortIsFree() throws {
    try setSNATPorts(40100...40100)
    try program(backend: remoteBackend, local: false, dsr: false, proto: .udp)
    XCTAssertEqual(try run(from, request(.udp).build()).verdict, .redirect)
    var second = request(.udp)
    second.sourcePort = 40001
    let refused = try run(from, second.build())
    XCTAssertEqual(refused.verdict, .shot)
    XCTAssertEqual(try dropCount(JUNCTION_DROP_NO_NAT_PORT), 1)
  }

  // MARK: - SNAT ports of finished connections

  /// Makes the connection holding the SNAT port `natPort` look idle for `seconds`, as if
  /// that much time had passed since its last packet either way: its REPLY entry and its
  /// SERVICE entry (bpf_ktime_get_ns is CLOCK_MONOTONIC). `replyOnly`: the client's side
  /// stays fresh, as in a flow whose packets only go one way.
  private func age(
    natPort: UInt16, by seconds: UInt64, _ proto: PacketBuilder.L4 = .tcp, replyOnly: Bool = false
  ) throws {
    let past = DatapathClock.ago(seconds: seconds)
    let replyKey = ServiceObject.conntrackKey(
      remoteBackend, 8080, nodeAddress, natPort, proto, JUNCTION_CT_REPLY)
    var reply = try XCTUnwrap(try datapath.conntrack.lookup(replyKey, as: junction_ct4_entry.self))
    reply.last_seen = past
    try datapath.conntrack.update(replyKey, reply)
    if replyOnly { return }
    let serviceKey = ServiceObject.conntrackKey(
      client, UInt16(bigEndian: reply.nat_port), nodeAddress, nodePort, proto,
      JUNCTION_CT_SERVICE)
    var service = try XCTUnwrap(
      try datapath.conntrack.lookup(serviceKey, as: junction_ct4_entry.self))
    service.last_seen = past
    try datapath.conntrack.update(serviceKey, service)
  }

  /// SNAT with the single source port 40100, so a second connection needs the first's port.
  private func programOneSNATPort(_ proto: PacketBuilder.L4 = .tcp) throws {
    try setSNATPorts(40100...40100)
    try program(backend: remoteBackend, local: false, dsr: false, proto: proto)
  }

  private func isClosing(_ entry: junction_ct4_entry?) -> Bool {
    (entry?.flags ?? 0) & UInt16(JUNCTION_CT_F_CLOSING) != 0
  }

  func testAClosedConnectionsPortIsClaimedAgainAfterTheCloseTimeout() throws {
    try programOneSNATPort()
    XCTAssertEqual(try run(from, request().build()).verdict, .redirect)
    XCTAssertFalse(isClosing(try entry(client, 40000, nodeAddress, nodePort, JUNCTION_CT_SERVICE)))
    XCTAssertEqual(try run(from, request(flags: 0x11).build()).verdict, .redirect, "FIN-ACK")
    XCTAssertTrue(isClosing(try entry(client, 40000, nodeAddress, nodePort, JUNCTION_CT_SERVICE)))
    XCTAssertTrue(isClosing(try entry(remoteBackend, 8080, nodeAddress, 40100, JUNCTION_CT_REPLY)))

    var next = request()
    next.sourcePort = 40001
    XCTAssertEqual(try run(from, next.build()).verdict, .shot, "closed 0 s ago: still held")
    XCTAssertEqual(try dropCount(JUNCTION_DROP_NO_NAT_PORT), 1)

    try age(natPort: 40100, by: 11)
    let reused = try run(from, next.build())
    XCTAssertEqual(reused.verdict, .redirect)
    XCTAssertEqual(ParsedFrame(reused.output).sourcePort, 40100)
    let reply = try XCTUnwrap(
      try entry(remoteBackend, 8080, nodeAddress, 40100, JUNCTION_CT_REPLY))
    XCTAssertEqual(reply.nat_port, be16(40001), "the port now answers to the new connection")
    XCTAssertFalse(isClosing(reply))
    XCTAssertNil(
      try entry(client, 40000, nodeAddress, nodePort, JUNCTION_CT_SERVICE),
      "the old connection's entry no longer leads to the port")
    XCTAssertEqual(try dropCount(JUNCTION_DROP_NO_NAT_PORT), 1)
  }

  func testTheBackendsFINMarksTheConnectionClosing() throws {
    try programOneSNATPort()
    XCTAssertEqual(try run(from, request().build()).verdict, .redirect)
    var fin = reply(from: remoteBackend, 8080, to: nodeAddress, 40100)
    fin.tcpFlags = 0x11
    XCTAssertEqual(try run(from, fin.build()).verdict, .redirect)
    XCTAssertTrue(isClosing(try entry(client, 40000, nodeAddress, nodePort, JUNCTION_CT_SERVICE)))
    XCTAssertTrue(isClosing(try entry(remoteBackend, 8080, nodeAddress, 40100, JUNCTION_CT_REPLY)))
  }

  func testAnOpenConnectionKeepsItsPortWhileIdle() throws {
    try programOneSNATPort()
    XCTAssertEqual(try run(from, request().build()).verdict, .redirect)
    XCTAssertEqual(try run(from, request(flags: 0x10).build()).verdict, .redirect, "ACK")
    // Far past the close timeout, far below 6 h; a minute, so that a machine booted a
    // minute ago can hold that age (DatapathClock).
    try age(natPort: 40100, by: 61)
    var next = request()
    next.sourcePort = 40001
    XCTAssertEqual(try run(from, next.build()).verdict, .shot)
    XCTAssertEqual(try dropCount(JUNCTION_DROP_NO_NAT_PORT), 1)
    let reply = try XCTUnwrap(
      try entry(remoteBackend, 8080, nodeAddress, 40100, JUNCTION_CT_REPLY))
    XCTAssertEqual(reply.nat_port, be16(40000), "still the first connection's")
  }

  func testAUDPFlowsPortIsClaimedAgainAfterAMinuteIdle() throws {
    try programOneSNATPort(.udp)
    XCTAssertEqual(try run(from, request(.udp).build()).verdict, .redirect)
    var next = request(.udp)
    next.sourcePort = 40001
    try age(natPort: 40100, by: 30, .udp)
    XCTAssertEqual(try run(from, next.build()).verdict, .shot, "idle 30 s: still held")
    try age(natPort: 40100, by: 61, .udp, replyOnly: true)
    XCTAssertEqual(
      try run(from, next.build()).verdict, .shot, "the client still sends: a one-way flow")
    try age(natPort: 40100, by: 61, .udp)
    let reused = try run(from, next.build())
    XCTAssertEqual(reused.verdict, .redirect)
    XCTAssertEqual(ParsedFrame(reused.output).sourcePort, 40100)
    let reply = try XCTUnwrap(
      try entry(remoteBackend, 8080, nodeAddress, 40100, JUNCTION_CT_REPLY, .udp))
    XCTAssertEqual(reply.nat_port, be16(40001))
  }

  func testASYNOnAClosingConnectionStartsANewOneWithItsOwnPort() throws {
    try setSNATPorts(40100...40101)
    try program(backend: remoteBackend, local: false, dsr: false)
    let first = ParsedFrame(try run(from, request().build()).output).sourcePort
    XCTAssertEqual(try run(from, request(flags: 0x04).build()).verdict, .redirect, "RST")
    XCTAssertTrue(isClosing(try entry(client, 40000, nodeAddress, nodePort, JUNCTION_CT_SERVICE)))

    // The same client port again: a new connection, not the old half-closed mapping.
    let again = try run(from, request().build())
    XCTAssertEqual(again.verdict, .redirect)
    let second = ParsedFrame(again.output).sourcePort
    XCTAssertNotEqual(second, first, "the first port is still held by the closed connection")
    let service = try XCTUnwrap(
      try entry(client, 40000, nodeAddress, nodePort, JUNCTION_CT_SERVICE))
    XCTAssertFalse(isClosing(service))
    XCTAssertEqual(service.nat_port, be16(second))
  }

  // MARK: - Packets larger than the MTU (GRO/GSO)

  /// A TCP segment of the client's established connection carrying `payload` bytes
  /// (ACK, no SYN); or the backend's answer to node:natPort.
  private func bulk(_ payload: Int, reply natPort: UInt16? = nil) -> [UInt8] {
    var packet =
      natPort.map { reply(from: remoteBackend, 8080, to: nodeAddress, $0) }
      ?? request(flags: 0x10)
    packet.tcpFlags = 0x10
    packet.payload = [UInt8](repeating: 0x61, count: payload)
    return packet.build()
  }

  /// The ICMP fragmentation-needed answer in `result`: to `destination`, its next-hop MTU.
  private func fragmentationNeeded(
    _ result: ProgramTestRun.Result, to destination: [UInt8], file: StaticString = #filePath,
    line: UInt = #line
  ) -> UInt16? {
    let frame = result.output
    XCTAssertEqual(result.verdict, .redirect, file: file, line: line)
    guard frame.count >= 42, frame[14 + 9] == 1 else {
      XCTFail("not ICMP: \(frame.prefix(42))", file: file, line: line)
      return nil
    }
    XCTAssertEqual(Array(frame[30..<34]), destination, file: file, line: line)
    XCTAssertEqual(Array(frame[34..<36]), [3, 4], "fragmentation needed", file: file, line: line)
    return UInt16(frame[40]) << 8 | UInt16(frame[41])
  }

  /// Runs `frame` through from_netdev as a GSO skb of 1448-byte payload segments (1488 bytes
  /// on the wire each) and checks that it left whole for `gatewayMAC`, checksums intact, no
  /// drop counted: what it left as.
  private func forwardedAsGSO(
    _ frame: [UInt8], via gatewayMAC: [UInt8], file: StaticString = #filePath, line: UInt = #line
  ) throws -> ParsedFrame {
    let result = try run(from, frame, gsoSize: 1448)
    XCTAssertEqual(result.verdict, .redirect, "not dropped as FIB_FAILED", file: file, line: line)
    XCTAssertEqual(result.output.count, frame.count, file: file, line: line)
    XCTAssertEqual(macs(result.output).destination, gatewayMAC, file: file, line: line)
    assertChecksums(result.output, file: file, line: line)
    XCTAssertEqual(try dropCount(JUNCTION_DROP_FIB_FAILED), 0, file: file, line: line)
    XCTAssertEqual(try dropCount(JUNCTION_DROP_FRAG_NEEDED), 0, file: file, line: line)
    return ParsedFrame(result.output)
  }

  func testSNATForwardsAGSOPacketLargerThanTheMTUWhoseSegmentsFitBothWays() throws {
    try setSNATPorts(40100...40100)
    try program(backend: remoteBackend, local: false, dsr: false)
    XCTAssertEqual(try run(from, request().build()).verdict, .redirect)

    // 2 x 1448 payload bytes: 2950 bytes in all, two segments of 1488 on the wire.
    let upload = try forwardedAsGSO(bulk(2 * 1448), via: backendGatewayMAC)
    XCTAssertEqual(upload.destination, remoteBackend)
    XCTAssertEqual(upload.sourcePort, 40100)
    let download = try forwardedAsGSO(bulk(2 * 1448, reply: 40100), via: clientGatewayMAC)
    XCTAssertEqual(download.destination, client)
    XCTAssertEqual(download.sourcePort, nodePort)
  }

  func testSNATRefusesAPacketLargerThanTheMTUWithFragmentationNeeded() throws {
    try setSNATPorts(40100...40100)
    try program(backend: remoteBackend, local: false, dsr: false)
    XCTAssertEqual(try run(from, request().build()).verdict, .redirect)
    XCTAssertEqual(device.mtu, 1500)

    // Not GSO: 1501 bytes of IPv4 leave as they are, one byte too many. The client learns
    // the route's MTU from the frontend it asked.
    let tooLarge = try run(from, bulk(1501 - 40))
    XCTAssertEqual(fragmentationNeeded(tooLarge, to: client), 1500)
    XCTAssertEqual(Array(tooLarge.output[26..<30]), nodeAddress)
    // The backend's reply too: the backend learns it, from the node address it talks to.
    let answer = try run(from, bulk(1501 - 40, reply: 40100))
    XCTAssertEqual(fragmentationNeeded(answer, to: remoteBackend), 1500)
    // GSO whose segments do not fit (coalesced where the MTU is larger): 1540-byte segments.
    let segments = try run(from, bulk(2 * 1500), gsoSize: 1500)
    XCTAssertEqual(fragmentationNeeded(segments, to: client), 1500)
    XCTAssertEqual(try dropCount(JUNCTION_DROP_FRAG_NEEDED), 3)
    XCTAssertEqual(try dropCount(JUNCTION_DROP_FIB_FAILED), 0)

    // Exactly the MTU passes.
    XCTAssertEqual(try run(from, bulk(1500 - 40)).verdict, .redirect)
  }

  // MARK: - DSR

  /// The option bytes after the fixed IPv4 header of `frame`, when ihl says there are some.
  private func dsrOption(_ frame: [UInt8]) -> [UInt8]? {
    frame[14] & 0x0f >= 7 ? Array(frame[34..<42]) : nil
  }

  func testDSRPutsTheFrontendInAnOptionOnTheSYNOnly() throws {
    try program(backend: remoteBackend, local: false, dsr: true)
    let syn = request().build()
    let result = try run(from, syn)
    XCTAssertEqual(result.verdict, .redirect)
    XCTAssertEqual(macs(result.output).destination, backendGatewayMAC)
    XCTAssertEqual(result.output.count, syn.count + 8)
    XCTAssertEqual(result.output[14], 0x47, "IPv4, ihl 7")
    XCTAssertEqual(
      dsrOption(result.output), [0x9a, 8] + bytes(nodePort) + nodeAddress,
      "type 0x9a, length 8, the frontend's port and address")
    let out = ParsedFrame(result.output)
    XCTAssertEqual(out.source, client, "the client's address is kept")
    XCTAssertEqual(out.sourcePort, 40000)
    XCTAssertEqual(out.destination, remoteBackend)
    XCTAssertEqual(out.destinationPort, 8080)
    assertChecksums(result.output)
    let service = try XCTUnwrap(
      try entry(client, 40000, nodeAddress, nodePort, JUNCTION_CT_SERVICE))
    XCTAssertEqual(service.flags, UInt16(JUNCTION_CT_F_DSR))
    XCTAssertNil(try entry(remoteBackend, 8080, client, 40000, JUNCTION_CT_REPLY))

    let ack = try run(from, request(flags: 0x10).build())
    XCTAssertEqual(ack.verdict, .redirect)
    XCTAssertNil(dsrOption(ack.output), "only the SYN carries it")
    XCTAssertEqual(ParsedFrame(ack.output).destination, remoteBackend)
    assertChecksums(ack.output)
  }

  func testDSRPutsTheOptionOnEveryUDPDatagram() throws {
    try program(backend: remoteBackend, local: false, dsr: true, proto: .udp)
    for _ in 0..<2 {
      let result = try run(from, request(.udp).build())
      XCTAssertEqual(result.verdict, .redirect)
      XCTAssertEqual(dsrOption(result.output), [0x9a, 8] + bytes(nodePort) + nodeAddress)
      assertChecksums(result.output)
    }
  }

  func testDSRDropsASYNWhoseHeaderHasNoRoomForTheOption() throws {
    try program(backend: remoteBackend, local: false, dsr: true)
    var syn = request()
    syn.options = [UInt8](repeating: 1, count: 36)  // NOPs: a 56-byte header
    let result = try run(from, syn.build())
    XCTAssertEqual(result.verdict, .shot)
    XCTAssertEqual(try dropCount(JUNCTION_DROP_NAT_FAILED), 1)
    syn.options = [UInt8](repeating: 1, count: 32)  // 52 bytes: 60 with the option
    syn.sourcePort = 40001
    let fits = try run(from, syn.build())
    XCTAssertEqual(fits.verdict, .redirect)
    XCTAssertEqual(fits.output[14], 0x4f, "ihl 15")
    XCTAssertEqual(dsrOption(fits.output), [0x9a, 8] + bytes(nodePort) + nodeAddress)
    assertChecksums(fits.output)
  }

  func testDSRAnswersFragmentationNeededWhenTheOptionWouldNotFit() throws {
    try program(backend: remoteBackend, local: false, dsr: true, proto: .udp)
    let datagram = request(.udp).build()
    // The datagram fits the MTU exactly; with the option it would not.
    try writeDevice(mtu: UInt32(datagram.count - 14))
    let result = try run(from, datagram)
    XCTAssertEqual(result.verdict, .redirect)
    let frame = result.output
    XCTAssertEqual(frame[14 + 9], 1, "ICMP")
    XCTAssertEqual(Array(frame[30..<34]), client)
    XCTAssertEqual(Array(frame[34..<36]), [3, 4], "destination unreachable, fragmentation needed")
    XCTAssertEqual(Array(frame[40..<42]), bytes(UInt16(datagram.count - 14 - 8)), "next-hop MTU")
    XCTAssertEqual(try dropCount(JUNCTION_DROP_FRAG_NEEDED), 1)
  }

  func testDSRForwardsAGSOPacketLargerThanTheMTUWhoseSegmentsFit() throws {
    try program(backend: remoteBackend, local: false, dsr: true)
    XCTAssertEqual(try run(from, request().build()).verdict, .redirect)
    // Same length out: no option after the SYN.
    let upload = try forwardedAsGSO(bulk(2 * 1448), via: backendGatewayMAC)
    XCTAssertEqual(upload.destination, remoteBackend)
    XCTAssertEqual(upload.source, client)
  }

  /// A UDP GSO skb gets the option on every datagram: each must still fit with it. (One
  /// whose datagrams fit cannot be run here: the option's bpf_skb_adjust_room needs the
  /// skb's gso_type, which a test run leaves 0; NorthSouthBulkTests covers TCP end to end.)
  func testDSRAnswersFragmentationNeededForAUDPGSOWhoseDatagramsWithTheOptionDoNotFit() throws {
    try program(backend: remoteBackend, local: false, dsr: true, proto: .udp)
    var datagrams = request(.udp)
    datagrams.payload = [UInt8](repeating: 0x61, count: 2 * 1472)
    // Each datagram is 1500 bytes, the MTU exactly; 1508 with the option.
    let result = try run(from, datagrams.build(), gsoSize: 1472)
    XCTAssertEqual(fragmentationNeeded(result, to: client), 1500 - 8)
    XCTAssertEqual(try dropCount(JUNCTION_DROP_FRAG_NEEDED), 1)
    XCTAssertEqual(try dropCount(JUNCTION_DROP_FIB_FAILED), 0)
  }

  func testTheBackendsNodeSendsRepliesFromTheFrontendTheOptionNamed() throws {
    let frontend: [UInt8] = [192, 0, 2, 50]
    var request = request()
    request.destination = remoteBackend
    request.destinationPort = 8080
    request.options = [0x9a, 8] + bytes(nodePort) + frontend
    let frame = request.build()
    let result = try run(from, frame)
    XCTAssertEqual(result.verdict, .next)
    XCTAssertEqual(result.output, frame, "passed to the pod as it came")
    let recorded = try XCTUnwrap(try entry(remoteBackend, 8080, client, 40000, JUNCTION_CT_REPLY))
    XCTAssertEqual(recorded.flags, UInt16(JUNCTION_CT_F_DSR))
    XCTAssertEqual(recorded.nat_address, be32(frontend))
    XCTAssertEqual(recorded.nat_port, be16(nodePort))

    let answer = try run(to, reply(from: remoteBackend, 8080, to: client, 40000).build())
    XCTAssertEqual(answer.verdict, .next)
    let out = ParsedFrame(answer.output)
    XCTAssertEqual(out.source, frontend)
    XCTAssertEqual(out.sourcePort, nodePort)
    XCTAssertEqual(out.destination, client)
    assertChecksums(answer.output)
  }

  // MARK: - ICMP errors about SNAT connections (bpf/lib/icmp_error_ns.h)

  /// Runs `frame` (an ICMP error arriving on ve0) through from_netdev and checks it comes out
  /// redirected toward the client as `expected` (its MACs then the route's; TTL one less,
  /// as a router's), every checksum checked independently too.
  private func assertTranslated(
    _ frame: [UInt8], _ expected: [UInt8], _ message: String, file: StaticString = #filePath,
    line: UInt = #line
  ) throws {
    let result = try run(from, frame)
    XCTAssertEqual(result.verdict, .redirect, message, file: file, line: line)
    XCTAssertEqual(macs(result.output).destination, clientGatewayMAC, file: file, line: line)
    XCTAssertEqual(macs(result.output).source, nodeMAC, file: file, line: line)
    XCTAssertEqual(
      Array(result.output[12...]), Array(expected[12...]), message, file: file, line: line)
    assertIPv4ChecksumsValid(result.output, file: file, line: line)
  }

  /// The remote backend has no socket on its port: its port unreachable, addressed to the
  /// node and quoting node:snatPort -> backend:8080, goes back to the client from the
  /// frontend, quoting client:40000 -> node:nodePort: byte for byte what a server at the
  /// frontend would have sent (with the TTL the node took from the quoted datagram), for a
  /// whole quoted datagram (its UDP checksum fixed too) and for RFC 792's 8 L4 bytes.
  func testAPortUnreachableFromTheBackendOfAnSNATConnectionGoesBackToTheClient() throws {
    try setSNATPorts(40100...40199)
    try program(backend: remoteBackend, local: false, dsr: false, proto: .udp)
    var sent = request(.udp)
    sent.payload = Array("a question".utf8)
    let forwarded = try run(from, sent.build())
    XCTAssertEqual(forwarded.verdict, .redirect)
    var asForwarded = sent
    asForwarded.ttl = 63

    for length in [nil, 28] {
      let error = icmpFrame(
        type: 3, code: 3, from: remoteBackend, to: nodeAddress,
        quote: quote(forwarded.output, length))
      let expected = icmpFrame(
        type: 3, code: 3, from: nodeAddress, to: client,
        quote: quote(asForwarded.build(), length), ttl: 63)
      try assertTranslated(error, expected, "quote of \(length ?? 0) bytes")
    }
  }

  /// A router between the node and the backend: fragmentation needed (TCP, with its MTU)
  /// and time exceeded keep the router as source; the rest is translated as above.
  func testAnErrorFromARouterOnTheWayToTheBackendKeepsItsSource() throws {
    try setSNATPorts(40100...40199)
    let router: [UInt8] = [10, 0, 2, 1]
    for proto in [PacketBuilder.L4.tcp, .udp] {
      try program(backend: remoteBackend, local: false, dsr: false, proto: proto)
      var sent = request(proto)
      sent.sourcePort = proto == .tcp ? 40000 : 40001
      let forwarded = try run(from, sent.build())
      XCTAssertEqual(forwarded.verdict, .redirect)
      var asForwarded = sent
      asForwarded.ttl = 63
      let (type, code, rest): (UInt8, UInt8, [UInt8]) =
        proto == .tcp ? (3, 4, [0, 0, 0x05, 0x78]) : (11, 0, [0, 0, 0, 0])

      for length in [nil, 28] {
        let error = icmpFrame(
          type: type, code: code, rest: rest, from: router, to: nodeAddress,
          quote: quote(forwarded.output, length))
        let expected = icmpFrame(
          type: type, code: code, rest: rest, from: router, to: client,
          quote: quote(asForwarded.build(), length), ttl: 63)
        try assertTranslated(error, expected, "\(proto) quote of \(length ?? 0) bytes")
        if length == nil {
          let result = try run(from, error)
          let quoted = ParsedFrame(Array(result.output[0..<14]) + Array(result.output[42...]))
          XCTAssertTrue(quoted.l4ChecksumValid, "the quoted \(proto) checksum")
        }
      }
    }
  }

  /// An error about no connection of this node's (another SNAT port), and ICMP that is no
  /// error, pass byte for byte.
  func testICMPAboutNoSNATConnectionPassesUntouched() throws {
    try setSNATPorts(40100...40199)
    try program(backend: remoteBackend, local: false, dsr: false, proto: .udp)
    XCTAssertEqual(try run(from, request(.udp).build()).verdict, .redirect)
    let frames = [
      icmpFrame(
        type: 3, code: 3, from: remoteBackend, to: nodeAddress,
        quote: quote(
          PacketBuilder(.udp, from: nodeAddress, 40300, to: remoteBackend, 8080).build(), 28)),
      icmpFrame(type: 8, code: 0, rest: [0, 1, 0, 1], from: client, to: nodeAddress, quote: []),
    ]
    for frame in frames {
      let result = try run(from, frame)
      XCTAssertEqual(result.verdict, .next)
      XCTAssertEqual(result.output, frame)
    }
  }

  /// A backend on this node (the client's address kept): its port unreachable leaves by
  /// to_netdev from the pod, quoting client:40000 -> pod:8080; it gets the frontend back as
  /// source and in the quote, byte for byte what a server at the frontend would have sent.
  func testAPortUnreachableFromALocalBackendLeavesFromTheFrontend() throws {
    try program(backend: localBackend, local: true, dsr: false, proto: .udp)
    let sent = request(.udp)
    let delivered = try run(from, sent.build())
    XCTAssertEqual(delivered.verdict, .next)

    for length in [nil, 28] {
      let error = icmpFrame(
        type: 3, code: 3, from: localBackend, to: client, quote: quote(delivered.output, length))
      let result = try run(to, error)
      XCTAssertEqual(result.verdict, .next)
      let expected = icmpFrame(
        type: 3, code: 3, from: nodeAddress, to: client, quote: quote(sent.build(), length))
      XCTAssertEqual(result.output, expected, "quote of \(length ?? 0) bytes")
      assertIPv4ChecksumsValid(result.output)
    }
  }

}
