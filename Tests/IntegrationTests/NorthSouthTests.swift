import Foundation
import XCTest

/// North-south end to end on `install/lab`: three nodes whose agents serve their `eth0`
/// (`--devices eth0 --lb-mode M`), a NodePort Service whose only backend pod is on node2,
/// reached from the external client (LAB-client, 172.30.0.100) at node1's address, where no
/// backend runs. The backend answers with the address it sees the connection come from;
/// tcpdump on node1's and node2's eth0 shows the path: in DSR mode the SYN reaches node2
/// with the 0x9a option naming the frontend and the SYN-ACK leaves node2 with the frontend
/// as source, never crossing node1; in SNAT mode the backend sees node1's address; in hybrid
/// mode TCP goes by DSR and UDP by SNAT.
final class NorthSouthTests: XCTestCase {
  private static let client = "172.30.0.100"
  private static let node1 = "172.30.0.11"
  private static let node2 = "172.30.0.12"
  private static let externalIP = "192.0.2.10"
  private static let loadBalancerIP = "192.0.2.20"
  private static let nodePort = 30080
  /// A UDP NodePort of `echo` to a port the backend has no socket on.
  private static let silentNodePort = 30090

  /// The Services: `echo` (NodePort 30080 TCP and UDP, an ExternalIP; NodePort 30090 UDP to
  /// a port nothing listens on), `echo-lb`
  /// (LoadBalancer with an ingress IP), `echo-local` (externalTrafficPolicy Local), and
  /// `itp` (ClusterIP, internalTrafficPolicy Local, over the `app: itp` pods).
  private static let manifest = """
    apiVersion: v1
    kind: Service
    metadata: {name: echo, namespace: default}
    spec:
      type: NodePort
      clusterIP: 10.96.50.10
      selector: {app: echo}
      externalIPs: [\(externalIP)]
      ports:
      - {name: tcp, port: 80, targetPort: 8080, nodePort: \(nodePort), protocol: TCP}
      - {name: udp, port: 80, targetPort: 8080, nodePort: \(nodePort), protocol: UDP}
      - {name: silent, port: 90, targetPort: 9090, nodePort: \(silentNodePort), protocol: UDP}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: echo-lb, namespace: default}
    spec:
      type: LoadBalancer
      clusterIP: 10.96.50.11
      selector: {app: echo}
      ports:
      - {port: 80, targetPort: 8080, nodePort: 30081, protocol: TCP}
    status:
      loadBalancer:
        ingress: [{ip: \(loadBalancerIP)}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: echo-local, namespace: default}
    spec:
      type: NodePort
      clusterIP: 10.96.50.12
      selector: {app: echo}
      externalTrafficPolicy: Local
      ports:
      - {port: 80, targetPort: 8080, nodePort: 30082, protocol: TCP}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: itp, namespace: default}
    spec:
      clusterIP: 10.96.50.13
      selector: {app: itp}
      internalTrafficPolicy: Local
      ports:
      - {port: 80, targetPort: 8080, protocol: TCP}
    """

  /// The backend: on TCP and UDP `port`, answers "NAME PEER-ADDRESS" to every connection or
  /// datagram, so the test reads off who answered and whom the backend saw.
  private static let server = """
    import socket, sys, threading
    port, name = int(sys.argv[1]), sys.argv[2]
    def tcp():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(64)
        while True:
            c, peer = s.accept()
            c.sendall(("%s %s\\n" % (name, peer[0])).encode())
            c.close()
    def udp():
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("0.0.0.0", port))
        while True:
            data, peer = u.recvfrom(2048)
            u.sendto(("%s %s\\n" % (name, peer[0])).encode(), peer)
    threading.Thread(target=udp, daemon=True).start()
    tcp()
    """

  /// The client: one TCP connection or one datagram on a connected UDP socket (so only an
  /// answer from the address asked counts), printing the answer. "bigudp": a datagram that
  /// fills the 1500-byte MTU exactly, don't-fragment set, twice; prints "EMSGSIZE" when the
  /// second is refused because the path MTU learnt from an ICMP answer is smaller.
  private static let asker = """
    import errno, socket, sys, time
    proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if proto == "bigudp":
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO
        u.connect((host, port))
        u.send(b"x" * 1472)
        time.sleep(0.5)
        try:
            u.send(b"x" * 1472)
            print("sent")
        except OSError as e:
            print("EMSGSIZE" if e.errno == errno.EMSGSIZE else str(e))
    elif proto == "tcp":
        s = socket.create_connection((host, port), timeout=3)
        print(s.recv(200).decode().strip())
    else:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(3)
        u.connect((host, port))
        u.send(b"who")
        print(u.recv(200).decode().strip())
    """

