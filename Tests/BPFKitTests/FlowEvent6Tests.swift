import BPFKit
import DatapathABI
import Foundation
import NetKit
import XCTest

/// IPv6 flow events (struct junction_flow_event6, bpf/lib/events6.h), the twins of
/// FlowEventTests (endpoint programs) and FlowNetdevEventTests (north-south, on
/// NetdevIPv6Tests' fixture): programs run with BPF_PROG_TEST_RUN, the jnc_events ring read
/// with BPFRingBuffer as the agent does, records told apart by their size.
final class FlowEvent6Tests: XCTestCase {
  private var datapath: ServiceObject!
  private var fixture: NetdevFixture?
  private var ring: BPFRingBuffer!
  /// IPv6 records; `sizes` has every record's size in ring order.
  private var received: [junction_flow_event6] = []
  private var sizes: [Int] = []

  private let vip = ipv6("fd00:96::14")
  private let client = ipv6("fd00:10:244:1::5")
  private let backend = ipv6("fd00:10:244:2::b")

  // North-south (NetdevIPv6Tests' addresses and routes).
  private let node = ipv6("fd00:192::1")
  private let outside = ipv6("fd00:198::5")
  private let remoteBackend = ipv6("fd00:10:2::b")
  private let nodePort: UInt16 = 30080

  override func setUpWithError() throws {
    try requireRoot()
  }

  override func tearDown() {
    ring = nil
    if let fixture {
      fixture.remove()
    } else {
      let bpffs = datapath?.bpffs
      datapath = nil
      bpffs?.remove()
    }
    fixture = nil
    datapath = nil
  }

  // MARK: - Fixtures

  private func useEndpointObject() throws {
    datapath = try ServiceObject(path: try DatapathBuild.endpointObject())
    try openRing()
  }

  /// NetdevFixture with IPv6, ve0's device entry with the node's IPv6 address.
  private func useNetdevFixture() throws {
    let made = try NetdevFixture(prefix: "jnc-fe6")
    fixture = made
    datapath = made.datapath
    try made.addIPv6()
    var entry = junction_device()
    entry.mtu = UInt32(made.device.mtu)
    entry.address6 = be128(node)
    try datapath.object.map(named: JUNCTION_MAP_DEVICES).update(
      junction_device_key(ifindex: UInt32(bitPattern: made.device.index)), entry)
    var config = junction_node_config()
    config.snat_port_min = 40100
    config.snat_port_max = 40199
    try datapath.object.map(named: JUNCTION_MAP_NODE_CONFIG).update(UInt32(0), config)
    try openRing()
  }

  private func openRing() throws {
    ring = try BPFRingBuffer(map: try datapath.object.map(named: JUNCTION_MAP_EVENTS)) {
      [unowned self] bytes in
      sizes.append(bytes.count)
      if bytes.count == MemoryLayout<junction_flow_event6>.size {
        received.append(bytes.loadUnaligned(as: junction_flow_event6.self))
      }
    }
  }

  private func setLevel(_ level: junction_monitor_level) throws {
    try datapath.object.map(named: JUNCTION_MAP_MONITOR_CONFIG).update(
      UInt32(0), junction_monitor_config(level: level.rawValue, pad: 0))
  }

  private func events() throws -> [junction_flow_event6] {
    try ring.consume()
    defer {
      received = []
      sizes = []
    }
    XCTAssertEqual(
      sizes, Array(repeating: MemoryLayout<junction_flow_event6>.size, count: sizes.count),
      "IPv6 packets write IPv6 records only")
    return received
  }

  private func flags(_ values: Int32...) -> UInt8 { UInt8(values.reduce(0, |)) }

  /// `address`:`port`/`proto` with the backends (id, address, port), rev-NAT id 7 back to
  /// `address`:`port`.
  private func program(
    _ address: [UInt8], _ port: UInt16, proto: PacketBuilder.L4 = .tcp,
    backends: [(UInt32, [UInt8], UInt16)], flags: Int32 = 0
  ) throws {
    let services = try datapath.object.map(named: JUNCTION_MAP_LB6_SERVICES)
    for (id, backendAddress, backendPort) in backends {
      var entry = junction_lb6_backend()
      entry.address = be128(backendAddress)
      entry.port = be16(backendPort)
      entry.proto = proto.rawValue
      try datapath.object.map(named: JUNCTION_MAP_LB6_BACKENDS).update(
        junction_lb4_backend_key(backend_id: id), entry)
    }
    var reverse = junction_lb6_revnat()
    reverse.address = be128(address)
    reverse.port = be16(port)
    try datapath.object.map(named: JUNCTION_MAP_LB6_REVNAT).update(
      junction_lb4_revnat_key(rev_nat_id: 7, pad: 0), reverse)
    var key = junction_lb6_service_key()
    key.address = be128(address)
    key.port = be16(port)
    key.proto = proto.rawValue
    for (index, backend) in backends.enumerated() {
      var slot = junction_lb4_service()
      slot.backend_id = backend.0
      key.slot = UInt16(index + 1)
      try services.update(key, slot)
    }
    key.slot = 0
    var frontend = junction_lb4_service()
    frontend.count = UInt16(backends.count)
    frontend.rev_nat_id = 7
    frontend.flags = UInt16(flags)
    try services.update(key, frontend)
  }

