import BPFKit
import DatapathABI
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// The service datapath (bpf/endpoint.c: from_endpoint DNAT, to_endpoint reverse NAT) run
/// with BPF_PROG_TEST_RUN on frames built byte by byte, with services programmed through
/// the maps the way the agent does (see `program(_:)`).
final class ServiceLBTests: XCTestCase {
  private var datapath: ServiceObject!
  private var from: BPFProgram!
  private var to: BPFProgram!
  private var affinity: BPFMap!
  private var maglev: BPFMap!

  private let vip: [UInt8] = [10, 96, 0, 10]
  private let client: [UInt8] = [10, 0, 1, 5]
  private let backendAddresses: [[UInt8]] = [[10, 0, 2, 11], [10, 0, 2, 12], [10, 0, 2, 13]]

  override func setUpWithError() throws {
    try requireRoot()
    let path = try DatapathBuild.endpointObject()
    datapath = try ServiceObject(path: path)
    from = try datapath.object.program(named: JUNCTION_PROG_FROM_ENDPOINT)
    to = try datapath.object.program(named: JUNCTION_PROG_TO_ENDPOINT)
    affinity = try datapath.object.map(named: JUNCTION_MAP_LB4_AFFINITY)
    maglev = try datapath.object.map(named: JUNCTION_MAP_LB4_MAGLEV)
  }

  override func tearDown() {
    let bpffs = datapath?.bpffs
    datapath = nil
    bpffs?.remove()
  }

  // MARK: - Programming services, as the agent does

  struct Service {
    var vip: [UInt8]
    var port: UInt16 = 80
    var proto: PacketBuilder.L4 = .tcp
    var revNatID: UInt16 = 1
    /// (backend id, address, port); all active.
    var backends: [(UInt32, [UInt8], UInt16)]
    var flags: Int32 = 0
    var affinityTimeout: UInt32 = 0
  }

  private func frontendKey(_ service: Service, slot: UInt16) -> junction_lb4_service_key {
    var key = junction_lb4_service_key()
    key.address = be32(service.vip)
    key.port = be16(service.port)
    key.proto = service.proto.rawValue
    key.slot = slot
    return key
  }

  private func writeBackend(
    _ id: UInt32, _ address: [UInt8], _ port: UInt16, _ proto: PacketBuilder.L4,
    terminating: Bool = false
  ) throws {
    var backend = junction_lb4_backend()
    backend.address = be32(address)
    backend.port = be16(port)
    backend.proto = proto.rawValue
    backend.flags = terminating ? UInt8(JUNCTION_BE_F_TERMINATING) : 0
    try datapath.backends.update(junction_lb4_backend_key(backend_id: id), backend)
  }

  /// The add order that never exposes a half-made service: what a slot or the frontend
  /// points at is written before it. Backends, reverse NAT, then the slots, and the
  /// frontend (slot 0, with count) last: until it exists the VIP is not translated at all.
  private func program(_ service: Service) throws {
    for (id, address, port) in service.backends {
      try writeBackend(id, address, port, service.proto)
    }
    var reverse = junction_lb4_revnat()
    reverse.address = be32(service.vip)
    reverse.port = be16(service.port)
    try datapath.revNat.update(
      junction_lb4_revnat_key(rev_nat_id: service.revNatID, pad: 0), reverse)
    for (index, backend) in service.backends.enumerated() {
      var slot = junction_lb4_service()
      slot.backend_id = backend.0
      try datapath.services.update(frontendKey(service, slot: UInt16(index + 1)), slot)
    }
    var frontend = junction_lb4_service()
    frontend.count = UInt16(service.backends.count)
    frontend.rev_nat_id = service.revNatID
    frontend.flags = UInt16(service.flags)
    frontend.affinity_timeout = service.affinityTimeout
    try datapath.services.update(frontendKey(service, slot: 0), frontend)
  }

