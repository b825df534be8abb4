import AgentAPI
import AgentCore
import DatapathABI
import FlowPipeline
import XCTest

/// IPv6 flows without root: junction_flow_event6 records decoded (told from IPv4 ones by
/// their size), named, filtered and printed with IPv6 addresses.
final class FlowIPv6Tests: XCTestCase {
  private let client = FlowIPv6("fd00:10:244:1::5")!
  private let vip = FlowIPv6("fd00:96::a")!
  private let backend = FlowIPv6("fd00:10:244:2::b")!
  private let time: Int64 = 1_796_526_482_123_456_789  // 2026-12-06T03:08:02.123456789Z

  private var directory: FlowDirectory {
    // Pod addresses as objects may spell them; flows print RFC 5952's form.
    var directory = FlowDirectory(
      endpoints: [], services: [],
      pods: [
        .init(namespace: "default", name: "client", ips: ["fd00:10:244:1:0:0:0:5"], labels: [:]),
        .init(namespace: "droids", name: "r2d2-6d8f", ips: ["FD00:10:244:2::B"], labels: [:]),
      ])
    let web = FlowService(namespace: "droids", name: "web")
    directory.servicesByID[7] = web
    directory.servicesByFrontend["[fd00:96::a]:80/TCP"] = web
    return directory
  }

  private func words(_ address: FlowIPv6) -> (UInt32, UInt32, UInt32, UInt32) {
    let bytes = address.bytes
    func word(_ index: Int) -> UInt32 {
      UInt32(bigEndian: bytes[index..<index + 4].reduce(0) { $0 << 8 | UInt32($1) })
    }
    return (word(0), word(4), word(8), word(12))
  }

  private func syn() -> FlowRecord {
    var record = FlowRecord(
      time: time, kind: .trace, point: 0, verdict: 1, proto: 6, tcpFlags: 0x02,
      flags: UInt8(JUNCTION_FLOW_F_NEW | JUNCTION_FLOW_F_XLATED | JUNCTION_FLOW_F_REPLY_KNOWN),
      source: 0, sourcePort: 40000, destination: 0, destinationPort: 80, natPort: 8080,
      revNatID: 7, ifindex: 12)
    record.ipv6 = .init(source: client, destination: vip, nat: backend)
    return record
  }

  func testAnIPv6RingRecordDecodesByItsSizeAndAnIPv4OneStillDoes() {
    XCTAssertEqual(MemoryLayout<junction_flow_event6>.size, 112)
    var event = junction_flow_event6()
    event.timestamp = 1_000
    event.kind = UInt8(JUNCTION_FLOW_TRACE.rawValue)
    event.verdict = 1
    event.proto = 6
    event.tcp_flags = 0x02
    event.flags = UInt8(JUNCTION_FLOW_F_NEW | JUNCTION_FLOW_F_XLATED | JUNCTION_FLOW_F_REPLY_KNOWN)
    event.saddr = words(client)
    event.daddr = words(vip)
    event.nat_address = words(backend)
    event.sport = UInt16(40000).bigEndian
    event.dport = UInt16(80).bigEndian
    event.nat_port = UInt16(8080).bigEndian
    event.rev_nat_id = 7
    event.ifindex = 12
    let record = withUnsafeBytes(of: event) {
      FlowRecord(record: $0, monotonicToWall: time - 1_000)
    }
    XCTAssertEqual(record, syn())
    XCTAssertEqual(record?.sourceIP, "fd00:10:244:1::5")
    XCTAssertEqual(record?.destinationIP, "fd00:96::a")
    XCTAssertEqual(record?.natIP, "fd00:10:244:2::b")
    XCTAssertEqual(record?.snatIP, "::")

    event.kind = 99
    XCTAssertNil(withUnsafeBytes(of: event) { FlowRecord(record: $0, monotonicToWall: 0) })
    // Neither size: not a record of ours.
    XCTAssertNil(
      withUnsafeBytes(of: event) {
        FlowRecord(record: UnsafeRawBufferPointer(rebasing: $0[0..<100]), monotonicToWall: 0)
      })

    var v4 = junction_flow_event()
    v4.kind = UInt8(JUNCTION_FLOW_DROP.rawValue)
    v4.saddr = UInt32(0x0a00_0105).bigEndian
    let old = withUnsafeBytes(of: v4) { FlowRecord(record: $0, monotonicToWall: 0) }
    XCTAssertNil(old?.ipv6)
    XCTAssertEqual(old?.sourceIP, "10.0.1.5")
  }

