import Foundation
import XCTest

/// How ClusterIP services behave over real connections, end to end (issue 4, "Integration in
/// netns"): the spread of random selection, UDP, a terminating backend, ClientIP affinity and
/// Maglev agreement between two agents. Every backend is a python3 (stdlib only) server in a
/// pod namespace wired up by the plugin; services are applied with junctionctl.
final class ServiceBehaviourTests: XCTestCase {
  private var nodes: [TestNode] = []
  private let processes = PodProcesses()
  private var scratch: URL?

  override func tearDown() {
    processes.stopAll()
    for node in nodes { node.tearDown() }
    nodes = []
    if let scratch { try? FileManager.default.removeItem(at: scratch) }
    scratch = nil
    super.tearDown()
  }

  // MARK: - Helpers

  private func makeNode(podSubnet: String) throws -> TestNode {
    let node = try TestNode(podSubnet: podSubnet)
    nodes.append(node)
    return node
  }

  /// A directory of this test's own, removed in tearDown.
  private func scratchDirectory() throws -> URL {
    if let scratch { return scratch }
    let directory = URL(fileURLWithPath: NSTemporaryDirectory())
      .appendingPathComponent(TestNode.uniqueName("sb"))
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    scratch = directory
    return directory
  }

  /// A TCP server on 8080: each connection gets `name\n` at once, then `name\n` for every
  /// line it sends, until it closes. Threads, so a long-lived connection blocks nobody.
  private static let tcpServer = """
    import socket, sys, threading
    name = sys.argv[1].encode() + b"\\n"
    def serve(c):
        try:
            c.sendall(name)
            for _ in c.makefile("rb"):
                c.sendall(name)
        except OSError:
            pass
        finally:
            c.close()
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 8080)); s.listen(128)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
    """

  /// A UDP server on 8080 that answers every datagram with its name.
  private static let udpServer = """
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 8080))
    while True:
        _, peer = s.recvfrom(2048); s.sendto(sys.argv[1].encode(), peer)
    """

  /// Backend pods on `node`, created in order, each serving its name; their addresses.
  private func startBackends(_ names: [String], on node: TestNode, udp: Bool = false) throws
    -> [String]
  {
    var addresses: [String] = []
    for name in names {
      let pod = try node.makePodNamespace()
      addresses.append(try node.addPod(pod))
      try processes.spawn(in: pod, udp ? Self.udpServer : Self.tcpServer, [name])
      try processes.waitForPort8080(node, in: pod, udp: udp, name: name)
    }
    return addresses
  }

  private func makeClient(on node: TestNode) throws -> (pod: String, address: String) {
    let pod = try node.makePodNamespace()
    return (pod, try node.addPod(pod))
  }

  /// `count` new TCP connections from `pod` to address:port, each from `sourcePorts[i]` when
  /// given (else an ephemeral port); the first line each answered, or the error.
  private func connect(
    _ node: TestNode, from pod: String, to address: String, port: Int = 80, count: Int,
    sourcePorts: [Int] = [], file: StaticString = #filePath, line: UInt = #line
  ) throws -> [String] {
    let script = """
      import socket, sys
      ports = [int(p) for p in sys.argv[4].split(",") if p]
      for i in range(int(sys.argv[3])):
          try:
              c = socket.socket(); c.settimeout(3)
              c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
              if ports: c.bind(("0.0.0.0", ports[i]))
              c.connect((sys.argv[1], int(sys.argv[2])))
              print(c.makefile("rb").readline().decode().strip() or "empty"); c.close()
          except ConnectionRefusedError: print("refused")
          except socket.timeout: print("timeout")
          except OSError as e: print("error:" + str(e))
      """
    let result = try node.exec(
      in: pod,
      [
        "python3", "-c", script, address, "\(port)", "\(count)",
        sourcePorts.map(String.init).joined(separator: ","),
      ], timeout: 60)
    XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
    return result.stdout.split(separator: "\n").map(String.init)
  }

  /// A Service `name` (80 → 8080) and its EndpointSlice. `states` gives each backend's
  /// conditions: "ready" (default) or "terminating" ({ready: false, serving: true,
  /// terminating: true}).
  private func manifest(
    name: String, clusterIP: String, backends: [String], states: [String: String] = [:],
    protocol proto: String = "TCP", annotations: [String: String] = [:],
    affinityTimeout: Int? = nil
  ) -> String {
    ServiceManifest.service(
      name: name, clusterIP: clusterIP, backends: backends, protocol: proto, portName: "p",
      terminating: Set(states.filter { $0.value == "terminating" }.keys),
      annotations: annotations, affinityTimeout: affinityTimeout)
  }

