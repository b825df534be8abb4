import AgentAPI
import AgentCore
import DatapathABI
import FlowPipeline
import XCTest

/// The flow pipeline without root: records decoded from the ring's bytes, named, filtered,
/// buffered and printed.
final class FlowPipelineTests: XCTestCase {
  private let client: UInt32 = 0x0a00_0105  // 10.0.1.5
  private let vip: UInt32 = 0x0a60_000a  // 10.96.0.10
  private let backend: UInt32 = 0x0a00_020b  // 10.0.2.11
  private let time: Int64 = 1_796_526_482_123_456_789  // 2026-12-06T03:08:02.123456789Z

  private var directory: FlowDirectory {
    FlowDirectory(
      pods: [
        "10.0.1.5": .init(namespace: "default", name: "client"),
        "10.0.2.11": .init(namespace: "droids", name: "r2d2-6d8f"),
      ],
      servicesByID: [7: FlowService(namespace: "droids", name: "web")],
      servicesByFrontend: ["10.96.0.10:80/TCP": FlowService(namespace: "droids", name: "web")])
  }

  private func syn() -> FlowRecord {
    FlowRecord(
      time: time, kind: .trace, point: 0, verdict: 1, proto: 6, tcpFlags: 0x02,
      flags: UInt8(JUNCTION_FLOW_F_NEW | JUNCTION_FLOW_F_XLATED | JUNCTION_FLOW_F_REPLY_KNOWN),
      source: client, sourcePort: 40000, destination: vip, destinationPort: 80,
      natAddress: backend, natPort: 8080, revNatID: 7, ifindex: 12)
  }

  private func finReply() -> FlowRecord {
    FlowRecord(
      time: time + 5_000_000, kind: .trace, point: 1, verdict: 1, proto: 6, tcpFlags: 0x11,
      flags: UInt8(JUNCTION_FLOW_F_REPLY | JUNCTION_FLOW_F_REPLY_KNOWN | JUNCTION_FLOW_F_XLATED),
      source: backend, sourcePort: 8080, destination: client, destinationPort: 40000,
      natAddress: vip, natPort: 80, revNatID: 7, ifindex: 12)
  }

  private func noBackendDrop() -> FlowRecord {
    FlowRecord(
      time: time + 9_000_000, kind: .drop, point: 0, verdict: 2, dropReason: 5, proto: 6,
      tcpFlags: 0x02, source: client, sourcePort: 40001, destination: vip, destinationPort: 80)
  }

  func testARingRecordDecodesWithItsWallClockTime() {
    var event = junction_flow_event()
    event.timestamp = 1_000
    event.kind = UInt8(JUNCTION_FLOW_DROP.rawValue)
    event.point = 1
    event.verdict = 2
    event.drop_reason = 5
    event.proto = 17
    event.saddr = client.bigEndian
    event.sport = UInt16(53).bigEndian
    event.daddr = vip.bigEndian
    event.dport = UInt16(5353).bigEndian
    event.ifindex = 3
    let record = withUnsafeBytes(of: event) { FlowRecord(record: $0, monotonicToWall: 500) }
    XCTAssertEqual(
      record,
      FlowRecord(
        time: 1_500, kind: .drop, point: 1, verdict: 2, dropReason: 5, proto: 17,
        source: client, sourcePort: 53, destination: vip, destinationPort: 5353, ifindex: 3))
    XCTAssertNil(
      withUnsafeBytes(of: event.timestamp) { FlowRecord(record: $0, monotonicToWall: 0) })
    event.kind = 99
    XCTAssertNil(withUnsafeBytes(of: event) { FlowRecord(record: $0, monotonicToWall: 0) })
  }

  func testATranslatedConnectionNamesClientBackendAndService() {
    let flow = syn().flow(directory: directory, nodeName: "node-a")
    XCTAssertEqual(flow.time, "2026-12-06T03:08:02.123456789Z")
    XCTAssertEqual(flow.nodeName, "node-a")
    XCTAssertEqual(flow.type, "trace")
    XCTAssertEqual(flow.tracePoint, "from-endpoint")
    XCTAssertEqual(flow.trafficDirection, "egress")
    XCTAssertEqual(flow.verdict, "FORWARDED")
    XCTAssertEqual(
      flow.source, FlowPeer(ip: "10.0.1.5", port: 40000, namespace: "default", podName: "client"))
    XCTAssertEqual(
      flow.destination,
      FlowPeer(ip: "10.0.2.11", port: 8080, namespace: "droids", podName: "r2d2-6d8f"))
    XCTAssertEqual(flow.destinationService, FlowService(namespace: "droids", name: "web"))
    XCTAssertEqual(flow.original, "10.96.0.10:80")
    XCTAssertEqual(flow.tcpFlags, ["SYN"])
    XCTAssertEqual(flow.isReply, false)
    XCTAssertTrue(flow.newConnection)
    XCTAssertNil(flow.dropReason)

    let reply = finReply().flow(directory: directory, nodeName: "node-a")
    XCTAssertEqual(reply.source.podName, "r2d2-6d8f")
    XCTAssertEqual(reply.destination.podName, "client")
    XCTAssertEqual(reply.sourceService, FlowService(namespace: "droids", name: "web"))
    XCTAssertEqual(reply.tcpFlags, ["FIN", "ACK"])
    XCTAssertEqual(reply.isReply, true)
    XCTAssertEqual(reply.trafficDirection, "ingress")
  }