  // MARK: - The lab

  /// A three-node lab in `lbMode` with the echo backend on node2 and the Services applied;
  /// `body` runs with it, and the lab goes down afterwards (also on failure), leaving nothing.
  private func withLab(lbMode: String, _ body: (LabHarness) throws -> Void) throws {
    try LabHarness.requirePrerequisites(tools: ["tcpdump", "python3"])
    let lab = try LabHarness(scratch: "ns")
    defer { lab.tearDown() }
    try lab.write(NorthSouthTests.server, to: "server.py")
    try lab.write(NorthSouthTests.asker, to: "ask.py")
    let manifest = try lab.write(NorthSouthTests.manifest, to: "services.yaml")

    try lab.must(["up", "--nodes", "3", "--lb-mode", lbMode])
    let agentPIDs = try lab.agentPIDs(nodes: 3)
    try startBackend(lab, pod: "echo2", node: "node2", label: "app=echo")
    try lab.must(["apply", "-f", manifest])
    try body(lab)

    try lab.must(["down"])
    lab.assertNoTrace(agentPIDs: agentPIDs)
  }

  private func startBackend(_ lab: LabHarness, pod: String, node: String, label: String) throws {
    try lab.must(["pod", "add", pod, "--node", node, "--label", label])
    let script = lab.directory.appendingPathComponent("server.py").path
    try lab.must(["exec", "--detach", pod, "--", "python3", script, "8080", pod])
  }

  /// What the backend answered ("NAME PEER"), asked from the external client; a few tries
  /// while the server starts. nil when every try failed (the last error in `failure`).
  private func ask(
    _ lab: LabHarness, _ proto: String, _ host: String, _ port: Int, from pod: String? = nil,
    tries: Int = 10
  ) throws -> (answer: String?, failure: String) {
    let script = lab.directory.appendingPathComponent("ask.py").path
    let place = pod.map { ["exec", $0] } ?? ["exec-client"]
    var failure = ""
    for _ in 0..<tries {
      let result = try lab.run(place + ["--", "python3", script, proto, host, "\(port)"])
      if result.status == 0 {
        return (result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "")
      }
      failure = result.stderr
      usleep(300_000)
    }
    return (nil, failure)
  }

  /// The address the backend saw, asserting that `expectedBackend` answered.
  private func peerSeen(
    _ lab: LabHarness, _ proto: String, _ host: String, _ port: Int, file: StaticString = #filePath,
    line: UInt = #line
  ) throws -> String? {
    let (answer, failure) = try ask(lab, proto, host, port)
    guard let answer else {
      XCTFail("\(proto) \(host):\(port) got no answer: \(failure)", file: file, line: line)
      return nil
    }
    let words = answer.split(separator: " ").map(String.init)
    XCTAssertEqual(words.first, "echo2", answer, file: file, line: line)
    return words.count == 2 ? words[1] : nil
  }

  // MARK: - Captures

  /// The NodePort on node1 asked from the external client over TCP, then UDP: the peer the
  /// backend saw each time (node1 when SNATed, the client by DSR) is `tcp` and `udp`.
  private func assertNodePortPeers(
    _ lab: LabHarness, tcp: String, udp: String, _ tcpWhy: String, _ udpWhy: String,
    file: StaticString = #filePath, line: UInt = #line
  ) throws {
    for (proto, expected, why) in [("tcp", tcp, tcpWhy), ("udp", udp, udpWhy)] {
      XCTAssertEqual(
        try peerSeen(
          lab, proto, NorthSouthTests.node1, NorthSouthTests.nodePort, file: file, line: line),
        expected, why, file: file, line: line)
    }
  }

