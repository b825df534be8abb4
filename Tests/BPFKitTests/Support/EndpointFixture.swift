import BPFKit
import DatapathABI
import Foundation
import XCTest

/// bpf/endpoint.c loaded in a scratch bpffs (ServiceObject) with its two programs and the
/// IPv6 service maps, and the writers that program a service the way the agent does
/// (ServicePrograms' order: backends, rev-NAT, the slots, the master entry last), for the
/// BPF_PROG_TEST_RUN tests of from_endpoint / to_endpoint. Release it with
/// `EndpointFixture.release(&fixture)`, which drops the object before the bpffs goes.
final class EndpointFixture {
  let datapath: ServiceObject
  let from: BPFProgram
  let to: BPFProgram
  let services6: BPFMap
  let backends6: BPFMap
  let revNat6: BPFMap
  let conntrack6: BPFMap

  init() throws {
    datapath = try ServiceObject(path: try DatapathBuild.endpointObject())
    do {
      from = try datapath.object.program(named: JUNCTION_PROG_FROM_ENDPOINT)
      to = try datapath.object.program(named: JUNCTION_PROG_TO_ENDPOINT)
      services6 = try datapath.object.map(named: JUNCTION_MAP_LB6_SERVICES)
      backends6 = try datapath.object.map(named: JUNCTION_MAP_LB6_BACKENDS)
      revNat6 = try datapath.object.map(named: JUNCTION_MAP_LB6_REVNAT)
      conntrack6 = try datapath.object.map(named: JUNCTION_MAP_CT6)
    } catch {
      datapath.bpffs.remove()
      throw error
    }
  }

  /// Drops `fixture` (closing the object), then removes its scratch bpffs: a test's tearDown.
  static func release(_ fixture: inout EndpointFixture?) {
    let bpffs = fixture?.datapath.bpffs
    fixture = nil
    bpffs?.remove()
  }

  // MARK: - IPv4 services (jnc_lb4_*)

  /// Backend `id` at `address`:`port`.
  func writeBackend(_ id: UInt32, _ address: [UInt8], _ port: UInt16, _ proto: PacketBuilder.L4)
    throws
  {
    var backend = junction_lb4_backend()
    backend.address = be32(address)
    backend.port = be16(port)
    backend.proto = proto.rawValue
    try datapath.backends.update(junction_lb4_backend_key(backend_id: id), backend)
  }

  /// The frontend `vip`:`port` over `backendIDs`: its rev-NAT entry, the slots, then the
  /// master entry.
  func writeFrontend(
    _ vip: [UInt8], _ port: UInt16, _ proto: PacketBuilder.L4, revNatID: UInt16,
    backendIDs: [UInt32], flags: Int32 = 0
  ) throws {
    var reverse = junction_lb4_revnat()
    reverse.address = be32(vip)
    reverse.port = be16(port)
    try datapath.revNat.update(junction_lb4_revnat_key(rev_nat_id: revNatID, pad: 0), reverse)
    var key = junction_lb4_service_key()
    key.address = be32(vip)
    key.port = be16(port)
    key.proto = proto.rawValue
    for (index, id) in backendIDs.enumerated() {
      var slot = junction_lb4_service()
      slot.backend_id = id
      slot.rev_nat_id = revNatID
      key.slot = UInt16(index + 1)
      try datapath.services.update(key, slot)
    }
    var frontend = junction_lb4_service()
    frontend.count = UInt16(backendIDs.count)
    frontend.rev_nat_id = revNatID
    frontend.flags = UInt16(flags)
    key.slot = 0
    try datapath.services.update(key, frontend)
  }

  // MARK: - IPv6 services (jnc_lb6_*)

  /// The jnc_lb6_svc key of `vip`:`port`, slot `slot` (0: the master entry) under `scope`.
  static func serviceKey6(
    _ vip: [UInt8], _ port: UInt16, _ proto: PacketBuilder.L4, slot: UInt16,
    scope: Int32 = JUNCTION_SCOPE_DEFAULT
  ) -> junction_lb6_service_key {
    var key = junction_lb6_service_key()
    key.address = be128(vip)
    key.port = be16(port)
    key.proto = proto.rawValue
    key.scope = UInt8(scope)
    key.slot = slot
    return key
  }

  /// Backend `id` at [`address`]:`port`.
  func writeBackend6(_ id: UInt32, _ address: [UInt8], _ port: UInt16, _ proto: PacketBuilder.L4)
    throws
  {
    var backend = junction_lb6_backend()
    backend.address = be128(address)
    backend.port = be16(port)
    backend.proto = proto.rawValue
    try backends6.update(junction_lb4_backend_key(backend_id: id), backend)
  }

  /// The frontend [`vip`]:`port` over `backendIDs` under `scope`: its rev-NAT entry, the
  /// slots, then the master entry.
  func writeFrontend6(
    _ vip: [UInt8], _ port: UInt16, _ proto: PacketBuilder.L4, revNatID: UInt16,
    backendIDs: [UInt32], flags: Int32 = 0, scope: Int32 = JUNCTION_SCOPE_DEFAULT
  ) throws {
    var reverse = junction_lb6_revnat()
    reverse.address = be128(vip)
    reverse.port = be16(port)
    try revNat6.update(junction_lb4_revnat_key(rev_nat_id: revNatID, pad: 0), reverse)
    for (index, id) in backendIDs.enumerated() {
      var slot = junction_lb4_service()
      slot.backend_id = id
      slot.rev_nat_id = revNatID
      let key = Self.serviceKey6(vip, port, proto, slot: UInt16(index + 1), scope: scope)
      try services6.update(key, slot)
    }
    var frontend = junction_lb4_service()
    frontend.count = UInt16(backendIDs.count)
    frontend.rev_nat_id = revNatID
    frontend.flags = UInt16(flags)
    try services6.update(Self.serviceKey6(vip, port, proto, slot: 0, scope: scope), frontend)
  }

  /// The jnc_ct6 key of one direction of a flow.
  static func conntrackKey6(
    _ source: [UInt8], _ sourcePort: UInt16, _ destination: [UInt8], _ destinationPort: UInt16,
    _ proto: PacketBuilder.L4, _ direction: junction_ct_direction
  ) -> junction_ct6_key {
    var key = junction_ct6_key()
    key.saddr = be128(source)
    key.daddr = be128(destination)
    key.sport = be16(sourcePort)
    key.dport = be16(destinationPort)
    key.proto = proto.rawValue
    key.direction = UInt8(direction.rawValue)
    return key
  }
}

/// Tests of bpf/endpoint.c's programs: a fresh `fixture` for each test (root required, so
/// CI=true fails rather than skips without it), released when it ends, also on failure.
class EndpointTestCase: XCTestCase {
  var fixture: EndpointFixture!

  override func setUpWithError() throws {
    try requireRoot()
    fixture = try EndpointFixture()
  }

  override func tearDown() {
    EndpointFixture.release(&fixture)
    super.tearDown()
  }
}