  func testADropToAServiceAddressNamesTheServiceAndTheReason() {
    let flow = noBackendDrop().flow(directory: directory, nodeName: "n")
    XCTAssertEqual(flow.type, "drop")
    XCTAssertEqual(flow.verdict, "DROPPED")
    XCTAssertEqual(flow.dropReason, "Service backend not found")
    XCTAssertEqual(flow.dropReasonCode, 5)
    XCTAssertEqual(flow.destination, FlowPeer(ip: "10.96.0.10", port: 80))
    XCTAssertEqual(flow.destinationService, FlowService(namespace: "droids", name: "web"))
    XCTAssertNil(flow.isReply, "the datapath does not say")
  }

  /// A connection handed to the L7 proxy: seen at to-proxy, REDIRECTED, still addressed to
  /// the Service (no translation), with the proxy port.
  func testAToProxyFlowNamesTheServiceAndTheProxyPort() {
    let record = FlowRecord(
      time: time, kind: .trace, point: JUNCTION_DIR_TO_PROXY.rawValue,
      verdict: UInt8(JUNCTION_VERDICT_REDIRECTED.rawValue), proto: 6, tcpFlags: 0x02,
      flags: UInt8(JUNCTION_FLOW_F_NEW | JUNCTION_FLOW_F_REPLY_KNOWN), source: client,
      sourcePort: 40000, destination: vip, destinationPort: 80, natPort: 15001, revNatID: 7,
      ifindex: 12)
    let flow = record.flow(directory: directory, nodeName: "n")
    XCTAssertEqual(flow.tracePoint, "to-proxy")
    XCTAssertEqual(flow.verdict, "REDIRECTED")
    XCTAssertEqual(flow.destination, FlowPeer(ip: "10.96.0.10", port: 80))
    XCTAssertEqual(flow.destinationService, FlowService(namespace: "droids", name: "web"))
    XCTAssertEqual(flow.proxyPort, 15001)
    XCTAssertNil(flow.original)
    XCTAssertTrue(FlowCompact.line(flow).contains(" to-proxy REDIRECTED (TCP Flags: SYN)"))
    XCTAssertNil(syn().flow(directory: directory, nodeName: "n").proxyPort)
  }

  func testCompactLinesHaveHubblesShape() {
    XCTAssertEqual(
      FlowCompact.line(syn().flow(directory: directory, nodeName: "n")),
      "Dec  6 03:08:02.123: default/client:40000 -> droids/r2d2-6d8f:8080 "
        + "(service droids/web 10.96.0.10:80) from-endpoint FORWARDED (TCP Flags: SYN)")
    XCTAssertEqual(
      FlowCompact.line(finReply().flow(directory: directory, nodeName: "n")),
      "Dec  6 03:08:02.128: default/client:40000 <- droids/r2d2-6d8f:8080 "
        + "(service droids/web 10.96.0.10:80) to-endpoint FORWARDED (TCP Flags: FIN, ACK)")
    XCTAssertEqual(
      FlowCompact.line(noBackendDrop().flow(directory: directory, nodeName: "n")),
      "Dec  6 03:08:02.132: default/client:40001 <> droids/web:80 "
        + "Service backend not found DROPPED (TCP Flags: SYN)")
    XCTAssertEqual(
      FlowCompact.line(noBackendDrop().flow(directory: FlowDirectory(), nodeName: "n")),
      "Dec  6 03:08:02.132: 10.0.1.5:40001 <> 10.96.0.10:80 "
        + "Service backend not found DROPPED (TCP Flags: SYN)")
  }