  /// tcpdump on `node`'s eth0 (NodeCapture), pinged from the client at the node's address.
  private func startCapture(_ lab: LabHarness, node: String) throws -> NodeCapture {
    let address = "172.30.0.\(10 + Int(node.dropFirst("node".count))!)"
    return try NodeCapture.start(lab, node: node, address: address, ping: ["ping"])
  }

  /// The DSR option naming node1:nodePort, as hex: 9a 08, the port, the address.
  private var optionNamingNode1: String {
    let address = NorthSouthTests.node1.split(separator: ".").map {
      String(format: "%02x", Int($0)!)
    }
    return "9a08" + String(format: "%04x", NorthSouthTests.nodePort) + address.joined()
  }

  // MARK: - SNAT

  func testSNATModeTheBackendSeesTheIngressNodeAndExternalFrontendsWork() throws {
    try withLab(lbMode: "snat") { lab in
      let node2Capture = try startCapture(lab, node: "node2")
      try assertNodePortPeers(
        lab, tcp: NorthSouthTests.node1, udp: NorthSouthTests.node1,
        "SNAT: the backend sees node1's address", "UDP too, and the answer comes from the frontend")
      let atNode2 = try node2Capture.finish(filter: "ip")
      let syn = atNode2.first { $0.contains("Flags [S]") && $0.contains(".8080:") }
      XCTAssertNotNil(syn, "the SYN reaches node2: \(atNode2)")
      XCTAssertTrue(syn?.contains("\(NorthSouthTests.node1).") == true, syn ?? "")
      XCTAssertFalse(syn?.contains("unknown 154") == true, "no DSR option in SNAT mode")

      // ExternalIP and LoadBalancer ingress IP, routed to node1 by the client.
      for address in [NorthSouthTests.externalIP, NorthSouthTests.loadBalancerIP] {
        try lab.must(
          [
            "exec-client", "--", "ip", "route", "add", address + "/32", "via",
            NorthSouthTests.node1,
          ])
        XCTAssertEqual(try peerSeen(lab, "tcp", address, 80), NorthSouthTests.node1, address)
      }
      XCTAssertEqual(
        try peerSeen(lab, "udp", NorthSouthTests.externalIP, 80), NorthSouthTests.node1)

      // externalTrafficPolicy=Local: node1 has no local backend and refuses at once; node2
      // has one and keeps the client's address.
      let refused = try ask(lab, "tcp", NorthSouthTests.node1, 30082, tries: 1)
      XCTAssertNil(refused.answer)
      XCTAssertTrue(refused.failure.contains("ConnectionRefusedError"), refused.failure)
      XCTAssertEqual(
        try peerSeen(lab, "tcp", NorthSouthTests.node2, 30082), NorthSouthTests.client,
        "eTP=Local keeps the client's address")

      // The backend's kernel answers a datagram to a port without a socket with a port
      // unreachable: translated back (on node1 for its SNAT connection, on node2's egress
      // for its local backend) it reaches the client's connected socket as ECONNREFUSED.
      // Untranslated it would quote the node's SNAT port or the pod's address, match no
      // socket, and the client would time out. (The port is `echo`'s, programmed with the
      // UDP port that answered above, so node1's own kernel never sees the datagram.)
      for node in [NorthSouthTests.node1, NorthSouthTests.node2] {
        let silent = try ask(lab, "udp", node, NorthSouthTests.silentNodePort, tries: 1)
        XCTAssertNil(silent.answer)
        XCTAssertTrue(
          silent.failure.contains("ConnectionRefusedError"), "\(node): \(silent.failure)")
      }

      // internalTrafficPolicy=Local: a pod on node1 only ever reaches node1's backend.
      try startBackend(lab, pod: "itp1", node: "node1", label: "app=itp")
      try startBackend(lab, pod: "itp2", node: "node2", label: "app=itp")
      try lab.must(["pod", "add", "caller1", "--node", "node1", "--label", "role=client"])
      var answered = Set<String>()
      for _ in 0..<8 {
        let (answer, failure) = try ask(lab, "tcp", "10.96.50.13", 80, from: "caller1")
        XCTAssertNotNil(answer, failure)
        if let name = answer?.split(separator: " ").first { answered.insert(String(name)) }
      }
      XCTAssertEqual(answered, ["itp1"], "iTP=Local keeps pod traffic on the node")
    }
  }

  // MARK: - DSR

