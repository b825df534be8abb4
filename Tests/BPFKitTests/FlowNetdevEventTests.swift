import BPFKit
import DatapathABI
import Foundation
import NetKit
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// The north-south programs' flow events (bpf/netdev.c with lib/events.h), run with
/// BPF_PROG_TEST_RUN on a NetdevFixture as NetdevTests runs them; the jnc_events ring is read
/// as the agent does.
final class FlowNetdevEventTests: XCTestCase {
  private var fixture: NetdevFixture!
  private var datapath: ServiceObject! { fixture.datapath }
  private var device: NodeDevice! { fixture.device }
  private var from: BPFProgram! { fixture.from }
  private var to: BPFProgram! { fixture.to }
  private var ring: BPFRingBuffer!
  private var received: [junction_flow_event] = []

  private let nodeAddress: [UInt8] = [192, 0, 2, 1]
  private let client: [UInt8] = [198, 51, 100, 5]
  private let backend: [UInt8] = [10, 0, 2, 11]
  private let nodePort: UInt16 = 30080

  override func setUpWithError() throws {
    try requireRoot()
    fixture = try NetdevFixture(prefix: "jnc-fne")
    var entry = junction_device()
    entry.address = be32(device.addresses[0].bytes)
    entry.mtu = UInt32(device.mtu)
    try datapath.object.map(named: JUNCTION_MAP_DEVICES).update(
      junction_device_key(ifindex: UInt32(device.index)), entry)
    var config = junction_node_config()
    config.snat_port_min = 40100
    config.snat_port_max = 40199
    try datapath.object.map(named: JUNCTION_MAP_NODE_CONFIG).update(UInt32(0), config)
    ring = try BPFRingBuffer(map: try datapath.object.map(named: JUNCTION_MAP_EVENTS)) {
      [unowned self] bytes in
      XCTAssertEqual(bytes.count, MemoryLayout<junction_flow_event>.size)
      received.append(bytes.loadUnaligned(as: junction_flow_event.self))
    }
  }

  override func tearDown() {
    ring = nil
    fixture?.remove()
    fixture = nil
  }

  // MARK: - Fixtures

  private func setLevel(_ level: junction_monitor_level) throws {
    try datapath.object.map(named: JUNCTION_MAP_MONITOR_CONFIG).update(
      UInt32(0), junction_monitor_config(level: level.rawValue, pad: 0))
  }

  /// A NodePort frontend (node address:30080) with one remote backend 10.0.2.11:8080;
  /// rev_nat_id 1.
  private func programNodePort(dsr: Bool, proto: PacketBuilder.L4 = .tcp) throws {
    var entry = junction_lb4_backend()
    entry.address = be32(backend)
    entry.port = be16(8080)
    entry.proto = proto.rawValue
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
    frontend.count = 1
    frontend.rev_nat_id = 1
    frontend.flags = UInt16(JUNCTION_SVC_F_EXTERNAL) | UInt16(dsr ? JUNCTION_SVC_F_DSR : 0)
    try datapath.services.update(key, frontend)
  }

  private func request(_ l4: PacketBuilder.L4 = .tcp, flags: UInt8) -> PacketBuilder {
    PacketBuilder(l4, from: client, 40000, to: nodeAddress, nodePort, tcpFlags: flags)
  }

  /// Runs `program` on `frame` as if on ve0; the verdict must not be a drop.
  @discardableResult
  private func run(_ program: BPFProgram, _ frame: [UInt8]) throws -> ProgramTestRun.Result {
    let result = try fixture.run(program, frame)
    XCTAssertNotEqual(result.verdict, .shot)
    return result
  }

  private func events() throws -> [junction_flow_event] {
    try ring.consume()
    defer { received = [] }
    return received
  }

  private func flags(_ values: Int32...) -> UInt8 { UInt8(values.reduce(0, |)) }

  // MARK: - Tests