  // MARK: - Tests

  /// 300 new connections over three backends: every backend answers, and the counts pass a
  /// chi-square goodness-of-fit test against uniform at p = 0.01 (df = 2: statistic < 9.21).
  /// By construction a fair selector fails this 1% of the time.
  func testRandomSelectionSpreads300ConnectionsUniformly() throws {
    let node = try makeNode(podSubnet: "10.240.20.0/24")
    let client = try makeClient(on: node)
    let names = ["r2d2", "c3po", "bb8"]
    let backends = try startBackends(names, on: node)
    try node.apply(manifest(name: "spread", clusterIP: "10.96.20.10", backends: backends))

    let answers = try connect(node, from: client.pod, to: "10.96.20.10", count: 300)
    XCTAssertEqual(answers.count, 300)
    XCTAssertEqual(Set(answers), Set(names), "unexpected answers: \(Set(answers))")
    let expected = Double(answers.count) / Double(names.count)
    let statistic = names.map { name -> Double in
      let observed = Double(answers.filter { $0 == name }.count)
      return (observed - expected) * (observed - expected) / expected
    }.reduce(0, +)
    let counts = names.map { name in "\(name)=\(answers.filter { $0 == name }.count)" }
    XCTAssertLessThan(statistic, 9.21, "chi-square \(statistic) for \(counts)")
  }

  /// Datagrams to VIP:80/UDP reach a backend and the answer comes back from the VIP (reverse
  /// NAT); over 40 distinct source ports both backends are used.
  func testUDPThroughAClusterIPAnswersFromTheVIPAndUsesEveryBackend() throws {
    let node = try makeNode(podSubnet: "10.240.21.0/24")
    let client = try makeClient(on: node)
    let backends = try startBackends(["ping", "pong"], on: node, udp: true)
    try node.apply(
      manifest(name: "udp", clusterIP: "10.96.21.10", backends: backends, protocol: "UDP"))

    let script = """
      import socket
      for i in range(40):
          s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
          s.bind(("0.0.0.0", 42000 + i))
          try:
              s.sendto(b"hello", ("10.96.21.10", 80))
              data, peer = s.recvfrom(2048)
              print(data.decode(), peer[0], peer[1])
          except socket.timeout:
              print("timeout - -")
          s.close()
      """
    let result = try node.exec(in: client.pod, ["python3", "-c", script], timeout: 120)
    XCTAssertEqual(result.status, 0, result.stderr)
    let lines = result.stdout.split(separator: "\n").map {
      $0.split(separator: " ").map(String.init)
    }
    XCTAssertEqual(lines.count, 40, result.stdout)
    for fields in lines {
      XCTAssertEqual(fields.count, 3, "\(fields)")
      XCTAssertTrue(["ping", "pong"].contains(fields.first ?? ""), "answer \(fields)")
      XCTAssertEqual(fields.dropFirst().first, "10.96.21.10", "reply not from the VIP: \(fields)")
      XCTAssertEqual(fields.last, "80", "reply not from the service port: \(fields)")
    }
    XCTAssertEqual(Set(lines.compactMap(\.first)), ["ping", "pong"], result.stdout)
  }

  /// A backend marked {ready: false, serving: true, terminating: true} keeps an established
  /// connection (the same backend answers on it) and gets none of 30 new ones.
  func testATerminatingBackendKeepsItsConnectionAndGetsNoNewOnes() throws {
    let node = try makeNode(podSubnet: "10.240.22.0/24")
    let client = try makeClient(on: node)
    let names = ["luke", "leia", "han"]
    let backends = try startBackends(names, on: node)
    let vip = "10.96.22.10"
    try node.apply(manifest(name: "term", clusterIP: vip, backends: backends))

    // The long-lived client: connects, prints who answered, waits for `go`, sends a line on
    // the same socket and prints who answered that.
    let directory = try scratchDirectory()
    let go = directory.appendingPathComponent("go")
    let output = directory.appendingPathComponent("client.out")
    let script = """
      import os, socket, sys, time
      c = socket.create_connection((sys.argv[1], 80), timeout=5)
      f = c.makefile("rb")
      print(f.readline().decode().strip(), flush=True)
      deadline = time.time() + 30
      while not os.path.exists(sys.argv[2]) and time.time() < deadline:
          time.sleep(0.05)
      c.sendall(b"again\\n")
      print(f.readline().decode().strip() or "closed", flush=True)
      c.close()
      """
    let longLived = try processes.spawn(in: client.pod, script, [vip, go.path], stdout: output)
    func lines() -> [String] {
      ((try? String(contentsOf: output, encoding: .utf8)) ?? "").split(separator: "\n")
        .map(String.init)
    }
    var first: String?
    for _ in 0..<100 where first == nil {
      first = lines().first
      if first == nil { usleep(50_000) }
    }
    let chosen = try XCTUnwrap(first, "the long-lived connection got no answer")
    let index = try XCTUnwrap(names.firstIndex(of: chosen), "unexpected answer \(chosen)")

    try node.apply(
      manifest(
        name: "term", clusterIP: vip, backends: backends,
        states: [backends[index]: "terminating"]))

    let fresh = try connect(node, from: client.pod, to: vip, count: 30)
    XCTAssertEqual(fresh.count, 30)
    XCTAssertFalse(fresh.contains(chosen), "the terminating backend got new connections: \(fresh)")
    XCTAssertTrue(
      Set(fresh).isSubset(of: Set(names).subtracting([chosen])), "unexpected answers: \(fresh)")

    _ = FileManager.default.createFile(atPath: go.path, contents: Data())
    for _ in 0..<100 where longLived.isRunning { usleep(50_000) }
    XCTAssertFalse(longLived.isRunning, "the long-lived client hung")
    XCTAssertEqual(lines(), [chosen, chosen], "the established connection did not continue")
  }

