import BPFKit
import DatapathABI
import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// Socket LB for pods (issue 17, part 1): with `--socket-lb`, a pod's TCP and UDP sockets
/// (connected and not) to a ClusterIP are translated at connect()/sendmsg() by bpf/sock.c,
/// which recognises the pod by its network namespace cookie (jnc_pod_netns, written when the
/// plugin registers it): no conntrack entry is created, getpeername and recvfrom show the
/// ClusterIP. With `--socket-lb-hostns-only`, or for a pod registered with CNI_ARGS
/// JUNCTION_SOCKET_LB=false, the per-packet path translates instead (conntrack entries) and
/// the service still answers. A connection made through the socket path survives an agent
/// restart.
final class SocketLBPodTests: PodNodesTestCase {
  private static let tcpClusterIP = "10.96.171.10"
  private static let udpClusterIP = "10.96.171.20"

  private func makeNode(subnet: String, hostnsOnly: Bool = false) throws -> TestNode {
    let cgroupRoot = URL(fileURLWithPath: NSTemporaryDirectory())
      .appendingPathComponent(TestNode.uniqueName("cg")).path
    let node = try TestNode(
      podSubnet: subnet,
      agentArguments: [
        hostnsOnly ? "--socket-lb-hostns-only" : "--socket-lb", "--cgroup-root", cgroupRoot,
      ])
    nodes.append(node)
    return node
  }

  /// Answers every line with "NAME LINE", the connection kept open.
  private static let tcpServer = """
    import socket, sys, threading
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 8080)); s.listen(64)
    def serve(c):
        f = c.makefile("rb")
        for line in f:
            c.sendall(sys.argv[1].encode() + b" " + line)
        c.close()
    while True:
        c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
    """

  private static let udpServer = """
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 8080))
    while True:
        _, peer = s.recvfrom(2048); s.sendto(sys.argv[1].encode(), peer)
    """

  /// TCP: "NAME hi peer=IP:PORT" (the answer, and getpeername).
  private static let tcpClient = """
    import socket, sys
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
        c.sendall(b"hi\\n")
        print(c.makefile("rb").readline().decode().strip(), "peer=%s:%d" % c.getpeername())
    except OSError as e: print("error:" + str(e))
    """

  /// One TCP connection: a first exchange, then, once file argv[3] exists, a second one on
  /// the same connection.
  private static let longClient = """
    import os, socket, sys, time
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    f = c.makefile("rb")
    c.sendall(b"one\\n")
    print(f.readline().decode().strip(), "peer=%s:%d" % c.getpeername(), flush=True)
    while not os.path.exists(sys.argv[3]): time.sleep(0.05)
    try:
        c.sendall(b"two\\n"); print(f.readline().decode().strip(), flush=True)
    except OSError as e: print("error:" + str(e), flush=True)
    """

  private func python(in namespace: String, _ script: String, _ arguments: [String]) throws
    -> [String]
  {
    let result = try Shell.run(
      ["ip", "netns", "exec", namespace, "python3", "-c", script] + arguments, timeout: 60)
    XCTAssertEqual(result.status, 0, result.stderr)
    return result.stdout.split(separator: "\n").map(String.init)
  }

  private func conntrackEntries(_ node: TestNode) throws -> Int {
    let agent = try XCTUnwrap(node.agent)
    let map = try BPFMap.openPinned(at: agent.bpfFS + "/" + JUNCTION_MAP_CT4)
    return try map.keys(as: junction_ct4_key.self).count
  }

  private func podEntries(_ node: TestNode) throws -> [junction_pod_netns] {
    Array(try podEntriesByCookie(node).values)
  }

  private func podEntriesByCookie(_ node: TestNode) throws -> [UInt64: junction_pod_netns] {
    let agent = try XCTUnwrap(node.agent)
    return try PodNetnsMap.entries(bpfFS: agent.bpfFS)
  }

  /// A node with a TCP and a UDP backend pod behind the two ClusterIPs.
  private func withServices(_ node: TestNode) throws {
    let tcpPod = try node.makePodNamespace()
    let tcpBackend = try node.addPod(tcpPod)
    try processes.spawn(in: tcpPod, Self.tcpServer, ["tcp-a"])
    try processes.waitForPort8080(node, in: tcpPod, udp: false, name: "tcp-a")
    let udpPod = try node.makePodNamespace()
    let udpBackend = try node.addPod(udpPod)
    try processes.spawn(in: udpPod, Self.udpServer, ["udp-a"])
    try processes.waitForPort8080(node, in: udpPod, udp: true, name: "udp-a")
    try node.apply(
      ServiceManifest.service(
        name: "podsock-tcp", clusterIP: Self.tcpClusterIP, backends: [tcpBackend], port: 80,
        protocol: "TCP", portName: "p", nodePort: nil))
    try node.apply(
      ServiceManifest.service(
        name: "podsock-udp", clusterIP: Self.udpClusterIP, backends: [udpBackend], port: 53,
        protocol: "UDP", portName: "p", nodePort: nil))
  }