  func testABackendOnAnotherNodeIsNamedByItsSlicesTargetRef() {
    // 10.0.2.11 is a backend on another node: no endpoint here, no Pod object; its slice's
    // targetRef names it. An address both know is named by what this node holds.
    let directory = FlowDirectory(
      endpoints: [], services: [],
      pods: [.init(namespace: "default", name: "client", ips: ["10.0.1.5"], labels: ["a": "b"])],
      backends: [
        .init(namespace: "droids", name: "c3po-77f9", ips: ["10.0.2.11"]),
        .init(namespace: "stale", name: "old", ips: ["10.0.1.5"]),
      ])
    let flow = syn().flow(directory: directory, nodeName: "n")
    XCTAssertEqual(flow.destination.namespace, "droids")
    XCTAssertEqual(flow.destination.podName, "c3po-77f9")
    XCTAssertEqual(flow.source.podName, "client")
    XCTAssertEqual(flow.source.labels, ["a=b"])
    XCTAssertEqual(
      FlowCompact.line(flow),
      "Dec  6 03:08:02.123: default/client:40000 -> droids/c3po-77f9:8080 "
        + "from-endpoint FORWARDED (TCP Flags: SYN)")
  }

  func testNorthSouthFlowsSayHowTheyLeaveAndPodsCarryTheirLabels() {
    let node: UInt32 = 0xc000_0201  // 192.0.2.1
    let outside: UInt32 = 0xc633_6405  // 198.51.100.5
    let directory = FlowDirectory(
      endpoints: [], services: [],
      pods: [
        .init(
          namespace: "droids", name: "r2d2-6d8f", ips: ["10.0.2.11"],
          labels: ["class": "astromech", "app": "droids"])
      ])
    var snat = FlowRecord(
      time: time, kind: .trace, point: 2, verdict: 1, proto: 6, tcpFlags: 0x02,
      flags: UInt8(
        JUNCTION_FLOW_F_NEW | JUNCTION_FLOW_F_XLATED | JUNCTION_FLOW_F_REPLY_KNOWN
          | JUNCTION_FLOW_F_SNAT),
      source: outside, sourcePort: 40000, destination: node, destinationPort: 30080,
      natAddress: backend, natPort: 8080, revNatID: 7, snatAddress: node, snatPort: 40100)
    let flow = snat.flow(directory: directory, nodeName: "n")
    XCTAssertEqual(flow.tracePoint, "from-netdev")
    XCTAssertEqual(flow.northSouth, "snat")
    XCTAssertEqual(flow.snat, "192.0.2.1:40100")
    XCTAssertEqual(flow.destination.labels, ["app=droids", "class=astromech"])
    XCTAssertNil(flow.source.labels)
    XCTAssertNil(flow.localRedirect)
    XCTAssertEqual(
      FlowCompact.line(flow),
      "Dec  6 03:08:02.123: 198.51.100.5:40000 -> droids/r2d2-6d8f:8080 "
        + "(192.0.2.1:30080, SNAT 192.0.2.1:40100) from-netdev FORWARDED (TCP Flags: SYN)")

    // The backend's reply to the node's port: shown going back to the client.
    snat = FlowRecord(
      time: time, kind: .trace, point: 2, verdict: 1, proto: 6, tcpFlags: 0x11,
      flags: UInt8(
        JUNCTION_FLOW_F_REPLY | JUNCTION_FLOW_F_XLATED | JUNCTION_FLOW_F_REPLY_KNOWN
          | JUNCTION_FLOW_F_SNAT),
      source: backend, sourcePort: 8080, destination: node, destinationPort: 40100,
      natAddress: node, natPort: 30080, revNatID: 7, snatAddress: outside, snatPort: 40000)
    let reply = snat.flow(directory: directory, nodeName: "n")
    XCTAssertEqual(reply.destination, FlowPeer(ip: "198.51.100.5", port: 40000))
    XCTAssertEqual(reply.snat, "192.0.2.1:40100")
    XCTAssertEqual(
      FlowCompact.line(reply),
      "Dec  6 03:08:02.123: 198.51.100.5:40000 <- droids/r2d2-6d8f:8080 "
        + "(192.0.2.1:30080, SNAT 192.0.2.1:40100) from-netdev FORWARDED (TCP Flags: FIN, ACK)")

    // The backend's node of a DSR connection: the Service from the option's frontend.
    let dsr = FlowRecord(
      time: time, kind: .trace, point: 2, verdict: 1, proto: 6, tcpFlags: 0x02,
      flags: UInt8(
        JUNCTION_FLOW_F_NEW | JUNCTION_FLOW_F_XLATED | JUNCTION_FLOW_F_REPLY_KNOWN
          | JUNCTION_FLOW_F_DSR),
      source: outside, sourcePort: 40000, destination: node, destinationPort: 30080,
      natAddress: backend, natPort: 8080)
    var named = directory
    named.servicesByFrontend["0.0.0.0:30080/TCP"] = FlowService(namespace: "droids", name: "web")
    let backendSide = dsr.flow(directory: named, nodeName: "n")
    XCTAssertEqual(backendSide.northSouth, "dsr")
    XCTAssertNil(backendSide.snat)
    XCTAssertEqual(backendSide.destinationService, FlowService(namespace: "droids", name: "web"))
    XCTAssertEqual(
      FlowCompact.line(backendSide),
      "Dec  6 03:08:02.123: 198.51.100.5:40000 -> droids/r2d2-6d8f:8080 "
        + "(service droids/web 192.0.2.1:30080, DSR) from-netdev FORWARDED (TCP Flags: SYN)")

    // A Local Redirect Policy's frontend, east-west.
    var lrp = syn()
    lrp.flags |= UInt8(JUNCTION_FLOW_F_LRP)
    let redirected = lrp.flow(directory: self.directory, nodeName: "n")
    XCTAssertEqual(redirected.localRedirect, true)
    XCTAssertNil(redirected.northSouth)
    XCTAssertEqual(
      FlowCompact.line(redirected),
      "Dec  6 03:08:02.123: default/client:40000 -> droids/r2d2-6d8f:8080 "
        + "(service droids/web 10.96.0.10:80, local redirect) from-endpoint FORWARDED "
        + "(TCP Flags: SYN)")
  }