  /// kube-proxy's fallback: when every backend is serving but terminating (a one-replica
  /// rolling update), new connections go to them rather than being refused; once one is
  /// ready again, only it gets new connections.
  func testWhenEveryBackendIsTerminatingNewConnectionsStillReachThem() throws {
    let node = try makeNode(podSubnet: "10.240.29.0/24")
    let client = try makeClient(on: node)
    let names = ["yoda", "mace"]
    let backends = try startBackends(names, on: node)
    let vip = "10.96.29.10"
    try node.apply(
      manifest(
        name: "fallback", clusterIP: vip, backends: backends,
        states: [backends[0]: "terminating", backends[1]: "terminating"]))
    let fallback = try connect(node, from: client.pod, to: vip, count: 20)
    XCTAssertEqual(fallback.count, 20)
    XCTAssertTrue(
      Set(fallback).isSubset(of: Set(names)) && !fallback.isEmpty,
      "with only terminating backends, new connections failed: \(fallback)")

    try node.apply(
      manifest(
        name: "fallback", clusterIP: vip, backends: backends,
        states: [backends[0]: "terminating"]))
    let recovered = try connect(node, from: client.pod, to: vip, count: 20)
    XCTAssertEqual(
      recovered, Array(repeating: "mace", count: 20),
      "with one ready backend, the terminating one still got new connections")
  }

  /// sessionAffinity ClientIP (timeout 60 s): every new connection from one client reaches
  /// the same backend; a second client is sticky too (to whichever backend it got).
  func testClientIPAffinityKeepsEachClientOnOneBackend() throws {
    let node = try makeNode(podSubnet: "10.240.23.0/24")
    let first = try makeClient(on: node)
    let second = try makeClient(on: node)
    let names = ["rey", "finn", "poe"]
    let backends = try startBackends(names, on: node)
    let vip = "10.96.23.10"
    try node.apply(
      manifest(name: "sticky", clusterIP: vip, backends: backends, affinityTimeout: 60))

    for client in [first, second] {
      let answers = try connect(node, from: client.pod, to: vip, count: 30)
      XCTAssertEqual(answers.count, 30)
      XCTAssertEqual(Set(answers).count, 1, "client \(client.address) was not sticky: \(answers)")
      XCTAssertTrue(names.contains(answers.first ?? ""), "unexpected answers: \(answers)")
    }
  }