  /// Every client kind reaches its service and sees the ClusterIP as its peer.
  private func assertClientsSeeTheClusterIP(from client: String) throws {
    XCTAssertEqual(
      try python(in: client, Self.tcpClient, [Self.tcpClusterIP, "80"]),
      ["tcp-a hi peer=\(Self.tcpClusterIP):80"])
    XCTAssertEqual(
      try python(in: client, EchoScripts.udpClient, [Self.udpClusterIP, "53", "connected"]),
      ["udp-a from=\(Self.udpClusterIP):53 peer=\(Self.udpClusterIP):53"])
    XCTAssertEqual(
      try python(in: client, EchoScripts.udpClient, [Self.udpClusterIP, "53", "unconnected"]),
      ["udp-a from=\(Self.udpClusterIP):53"])
  }

  func testAPodsSocketsAreTranslatedAtTheSocketWithoutConntrack() throws {
    let node = try makeNode(subnet: "10.240.171.0/24")
    try withServices(node)
    let client = try node.makePodNamespace()
    let address = try node.addPod(client)
    // The registration recorded the pod (and its backends' pods) with its address, under
    // the cookie its own sockets carry.
    var parsed = in_addr()
    XCTAssertEqual(inet_pton(AF_INET, address, &parsed), 1)
    let entry = try podEntriesByCookie(node)[try node.netnsCookie(of: client)]
    XCTAssertEqual(entry?.address4, parsed.s_addr)
    XCTAssertEqual(entry?.flags, 0)
    try assertClientsSeeTheClusterIP(from: client)
    XCTAssertEqual(try conntrackEntries(node), 0, "the per-packet path translated too")
    // DEL takes the pod's entry away.
    XCTAssertEqual(try node.driver("del", pod: client).status, 0)
    XCTAssertFalse(try podEntries(node).contains { $0.address4 == parsed.s_addr })
  }

  func testHostNamespaceOnlyLeavesPodsToThePerPacketPath() throws {
    let node = try makeNode(subnet: "10.240.172.0/24", hostnsOnly: true)
    try withServices(node)
    let client = try node.makePodNamespace()
    try node.addPod(client)
    XCTAssertEqual(try podEntries(node).count, 0)
    try assertClientsSeeTheClusterIP(from: client)
    XCTAssertGreaterThan(try conntrackEntries(node), 0, "the per-packet path did not translate")
  }

  func testAnOptedOutPodIsTranslatedPerPacket() throws {
    let node = try makeNode(subnet: "10.240.173.0/24")
    try withServices(node)
    let client = try node.makePodNamespace()
    let added = try node.driver(
      "add", pod: client,
      extraEnvironment: ["CNI_ARGS": "IgnoreUnknown=1;JUNCTION_SOCKET_LB=false"])
    XCTAssertEqual(added.status, 0, added.stdout + added.stderr)
    XCTAssertTrue(
      try podEntries(node).contains {
        $0.flags & UInt32(JUNCTION_POD_NETNS_F_NO_SOCKET_LB) != 0
      })
    try assertClientsSeeTheClusterIP(from: client)
    XCTAssertGreaterThan(try conntrackEntries(node), 0, "the per-packet path did not translate")
  }

  func testAnAgentRestartKeepsAnEstablishedPodConnection() throws {
    let node = try makeNode(subnet: "10.240.174.0/24")
    try withServices(node)
    let client = try node.makePodNamespace()
    try node.addPod(client)
    let directory = URL(fileURLWithPath: NSTemporaryDirectory())
      .appendingPathComponent(TestNode.uniqueName("podsock"))
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
    defer { try? FileManager.default.removeItem(at: directory) }
    let output = directory.appendingPathComponent("out")
    let go = directory.appendingPathComponent("go")
    let process = try processes.spawn(
      in: client, Self.longClient, [Self.tcpClusterIP, "80", go.path], stdout: output)
    func lines() -> [String] {
      ((try? String(contentsOf: output, encoding: .utf8)) ?? "").split(separator: "\n").map(
        String.init)
    }
    for _ in 0..<100 where lines().isEmpty { usleep(50_000) }
    XCTAssertEqual(lines(), ["tcp-a one peer=\(Self.tcpClusterIP):80"])
    try XCTUnwrap(node.agent).restart()
    FileManager.default.createFile(atPath: go.path, contents: nil)
    for _ in 0..<100 where process.isRunning { usleep(50_000) }
    XCTAssertEqual(lines(), ["tcp-a one peer=\(Self.tcpClusterIP):80", "tcp-a two"])
    XCTAssertEqual(try conntrackEntries(node), 0)
  }
}
