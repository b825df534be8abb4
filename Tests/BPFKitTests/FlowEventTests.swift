import BPFKit
import DatapathABI
import XCTest

/// The datapath's flow events (bpf/lib/events.h) as the agent's consumer reads them: the
/// endpoint programs run with BPF_PROG_TEST_RUN, the jnc_events ring read with
/// BPFRingBuffer, the level set in jnc_mon_cfg as the agent does.
final class FlowEventTests: XCTestCase {
  private var datapath: ServiceObject!
  private var from: BPFProgram!
  private var to: BPFProgram!
  private var ring: BPFRingBuffer!
  private var received: [junction_flow_event] = []

  private let vip: [UInt8] = [10, 96, 0, 20]
  private let client: [UInt8] = [10, 0, 1, 5]
  private let backend: [UInt8] = [10, 0, 2, 11]

  override func setUpWithError() throws {
    try requireRoot()
    datapath = try ServiceObject(path: try DatapathBuild.endpointObject())
    from = try datapath.object.program(named: JUNCTION_PROG_FROM_ENDPOINT)
    to = try datapath.object.program(named: JUNCTION_PROG_TO_ENDPOINT)
    ring = try BPFRingBuffer(map: try datapath.object.map(named: JUNCTION_MAP_EVENTS)) {
      [unowned self] bytes in
      XCTAssertEqual(bytes.count, MemoryLayout<junction_flow_event>.size)
      received.append(bytes.loadUnaligned(as: junction_flow_event.self))
    }
  }

  override func tearDown() {
    ring = nil
    let bpffs = datapath?.bpffs
    datapath = nil
    bpffs?.remove()
  }

  private func setLevel(_ level: junction_monitor_level) throws {
    try datapath.object.map(named: JUNCTION_MAP_MONITOR_CONFIG).update(
      UInt32(0), junction_monitor_config(level: level.rawValue, pad: 0))
  }

  /// One backend 10.0.2.11:8080 behind 10.96.0.20:80/TCP, rev-NAT id 7; `flags`: the
  /// frontend's JUNCTION_SVC_F_*.
  private func programService(backends: Int = 1, flags: UInt16 = 0) throws {
    var key = junction_lb4_service_key()
    key.address = be32(vip)
    key.port = be16(80)
    key.proto = PacketBuilder.L4.tcp.rawValue
    if backends > 0 {
      var entry = junction_lb4_backend()
      entry.address = be32(backend)
      entry.port = be16(8080)
      entry.proto = key.proto
      try datapath.backends.update(junction_lb4_backend_key(backend_id: 1), entry)
      var slot = junction_lb4_service()
      slot.backend_id = 1
      key.slot = 1
      try datapath.services.update(key, slot)
      key.slot = 0
    }
    var reverse = junction_lb4_revnat()
    reverse.address = be32(vip)
    reverse.port = be16(80)
    try datapath.revNat.update(junction_lb4_revnat_key(rev_nat_id: 7, pad: 0), reverse)
    var frontend = junction_lb4_service()
    frontend.count = UInt16(backends)
    frontend.rev_nat_id = 7
    frontend.flags = flags
    try datapath.services.update(key, frontend)
  }

  private func events() throws -> [junction_flow_event] {
    try ring.consume()
    defer { received = [] }
    return received
  }

  private func lost() throws -> UInt64 {
    try datapath.object.map(named: JUNCTION_MAP_EVENTS_LOST).lookupSum(
      UInt32(0), as: junction_events_lost.self)?.events ?? 0
  }

  private func send(_ program: BPFProgram, _ packet: PacketBuilder, repeat count: UInt32 = 1)
    throws
  {
    _ = try ProgramTestRun.run(program: program, packet: packet.build(), repeat: count)
  }

