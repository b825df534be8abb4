import BPFKit
import DatapathABI
import XCTest

/// Local Redirect Policy over IPv6 in bpf/endpoint.c (lib/lrp6.h), run with BPF_PROG_TEST_RUN,
/// the maps written as the agent writes a redirected frontend (ServicePrograms): the
/// frontend's slots are this node's pods of the policy, flagged LOCAL_REDIRECT (and
/// SKIP_FROM_BACKEND), and with skipRedirectFromBackend on a service matcher the original
/// Service's backends sit under the REDIRECT_ORIGIN scope of the same key.
final class LocalRedirect6Tests: XCTestCase {
  private var datapath: ServiceObject!
  private var from: BPFProgram!
  private var to: BPFProgram!
  private var services6: BPFMap!
  private var backends6: BPFMap!
  private var revNat6: BPFMap!
  private var conntrack6: BPFMap!

  /// A dual-stack Service's IPv6 cluster IP (service matcher) and a link-local-free metadata
  /// style address (address matcher).
  private let clusterIP = ipv6("fd00:96::35")
  private let address = ipv6("fd00:a9fe::fe")
  private let client = ipv6("fd00:10:244:1::5")
  /// The policy's pod on this node.
  private let localPod = ipv6("fd00:10:244:1::53")
  /// The Service's own backend, on another node.
  private let remoteBackend = ipv6("fd00:10:244:2::53")

  override func setUpWithError() throws {
    try requireRoot()
    datapath = try ServiceObject(path: try DatapathBuild.endpointObject())
    from = try datapath.object.program(named: JUNCTION_PROG_FROM_ENDPOINT)
    to = try datapath.object.program(named: JUNCTION_PROG_TO_ENDPOINT)
    services6 = try datapath.object.map(named: JUNCTION_MAP_LB6_SERVICES)
    backends6 = try datapath.object.map(named: JUNCTION_MAP_LB6_BACKENDS)
    revNat6 = try datapath.object.map(named: JUNCTION_MAP_LB6_REVNAT)
    conntrack6 = try datapath.object.map(named: JUNCTION_MAP_CT6)
  }

  override func tearDown() {
    let bpffs = datapath?.bpffs
    datapath = nil
    bpffs?.remove()
  }