  func testANodePortFirstPacketInDSRModeWritesOneEventWithTheTranslationAndEstablishedNone()
    throws
  {
    try programNodePort(dsr: true)
    try setLevel(JUNCTION_MONITOR_FLOWS)
    try run(from, request(flags: 0x02).build())
    try run(from, request(flags: 0x10).build())
    try run(from, request(flags: 0x18).build())
    let first = try events()
    XCTAssertEqual(first.count, 1, "the SYN only: \(first)")
    let syn = try XCTUnwrap(first.first)
    XCTAssertEqual(syn.kind, UInt8(JUNCTION_FLOW_TRACE.rawValue))
    XCTAssertEqual(syn.point, UInt8(JUNCTION_DIR_FROM_NETDEV.rawValue))
    XCTAssertEqual(syn.verdict, UInt8(JUNCTION_VERDICT_FORWARDED.rawValue))
    XCTAssertEqual(syn.saddr, be32(client))
    XCTAssertEqual(syn.sport, be16(40000))
    XCTAssertEqual(syn.daddr, be32(nodeAddress), "the frontend the client asked for")
    XCTAssertEqual(syn.dport, be16(nodePort))
    XCTAssertEqual(syn.nat_address, be32(backend), "the backend it went to")
    XCTAssertEqual(syn.nat_port, be16(8080))
    XCTAssertEqual(syn.rev_nat_id, 1)
    XCTAssertEqual(
      syn.flags,
      flags(
        JUNCTION_FLOW_F_NEW, JUNCTION_FLOW_F_XLATED, JUNCTION_FLOW_F_REPLY_KNOWN,
        JUNCTION_FLOW_F_DSR))
    XCTAssertEqual(syn.snat_address, 0, "DSR keeps the client's address")
    XCTAssertEqual(syn.ifindex, UInt32(device.index))

    try run(from, request(flags: 0x11).build())
    let closing = try events()
    XCTAssertEqual(closing.map(\.tcp_flags), [0x11], "the FIN")
    XCTAssertEqual(
      closing.first?.flags,
      flags(JUNCTION_FLOW_F_XLATED, JUNCTION_FLOW_F_REPLY_KNOWN, JUNCTION_FLOW_F_DSR))
  }

  func testANodePortFirstPacketInSNATModeCarriesTheNodesAddressAndPortAndTheReplyItsClient()
    throws
  {
    try programNodePort(dsr: false)
    try setLevel(JUNCTION_MONITOR_FLOWS)
    let out = try run(from, request(flags: 0x02).build())
    let natPort = ParsedFrame(out.output).sourcePort
    try run(from, request(flags: 0x10).build())
    let synAck = PacketBuilder(.tcp, from: backend, 8080, to: nodeAddress, natPort, tcpFlags: 0x12)
    try run(from, synAck.build())
    let first = try events()
    XCTAssertEqual(first.count, 1, "the SYN only, not the ACK nor the SYN-ACK: \(first)")
    let syn = try XCTUnwrap(first.first)
    XCTAssertEqual(
      syn.flags,
      flags(
        JUNCTION_FLOW_F_NEW, JUNCTION_FLOW_F_XLATED, JUNCTION_FLOW_F_REPLY_KNOWN,
        JUNCTION_FLOW_F_SNAT))
    XCTAssertEqual(syn.nat_address, be32(backend))
    XCTAssertEqual(syn.snat_address, be32(nodeAddress), "the source it left with")
    XCTAssertEqual(syn.snat_port, be16(natPort))

    let fin = PacketBuilder(.tcp, from: backend, 8080, to: nodeAddress, natPort, tcpFlags: 0x11)
    try run(from, fin.build())
    let reply = try XCTUnwrap(try events().first)
    XCTAssertEqual(reply.point, UInt8(JUNCTION_DIR_FROM_NETDEV.rawValue))
    XCTAssertEqual(
      reply.flags,
      flags(
        JUNCTION_FLOW_F_REPLY, JUNCTION_FLOW_F_REPLY_KNOWN, JUNCTION_FLOW_F_XLATED,
        JUNCTION_FLOW_F_SNAT))
    XCTAssertEqual(reply.saddr, be32(backend), "as it arrived")
    XCTAssertEqual(reply.nat_address, be32(nodeAddress), "the source it leaves with")
    XCTAssertEqual(reply.nat_port, be16(nodePort))
    XCTAssertEqual(reply.snat_address, be32(client), "the destination it leaves with")
    XCTAssertEqual(reply.snat_port, be16(40000))
    XCTAssertEqual(reply.rev_nat_id, 1)
  }