  func testAnIPv6TranslatedConnectionNamesPodsAndServiceWithBracketedEndpoints() {
    let flow = syn().flow(directory: directory, nodeName: "n")
    XCTAssertEqual(
      flow.source,
      FlowPeer(ip: "fd00:10:244:1::5", port: 40000, namespace: "default", podName: "client"))
    XCTAssertEqual(
      flow.destination,
      FlowPeer(ip: "fd00:10:244:2::b", port: 8080, namespace: "droids", podName: "r2d2-6d8f"))
    XCTAssertEqual(flow.destinationService, FlowService(namespace: "droids", name: "web"))
    XCTAssertEqual(flow.original, "[fd00:96::a]:80")
    XCTAssertEqual(
      FlowCompact.line(flow),
      "Dec  6 03:08:02.123: default/client:40000 -> droids/r2d2-6d8f:8080 "
        + "(service droids/web [fd00:96::a]:80) from-endpoint FORWARDED (TCP Flags: SYN)")

    // A drop to the frontend, no rev-NAT id: the Service found by "[vip]:80/TCP"; unnamed
    // addresses printed bracketed with their port.
    var drop = FlowRecord(
      time: time, kind: .drop, point: 0, verdict: 2, dropReason: 5, proto: 6, tcpFlags: 0x02,
      source: 0, sourcePort: 40001, destination: 0, destinationPort: 80)
    drop.ipv6 = .init(source: FlowIPv6("fd00:10:244:9::9")!, destination: vip)
    let dropped = drop.flow(directory: directory, nodeName: "n")
    XCTAssertEqual(dropped.destinationService, FlowService(namespace: "droids", name: "web"))
    XCTAssertEqual(
      FlowCompact.line(dropped),
      "Dec  6 03:08:02.123: [fd00:10:244:9::9]:40001 <> droids/web:80 "
        + "Service backend not found DROPPED (TCP Flags: SYN)")
  }

  func testAnIPv6NorthSouthSNATFlowShowsTheNodesAddressAndPort() {
    let node = FlowIPv6("fd00:192::1")!
    var record = FlowRecord(
      time: time, kind: .trace, point: 2, verdict: 1, proto: 6, tcpFlags: 0x02,
      flags: UInt8(
        JUNCTION_FLOW_F_NEW | JUNCTION_FLOW_F_XLATED | JUNCTION_FLOW_F_REPLY_KNOWN
          | JUNCTION_FLOW_F_SNAT),
      source: 0, sourcePort: 40000, destination: 0, destinationPort: 30080, natPort: 8080,
      revNatID: 7, snatPort: 40100)
    record.ipv6 = .init(
      source: FlowIPv6("fd00:198::5")!, destination: node, nat: FlowIPv6("fd00:10:2::b")!,
      snat: node)
    let flow = record.flow(directory: FlowDirectory(), nodeName: "n")
    XCTAssertEqual(flow.northSouth, "snat")
    XCTAssertEqual(flow.snat, "[fd00:192::1]:40100")
    XCTAssertEqual(flow.original, "[fd00:192::1]:30080")
    XCTAssertEqual(
      FlowCompact.line(flow),
      "Dec  6 03:08:02.123: [fd00:198::5]:40000 -> [fd00:10:2::b]:8080 "
        + "([fd00:192::1]:30080, SNAT [fd00:192::1]:40100) from-netdev FORWARDED "
        + "(TCP Flags: SYN)")
  }

  func testIPFiltersTakeIPv6AddressesAndCIDRsAndNeverMatchTheOtherFamily() {
    let flow = syn().flow(directory: directory, nodeName: "n")
    var filter = FlowFilter()
    for (wanted, matches) in [
      ("fd00:10:244::/48", true), ("fd00:10:244:1::5", true), ("fd00:10:244:1:0::5/128", true),
      ("fd00:10:244:1::6", false), ("fd00:11::/32", false), ("::/0", true),
      ("0.0.0.0/0", false), ("10.0.0.0/8", false),
    ] {
      filter.fromIP = wanted
      XCTAssertNil(filter.problem(), wanted)
      XCTAssertEqual(filter.matches(flow), matches, wanted)
    }
    filter.fromIP = nil
    filter.ip = "fd00:10:244:2::/64"
    XCTAssertTrue(filter.matches(flow), "the backend, on either side")
    filter.ip = "fd00::/129"
    XCTAssertEqual(
      filter.problem(), "ip \"fd00::/129\" is not an IPv4 or IPv6 address or CIDR")
    filter.ip = "10.0.0.0/8"
    XCTAssertNil(filter.problem())
  }
}