  func testTimesRoundTrip() {
    XCTAssertEqual(Timestamp.format(nanoseconds: 0), "1970-01-01T00:00:00.000000000Z")
    XCTAssertEqual(
      Timestamp.format(nanoseconds: 951_868_799_000_000_001), "2000-02-29T23:59:59.000000001Z")
    XCTAssertEqual(Timestamp.parse("2000-02-29T23:59:59.000000001Z"), 951_868_799_000_000_001)
    XCTAssertEqual(Timestamp.parse("2026-12-06T03:08:02Z"), 1_796_526_482_000_000_000)
    XCTAssertEqual(Timestamp.parse("2026-12-06T03:08:02.5Z"), 1_796_526_482_500_000_000)
    XCTAssertNil(Timestamp.parse("2026-12-06 03:08:02Z"))
    XCTAssertNil(Timestamp.parse("2026-12-06T03:08:02+01:00"))
    // Beyond what Int64 nanoseconds hold (1677..2262): refused, not a trap (schemathesis).
    XCTAssertNil(Timestamp.parse("3519-03-09T03:45:59Z"))
    XCTAssertNil(Timestamp.parse("9999-12-31T23:59:59.999999999Z"))
    XCTAssertNil(Timestamp.parse("0001-01-01T00:00:00Z"))
    XCTAssertEqual(Timestamp.parse("2262-04-11T23:47:16Z"), 9_223_372_036_000_000_000)
    XCTAssertEqual(FlowCompact.stampMilli("2026-01-16T00:00:00.004Z"), "Jan 16 00:00:00.004")
  }

  func testFiltersSelectOnlyWhatTheySay() {
    let flows = [syn(), finReply(), noBackendDrop()].map {
      $0.flow(directory: directory, nodeName: "n")
    }
    func selected(_ change: (inout FlowFilter) -> Void) -> [Int] {
      var filter = FlowFilter()
      change(&filter)
      return flows.indices.filter { filter.matches(flows[$0]) }
    }
    XCTAssertEqual(selected { _ in }, [0, 1, 2])
    XCTAssertEqual(selected { $0.fromPod = "client" }, [0, 2], "bare prefix: namespace default")
    XCTAssertEqual(selected { $0.fromPod = "default/cli" }, [0, 2])
    XCTAssertEqual(selected { $0.toPod = "droids/r2d2" }, [0])
    XCTAssertEqual(selected { $0.toPod = "droids/" }, [0])
    XCTAssertEqual(selected { $0.pod = "droids/r2d2" }, [0, 1])
    XCTAssertEqual(selected { $0.pod = "r2d2" }, [], "r2d2 is not in default")
    XCTAssertEqual(selected { $0.namespace = "droids" }, [0, 1])
    XCTAssertEqual(selected { $0.fromIP = "10.0.2.0/24" }, [1])
    XCTAssertEqual(selected { $0.toIP = "10.96.0.10" }, [2])
    XCTAssertEqual(selected { $0.ip = "10.0.0.0/8" }, [0, 1, 2])
    XCTAssertEqual(selected { $0.port = 8080 }, [0, 1])
    XCTAssertEqual(selected { $0.toPort = 80 }, [0, 2], "the Service port dialled counts")
    XCTAssertEqual(selected { $0.proto = "udp" }, [])
    XCTAssertEqual(selected { $0.verdict = "dropped" }, [2])
    XCTAssertEqual(selected { $0.type = "trace" }, [0, 1])
    XCTAssertEqual(selected { $0.toService = "droids/web" }, [0, 2])
    XCTAssertEqual(selected { $0.fromService = "droids/web" }, [1])
    XCTAssertEqual(
      selected {
        $0.fromPod = "client"
        $0.verdict = "FORWARDED"
      }, [0])
  }