  /// Two nodes, each with its own agent, same pod subnet and the same creation order, so the
  /// client and the three backends have the same addresses on both. The same Maglev service
  /// is applied to both agents. From each node's client, connections from the same 10 fixed
  /// source ports (so identical 5-tuples on both nodes) must land on the same backends, in
  /// the same order.
  ///
  /// Why this shows the Maglev tables agree: a new connection's backend is
  /// table[hash(5-tuple) % 16381] with a seeded hash that does not depend on the node; the
  /// 5-tuples are equal on both nodes, so equal answers for every port mean the two agents'
  /// tables hold the same backend in each of the (about 10) slots probed. Random selection
  /// would agree on all 10 with probability (1/3)^10; and the 10 ports land on more than one
  /// backend, so agreement is not just one backend answering everything.
  func testTwoAgentsPickTheSameMaglevBackendForTheSameFiveTuple() throws {
    let subnet = "10.240.24.0/24"
    let vip = "10.96.24.10"
    let names = ["kirk", "spock", "uhura"]
    let ports = Array(43000..<43010)
    var sequences: [[String]] = []
    var clientAddresses: [String] = []
    var backendAddresses: [[String]] = []
    for _ in 0..<2 {
      let node = try makeNode(podSubnet: subnet)
      let client = try makeClient(on: node)
      let backends = try startBackends(names, on: node)
      try node.apply(
        manifest(
          name: "maglev", clusterIP: vip, backends: backends,
          annotations: ["service.junction.io/lb-algorithm": "maglev"]))
      clientAddresses.append(client.address)
      backendAddresses.append(backends)
      sequences.append(
        try connect(node, from: client.pod, to: vip, count: ports.count, sourcePorts: ports))
    }
    XCTAssertEqual(clientAddresses[0], clientAddresses[1], "clients differ: setup is wrong")
    XCTAssertEqual(backendAddresses[0], backendAddresses[1], "backends differ: setup is wrong")
    XCTAssertEqual(sequences[0].count, ports.count, "\(sequences[0])")
    XCTAssertTrue(Set(sequences[0]).isSubset(of: Set(names)), "unexpected: \(sequences[0])")
    XCTAssertGreaterThan(Set(sequences[0]).count, 1, "one backend took all: \(sequences[0])")
    XCTAssertEqual(sequences[0], sequences[1], "the two agents chose different backends")
  }

  /// Topology hints over real connections (issue 7, "Hints"): the node's zone comes from its
  /// applied Node; three backends, two hinted for zone-a (this node's) and one for zone-b, in
  /// a slice written as the EndpointSlice controller would for `topology-mode: Auto` (the
  /// Service itself names no traffic distribution, so only the slice's hints count).
  /// All hinted: only zone-a answers. One ready endpoint without hints: kube-proxy's safeguard
  /// switches topology off, and all three answer. A zone-a pod still starting (not ready, no
  /// hint yet) does not switch it off.
  func testTopologyHintsKeepConnectionsInTheNodesZone() throws {
    let node = try makeNode(podSubnet: "10.240.25.0/24")
    let client = try makeClient(on: node)
    let names = ["han", "chewie", "lando"]
    let backends = try startBackends(names, on: node)
    let nodeName = try XCTUnwrap(node.agent?.name)
    try node.apply(
      """
      apiVersion: v1
      kind: Node
      metadata:
        name: \(nodeName)
        labels: {topology.kubernetes.io/zone: zone-a}
      """)
    let vip = "10.96.25.10"
    func endpoint(_ address: String, zone: String, hinted: Bool, ready: Bool = true) -> String {
      let hints = hinted ? "\n    hints: {forZones: [{name: \(zone)}]}" : ""
      return
        "  - addresses: [\"\(address)\"]\n    conditions: {ready: \(ready)}\n    zone: \(zone)"
        + hints
    }
    func applySlice(_ endpoints: [String]) throws {
      try node.apply(
        """
        apiVersion: v1
        kind: Service
        metadata: {name: hinted, namespace: default}
        spec:
          clusterIP: \(vip)
          ports:
          - {name: p, port: 80, protocol: TCP, targetPort: 8080}
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: hinted-abc
          namespace: default
          labels: {kubernetes.io/service-name: hinted}
        addressType: IPv4
        ports:
        - {name: p, port: 8080, protocol: TCP}
        endpoints:
        \(endpoints.joined(separator: "\n"))
        """)
    }
    let zoneA = [
      endpoint(backends[0], zone: "zone-a", hinted: true),
      endpoint(backends[1], zone: "zone-a", hinted: true),
    ]

    try applySlice(zoneA + [endpoint(backends[2], zone: "zone-b", hinted: true)])
    let hinted = try connect(node, from: client.pod, to: vip, count: 30)
    XCTAssertEqual(Set(hinted), ["han", "chewie"], "all hinted: \(hinted)")

    try applySlice(zoneA + [endpoint(backends[2], zone: "zone-b", hinted: false)])
    let unhinted = try connect(node, from: client.pod, to: vip, count: 45)
    XCTAssertEqual(Set(unhinted), Set(names), "one endpoint without hints: \(unhinted)")

    try applySlice(
      zoneA + [
        endpoint(backends[2], zone: "zone-b", hinted: true),
        endpoint("10.240.25.250", zone: "zone-a", hinted: false, ready: false),
      ])
    let starting = try connect(node, from: client.pod, to: vip, count: 30)
    XCTAssertEqual(Set(starting), ["han", "chewie"], "a starting pod in the zone: \(starting)")
  }
}
