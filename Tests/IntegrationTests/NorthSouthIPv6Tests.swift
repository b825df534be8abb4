import Foundation
import XCTest

/// North-south over IPv6 on `install/lab --ip-family dual`, the IPv6 twins of NorthSouthTests:
/// two nodes whose agents serve their `eth0` (IPv4 172.30.0.1N and IPv6 fd00:172:30::1N), an
/// IPv6 SingleStack NodePort Service whose only backend pod is on node2, asked by the external
/// client (fd00:172:30::100) at node1's IPv6 address, where no backend runs. The backend
/// answers "NAME PEER" and moves bulk data both ways, so the test reads off whom the backend
/// saw and that megabytes cross the path, not a handful of bytes. Neighbor Discovery on every
/// node's eth0 crosses the device programs untouched, or nothing would be reached at all.
final class NorthSouthIPv6Tests: XCTestCase {
  private static let client = "fd00:172:30::100"
  private static let node1 = "fd00:172:30::11"
  private static let node2 = "fd00:172:30::12"
  private static let nodePort = 30086
  /// A UDP NodePort of the Service to a port the backend has no socket on.
  private static let silentNodePort = 30096
  /// Bytes moved each way through the NodePort.
  private static let bytes = 32 << 20

  /// The Service, without a selector: its IPv6 EndpointSlice (the backend pod's IPv6
  /// address) is written by the test, naming the backend exactly.
  private static func manifest(backend: String) -> String {
    """
    apiVersion: v1
    kind: Service
    metadata: {name: echo6, namespace: default}
    spec:
      type: NodePort
      ipFamilyPolicy: SingleStack
      ipFamilies: [IPv6]
      clusterIPs: [fd00:10:96::50]
      ports:
      - {name: tcp, port: 80, targetPort: 8080, nodePort: \(nodePort), protocol: TCP}
      - {name: udp, port: 80, targetPort: 8080, nodePort: \(nodePort), protocol: UDP}
      - {name: silent, port: 90, targetPort: 9090, nodePort: \(silentNodePort), protocol: UDP}
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: echo6-ipv6
      namespace: default
      labels: {kubernetes.io/service-name: echo6}
    addressType: IPv6
    ports:
    - {name: tcp, port: 8080, protocol: TCP}
    - {name: udp, port: 8080, protocol: UDP}
    - {name: silent, port: 9090, protocol: UDP}
    endpoints:
    - addresses: [\(backend)]
      conditions: {ready: true, serving: true, terminating: false}
      nodeName: node2
    """
  }

  /// The backend on [::]:PORT. TCP: a first line "who" is answered "NAME PEER"; "get N" with
  /// N bytes; "put N" reads N bytes and answers "ok PEER". UDP: every datagram "NAME PEER".
  private static let server = """
    import socket, sys, threading
    port, name = int(sys.argv[1]), sys.argv[2]
    def line(c):
        data = b""
        while not data.endswith(b"\\n"):
            chunk = c.recv(1)
            if not chunk:
                break
            data += chunk
        return data.decode().split()
    def answer(c, peer):
        with c:
            words = line(c)
            if words == ["who"]:
                c.sendall(("%s %s\\n" % (name, peer)).encode())
            elif len(words) == 2 and words[0] == "get":
                count, block = int(words[1]), b"x" * 65536
                while count > 0:
                    c.sendall(block[:count]); count -= min(count, len(block))
                c.shutdown(socket.SHUT_WR); c.recv(1)
            elif len(words) == 2 and words[0] == "put":
                count = int(words[1])
                while count > 0:
                    chunk = c.recv(min(count, 1 << 20))
                    if not chunk:
                        return
                    count -= len(chunk)
                c.sendall(("ok %s\\n" % peer).encode())
    def tcp():
        s = socket.socket(socket.AF_INET6)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", port)); s.listen(64)
        while True:
            c, peer = s.accept()
            threading.Thread(target=answer, args=(c, peer[0]), daemon=True).start()
    def udp():
        u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind(("::", port))
        while True:
            _, peer = u.recvfrom(2048); u.sendto(("%s %s" % (name, peer[0])).encode(), peer)
    threading.Thread(target=udp, daemon=True).start()
    tcp()
    """