  private func send(_ program: BPFProgram, _ packet: PacketBuilder6) throws
    -> ProgramTestRun.Result
  {
    if let fixture { return try fixture.run(program, packet.build()) }
    return try ProgramTestRun.run(program: program, packet: packet.build())
  }

  // MARK: - Endpoint programs

  func
    testAnIPv6ServiceConnectionWritesItsSYNWithTheTranslationAndItsFINButNotItsEstablishedPackets()
    throws
  {
    try useEndpointObject()
    let from = try datapath.object.program(named: JUNCTION_PROG_FROM_ENDPOINT)
    let to = try datapath.object.program(named: JUNCTION_PROG_TO_ENDPOINT)
    try program(vip, 80, backends: [(1, backend, 8080)])
    try setLevel(JUNCTION_MONITOR_FLOWS)
    for flags: UInt8 in [0x02, 0x10, 0x18] {
      XCTAssertEqual(
        try send(from, PacketBuilder6(.tcp, from: client, 40000, to: vip, 80, tcpFlags: flags))
          .verdict, .next)
    }
    for flags: UInt8 in [0x12, 0x10, 0x11] {
      _ = try send(
        to, PacketBuilder6(.tcp, from: backend, 8080, to: client, 40000, tcpFlags: flags))
    }

    let seen = try events()
    XCTAssertEqual(seen.count, 2, "the SYN and the backend's FIN: \(seen)")
    guard seen.count == 2 else { return }
    let syn = seen[0]
    XCTAssertEqual(syn.kind, UInt8(JUNCTION_FLOW_TRACE.rawValue))
    XCTAssertEqual(syn.point, UInt8(JUNCTION_DIR_FROM_ENDPOINT.rawValue))
    XCTAssertEqual(syn.verdict, UInt8(JUNCTION_VERDICT_FORWARDED.rawValue))
    XCTAssertTrue(syn.saddr == be128(client))
    XCTAssertTrue(syn.daddr == be128(vip), "the address the client asked for")
    XCTAssertEqual(syn.sport, be16(40000))
    XCTAssertEqual(syn.dport, be16(80))
    XCTAssertTrue(syn.nat_address == be128(backend), "and where it went")
    XCTAssertEqual(syn.nat_port, be16(8080))
    XCTAssertEqual(syn.rev_nat_id, 7)
    XCTAssertEqual(syn.proto, 6)
    XCTAssertEqual(syn.tcp_flags, 0x02)
    XCTAssertEqual(
      syn.flags, flags(JUNCTION_FLOW_F_NEW, JUNCTION_FLOW_F_XLATED, JUNCTION_FLOW_F_REPLY_KNOWN))
    XCTAssertEqual(syn.ifindex, 1)
    XCTAssertGreaterThan(syn.timestamp, 0)
    XCTAssertGreaterThan(syn.length, 0)

    let fin = seen[1]
    XCTAssertEqual(fin.point, UInt8(JUNCTION_DIR_TO_ENDPOINT.rawValue))
    XCTAssertEqual(fin.tcp_flags, 0x11)
    XCTAssertTrue(fin.saddr == be128(backend), "as it arrived")
    XCTAssertTrue(fin.nat_address == be128(vip), "the source it left with")
    XCTAssertEqual(fin.nat_port, be16(80))
    XCTAssertEqual(
      fin.flags,
      flags(JUNCTION_FLOW_F_REPLY, JUNCTION_FLOW_F_REPLY_KNOWN, JUNCTION_FLOW_F_XLATED))
  }