  private func threeBackends(flags: Int32 = 0, timeout: UInt32 = 0) -> Service {
    Service(
      vip: vip,
      backends: backendAddresses.enumerated().map { (UInt32($0.offset + 1), $0.element, 8080) },
      flags: flags, affinityTimeout: timeout)
  }

  private func request(_ l4: PacketBuilder.L4 = .tcp, sourcePort: UInt16 = 40000) -> PacketBuilder {
    PacketBuilder(l4, from: client, sourcePort, to: vip, 80)
  }

  private func runFrom(_ frame: [UInt8]) throws -> ProgramTestRun.Result {
    try ProgramTestRun.run(program: from, packet: frame)
  }

  private func runTo(_ frame: [UInt8]) throws -> ProgramTestRun.Result {
    try ProgramTestRun.run(program: to, packet: frame)
  }

  /// The backend (index into backendAddresses) a DNATed frame went to.
  private func backendIndex(_ output: [UInt8], file: StaticString = #filePath, line: UInt = #line)
    -> Int?
  {
    let parsed = ParsedFrame(output)
    XCTAssertTrue(parsed.ipChecksumValid, file: file, line: line)
    XCTAssertTrue(parsed.l4ChecksumValid, file: file, line: line)
    return backendAddresses.firstIndex(of: parsed.destination)
  }

  private func clearConntrack() throws {
    for key in try datapath.conntrack.keys(as: junction_ct4_key.self) {
      try datapath.conntrack.delete(key)
    }
  }

  // MARK: - DNAT and reverse NAT

  func testTCPToAServiceIsDNATedWithBothChecksumsRight() throws {
    var service = threeBackends()
    service.backends = [service.backends[1]]
    try program(service)
    let input = request().build()
    XCTAssertTrue(ParsedFrame(input).ipChecksumValid && ParsedFrame(input).l4ChecksumValid)

    let result = try runFrom(input)

    XCTAssertEqual(result.verdict, .next)
    let out = ParsedFrame(result.output)
    XCTAssertEqual(out.destination, backendAddresses[1])
    XCTAssertEqual(out.destinationPort, 8080)
    XCTAssertEqual(out.source, client)
    XCTAssertEqual(out.sourcePort, 40000)
    XCTAssertTrue(out.ipChecksumValid, "IPv4 header checksum")
    XCTAssertTrue(out.l4ChecksumValid, "TCP checksum")
    // Byte for byte what a sender to the backend would have built: nothing else changed.
    var expected = request()
    expected.destination = backendAddresses[1]
    expected.destinationPort = 8080
    XCTAssertEqual(result.output, expected.build())

    let forward = try datapath.conntrack.lookup(
      ServiceObject.conntrackKey(client, 40000, vip, 80, .tcp, JUNCTION_CT_SERVICE),
      as: junction_ct4_entry.self)
    XCTAssertEqual(forward?.backend_id, 2)
    XCTAssertEqual(forward?.rev_nat_id, 1)
    XCTAssertNotEqual(forward?.last_seen, 0)
    let reply = try datapath.conntrack.lookup(
      ServiceObject.conntrackKey(backendAddresses[1], 8080, client, 40000, .tcp, JUNCTION_CT_REPLY),
      as: junction_ct4_entry.self)
    XCTAssertEqual(reply?.backend_id, 2)
    XCTAssertEqual(reply?.rev_nat_id, 1)
  }

  func testUDPIsDNATedAndAZeroChecksumStaysZero() throws {
    var service = threeBackends()
    service.proto = .udp
    service.port = 53
    service.backends = [(7, backendAddresses[2], 5353)]
    try program(service)
    var packet = request(.udp)
    packet.destinationPort = 53

    let result = try runFrom(packet.build())
    var expected = packet
    expected.destination = backendAddresses[2]
    expected.destinationPort = 5353
    XCTAssertEqual(result.verdict, .next)
    XCTAssertEqual(result.output, expected.build())
    let out = ParsedFrame(result.output)
    XCTAssertTrue(out.ipChecksumValid)
    XCTAssertTrue(out.l4ChecksumValid)
    XCTAssertNotEqual(out.l4ChecksumField, 0)

    packet.udpChecksum = false
    packet.sourcePort = 40001
    let unchecked = try runFrom(packet.build())
    XCTAssertEqual(ParsedFrame(unchecked.output).l4ChecksumField, 0, "no checksum stays none")
    XCTAssertTrue(ParsedFrame(unchecked.output).ipChecksumValid)
    XCTAssertEqual(ParsedFrame(unchecked.output).destinationPort, 5353)
  }

  func testAConnectionKeepsItsBackend() throws {
    try program(threeBackends())
    let first = try runFrom(request().build())
    let chosen = try XCTUnwrap(backendIndex(first.output))
    var established = request()
    established.tcpFlags = 0x10  // ACK
    for _ in 0..<20 {
      XCTAssertEqual(backendIndex(try runFrom(established.build()).output), chosen)
    }
    // New connections spread over all three (random: 60 tries miss one with p < 1e-10).
    var seen = Set<Int>()
    for port in UInt16(41000)..<41060 {
      if let index = backendIndex(try runFrom(request(sourcePort: port).build()).output) {
        seen.insert(index)
      }
    }
    XCTAssertEqual(seen, [0, 1, 2])
  }

  /// jnc_ct4 never evicts (a plain hash): a FIN or RST must mark both entries closing, so the
  /// agent's sweep drops them after the close timeout, not the 6 h TCP lifetime.
  func testAFINOrRSTMarksBothEntriesClosingAndASYNReopens() throws {
    var service = threeBackends()
    service.backends = [service.backends[1]]
    try program(service)
    let serviceKey = ServiceObject.conntrackKey(client, 40000, vip, 80, .tcp, JUNCTION_CT_SERVICE)
    let replyKey = ServiceObject.conntrackKey(
      backendAddresses[1], 8080, client, 40000, .tcp, JUNCTION_CT_REPLY)
    func closing(_ key: junction_ct4_key) throws -> Bool {
      let entry = try datapath.conntrack.lookup(key, as: junction_ct4_entry.self)
      XCTAssertNotNil(entry)
      return (entry?.flags ?? 0) & UInt16(JUNCTION_CT_F_CLOSING) != 0
    }
    XCTAssertEqual(try runFrom(request().build()).verdict, .next)
    XCTAssertFalse(try closing(serviceKey))
    XCTAssertFalse(try closing(replyKey))

    var fin = request()
    fin.tcpFlags = 0x11  // FIN, ACK
    XCTAssertEqual(try runFrom(fin.build()).verdict, .next)
    XCTAssertTrue(try closing(serviceKey), "the client's FIN")
    XCTAssertFalse(try closing(replyKey))
    var reset = PacketBuilder(.tcp, from: backendAddresses[1], 8080, to: client, 40000)
    reset.tcpFlags = 0x04  // RST
    XCTAssertEqual(try runTo(reset.build()).verdict, .next)
    XCTAssertTrue(try closing(replyKey), "the backend's RST")

    XCTAssertEqual(try runFrom(request().build()).verdict, .next)
    XCTAssertFalse(try closing(serviceKey), "a SYN reopens")
  }

  func testRepliesAreReverseNATedToTheVIP() throws {
    try program(threeBackends())
    for l4 in [PacketBuilder.L4.tcp, .udp] {
      var service = threeBackends()
      service.proto = l4
      try program(service)
      let forward = try runFrom(request(l4).build())
      let backend = try XCTUnwrap(backendIndex(forward.output))

      var reply = PacketBuilder()
      reply.l4 = l4
      reply.source = backendAddresses[backend]
      reply.sourcePort = 8080
      reply.destination = client
      reply.destinationPort = 40000
      reply.tcpFlags = 0x12  // SYN+ACK
      reply.payload = Array("pong".utf8)
      let result = try runTo(reply.build())

      XCTAssertEqual(result.verdict, .next)
      let out = ParsedFrame(result.output)
      XCTAssertEqual(out.source, vip, "\(l4)")
      XCTAssertEqual(out.sourcePort, 80)
      XCTAssertEqual(out.destination, client)
      XCTAssertEqual(out.destinationPort, 40000)
      XCTAssertTrue(out.ipChecksumValid, "\(l4)")
      XCTAssertTrue(out.l4ChecksumValid, "\(l4)")
      var expected = reply
      expected.source = vip
      expected.sourcePort = 80
      XCTAssertEqual(result.output, expected.build())

      // The same backend answering another client port is no reply of ours.
      reply.destinationPort = 40999
      XCTAssertEqual(try runTo(reply.build()).output, reply.build())
    }
  }

  // A pod reaching itself through its service (hairpin): HairpinTests.

  // MARK: - What passes untouched, what is dropped

  func testUnknownVIPAndNonIPAreUntouched() throws {
    try program(threeBackends())
    var other = request()
    other.destination = [10, 96, 0, 11]
    var otherPort = request()
    otherPort.destinationPort = 443
    var otherProto = request(.udp)  // the service is TCP only
    otherProto.sourcePort = 40002
    for frame in [other.build(), otherPort.build(), otherProto.build(), arpFrame(), udpFrame()] {
      for program in [from!, to!] {
        let result = try ProgramTestRun.run(program: program, packet: frame)
        XCTAssertEqual(result.verdict, .next)
        XCTAssertEqual(result.output, frame)
      }
    }
    XCTAssertEqual(try datapath.conntrack.keys(as: junction_ct4_key.self).count, 0)
  }

  /// Documented in bpf/lib/parse.h: IPv4 whose headers are shorter than they claim is
  /// dropped with INVALID_PACKET, in both directions.
  func testATruncatedHeaderIsDroppedAsInvalid() throws {
    try program(threeBackends())
    let full = request().build()
    let before = try datapath.dropCount(JUNCTION_DROP_INVALID_PACKET, JUNCTION_DIR_FROM_ENDPOINT)
    var pastTheEnd = Array(full[..<34])  // ihl 6: the header claims a byte past the frame
    pastTheEnd[14] = 0x46
    var badIHL = full  // ihl 15: options running into the TCP header and past the end
    badIHL[14] = 0x4f
    var shortTotal = full  // total length 16 < ihl * 4
    shortTotal[17] = 16
    let frames = [
      Array(full[..<34]),  // the IPv4 header and no TCP header
      Array(full[..<40]),  // cut inside the TCP header
      pastTheEnd, badIHL, shortTotal,
    ]
    for frame in frames {
      XCTAssertEqual(try runFrom(frame).verdict, .shot, "\(frame.count) bytes")
    }
    XCTAssertEqual(
      try datapath.dropCount(JUNCTION_DROP_INVALID_PACKET, JUNCTION_DIR_FROM_ENDPOINT) - before,
      UInt64(frames.count))
    XCTAssertEqual(try runTo(Array(full[..<40])).verdict, .shot)
    XCTAssertEqual(
      try datapath.dropCount(JUNCTION_DROP_INVALID_PACKET, JUNCTION_DIR_TO_ENDPOINT), 1)
    // Less than a whole IPv4 header the kernel refuses to even build as a test skb (and
    // ip_rcv would drop); the programs still check it (bpf_skb_load_bytes fails).
    XCTAssertThrowsError(try runFrom(Array(full[..<30]))) {
      XCTAssertEqual(($0 as? BPFError)?.errno, EINVAL)
    }
  }

  func testIPv4OptionsAreSkippedByIHL() throws {
    try program(threeBackends())
    var packet = request()
    packet.options = [0x94, 0x04, 0, 0]  // router alert: ihl = 6
    let result = try runFrom(packet.build())
    XCTAssertEqual(result.verdict, .next)
    let index = try XCTUnwrap(backendIndex(result.output))
    var expected = packet
    expected.destination = backendAddresses[index]
    expected.destinationPort = 8080
    XCTAssertEqual(result.output, expected.build())
    XCTAssertEqual(result.output[14], 0x46)
  }

  /// Documented in bpf/lib/parse.h: every fragment passes untouched, the first included.
  func testFragmentsPassUntouched() throws {
    try program(threeBackends())
    var first = request(.udp)
    var service = threeBackends()
    service.proto = .udp
    try program(service)
    first.fragment = 0x2000  // more fragments, offset 0
    var later = request(.udp)
    later.fragment = 0x0003  // offset 24 bytes, last
    for frame in [first.build(), later.build()] {
      let result = try runFrom(frame)
      XCTAssertEqual(result.verdict, .next)
      XCTAssertEqual(result.output, frame)
    }
    XCTAssertEqual(try datapath.conntrack.keys(as: junction_ct4_key.self).count, 0)
  }

  /// As kube-proxy's REJECT: the request becomes an ICMP port unreachable sent back to
  /// the client (redirected out of the interface it came in on), counted as NO_BACKEND.
  func testAServiceWithoutBackendsAnswersPortUnreachableAndCounts() throws {
    var service = threeBackends()
    service.backends = []
    try program(service)
    let counters = try datapath.object.map(named: JUNCTION_MAP_ENDPOINT_COUNTERS)
    let sentBefore =
      try counters.lookupSum(
        junction_endpoint_key(ifindex: 1), as: junction_endpoint_counters.self)?
      .from_packets ?? 0
    var withOptions = request(sourcePort: 40001)
    withOptions.options = [0x94, 0x04, 0, 0]

    for packet in [request(), withOptions] {
      let input = packet.build()
      let result = try runFrom(input)
      XCTAssertEqual(result.verdict, .redirect)
      let out = result.output
      let quoteLength = 20 + packet.options.count + 8
      XCTAssertEqual(out.count, 14 + 20 + 8 + quoteLength)
      XCTAssertEqual(Array(out[0..<6]), Array(input[6..<12]), "back to the sender's MAC")
      XCTAssertEqual(Array(out[6..<12]), Array(input[0..<6]))
      XCTAssertEqual(Array(out[12..<14]), [0x08, 0x00])
      let ip = Array(out[14..<34])
      XCTAssertEqual(ip[0], 0x45)
      XCTAssertEqual(Int(ip[2]) << 8 | Int(ip[3]), 20 + 8 + quoteLength)
      XCTAssertEqual(ip[9], 1, "ICMP")
      XCTAssertEqual(Array(ip[12..<16]), vip, "from the VIP")
      XCTAssertEqual(Array(ip[16..<20]), client)
      var zeroed = ip
      zeroed[10] = 0
      zeroed[11] = 0
      XCTAssertEqual(Checksum.internet(zeroed), UInt16(ip[10]) << 8 | UInt16(ip[11]))
      var icmp = Array(out[34...])
      XCTAssertEqual(Array(icmp[0..<2]), [3, 3], "destination unreachable, port unreachable")
      let stored = UInt16(icmp[2]) << 8 | UInt16(icmp[3])
      icmp[2] = 0
      icmp[3] = 0
      XCTAssertEqual(Checksum.internet(icmp), stored, "ICMP checksum")
      XCTAssertEqual(Array(icmp[8...]), Array(input[14..<(14 + quoteLength)]), "the quote")
    }

    XCTAssertEqual(try datapath.dropCount(JUNCTION_DROP_NO_BACKEND, JUNCTION_DIR_FROM_ENDPOINT), 2)
    let sentAfter =
      try counters.lookupSum(
        junction_endpoint_key(ifindex: 1), as: junction_endpoint_counters.self)?
      .from_packets ?? 0
    XCTAssertEqual(sentAfter - sentBefore, 2, "rejected packets still count as sent")
    XCTAssertEqual(try datapath.conntrack.keys(as: junction_ct4_key.self).count, 0)
  }

  func testEndpointCountersCountTranslatedPackets() throws {
    try program(threeBackends())
    let counters = try datapath.object.map(named: JUNCTION_MAP_ENDPOINT_COUNTERS)
    let frame = request().build()
    _ = try ProgramTestRun.run(program: from, packet: frame, repeat: 4)
    let sum = try counters.lookupSum(
      junction_endpoint_key(ifindex: 1), as: junction_endpoint_counters.self)
    XCTAssertEqual(sum?.from_packets, 4)
    XCTAssertEqual(sum?.from_bytes, UInt64(4 * frame.count))
  }

  // MARK: - Selection

  func testMaglevChoiceDependsOnlyOnTheTable() throws {
    try program(threeBackends(flags: JUNCTION_SVC_F_MAGLEV))
    let size = MaglevTable.size
    XCTAssertEqual(size, 16381)
    // Every slot backend 2: random would spread, Maglev may not.
    try MaglevTable.install(Array(repeating: 2, count: size), revNatID: 1, in: maglev)
    for port in UInt16(42000)..<42030 {
      XCTAssertEqual(backendIndex(try runFrom(request(sourcePort: port).build()).output), 1)
    }
    XCTAssertEqual(try MaglevTable.read(revNatID: 1, in: maglev)?.count, size)

    // A patterned table: the slot the documented hash names decides, every time.
    let table = (0..<size).map { UInt32($0 % 3 + 1) }
    try MaglevTable.install(table, revNatID: 1, in: maglev)
    try clearConntrack()
    var seen = Set<Int>()
    for port in UInt16(43000)..<43030 {
      let slot = maglevSlot(
        source: client, destination: vip, sourcePort: port, destinationPort: 80, proto: 6,
        seed: UInt32(JUNCTION_MAGLEV_HASH_SEED), tableSize: size)
      let expected = Int(table[slot]) - 1
      for _ in 0..<3 {
        try clearConntrack()
        XCTAssertEqual(
          backendIndex(try runFrom(request(sourcePort: port).build()).output), expected,
          "port \(port) slot \(slot)")
      }
      seen.insert(expected)
    }
    XCTAssertEqual(seen.count, 3, "the hash spreads over the table")

    // A slot whose backend is gone falls back to random rather than failing.
    try MaglevTable.install(Array(repeating: 99, count: size), revNatID: 1, in: maglev)
    XCTAssertNotNil(backendIndex(try runFrom(request(sourcePort: 44000).build()).output))
    XCTAssertTrue(try MaglevTable.remove(revNatID: 1, in: maglev))
    XCTAssertNil(try MaglevTable.read(revNatID: 1, in: maglev))
  }

  func testClientIPAffinityKeepsOneClientOnOneBackend() throws {
    try program(threeBackends(flags: JUNCTION_SVC_F_AFFINITY, timeout: 10800))
    let first = try XCTUnwrap(backendIndex(try runFrom(request().build()).output))
    for port in UInt16(45000)..<45030 {
      XCTAssertEqual(backendIndex(try runFrom(request(sourcePort: port).build()).output), first)
    }
    let key = junction_lb4_affinity_key(client: be32(client), rev_nat_id: 1, pad: 0)
    let entry = try XCTUnwrap(affinity.lookup(key, as: junction_lb4_affinity.self))
    XCTAssertEqual(entry.backend_id, UInt32(first + 1))

    // An entry is followed while fresh (monotonic clock, as bpf_ktime_get_ns) ...
    let target = (first + 1) % 3
    try affinity.update(
      key,
      junction_lb4_affinity(
        last_used: DatapathClock.now(), backend_id: UInt32(target + 1), pad: 0))
    for port in UInt16(46000)..<46010 {
      XCTAssertEqual(backendIndex(try runFrom(request(sourcePort: port).build()).output), target)
    }
    // ... and ignored once older than the timeout (then rewritten by the new choice). The
    // service's timeout is 3 hours: a time that old does not exist on a machine up for
    // less, so the service is reprogrammed with a 10 s timeout and the entry made 11 s old.
    try program(threeBackends(flags: JUNCTION_SVC_F_AFFINITY, timeout: 10))
    try affinity.update(
      key,
      junction_lb4_affinity(last_used: DatapathClock.ago(seconds: 11), backend_id: 99, pad: 0))
    XCTAssertNotNil(backendIndex(try runFrom(request(sourcePort: 47000).build()).output))
    XCTAssertNotEqual(try affinity.lookup(key, as: junction_lb4_affinity.self)?.backend_id, 99)
  }

  func testATerminatingBackendKeepsItsConnectionsAndGetsNoNewOnes() throws {
    // One backend, one connection to it.
    var service = threeBackends()
    service.backends = [service.backends[0]]
    try program(service)
    XCTAssertEqual(backendIndex(try runFrom(request().build()).output), 0)

    // The agent's update: backend 1 terminating, backend 2 added, slot 1 now backend 2.
    try writeBackend(2, backendAddresses[1], 8080, .tcp)
    try writeBackend(1, backendAddresses[0], 8080, .tcp, terminating: true)
    var slot = junction_lb4_service()
    slot.backend_id = 2
    try datapath.services.update(frontendKey(service, slot: 1), slot)

    var established = request()
    established.tcpFlags = 0x18  // PSH+ACK
    for _ in 0..<10 {
      XCTAssertEqual(backendIndex(try runFrom(established.build()).output), 0, "kept")
    }
    for port in UInt16(48000)..<48020 {
      XCTAssertEqual(backendIndex(try runFrom(request(sourcePort: port).build()).output), 1)
    }
    // A new SYN reusing the old ports is a new connection.
    XCTAssertEqual(backendIndex(try runFrom(request().build()).output), 1)

    // Even while still in a slot, a terminating backend is skipped for new connections.
    var both = service
    both.backends = [(1, backendAddresses[0], 8080), (2, backendAddresses[1], 8080)]
    try program(both)
    try writeBackend(1, backendAddresses[0], 8080, .tcp, terminating: true)
    for port in UInt16(49000)..<49030 {
      XCTAssertEqual(backendIndex(try runFrom(request(sourcePort: port).build()).output), 1)
    }
  }

  func testABackendThatIsGoneIsReplacedForItsConnections() throws {
    try program(threeBackends())
    let first = try XCTUnwrap(backendIndex(try runFrom(request().build()).output))
    try datapath.backends.delete(junction_lb4_backend_key(backend_id: UInt32(first + 1)))
    var established = request()
    established.tcpFlags = 0x10
    // Still in a slot but gone from the backends map: skipped, and the entry re-pointed.
    for _ in 0..<10 {
      let index = backendIndex(try runFrom(established.build()).output)
      XCTAssertNotNil(index)
      XCTAssertNotEqual(index, first)
    }
  }

  // MARK: - BPFKit

  // MARK: - Local Redirect Policy

  /// skipRedirectFromBackend: other clients are redirected to the local pod; the pod itself
  /// passes untouched while there is no origin entry (an address matcher), and gets the
  /// original Service's backend from the REDIRECT_ORIGIN-scope entry when there is one.
  func testARedirectsOwnBackendGetsTheOriginServiceOrPassesUntouched() throws {
    let local = backendAddresses[0]
    let flags = JUNCTION_SVC_F_LOCAL_REDIRECT | JUNCTION_SVC_F_SKIP_FROM_BACKEND
    let redirect = Service(vip: vip, backends: [(1, local, 8080)], flags: Int32(flags))
    try program(redirect)
    XCTAssertEqual(ParsedFrame(try runFrom(request().build()).output).destination, local)

    var own = request(sourcePort: 40001)
    own.source = local
    let frame = own.build()
    XCTAssertEqual(try runFrom(frame).output, frame, "no origin: untouched")
    XCTAssertNil(
      try datapath.conntrack.lookup(
        ServiceObject.conntrackKey(local, 40001, vip, 80, .tcp, JUNCTION_CT_SERVICE),
        as: junction_ct4_entry.self))

    try writeBackend(2, backendAddresses[1], 8080, .tcp)
    var slotKey = frontendKey(redirect, slot: 1)
    slotKey.scope = UInt8(JUNCTION_SCOPE_REDIRECT_ORIGIN)
    var slot = junction_lb4_service()
    slot.backend_id = 2
    try datapath.services.update(slotKey, slot)
    var originKey = frontendKey(redirect, slot: 0)
    originKey.scope = UInt8(JUNCTION_SCOPE_REDIRECT_ORIGIN)
    var origin = junction_lb4_service()
    origin.count = 1
    origin.rev_nat_id = redirect.revNatID
    try datapath.services.update(originKey, origin)
    let translated = ParsedFrame(try runFrom(frame).output)
    XCTAssertEqual(translated.destination, backendAddresses[1])
    XCTAssertTrue(translated.ipChecksumValid && translated.l4ChecksumValid)
    // Without the skip flag the pod is redirected like anyone else (to itself).
    var plain = redirect
    plain.flags = Int32(JUNCTION_SVC_F_LOCAL_REDIRECT)
    try program(plain)
    XCTAssertEqual(
      ParsedFrame(try runFrom(request(sourcePort: 40002).build()).output).destination, local)
    var ownAgain = request(sourcePort: 40003)
    ownAgain.source = local
    XCTAssertEqual(ParsedFrame(try runFrom(ownAgain.build()).output).destination, local)
  }

  func testMapsCanBeSizedBeforeLoad() throws {
    let root = try ScratchBPFFilesystem()
    defer { root.remove() }
    let sized = try BPFObject.open(path: DatapathBuild.endpointObject(), pinRoot: root.path)
    XCTAssertEqual(try sized.maxEntries(ofMap: JUNCTION_MAP_CT4), Int(JUNCTION_CT4_MAX))
    try sized.setMaxEntries(4096, forMap: JUNCTION_MAP_CT4)
    try sized.setMaxEntries(1000, forMap: JUNCTION_MAP_LB4_SERVICES)
    XCTAssertThrowsError(try sized.setMaxEntries(10, forMap: "nope")) {
      XCTAssertEqual(($0 as? BPFError)?.isNotFound, true)
    }
    try sized.load()
    XCTAssertEqual(try sized.map(named: JUNCTION_MAP_CT4).maxEntries, 4096)
    XCTAssertEqual(try sized.map(named: JUNCTION_MAP_LB4_SERVICES).maxEntries, 1000)
    XCTAssertThrowsError(try sized.setMaxEntries(10, forMap: JUNCTION_MAP_CT4)) {
      XCTAssertTrue("\($0)".contains("already loaded"), "\($0)")
    }
  }

  func testMaglevTablesMustHaveTheTemplatesShape() throws {
    XCTAssertThrowsError(try MaglevTable.make([1, 2, 3])) {
      XCTAssertTrue("\($0)".contains("need 16381"), "\($0)")
    }
    let wrong = try BPFMap.create(
      .array, name: "jnc_wrong", keySize: 4, valueSize: 8, maxEntries: 1)
    XCTAssertThrowsError(
      try maglev.update(junction_lb4_revnat_key(rev_nat_id: 1, pad: 0), innerMap: wrong)
    ) { XCTAssertEqual(($0 as? BPFError)?.errno, EINVAL) }
    XCTAssertThrowsError(try wrong.update(UInt32(0), elements: [UInt32(1)])) {
      XCTAssertTrue("\($0)".contains("values are 8"), "\($0)")
    }
  }
}