  /// The client: `bigudp HOST PORT` sends a datagram filling the 1500-byte MTU exactly,
  /// don't-fragment, twice, printing "EMSGSIZE" when the second is refused because a Packet
  /// Too Big lowered the path MTU; `who tcp|udp HOST PORT` prints the answer (UDP on a connected socket, so
  /// only an answer from the address asked counts); `get|put HOST PORT N` prints the bytes
  /// received (get) or the server's "ok PEER" (put), within 30 s.
  private static let asker = """
    import errno, socket, sys, time
    verb = sys.argv[1]
    if verb == "bigudp":
        u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        u.setsockopt(socket.IPPROTO_IPV6, 23, 2)  # IPV6_MTU_DISCOVER = IPV6_PMTUDISC_DO
        u.connect((sys.argv[2], int(sys.argv[3])))
        u.send(b"x" * 1452)
        time.sleep(0.5)
        try:
            u.send(b"x" * 1452)
            print("sent")
        except OSError as e:
            print("EMSGSIZE" if e.errno == errno.EMSGSIZE else str(e))
    elif verb == "who":
        proto, host, port = sys.argv[2], sys.argv[3], int(sys.argv[4])
        if proto == "tcp":
            c = socket.create_connection((host, port), timeout=3); c.sendall(b"who\\n")
            print(c.makefile("rb").readline().decode().strip())
        else:
            u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.settimeout(3)
            u.connect((host, port)); u.send(b"who"); print(u.recv(200).decode().strip())
    else:
        host, port, count = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        c = socket.create_connection((host, port), timeout=30)
        c.sendall(("%s %d\\n" % (verb, count)).encode())
        if verb == "get":
            got = 0
            while True:
                chunk = c.recv(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
            print(got)
        else:
            block = b"x" * 65536
            left = count
            while left > 0:
                c.sendall(block[:left]); left -= min(left, len(block))
            print(c.makefile("rb").readline().decode().strip())
    """

  // MARK: - The lab

  /// A two-node dual-stack lab in `lbMode` with the backend on node2 and the Service
  /// applied; `body` runs with it and the lab goes down afterwards (also on failure).
  private func withLab(lbMode: String, _ body: (LabHarness) throws -> Void) throws {
    try LabHarness.requirePrerequisites(tools: ["tcpdump", "python3"])
    let lab = try LabHarness(scratch: "ns6")
    defer { lab.tearDown() }
    let server = try lab.write(NorthSouthIPv6Tests.server, to: "server6.py")
    _ = try lab.write(NorthSouthIPv6Tests.asker, to: "ask6.py")

    try lab.must(["up", "--nodes", "2", "--ip-family", "dual", "--lb-mode", lbMode])
    let agentPIDs = try lab.agentPIDs(nodes: 2)
    try lab.must(["pod", "add", "echo2", "--node", "node2"])
    try lab.must(["exec", "--detach", "echo2", "--", "python3", server, "8080", "echo2"])
    let ips = try String(contentsOfFile: "\(lab.state)/pods/echo2/ips", encoding: .utf8)
      .split(separator: "\n").map(String.init)
    let backend = try XCTUnwrap(ips.first { $0.contains(":") }, "no IPv6 pod address: \(ips)")
    try lab.apply(NorthSouthIPv6Tests.manifest(backend: backend), as: "echo6.yaml")
    try body(lab)

    try lab.must(["down"])
    lab.assertNoTrace(agentPIDs: agentPIDs)
  }

  /// The client's ask6.py with `arguments`; a few tries while the server and the agents'
  /// maps come up. The printed answer, or nil (the last error in `failure`).
  private func ask(_ lab: LabHarness, _ arguments: [String], tries: Int = 10) throws -> (
    answer: String?, failure: String
  ) {
    let script = lab.directory.appendingPathComponent("ask6.py").path
    var failure = ""
    for _ in 0..<tries {
      let result = try lab.run(["exec-client", "--", "python3", script] + arguments)
      if result.status == 0 {
        return (result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "")
      }
      failure = result.stdout + result.stderr
      usleep(300_000)
    }
    return (nil, failure)
  }

