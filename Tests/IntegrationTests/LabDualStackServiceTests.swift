import Foundation
import XCTest

/// Dual-stack Services on `install/lab up --ip-family dual`, end to end: selector Services
/// whose EndpointSlices the lab derives per family (derive.py), backends on both nodes that
/// answer "NAME LOCAL PEER" (the address the connection reached and whom they saw), so the
/// test reads off on which family each connection arrived.
/// - A RequireDualStack Service is reached on both cluster IPs from a pod on every node, and
///   on both families' NodePorts and its IPv6 externalIP from the external client; every
///   answer comes from a backend's address of the family asked.
/// - A SingleStack IPv4 Service's NodePort asked on a node's IPv6 address is refused at once
///   (TCP reset, ICMPv6 port unreachable for UDP), not left to time out, while its IPv4 twin
///   answers; it has no IPv6 slice.
final class LabDualStackServiceTests: XCTestCase {
  private static let node1v4 = "172.30.0.11"
  private static let node1v6 = "fd00:172:30::11"
  private static let node2v6 = "fd00:172:30::12"
  private static let dualNodePort = 30091
  private static let fourNodePort = 30092
  /// duo's IPv6 externalIP, routed to node1 by the client.
  private static let externalIP6 = "2001:db8::20"

  private static let manifest = """
    apiVersion: v1
    kind: Service
    metadata: {name: duo, namespace: default}
    spec:
      type: NodePort
      ipFamilyPolicy: RequireDualStack
      ipFamilies: [IPv4, IPv6]
      clusterIP: 10.96.0.20
      clusterIPs: [10.96.0.20, "fd00:10:96::20"]
      externalIPs: ["\(externalIP6)"]
      selector: {app: duo}
      ports:
      - {name: tcp, port: 80, targetPort: 8080, nodePort: \(dualNodePort), protocol: TCP}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: four, namespace: default}
    spec:
      type: NodePort
      ipFamilyPolicy: SingleStack
      ipFamilies: [IPv4]
      clusterIP: 10.96.0.21
      clusterIPs: [10.96.0.21]
      selector: {app: duo}
      ports:
      - {name: tcp, port: 80, targetPort: 8080, nodePort: \(fourNodePort), protocol: TCP}
      - {name: udp, port: 80, targetPort: 8080, nodePort: \(fourNodePort), protocol: UDP}
    """

  /// The backend: a dual-stack socket on [::]:8080 (TCP and UDP) answering
  /// "NAME LOCAL PEER", IPv4-mapped addresses written as IPv4.
  private static let server = """
    import socket, sys, threading
    name = sys.argv[1]
    def plain(a):
        return a[7:] if a.startswith("::ffff:") else a
    def udp():
        u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); u.bind(("::", 8080))
        while True:
            _, peer = u.recvfrom(2048)
            u.sendto(("%s - %s" % (name, plain(peer[0]))).encode(), peer)
    threading.Thread(target=udp, daemon=True).start()
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", 8080)); s.listen(64)
    while True:
        c, peer = s.accept()
        with c:
            c.sendall(("%s %s %s\\n" % (name, plain(c.getsockname()[0]), plain(peer[0]))).encode())
    """

  /// `ask tcp|udp HOST PORT COUNT`: COUNT connections (datagrams on a connected socket), one
  /// line each: the answer, "refused" (a TCP reset, or ICMP(v6) port unreachable), "timeout"
  /// (nothing within 5 s), or "error:...".
  private static let asker = """
    import socket, sys
    proto, host, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(count):
        try:
            if proto == "tcp":
                c = socket.create_connection((host, port), timeout=5)
                print(c.makefile("rb").readline().decode().strip()); c.close()
            else:
                u = socket.socket(family, socket.SOCK_DGRAM); u.settimeout(5)
                u.connect((host, port)); u.send(b"who"); print(u.recv(200).decode().strip())
                u.close()
        except ConnectionRefusedError:
            print("refused")
        except socket.timeout:
            print("timeout")
        except OSError as e:
            print("error:" + str(e))
    """

  private struct Answer {
    var name: String
    var local: String
    var peer: String
  }

  private func addresses(_ lab: LabHarness, _ pod: String) throws -> [String] {
    try String(contentsOfFile: "\(lab.state)/pods/\(pod)/ips", encoding: .utf8)
      .split(separator: "\n").map(String.init)
  }

  /// The lines `asker` printed, run in pod `from` (or the external client when nil).
  private func ask(
    _ lab: LabHarness, from pod: String?, _ proto: String, _ host: String, _ port: Int,
    count: Int
  ) throws -> [String] {
    let script = lab.directory.appendingPathComponent("ask.py").path
    let place = pod.map { ["exec", $0] } ?? ["exec-client"]
    let result = try lab.run(
      place + ["--", "python3", script, proto, host, "\(port)", "\(count)"], timeout: 60)
    XCTAssertEqual(result.status, 0, result.stderr)
    return result.stdout.split(separator: "\n").map(String.init)
  }