  func testIPv6DropsCarryTheirReasonAndAddressesAndTheRingHoldsBothRecordSizes() throws {
    try useEndpointObject()
    let from = try datapath.object.program(named: JUNCTION_PROG_FROM_ENDPOINT)
    let to = try datapath.object.program(named: JUNCTION_PROG_TO_ENDPOINT)
    try program(vip, 80, backends: [])
    try setLevel(JUNCTION_MONITOR_OFF)
    _ = try send(from, PacketBuilder6(.tcp, from: client, 40001, to: vip, 80))
    XCTAssertEqual(try events().count, 0, "level off")

    try setLevel(JUNCTION_MONITOR_FLOWS)
    _ = try send(from, PacketBuilder6(.tcp, from: client, 40002, to: vip, 80))
    let seen = try events()
    XCTAssertEqual(seen.count, 1, "only the drop, no trace of the ICMPv6 answer: \(seen)")
    let drop = try XCTUnwrap(seen.first)
    XCTAssertEqual(drop.kind, UInt8(JUNCTION_FLOW_DROP.rawValue))
    XCTAssertEqual(drop.verdict, UInt8(JUNCTION_VERDICT_DROPPED.rawValue))
    XCTAssertEqual(drop.drop_reason, UInt16(JUNCTION_DROP_NO_BACKEND.rawValue))
    XCTAssertEqual(drop.point, UInt8(JUNCTION_DIR_FROM_ENDPOINT.rawValue))
    XCTAssertTrue(drop.saddr == be128(client), "the request as it was, before the answer")
    XCTAssertTrue(drop.daddr == be128(vip))
    XCTAssertEqual(drop.sport, be16(40002))
    XCTAssertEqual(drop.dport, be16(80))
    XCTAssertEqual(drop.proto, 6)
    XCTAssertEqual(drop.tcp_flags, 0x02)

    // A chain of five extension headers (one more than the walk follows): dropped as
    // INVALID_EXTHDR, addresses still read, the ports not (they are behind the headers).
    var chained = PacketBuilder6(.udp, from: backend, 53, to: client, 5353)
    chained.extensions = [
      .init(type: 0), .init(type: 60), .init(type: 43), .init(type: 60), .init(type: 60),
    ]
    XCTAssertEqual(try send(to, chained).verdict, .shot)
    let invalid = try events()
    XCTAssertEqual(invalid.map(\.drop_reason), [UInt16(JUNCTION_DROP_INVALID_EXTHDR.rawValue)])
    let chainDrop = try XCTUnwrap(invalid.first)
    XCTAssertEqual(chainDrop.point, UInt8(JUNCTION_DIR_TO_ENDPOINT.rawValue))
    XCTAssertTrue(chainDrop.saddr == be128(backend))
    XCTAssertTrue(chainDrop.daddr == be128(client))
    XCTAssertEqual(chainDrop.proto, 0, "the upper layer was not reached")
    XCTAssertEqual(chainDrop.sport, 0)

    // An IPv4 packet's event next to an IPv6 one: 64- and 112-byte records in one ring.
    try setLevel(JUNCTION_MONITOR_ALL)
    let v4 = PacketBuilder(.tcp, from: [10, 0, 2, 11], 8080, to: [10, 0, 1, 5], 40003)
    _ = try ProgramTestRun.run(program: to, packet: v4.build())
    _ = try send(to, PacketBuilder6(.tcp, from: backend, 8080, to: client, 40003, tcpFlags: 0x10))
    try ring.consume()
    XCTAssertEqual(
      sizes,
      [MemoryLayout<junction_flow_event>.size, MemoryLayout<junction_flow_event6>.size])
    XCTAssertEqual(received.count, 1)
    XCTAssertEqual(received.first?.flags, 0, "an untranslated packet at the ALL level")
    received = []
    sizes = []
  }

  // MARK: - North-south