  func testAConnectionWritesItsSYNWithTheTranslationAndItsFINButNotItsEstablishedPackets()
    throws
  {
    try programService()
    try setLevel(JUNCTION_MONITOR_FLOWS)
    try send(from, PacketBuilder(.tcp, from: client, 40000, to: vip, 80, tcpFlags: 0x02))
    try send(from, PacketBuilder(.tcp, from: client, 40000, to: vip, 80, tcpFlags: 0x10))
    try send(from, PacketBuilder(.tcp, from: client, 40000, to: vip, 80, tcpFlags: 0x18))
    // The backend's answers, as the client's to_endpoint sees them: SYN-ACK and data
    // (established), then its FIN.
    try send(to, PacketBuilder(.tcp, from: backend, 8080, to: client, 40000, tcpFlags: 0x12))
    try send(to, PacketBuilder(.tcp, from: backend, 8080, to: client, 40000, tcpFlags: 0x10))
    try send(to, PacketBuilder(.tcp, from: backend, 8080, to: client, 40000, tcpFlags: 0x11))
    try send(from, PacketBuilder(.tcp, from: client, 40000, to: vip, 80, tcpFlags: 0x04))

    let seen = try events()
    XCTAssertEqual(seen.count, 3, "SYN, the backend's FIN, the client's RST: \(seen)")
    guard seen.count == 3 else { return }
    let syn = seen[0]
    XCTAssertEqual(syn.kind, UInt8(JUNCTION_FLOW_TRACE.rawValue))
    XCTAssertEqual(syn.point, UInt8(JUNCTION_DIR_FROM_ENDPOINT.rawValue))
    XCTAssertEqual(syn.verdict, UInt8(JUNCTION_VERDICT_FORWARDED.rawValue))
    XCTAssertEqual(syn.saddr, be32(client))
    XCTAssertEqual(syn.daddr, be32(vip), "the address the client asked for")
    XCTAssertEqual(syn.dport, be16(80))
    XCTAssertEqual(syn.sport, be16(40000))
    XCTAssertEqual(syn.nat_address, be32(backend), "and where it went")
    XCTAssertEqual(syn.nat_port, be16(8080))
    XCTAssertEqual(syn.rev_nat_id, 7)
    XCTAssertEqual(syn.proto, 6)
    XCTAssertEqual(syn.tcp_flags, 0x02)
    XCTAssertEqual(
      Int32(syn.flags),
      JUNCTION_FLOW_F_NEW | JUNCTION_FLOW_F_XLATED | JUNCTION_FLOW_F_REPLY_KNOWN)
    XCTAssertEqual(syn.ifindex, 1)
    XCTAssertGreaterThan(syn.timestamp, 0)

    let fin = seen[1]
    XCTAssertEqual(fin.point, UInt8(JUNCTION_DIR_TO_ENDPOINT.rawValue))
    XCTAssertEqual(fin.tcp_flags, 0x11)
    XCTAssertEqual(fin.saddr, be32(backend), "as it arrived")
    XCTAssertEqual(fin.nat_address, be32(vip), "the source it left with")
    XCTAssertEqual(
      Int32(fin.flags),
      JUNCTION_FLOW_F_REPLY | JUNCTION_FLOW_F_REPLY_KNOWN | JUNCTION_FLOW_F_XLATED)

    XCTAssertEqual(seen[2].tcp_flags, 0x04)
    XCTAssertEqual(seen[2].point, UInt8(JUNCTION_DIR_FROM_ENDPOINT.rawValue))
    XCTAssertEqual(try lost(), 0)
  }