  func testQueriesParseRoundTripAndRefuseNonsense() throws {
    var query = FlowQuery()
    query.filter.fromPod = "default/client"
    query.filter.toIP = "10.0.0.0/8"
    query.filter.verdict = "DROPPED"
    query.filter.toPort = 80
    query.last = 20
    query.since = 1_796_526_482_000_000_000
    query.follow = true
    XCTAssertEqual(
      query.queryString,
      "from-pod=default/client&to-ip=10.0.0.0%2F8&to-port=80&verdict=DROPPED&last=20"
        .replacingOccurrences(of: "%2F", with: "/")
        + "&since=2026-12-06T03:08:02.000000000Z&follow=true")
    XCTAssertEqual(try FlowQuery.parse(query.queryString), query)
    XCTAssertEqual(try FlowQuery.parse("pod=a%2Fb").filter.pod, "a/b")
    XCTAssertEqual(try FlowQuery.parse(""), FlowQuery())
    for bad in [
      "verdict=MAYBE", "type=dns", "ip=10.0.0.300", "port=x", "last=-1", "follow=yes",
      "since=yesterday", "colour=red", "pod=%zz", "since=3519-03-09T03:45:59Z",
    ] {
      XCTAssertThrowsError(try FlowQuery.parse(bad), bad)
    }
  }

  func testSelectAppliesSinceTheFilterAndLast() {
    let records = [syn(), finReply(), noBackendDrop()]
    var query = FlowQuery()
    XCTAssertEqual(query.select(records, directory: directory, nodeName: "n").count, 3)
    query.since = time + 1
    XCTAssertEqual(
      query.select(records, directory: directory, nodeName: "n").map(\.time),
      ["2026-12-06T03:08:02.128456789Z", "2026-12-06T03:08:02.132456789Z"])
    query.last = 1
    XCTAssertEqual(
      query.select(records, directory: directory, nodeName: "n").map(\.type), ["drop"])
    query.last = 0
    XCTAssertEqual(query.select(records, directory: directory, nodeName: "n"), [])
    XCTAssertEqual(
      query.select(records, directory: directory, nodeName: "n", limited: false).count, 2,
      "a follower's new flows are not cut to --last")
    query.filter.verdict = "FORWARDED"
    XCTAssertEqual(
      query.select(records, directory: directory, nodeName: "n", limited: false).count, 1)
  }

  func testTheBufferKeepsTheLastFlowsInOrder() {
    let buffer = FlowBuffer(capacity: 3)
    XCTAssertEqual(buffer.snapshot(), [])
    for port in UInt16(1)...5 {
      var record = syn()
      record.sourcePort = port
      buffer.append(record)
    }
    XCTAssertEqual(buffer.snapshot().map(\.sourcePort), [3, 4, 5])
    XCTAssertEqual(buffer.total, 5)
  }

  func testAFollowerGetsTheBacklogThenNewFlowsAndASlowOneLosesCountedFlows() async {
    let buffer = FlowBuffer(capacity: 8)
    buffer.append(syn())
    let (backlog, stream, id) = buffer.follow(queue: 2)
    XCTAssertEqual(backlog, [syn()])
    for port in UInt16(1)...5 {
      var record = finReply()
      record.sourcePort = port
      buffer.append(record)
    }
    XCTAssertEqual(buffer.lost(follower: id), 3, "queue of 2: 3 of 5 lost")
    var iterator = stream.makeAsyncIterator()
    let batch = await iterator.next()
    XCTAssertEqual(batch?.map(\.sourcePort), [1, 2], "what was waiting, at once")
    buffer.append(contentsOf: [syn(), finReply()])
    let next = await iterator.next()
    XCTAssertEqual(next?.count, 2)
    XCTAssertEqual(buffer.followerCount, 1)
    buffer.stop(follower: id)
    XCTAssertEqual(buffer.followerCount, 0)
    let end = await iterator.next()
    XCTAssertNil(end)
  }
}