  /// node1's NodePort asked over TCP, then UDP: the peer the backend saw is `expected` both
  /// times.
  private func assertPeersSeen(
    _ lab: LabHarness, _ expected: String, _ tcpWhy: String, _ udpWhy: String,
    file: StaticString = #filePath, line: UInt = #line
  ) throws {
    for (proto, why) in [("tcp", tcpWhy), ("udp", udpWhy)] {
      XCTAssertEqual(
        try peerSeen(lab, proto, file: file, line: line), expected, why, file: file, line: line)
    }
  }

  /// The peer the backend saw for a "who" over `proto` to node1's NodePort, asserting that
  /// echo2 answered.
  private func peerSeen(
    _ lab: LabHarness, _ proto: String, file: StaticString = #filePath, line: UInt = #line
  ) throws -> String? {
    let (answer, failure) = try ask(
      lab, ["who", proto, NorthSouthIPv6Tests.node1, "\(NorthSouthIPv6Tests.nodePort)"])
    guard let answer else {
      XCTFail(
        "\(proto) [\(NorthSouthIPv6Tests.node1)]: no answer: \(failure)", file: file, line: line)
      return nil
    }
    let words = answer.split(separator: " ").map(String.init)
    XCTAssertEqual(words.first, "echo2", answer, file: file, line: line)
    return words.count == 2 ? words[1] : nil
  }

  /// 32 MiB each way through node1's NodePort: every byte arrives, and the backend names
  /// `peer` as the uploader.
  private func assertBulk(
    _ lab: LabHarness, peer: String, file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let target = [NorthSouthIPv6Tests.node1, "\(NorthSouthIPv6Tests.nodePort)"]
    let count = "\(NorthSouthIPv6Tests.bytes)"
    let (got, getFailure) = try ask(lab, ["get"] + target + [count], tries: 2)
    XCTAssertEqual(got, count, "download: \(getFailure)", file: file, line: line)
    let (put, putFailure) = try ask(lab, ["put"] + target + [count], tries: 2)
    XCTAssertEqual(put, "ok \(peer)", "upload: \(putFailure)", file: file, line: line)
  }

  // MARK: - SNAT

  func testSNATModeTheBackendSeesTheIngressNodesIPv6AddressAndMegabytesCross() throws {
    try withLab(lbMode: "snat") { lab in
      try assertPeersSeen(
        lab, NorthSouthIPv6Tests.node1, "SNAT: the backend sees node1's IPv6 address",
        "UDP too, and the answer comes from the frontend")
      try assertBulk(lab, peer: NorthSouthIPv6Tests.node1)
      // node2's address is a frontend too; node2 holds the backend: DNAT only, the
      // client's address kept, and the reply translated back on node2's eth0.
      let (answer, failure) = try ask(
        lab, ["who", "tcp", NorthSouthIPv6Tests.node2, "\(NorthSouthIPv6Tests.nodePort)"])
      XCTAssertEqual(answer, "echo2 \(NorthSouthIPv6Tests.client)", failure)

      // The backend's ICMPv6 port unreachable for a port without a socket, translated back
      // (on node1 for its SNAT connection, on node2's egress for its local backend), reaches
      // the client's connected socket as ECONNREFUSED; untranslated it would match no socket
      // and the client would time out. (The port is programmed with the UDP port that
      // answered above, so node1's own kernel never sees the datagram.)
      for node in [NorthSouthIPv6Tests.node1, NorthSouthIPv6Tests.node2] {
        let silent = try ask(
          lab, ["who", "udp", node, "\(NorthSouthIPv6Tests.silentNodePort)"], tries: 1)
        XCTAssertNil(silent.answer)
        XCTAssertTrue(
          silent.failure.contains("ConnectionRefusedError"), "[\(node)]: \(silent.failure)")
      }
    }
  }
  // MARK: - DSR