  func testAnIPv6NodePortFirstPacketInSNATModeCarriesTheNodesAddressAndTheReplyItsClient()
    throws
  {
    try useNetdevFixture()
    let fixture = try XCTUnwrap(fixture)
    try program(
      node, nodePort, backends: [(5, remoteBackend, 8080)], flags: JUNCTION_SVC_F_EXTERNAL)
    try setLevel(JUNCTION_MONITOR_FLOWS)
    let out = try send(fixture.from, PacketBuilder6(.tcp, from: outside, 40000, to: node, nodePort))
    XCTAssertEqual(out.verdict, .redirect)
    let natPort = ParsedFrame6(out.output).sourcePort
    _ = try send(
      fixture.from,
      PacketBuilder6(.tcp, from: outside, 40000, to: node, nodePort, tcpFlags: 0x10))
    let first = try events()
    XCTAssertEqual(first.count, 1, "the SYN only: \(first)")
    let syn = try XCTUnwrap(first.first)
    XCTAssertEqual(syn.point, UInt8(JUNCTION_DIR_FROM_NETDEV.rawValue))
    XCTAssertEqual(
      syn.flags,
      flags(
        JUNCTION_FLOW_F_NEW, JUNCTION_FLOW_F_XLATED, JUNCTION_FLOW_F_REPLY_KNOWN,
        JUNCTION_FLOW_F_SNAT))
    XCTAssertTrue(syn.saddr == be128(outside))
    XCTAssertTrue(syn.daddr == be128(node), "the frontend the client asked for")
    XCTAssertEqual(syn.dport, be16(nodePort))
    XCTAssertTrue(syn.nat_address == be128(remoteBackend))
    XCTAssertEqual(syn.nat_port, be16(8080))
    XCTAssertTrue(syn.snat_address == be128(node), "the source it left with")
    XCTAssertEqual(syn.snat_port, be16(natPort))
    XCTAssertEqual(syn.rev_nat_id, 7)
    XCTAssertEqual(syn.ifindex, UInt32(bitPattern: fixture.device.index))

    let fin = PacketBuilder6(.tcp, from: remoteBackend, 8080, to: node, natPort, tcpFlags: 0x11)
    XCTAssertEqual(try send(fixture.from, fin).verdict, .redirect)
    let reply = try XCTUnwrap(try events().first)
    XCTAssertEqual(
      reply.flags,
      flags(
        JUNCTION_FLOW_F_REPLY, JUNCTION_FLOW_F_REPLY_KNOWN, JUNCTION_FLOW_F_XLATED,
        JUNCTION_FLOW_F_SNAT))
    XCTAssertTrue(reply.saddr == be128(remoteBackend), "as it arrived")
    XCTAssertTrue(reply.nat_address == be128(node), "the source it leaves with")
    XCTAssertEqual(reply.nat_port, be16(nodePort))
    XCTAssertTrue(reply.snat_address == be128(outside), "the destination it leaves with")
    XCTAssertEqual(reply.snat_port, be16(40000))
  }

  func testAnIPv6NodePortInDSRModeIsFlaggedDSROnBothNodes() throws {
    try useNetdevFixture()
    let fixture = try XCTUnwrap(fixture)
    try program(
      node, nodePort, backends: [(5, remoteBackend, 8080)],
      flags: JUNCTION_SVC_F_EXTERNAL | JUNCTION_SVC_F_DSR)
    try setLevel(JUNCTION_MONITOR_FLOWS)
    let out = try send(fixture.from, PacketBuilder6(.tcp, from: outside, 40000, to: node, nodePort))
    XCTAssertEqual(out.verdict, .redirect)
    let syn = try XCTUnwrap(try events().first)
    XCTAssertEqual(
      syn.flags,
      flags(
        JUNCTION_FLOW_F_NEW, JUNCTION_FLOW_F_XLATED, JUNCTION_FLOW_F_REPLY_KNOWN,
        JUNCTION_FLOW_F_DSR))
    XCTAssertTrue(syn.nat_address == be128(remoteBackend))
    XCTAssertTrue(syn.snat_address == be128(Array(repeating: 0, count: 16)), "client kept")

    // The backend's node reads the header: traced as the client sent it, to the frontend.
    XCTAssertEqual(try fixture.run(fixture.from, out.output).verdict, .next)
    let backendSide = try XCTUnwrap(try events().first)
    XCTAssertEqual(backendSide.point, UInt8(JUNCTION_DIR_FROM_NETDEV.rawValue))
    XCTAssertTrue(backendSide.saddr == be128(outside))
    XCTAssertTrue(backendSide.daddr == be128(node), "the frontend the header names")
    XCTAssertEqual(backendSide.dport, be16(nodePort))
    XCTAssertTrue(backendSide.nat_address == be128(remoteBackend), "the backend addressed")
    XCTAssertEqual(backendSide.nat_port, be16(8080))
    XCTAssertEqual(
      backendSide.flags,
      flags(
        JUNCTION_FLOW_F_NEW, JUNCTION_FLOW_F_XLATED, JUNCTION_FLOW_F_REPLY_KNOWN,
        JUNCTION_FLOW_F_DSR))

    // Its reply's FIN leaves with the frontend as source (to_netdev).
    let fin = PacketBuilder6(.tcp, from: remoteBackend, 8080, to: outside, 40000, tcpFlags: 0x11)
    XCTAssertEqual(try fixture.run(fixture.to, fin.build()).verdict, .next)
    let reply = try XCTUnwrap(try events().first)
    XCTAssertEqual(reply.point, UInt8(JUNCTION_DIR_TO_NETDEV.rawValue))
    XCTAssertTrue(reply.nat_address == be128(node))
    XCTAssertEqual(reply.nat_port, be16(nodePort))
    XCTAssertEqual(
      reply.flags,
      flags(
        JUNCTION_FLOW_F_REPLY, JUNCTION_FLOW_F_REPLY_KNOWN, JUNCTION_FLOW_F_XLATED,
        JUNCTION_FLOW_F_DSR))
  }
}