  func testDSRModeTheSYNCarriesTheOptionAndTheReplySkipsTheIngressNode() throws {
    try withLab(lbMode: "dsr") { lab in
      let node1Capture = try startCapture(lab, node: "node1")
      let node2Capture = try startCapture(lab, node: "node2")
      try assertNodePortPeers(
        lab, tcp: NorthSouthTests.client, udp: NorthSouthTests.client,
        "DSR: the backend sees the client's address",
        "UDP too, and the answer comes from the frontend")
      let atNode1 = try node1Capture.finish(filter: "ip")
      let atNode2 = try node2Capture.finish(filter: "ip")

      let syn = try XCTUnwrap(
        atNode2.first { $0.contains("Flags [S]") && $0.contains(".8080:") }, "\(atNode2)")
      XCTAssertTrue(syn.contains("\(NorthSouthTests.client)."), "client source kept: \(syn)")
      XCTAssertTrue(syn.contains("options (unknown 154)"), syn)
      XCTAssertTrue(
        NodeCapture.hex(syn).hasPrefix("47")
          && NodeCapture.hex(syn).dropFirst(40).hasPrefix(optionNamingNode1),
        "ihl 7, then the option naming node1:\(NorthSouthTests.nodePort): \(NodeCapture.hex(syn))")
      let frontend =
        "\(NorthSouthTests.node1).\(NorthSouthTests.nodePort) > \(NorthSouthTests.client)."
      XCTAssertTrue(
        atNode2.contains { $0.contains(frontend) && $0.contains("Flags [S.]") },
        "the SYN-ACK leaves node2 from the frontend: \(atNode2)")
      XCTAssertFalse(
        atNode1.contains { $0.contains("Flags [S.]") }, "no SYN-ACK crosses node1: \(atNode1)")
      XCTAssertFalse(
        atNode1.contains { $0.contains(".8080 > ") }, "no reply crosses node1: \(atNode1)")
      let later = atNode2.filter {
        $0.contains(".8080:") && $0.contains("proto TCP") && !$0.contains("Flags [S]")
      }
      XCTAssertFalse(later.isEmpty)
      XCTAssertFalse(later.contains { $0.contains("unknown 154") }, "only the SYN carries it")
      let datagram = try XCTUnwrap(
        atNode2.first { $0.contains("proto UDP") && $0.contains(".8080:") })
      XCTAssertTrue(datagram.contains("options (unknown 154)"), "every UDP datagram: \(datagram)")

      // A datagram filling the MTU has no room for the option: node1 answers ICMP
      // fragmentation-needed with 1492, and the client's kernel refuses the next one.
      let script = lab.directory.appendingPathComponent("ask.py").path
      let big = try lab.must(
        [
          "exec-client", "--", "python3", script, "bigudp", NorthSouthTests.node1,
          "\(NorthSouthTests.nodePort)",
        ])
      XCTAssertEqual(big.trimmingCharacters(in: .whitespacesAndNewlines), "EMSGSIZE")
      let route = try lab.must(
        ["exec-client", "--", "ip", "route", "get", NorthSouthTests.node1])
      XCTAssertTrue(route.contains("mtu 1492"), route)
    }
  }

  // MARK: - Hybrid

  func testHybridModeTCPGoesByDSRAndUDPBySNAT() throws {
    try withLab(lbMode: "hybrid") { lab in
      let node2Capture = try startCapture(lab, node: "node2")
      try assertNodePortPeers(
        lab, tcp: NorthSouthTests.client, udp: NorthSouthTests.node1,
        "TCP by DSR", "UDP by SNAT")
      let atNode2 = try node2Capture.finish(filter: "ip")
      let syn = try XCTUnwrap(
        atNode2.first { $0.contains("Flags [S]") && $0.contains(".8080:") }, "\(atNode2)")
      XCTAssertTrue(syn.contains("options (unknown 154)"), syn)
      let datagram = try XCTUnwrap(
        atNode2.first { $0.contains("proto UDP") && $0.contains(".8080:") }, "\(atNode2)")
      XCTAssertTrue(datagram.contains("\(NorthSouthTests.node1)."), "from node1: \(datagram)")
      XCTAssertFalse(datagram.contains("options"), "no option on SNAT: \(datagram)")
    }
  }
}