  func testTheBackendsNodeReportsTheDSROptionsFrontendOnceAndTheReplysFIN() throws {
    let frontend: [UInt8] = [192, 0, 2, 50]
    try setLevel(JUNCTION_MONITOR_FLOWS)
    var datagram = PacketBuilder(.udp, from: client, 40000, to: backend, 8080)
    datagram.options = [0x9a, 8] + bytes(nodePort) + frontend
    // Every UDP datagram carries the option: only the first is a new connection.
    try run(from, datagram.build())
    try run(from, datagram.build())
    let seen = try events()
    XCTAssertEqual(seen.count, 1, "\(seen)")
    let first = try XCTUnwrap(seen.first)
    XCTAssertEqual(first.point, UInt8(JUNCTION_DIR_FROM_NETDEV.rawValue))
    XCTAssertEqual(first.saddr, be32(client))
    XCTAssertEqual(first.daddr, be32(frontend), "the frontend the option names")
    XCTAssertEqual(first.dport, be16(nodePort))
    XCTAssertEqual(first.nat_address, be32(backend))
    XCTAssertEqual(first.nat_port, be16(8080))
    XCTAssertEqual(
      first.flags,
      flags(
        JUNCTION_FLOW_F_NEW, JUNCTION_FLOW_F_XLATED, JUNCTION_FLOW_F_REPLY_KNOWN,
        JUNCTION_FLOW_F_DSR))

    var syn = PacketBuilder(.tcp, from: client, 40001, to: backend, 8080, tcpFlags: 0x02)
    syn.options = [0x9a, 8] + bytes(nodePort) + frontend
    try run(from, syn.build())
    XCTAssertEqual(try events().map(\.tcp_flags), [0x02])
    try run(to, PacketBuilder(.tcp, from: backend, 8080, to: client, 40001, tcpFlags: 0x12).build())
    XCTAssertEqual(try events().count, 0, "the SYN-ACK is established traffic")
    try run(to, PacketBuilder(.tcp, from: backend, 8080, to: client, 40001, tcpFlags: 0x14).build())
    let reset = try XCTUnwrap(try events().first)
    XCTAssertEqual(reset.point, UInt8(JUNCTION_DIR_TO_NETDEV.rawValue))
    XCTAssertEqual(reset.tcp_flags, 0x14)
    XCTAssertEqual(reset.nat_address, be32(frontend), "the source it leaves with")
    XCTAssertEqual(
      reset.flags,
      flags(
        JUNCTION_FLOW_F_REPLY, JUNCTION_FLOW_F_REPLY_KNOWN, JUNCTION_FLOW_F_XLATED,
        JUNCTION_FLOW_F_DSR))
  }

  func testLevelOffWritesNothingLevelAllEveryHandledPacketAndTheNodesOwnTrafficNever() throws {
    try programNodePort(dsr: true)
    try setLevel(JUNCTION_MONITOR_OFF)
    try run(from, request(flags: 0x02).build())
    XCTAssertEqual(try events().count, 0, "level off")

    try setLevel(JUNCTION_MONITOR_ALL)
    try run(from, request(flags: 0x10).build())
    try run(from, request(flags: 0x10).build())
    XCTAssertEqual(try events().count, 2, "every packet at ALL")
    // A SYN to the node itself (ssh), not a frontend: never traced here.
    var own = request(flags: 0x02)
    own.destinationPort = 22
    try run(from, own.build())
    XCTAssertEqual(try events().count, 0, "the node's own traffic")
  }
}