  private func key(
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

  private func writeBackend(
    _ id: UInt32, _ address: [UInt8], _ port: UInt16, _ proto: PacketBuilder.L4
  )
    throws
  {
    var backend = junction_lb6_backend()
    backend.address = be128(address)
    backend.port = be16(port)
    backend.proto = proto.rawValue
    try backends6.update(junction_lb4_backend_key(backend_id: id), backend)
  }

  /// One frontend entry of `vip`:`port` under `scope`: the slots, then the master entry.
  private func writeFrontend(
    _ vip: [UInt8], _ port: UInt16, _ proto: PacketBuilder.L4, revNatID: UInt16,
    backendIDs: [UInt32], flags: Int32, scope: Int32 = JUNCTION_SCOPE_DEFAULT
  ) throws {
    var reverse = junction_lb6_revnat()
    reverse.address = be128(vip)
    reverse.port = be16(port)
    try revNat6.update(junction_lb4_revnat_key(rev_nat_id: revNatID, pad: 0), reverse)
    for (index, id) in backendIDs.enumerated() {
      var slot = junction_lb4_service()
      slot.backend_id = id
      slot.rev_nat_id = revNatID
      try services6.update(key(vip, port, proto, slot: UInt16(index + 1), scope: scope), slot)
    }
    var frontend = junction_lb4_service()
    frontend.count = UInt16(backendIDs.count)
    frontend.rev_nat_id = revNatID
    frontend.flags = UInt16(flags)
    try services6.update(key(vip, port, proto, slot: 0, scope: scope), frontend)
  }

  private func conntrackKey(
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

  /// Service matcher: a client's UDP and TCP to the redirected IPv6 cluster IP land on the
  /// node's pod (DNAT with a right checksum), and the pod's answer comes back from the
  /// cluster IP.
  func testAnIPv6ClusterIPRedirectedByServiceGoesToTheLocalPodAndAnswersFromTheVIP() throws {
    try writeBackend(1, localPod, 5353, .udp)
    try writeBackend(2, localPod, 8053, .tcp)
    let redirect = JUNCTION_SVC_F_LOCAL_REDIRECT
    try writeFrontend(clusterIP, 53, .udp, revNatID: 1, backendIDs: [1], flags: redirect)
    try writeFrontend(clusterIP, 53, .tcp, revNatID: 2, backendIDs: [2], flags: redirect)

    for (l4, port) in [(PacketBuilder.L4.udp, UInt16(5353)), (.tcp, 8053)] {
      let request = PacketBuilder6(l4, from: client, 40000, to: clusterIP, 53)
      let result = try ProgramTestRun.run(program: from, packet: request.build())
      XCTAssertEqual(result.verdict, .ok)
      var expected = request
      expected.destination = localPod
      expected.destinationPort = port
      XCTAssertEqual(result.output, expected.build(), "\(l4): to the node's pod")
      XCTAssertTrue(ParsedFrame6(result.output).l4ChecksumValid)

      var answer = PacketBuilder6(l4, from: localPod, port, to: client, 40000, tcpFlags: 0x12)
      answer.payload = Array("cached".utf8)
      let back = try ProgramTestRun.run(program: to, packet: answer.build())
      var reversed = answer
      reversed.source = clusterIP
      reversed.sourcePort = 53
      XCTAssertEqual(back.output, reversed.build(), "\(l4): from the cluster IP")
    }
  }

  /// Address matcher: an IPv6 address no Service has, redirected to the node's pod.
  func testAnIPv6AddressRedirectedByAddressGoesToTheLocalPod() throws {
    try writeBackend(7, localPod, 8080, .tcp)
    try writeFrontend(
      address, 80, .tcp, revNatID: 7, backendIDs: [7], flags: JUNCTION_SVC_F_LOCAL_REDIRECT)
    let request = PacketBuilder6(.tcp, from: client, 40100, to: address, 80)
    let result = try ProgramTestRun.run(program: from, packet: request.build())
    XCTAssertEqual(result.verdict, .ok)
    var expected = request
    expected.destination = localPod
    expected.destinationPort = 8080
    XCTAssertEqual(result.output, expected.build())
    let entry = try conntrack6.lookup(
      conntrackKey(client, 40100, address, 80, .tcp, JUNCTION_CT_SERVICE),
      as: junction_ct6_entry.self)
    XCTAssertEqual(entry?.backend_id, 7)
  }

  /// skipRedirectFromBackend: other clients are redirected to the local pod; the pod itself
  /// passes untouched while there is no origin entry (an address matcher), and gets the
  /// original Service's backend from the REDIRECT_ORIGIN-scope entry when there is one (a
  /// service matcher), with its replies reverse-NATed to the cluster IP.
  func testTheLRPsOwnPodGetsTheOriginalServiceOrPassesUntouched() throws {
    let skip = JUNCTION_SVC_F_LOCAL_REDIRECT | JUNCTION_SVC_F_SKIP_FROM_BACKEND
    try writeBackend(1, localPod, 8080, .tcp)
    try writeFrontend(clusterIP, 80, .tcp, revNatID: 1, backendIDs: [1], flags: skip)
    let redirected = try ProgramTestRun.run(
      program: from, packet: PacketBuilder6(.tcp, from: client, 40000, to: clusterIP, 80).build())
    XCTAssertEqual(ParsedFrame6(redirected.output).destination, localPod, "others: redirected")

    let own = PacketBuilder6(.tcp, from: localPod, 40001, to: clusterIP, 80).build()
    let untouched = try ProgramTestRun.run(program: from, packet: own)
    XCTAssertEqual(untouched.verdict, .ok)
    XCTAssertEqual(untouched.output, own, "no origin: untouched")
    XCTAssertNil(
      try conntrack6.lookup(
        conntrackKey(localPod, 40001, clusterIP, 80, .tcp, JUNCTION_CT_SERVICE),
        as: junction_ct6_entry.self))

    // The origin goes in (as the agent writes it: before the flag that uses it).
    try writeBackend(2, remoteBackend, 8080, .tcp)
    try writeFrontend(
      clusterIP, 80, .tcp, revNatID: 1, backendIDs: [2], flags: 0,
      scope: JUNCTION_SCOPE_REDIRECT_ORIGIN)
    let result = try ProgramTestRun.run(program: from, packet: own)
    XCTAssertEqual(result.verdict, .ok)
    let out = ParsedFrame6(result.output)
    XCTAssertEqual(out.destination, remoteBackend, "the original Service's backend")
    XCTAssertEqual(out.source, localPod)
    XCTAssertTrue(out.l4ChecksumValid)
    var answer = PacketBuilder6(
      .tcp, from: remoteBackend, 8080, to: localPod, 40001, tcpFlags: 0x12)
    answer.payload = Array("the origin".utf8)
    let back = ParsedFrame6(try ProgramTestRun.run(program: to, packet: answer.build()).output)
    XCTAssertEqual(back.source, clusterIP)
    XCTAssertEqual(back.sourcePort, 80)
    XCTAssertTrue(back.l4ChecksumValid)

    // Another client still goes to the local pod.
    let other = try ProgramTestRun.run(
      program: from, packet: PacketBuilder6(.tcp, from: client, 40002, to: clusterIP, 80).build())
    XCTAssertEqual(ParsedFrame6(other.output).destination, localPod)

    // Without the skip flag the pod is redirected like anyone else: to itself, a hairpin.
    try writeFrontend(
      clusterIP, 80, .tcp, revNatID: 1, backendIDs: [1], flags: JUNCTION_SVC_F_LOCAL_REDIRECT)
    let itself = try ProgramTestRun.run(
      program: from, packet: PacketBuilder6(.tcp, from: localPod, 40003, to: clusterIP, 80).build())
    XCTAssertEqual(itself.verdict, .redirect)
    XCTAssertEqual(ParsedFrame6(itself.output).destination, localPod)
    XCTAssertEqual(ParsedFrame6(itself.output).source, ipv6("100::a9fe:2a01"))
  }
}