  /// Pods `pods` (name, node, label), each running `server`, answering before this returns;
  /// each pod's addresses (IPv4 first).
  private func startBackends(_ lab: LabHarness, _ pods: [(String, String, String)]) throws
    -> [String: [String]]
  {
    let server = try lab.write(Self.server, to: "server.py")
    try lab.write(Self.asker, to: "ask.py")
    var addresses: [String: [String]] = [:]
    for (pod, node, label) in pods {
      try lab.must(["pod", "add", pod, "--node", node, "--label", label])
      try lab.must(["exec", "--detach", pod, "--", "python3", server, pod])
      addresses[pod] = try self.addresses(lab, pod)
    }
    for (pod, _, _) in pods {
      let up = try lab.retried([
        "exec", pod, "--", "python3", "-c",
        "import socket; socket.create_connection(('::1', 8080), timeout=2)",
      ])
      XCTAssertEqual(up.status, 0, "\(pod)'s server: \(up.stderr)")
    }
    return addresses
  }

  private func parse(_ line: String) -> Answer? {
    let words = line.split(separator: " ").map(String.init)
    guard words.count == 3 else { return nil }
    return Answer(name: words[0], local: words[1], peer: words[2])
  }

  func testDualStackServiceAnswersOnBothFamiliesAndAnIPv4OnlyOneRefusesIPv6Cleanly() throws {
    try LabHarness.requirePrerequisites()
    let lab = try LabHarness(scratch: "duo")
    defer { lab.tearDown() }
    try lab.must(["up", "--nodes", "2", "--ip-family", "dual"])
    let agentPIDs = try lab.agentPIDs(nodes: 2)
    // A backend and a client pod on each node.
    let backends = try startBackends(
      lab, [("web1", "node1", "app=duo"), ("web2", "node2", "app=duo")])
    for (pod, node) in [("c1", "node1"), ("c2", "node2")] {
      try lab.must(["pod", "add", pod, "--node", node])
    }
    try lab.apply(Self.manifest, as: "services.yaml")

    // The lab derived one slice per family of duo, and none of IPv6 for four.
    let slice6 = try lab.must(["get", "EndpointSlice", "default/duo-ipv6-lab0"])
    XCTAssertTrue(slice6.contains(#""addressType": "IPv6""#), slice6)
    for pod in ["web1", "web2"] { XCTAssertTrue(slice6.contains(backends[pod]![1]), slice6) }
    XCTAssertNotEqual(try lab.run(["get", "EndpointSlice", "default/four-ipv6-lab0"]).status, 0)

    let v4Backends = Set(backends.values.map { $0[0] })
    let v6Backends = Set(backends.values.map { $0[1] })
    func check(
      _ lines: [String], family v6: Bool, peer: String?, _ what: String,
      file: StaticString = #filePath, line: UInt = #line
    ) {
      XCTAssertFalse(lines.isEmpty, what, file: file, line: line)
      for text in lines {
        guard let answer = parse(text) else {
          XCTFail("\(what): \(text)", file: file, line: line)
          continue
        }
        // The backend's own address of the family asked, the one its name goes with.
        XCTAssertTrue(
          (v6 ? v6Backends : v4Backends).contains(answer.local), "\(what): \(text)", file: file,
          line: line)
        XCTAssertEqual(
          backends[answer.name]?[v6 ? 1 : 0], answer.local, "\(what): \(text)", file: file,
          line: line)
        if let peer {
          XCTAssertEqual(answer.peer, peer, "\(what): \(text)", file: file, line: line)
        }
      }
    }

    // node1's maps as `bpf lb list` prints them: the IPv6 frontend and backends in brackets.
    let maps = try lab.must(["ctl", "node1", "bpf", "lb", "list"])
    XCTAssertTrue(maps.contains("[fd00:10:96::20]:80/TCP (0)"), maps)
    XCTAssertTrue(maps.contains("[::]:0"), maps)
    XCTAssertTrue(maps.contains("[\(backends["web2"]![1])]:8080/TCP"), maps)

    // From a pod on every node, both cluster IPs; the backend sees the pod's own address of
    // that family (no SNAT inside the cluster).
    for client in ["c1", "c2"] {
      let own = try addresses(lab, client)
      check(
        try ask(lab, from: client, "tcp", "10.96.0.20", 80, count: 6), family: false,
        peer: own[0], "\(client) → 10.96.0.20")
      check(
        try ask(lab, from: client, "tcp", "fd00:10:96::20", 80, count: 6), family: true,
        peer: own[1], "\(client) → [fd00:10:96::20]")
    }
    // From outside, the NodePort on both families of node1 (SNAT mode: the peer is the
    // client or node1, depending on where the backend runs).
    check(
      try ask(lab, from: nil, "tcp", Self.node1v4, Self.dualNodePort, count: 4), family: false,
      peer: nil, "client → node1 \(Self.dualNodePort)")
    check(
      try ask(lab, from: nil, "tcp", Self.node1v6, Self.dualNodePort, count: 4), family: true,
      peer: nil, "client → [node1] \(Self.dualNodePort)")

    // duo's IPv6 externalIP, routed to node1: an IPv6 north-south frontend.
    try lab.must([
      "exec-client", "--", "ip", "-6", "route", "add", "\(Self.externalIP6)/128", "via",
      Self.node1v6,
    ])
    check(
      try ask(lab, from: nil, "tcp", Self.externalIP6, 80, count: 4), family: true, peer: nil,
      "client → [\(Self.externalIP6)]:80")

    // four: IPv4 only. Its NodePort answers on IPv4, and on a node's IPv6 address it is
    // refused at once (TCP RST; ICMPv6 port unreachable for UDP), from outside and from a
    // pod, never left to time out.
    check(
      try ask(lab, from: nil, "tcp", Self.node1v4, Self.fourNodePort, count: 2), family: false,
      peer: nil, "client → node1 \(Self.fourNodePort)")
    for (from, node) in [(nil, Self.node1v6), ("c1", Self.node2v6), ("c2", Self.node2v6)] {
      for proto in ["tcp", "udp"] {
        XCTAssertEqual(
          try ask(lab, from: from, proto, node, Self.fourNodePort, count: 2),
          ["refused", "refused"], "\(from ?? "client") → [\(node)]:\(Self.fourNodePort)/\(proto)")
      }
    }

    try lab.must(["down"])
    lab.assertNoTrace(agentPIDs: agentPIDs)
  }

  /// The IPv6 twins of NorthSouthTests' traffic-policy checks: externalTrafficPolicy Local
  /// on an IPv6 NodePort (node1, without a local backend, refuses at once; node2 answers and
  /// keeps the client's address), internalTrafficPolicy Local on an IPv6 ClusterIP (a pod on
  /// node1 only ever reaches node1's backend, on its IPv6 address).
  func testIPv6TrafficPoliciesLocal() throws {
    try LabHarness.requirePrerequisites()
    let lab = try LabHarness(scratch: "loc6")
    defer { lab.tearDown() }
    try lab.must(["up", "--nodes", "2", "--ip-family", "dual"])
    let agentPIDs = try lab.agentPIDs(nodes: 2)
    let backends = try startBackends(
      lab,
      [("etp2", "node2", "app=etp"), ("itp1", "node1", "app=itp"), ("itp2", "node2", "app=itp")])
    try lab.must(["pod", "add", "caller1", "--node", "node1"])
    try lab.apply(
      """
      apiVersion: v1
      kind: Service
      metadata: {name: etp6, namespace: default}
      spec:
        type: NodePort
        ipFamilyPolicy: SingleStack
        ipFamilies: [IPv6]
        clusterIPs: ["fd00:10:96::30"]
        externalTrafficPolicy: Local
        selector: {app: etp}
        ports:
        - {name: tcp, port: 80, targetPort: 8080, nodePort: 30093, protocol: TCP}
      ---
      apiVersion: v1
      kind: Service
      metadata: {name: itp6, namespace: default}
      spec:
        ipFamilyPolicy: SingleStack
        ipFamilies: [IPv6]
        clusterIPs: ["fd00:10:96::31"]
        internalTrafficPolicy: Local
        selector: {app: itp}
        ports:
        - {name: tcp, port: 80, targetPort: 8080, protocol: TCP}
      """, as: "local.yaml")

    XCTAssertEqual(
      try ask(lab, from: nil, "tcp", Self.node1v6, 30093, count: 1), ["refused"],
      "eTP=Local: node1 has no local backend")
    let kept = try ask(lab, from: nil, "tcp", Self.node2v6, 30093, count: 3)
    XCTAssertEqual(
      kept.compactMap(parse).map { "\($0.name) \($0.local) \($0.peer)" },
      Array(repeating: "etp2 \(backends["etp2"]![1]) fd00:172:30::100", count: 3),
      "eTP=Local keeps the client's address: \(kept)")

    let answers = try ask(lab, from: "caller1", "tcp", "fd00:10:96::31", 80, count: 8)
    XCTAssertEqual(
      Set(answers.compactMap(parse).map { "\($0.name) \($0.local)" }),
      ["itp1 \(backends["itp1"]![1])"], "iTP=Local keeps pod traffic on the node: \(answers)")
    XCTAssertEqual(answers.count, 8, "\(answers)")

    try lab.must(["down"])
    lab.assertNoTrace(agentPIDs: agentPIDs)
  }
}