  func testDSRModeTheSYNCarriesCiliumsDestinationOptionAndTheReplySkipsTheIngressNode() throws {
    try withLab(lbMode: "dsr") { lab in
      let node1Capture = try startCapture(lab, node: "node1")
      let node2Capture = try startCapture(lab, node: "node2")
      try assertPeersSeen(
        lab, NorthSouthIPv6Tests.client, "DSR: the backend sees the client's address",
        "UDP too, and the answer comes from the frontend")
      let atNode1 = try node1Capture.finish(filter: "ip6")
      let atNode2 = try node2Capture.finish(filter: "ip6")

      // To the backend port: "ADDR.8080:", or "> 8080:" after the DSTOPT header's line part.
      func toBackend(_ packet: String) -> Bool {
        packet.contains(".8080:") || packet.contains("> 8080:")
      }
      let syn = try XCTUnwrap(
        atNode2.first { $0.contains("Flags [S]") && toBackend($0) }, "\(atNode2)")
      XCTAssertTrue(
        syn.contains("\(NorthSouthIPv6Tests.client) > "), "client source kept: \(syn)")
      XCTAssertTrue(syn.contains("DSTOPT"), "a Destination Options header: \(syn)")
      // The header, from byte 40 of the IPv6 packet: next header TCP (06), length 2, option
      // 0x1b of 20 bytes naming node1:nodePort, two Pad1 bytes.
      XCTAssertEqual(
        String(NodeCapture.hex(syn).dropFirst(80).prefix(48)),
        "06021b14" + optionNamingNode1 + "0000",
        "Cilium's dsr_opt_v6 naming [\(NorthSouthIPv6Tests.node1)]:\(NorthSouthIPv6Tests.nodePort)")
      let frontend =
        "\(NorthSouthIPv6Tests.node1).\(NorthSouthIPv6Tests.nodePort) > \(NorthSouthIPv6Tests.client)."
      XCTAssertTrue(
        atNode2.contains { $0.contains(frontend) && $0.contains("Flags [S.]") },
        "the SYN-ACK leaves node2 from the frontend: \(atNode2)")
      XCTAssertFalse(
        atNode1.contains { $0.contains("Flags [S.]") }, "no SYN-ACK crosses node1: \(atNode1)")
      XCTAssertFalse(
        atNode1.contains { $0.contains(".8080 > ") || $0.contains(frontend) },
        "no reply crosses node1: \(atNode1)")
      let later = atNode2.filter {
        toBackend($0) && $0.contains("Flags [") && !$0.contains("Flags [S]")
      }
      XCTAssertFalse(later.isEmpty)
      XCTAssertFalse(later.contains { $0.contains("DSTOPT") }, "only the SYN carries it")
      let datagram = try XCTUnwrap(
        atNode2.first { $0.contains("UDP") && toBackend($0) }, "\(atNode2)")
      XCTAssertTrue(datagram.contains("DSTOPT"), "every UDP datagram: \(datagram)")
      try assertBulk(lab, peer: NorthSouthIPv6Tests.client)

      // A datagram filling the MTU has no room for the 24-byte header: node1 answers ICMPv6
      // Packet Too Big with 1476, and the client's kernel refuses the next one.
      let script = lab.directory.appendingPathComponent("ask6.py").path
      let big = try lab.must([
        "exec-client", "--", "python3", script, "bigudp", NorthSouthIPv6Tests.node1,
        "\(NorthSouthIPv6Tests.nodePort)",
      ])
      XCTAssertEqual(big.trimmingCharacters(in: .whitespacesAndNewlines), "EMSGSIZE")
      let route = try lab.must(
        ["exec-client", "--", "ip", "-6", "route", "get", NorthSouthIPv6Tests.node1])
      XCTAssertTrue(route.contains("mtu 1476"), route)
    }
  }

  // MARK: - Hybrid

  func testHybridModeTCPGoesByDSRAndUDPBySNATOverIPv6() throws {
    try withLab(lbMode: "hybrid") { lab in
      XCTAssertEqual(try peerSeen(lab, "tcp"), NorthSouthIPv6Tests.client, "TCP by DSR")
      XCTAssertEqual(try peerSeen(lab, "udp"), NorthSouthIPv6Tests.node1, "UDP by SNAT")
    }
  }

  // MARK: - Captures

  /// tcpdump on `node`'s eth0 (NodeCapture), pinged from the client at the node's IPv6
  /// address.
  private func startCapture(_ lab: LabHarness, node: String) throws -> NodeCapture {
    let address = "fd00:172:30::\(10 + Int(node.dropFirst("node".count))!)"
    return try NodeCapture.start(lab, node: node, address: address, ping: ["ping", "-6"])
  }

  /// node1's address and the NodePort as the option carries them, in hex.
  private var optionNamingNode1: String {
    "fd000172003000000000000000000011" + String(format: "%04x", NorthSouthIPv6Tests.nodePort)
  }
}