  func testALocalRedirectPolicysFrontendSaysItWasRedirected() throws {
    // The agent writes a Local Redirect Policy's frontend with the node's pods as backends
    // and this flag (ServiceDatapath); the translation is the usual one.
    try programService(flags: UInt16(JUNCTION_SVC_F_LOCAL_REDIRECT))
    try setLevel(JUNCTION_MONITOR_FLOWS)
    try send(from, PacketBuilder(.tcp, from: client, 40010, to: vip, 80, tcpFlags: 0x02))
    let seen = try events()
    XCTAssertEqual(seen.count, 1, "\(seen)")
    guard let syn = seen.first else { return }
    XCTAssertEqual(syn.nat_address, be32(backend))
    XCTAssertEqual(syn.rev_nat_id, 7)
    XCTAssertEqual(
      Int32(syn.flags),
      JUNCTION_FLOW_F_NEW | JUNCTION_FLOW_F_XLATED | JUNCTION_FLOW_F_REPLY_KNOWN
        | JUNCTION_FLOW_F_LRP)

    // An ordinary Service's connection does not.
    try programService()
    try send(from, PacketBuilder(.tcp, from: client, 40011, to: vip, 80, tcpFlags: 0x02))
    XCTAssertEqual(try events().first.map { Int32($0.flags) & JUNCTION_FLOW_F_LRP }, 0)
  }

  func testDropsCarryTheirReasonAndLevelOffWritesNothing() throws {
    try programService(backends: 0)
    try setLevel(JUNCTION_MONITOR_OFF)
    try send(from, PacketBuilder(.tcp, from: client, 40001, to: vip, 80))
    XCTAssertEqual(try events().count, 0, "level off")

    try setLevel(JUNCTION_MONITOR_FLOWS)
    try send(from, PacketBuilder(.tcp, from: client, 40002, to: vip, 80))
    let seen = try events()
    XCTAssertEqual(seen.count, 1, "only the drop, no trace of the ICMP answer: \(seen)")
    guard let drop = seen.first else { return }
    XCTAssertEqual(drop.kind, UInt8(JUNCTION_FLOW_DROP.rawValue))
    XCTAssertEqual(drop.verdict, UInt8(JUNCTION_VERDICT_DROPPED.rawValue))
    XCTAssertEqual(drop.drop_reason, UInt16(JUNCTION_DROP_NO_BACKEND.rawValue))
    XCTAssertEqual(drop.point, UInt8(JUNCTION_DIR_FROM_ENDPOINT.rawValue))
    XCTAssertEqual(drop.saddr, be32(client), "the request as it was, before the ICMP answer")
    XCTAssertEqual(drop.daddr, be32(vip))
    XCTAssertEqual(drop.sport, be16(40002))
    XCTAssertEqual(drop.dport, be16(80))
    XCTAssertEqual(drop.tcp_flags, 0x02)

    // A malformed packet (ihl 4): dropped as invalid, addresses still read.
    var frame = PacketBuilder(.udp, from: client, 5353, to: backend, 53).build()
    frame[14] = 0x44
    _ = try ProgramTestRun.run(program: to, packet: frame)
    let invalid = try events()
    XCTAssertEqual(invalid.map(\.drop_reason), [UInt16(JUNCTION_DROP_INVALID_PACKET.rawValue)])
    XCTAssertEqual(invalid.first?.point, UInt8(JUNCTION_DIR_TO_ENDPOINT.rawValue))
  }

  func testLevelAllWritesEveryPacketAndAFullRingCountsLostEventsWithoutDroppingPackets()
    throws
  {
    try setLevel(JUNCTION_MONITOR_ALL)
    let packet = PacketBuilder(.tcp, from: client, 40003, to: backend, 8080, tcpFlags: 0x10)
    try send(to, packet, repeat: 3)
    XCTAssertEqual(try events().count, 3)

    // 1 MiB of 72-byte records: ~14,500 fit; 40,000 packets unread overflow it.
    let frame = packet.build()
    let result = try ProgramTestRun.run(program: to, packet: frame, repeat: 40_000)
    XCTAssertEqual(result.verdict, .next, "a full ring never drops the packet")
    let lostCount = try lost()
    XCTAssertGreaterThan(lostCount, 0)
    let written = try events().count
    XCTAssertEqual(UInt64(written) + lostCount, 40_000, "every event written or counted")
  }
}
