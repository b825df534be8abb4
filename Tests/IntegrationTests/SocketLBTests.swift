import BPFKit
import DatapathABI
import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// Socket load balancing (issue 6, part 3): with `--socket-lb`, the node's own processes
/// (`ip netns exec NODE ...`, not a pod) reach ClusterIP and NodePort services through the
/// cgroup programs of bpf/sock.c, UDP clients see the service address as their peer, other
/// namespaces than the node's and its pods' are left alone, the attachments outlive the agent (pinned links) until a start
/// without `--socket-lb`, and the cgroup2 mount goes with the agent.
/// Backends are python3 servers in pods wired up by the plugin; services are applied with
/// junctionctl.
final class SocketLBTests: XCTestCase {
  private var nodes: [TestNode] = []
  private let processes = PodProcesses()
  private var cleanups: [() -> Void] = []

  override func tearDown() {
    processes.stopAll()
    for node in nodes { node.tearDown() }
    nodes = []
    for cleanup in cleanups.reversed() { cleanup() }
    cleanups = []
    super.tearDown()
  }

  // MARK: - Helpers

  private static let clusterIP = "10.96.61.10"
  private static let nodePortClusterIP = "10.96.61.11"
  private static let emptyClusterIP = "10.96.61.12"
  private static let udpClusterIP = "10.96.61.20"
  private static let nodePort: UInt16 = 30080

  /// A node whose agent runs with socket LB on a cgroup root of its own (not created yet:
  /// the agent makes and removes it).
  private func makeNode(podSubnet: String) throws -> (node: TestNode, cgroupRoot: String) {
    let cgroupRoot = URL(fileURLWithPath: NSTemporaryDirectory())
      .appendingPathComponent(TestNode.uniqueName("cg")).path
    let node = try TestNode(
      podSubnet: podSubnet, agentArguments: ["--socket-lb", "--cgroup-root", cgroupRoot])
    nodes.append(node)
    return (node, cgroupRoot)
  }

  private func agent(_ node: TestNode) throws -> TestAgent { try XCTUnwrap(node.agent) }

  /// One Service (port 80, or 53 for UDP, → 8080) and its EndpointSlice.
  private func service(
    _ name: String, clusterIP: String, backends: [String], udp: Bool = false,
    nodePort: UInt16? = nil
  ) -> String {
    ServiceManifest.service(
      name: name, clusterIP: clusterIP, backends: backends, port: udp ? 53 : 80,
      protocol: udp ? "UDP" : "TCP", portName: "p", nodePort: nodePort)
  }

  private static let tcpServer = """
    import socket, sys
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 8080)); s.listen(64)
    while True:
        c, _ = s.accept(); c.sendall(sys.argv[1].encode() + b"\\n"); c.close()
    """

  private static let udpServer = """
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 8080))
    while True:
        _, peer = s.recvfrom(2048); s.sendto(sys.argv[1].encode(), peer)
    """

  /// A pod on `node` running `name`'s server on 8080; its address.
  private func startBackend(_ name: String, on node: TestNode, udp: Bool = false) throws -> String {
    let pod = try node.makePodNamespace()
    let address = try node.addPod(pod)
    try processes.spawn(in: pod, udp ? Self.udpServer : Self.tcpServer, [name])
    try processes.waitForPort8080(node, in: pod, udp: udp, name: name)
    return address
  }

  /// Runs python3 `script` with `arguments` in `namespace` (nil: the test's own, the host's);
  /// its output lines.
  private func python(
    in namespace: String?, _ script: String, _ arguments: [String], file: StaticString = #filePath,
    line: UInt = #line
  ) throws -> [String] {
    let command = ["python3", "-c", script] + arguments
    let result = try Shell.run(
      (namespace.map { ["ip", "netns", "exec", $0] } ?? []) + command, timeout: 60)
    XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
    return result.stdout.split(separator: "\n").map(String.init)
  }

  /// TCP connect to address:port: "NAME peer=IP:PORT" (what answered, and getpeername), or
  /// "refused" / "timeout" / "error:...".
  private static let tcpClient = """
    import socket, sys
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
        peer = c.getpeername()
        print(c.makefile("rb").readline().decode().strip(), "peer=%s:%d" % peer)
    except ConnectionRefusedError: print("refused")
    except socket.timeout: print("timeout")
    except OSError as e: print("error:" + str(e))
    """

  /// A UDP socket's cookie (SO_COOKIE), then a connect to address:port: "COOKIE PEER".
  private static let cookieClient = """
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cookie = int.from_bytes(s.getsockopt(socket.SOL_SOCKET, 57, 8), "little")
    try:
        s.connect((sys.argv[1], int(sys.argv[2]))); peer = "%s:%d" % s.getpeername()
    except OSError as e: peer = "error"
    print(cookie, peer)
    """

  private func pinnedMap(_ node: TestNode, _ name: String) throws -> BPFMap {
    try BPFMap.openPinned(at: try agent(node).bpfFS + "/" + name)
  }

  /// An IPv4 address as the maps store it (network order bytes).
  private func be32(_ address: String) -> UInt32 {
    var parsed = in_addr()
    precondition(inet_pton(AF_INET, address, &parsed) == 1, address)
    return parsed.s_addr
  }

  private func serviceKey(_ address: String, _ port: UInt16, slot: UInt16, udp: Bool = false)
    -> junction_lb4_service_key
  {
    junction_lb4_service_key(
      address: be32(address), port: port.bigEndian, proto: udp ? 17 : 6,
      scope: UInt8(JUNCTION_SCOPE_DEFAULT), slot: slot, pad2: 0)
  }

  private static let deviceAddress = "192.168.250.1"

  /// Gives the node an external device (one end of a veth pair, both ends in the node, with
  /// `deviceAddress`: the machine has no dummy module) and restarts its agent
  /// with `--devices` on it, so the agent writes the NodePort frontends itself: on the
  /// device's address and on 0.0.0.0.
  private func addDevice(_ node: TestNode) throws {
    try Shell.must([
      "ip", "-n", node.name, "link", "add", "ext0", "type", "veth", "peer", "name", "ext0p",
    ])
    try Shell.must([
      "ip", "-n", node.name, "addr", "add", "\(Self.deviceAddress)/24", "dev", "ext0",
    ])
    try Shell.must(["ip", "-n", node.name, "link", "set", "ext0", "up"])
    let agent = try agent(node)
    agent.extraArguments += ["--devices", "ext0"]
    try agent.restart()
  }

  /// The socket-LB reverse entries recorded for socket `cookie`.
  private func reverseEntries(_ node: TestNode, cookie: UInt64) throws -> [junction_lb4_sock_revnat]
  {
    let map = try pinnedMap(node, JUNCTION_MAP_LB4_SOCK_REVNAT)
    return try map.keys(as: junction_lb4_sock_key.self).filter { $0.cookie == cookie }
      .compactMap { try map.lookup($0, as: junction_lb4_sock_revnat.self) }
  }

  private func address(_ value: UInt32) -> String {
    withUnsafeBytes(of: value) { $0.map(String.init).joined(separator: ".") }
  }

  // MARK: - Tests

  func testTCPFromTheNodeReachesClusterIPAndNodePortBackends() throws {
    let (node, _) = try makeNode(podSubnet: "10.240.61.0/24")
    try addDevice(node)
    let alpha = try startBackend("alpha", on: node)
    let beta = try startBackend("beta", on: node)
    try node.apply(service("sock-web", clusterIP: Self.clusterIP, backends: [alpha]))
    try node.apply(
      service(
        "sock-np", clusterIP: Self.nodePortClusterIP, backends: [beta], nodePort: Self.nodePort))
    try node.apply(service("sock-empty", clusterIP: Self.emptyClusterIP, backends: []))

    // ClusterIP: answered by the one backend, and getpeername says the service address.
    XCTAssertEqual(
      try python(in: node.name, Self.tcpClient, [Self.clusterIP, "80"]),
      ["alpha peer=\(Self.clusterIP):80"])
    // NodePort on the node's device address, on the wildcard, and on loopback (any of
    // 127.0.0.0/8): the NodePort service's backend (not the other service's), the dialled
    // address as the peer.
    for target in [Self.deviceAddress, "0.0.0.0", "127.0.0.1", "127.0.0.2"] {
      XCTAssertEqual(
        try python(in: node.name, Self.tcpClient, [target, "\(Self.nodePort)"]),
        ["beta peer=\(target):\(Self.nodePort)"], "NodePort via \(target)")
    }
    // A service without endpoints refuses at once, as kube-proxy's REJECT.
    XCTAssertEqual(
      try python(in: node.name, Self.tcpClient, [Self.emptyClusterIP, "80"]), ["refused"])
    // A port outside the NodePort range on loopback is nobody's service: plain loopback. And
    // the node's address on loopback is no device's: no NodePort there either.
    XCTAssertEqual(try python(in: node.name, Self.tcpClient, ["127.0.0.1", "29999"]), ["refused"])
    XCTAssertEqual(
      try python(in: node.name, Self.tcpClient, [node.nodeIP, "\(Self.nodePort)"]), ["refused"])
  }

  func testUDPClientsOnTheNodeSeeTheServiceAddress() throws {
    let (node, _) = try makeNode(podSubnet: "10.240.62.0/24")
    let backend = try startBackend("udp-alpha", on: node, udp: true)
    try node.apply(
      service("sock-dns", clusterIP: Self.udpClusterIP, backends: [backend], udp: true))

    XCTAssertEqual(
      try python(in: node.name, EchoScripts.udpClient, [Self.udpClusterIP, "53", "connected"]),
      ["udp-alpha from=\(Self.udpClusterIP):53 peer=\(Self.udpClusterIP):53"])
    XCTAssertEqual(
      try python(in: node.name, EchoScripts.udpClient, [Self.udpClusterIP, "53", "unconnected"]),
      ["udp-alpha from=\(Self.udpClusterIP):53"])
  }

  func testOnlyTheNodesOwnNamespaceIsTranslated() throws {
    let (node, _) = try makeNode(podSubnet: "10.240.63.0/24")
    let backend = try startBackend("udp-alpha", on: node, udp: true)
    try node.apply(
      service("sock-dns", clusterIP: Self.udpClusterIP, backends: [backend], udp: true))

    // In the node's namespace the socket is translated: its reverse entry names the service.
    let translated = try XCTUnwrap(
      try python(in: node.name, Self.cookieClient, [Self.udpClusterIP, "53"]).first)
    let nodeCookie = try XCTUnwrap(UInt64(translated.split(separator: " ")[0]), translated)
    let entries = try reverseEntries(node, cookie: nodeCookie)
    XCTAssertEqual(
      entries.map { "\(address($0.address)):\(UInt16(bigEndian: $0.port))" },
      [
        "\(Self.udpClusterIP):53"
      ])
    // The test's own (the machine's) namespace shares the cgroup hierarchy the programs are
    // attached to, but its sockets are not this node's: no translation, no entry.
    let untouched = try XCTUnwrap(
      try python(in: nil, Self.cookieClient, [Self.udpClusterIP, "53"]).first)
    let hostCookie = try XCTUnwrap(UInt64(untouched.split(separator: " ")[0]), untouched)
    XCTAssertEqual(try reverseEntries(node, cookie: hostCookie).count, 0, untouched)
    // A pod of this node's is (its namespace's cookie was recorded when it registered:
    // SocketLBPodTests has the rest).
    let client = try node.makePodNamespace()
    try node.addPod(client)
    let podLine = try XCTUnwrap(
      try python(in: client, Self.cookieClient, [Self.udpClusterIP, "53"]).first)
    let podCookie = try XCTUnwrap(UInt64(podLine.split(separator: " ")[0]), podLine)
    XCTAssertEqual(
      try reverseEntries(node, cookie: podCookie).map {
        "\(address($0.address)):\(UInt16(bigEndian: $0.port))"
      }, ["\(Self.udpClusterIP):53"], podLine)
    // And reaches the service.
    XCTAssertEqual(
      try python(in: client, EchoScripts.udpClient, [Self.udpClusterIP, "53", "unconnected"]),
      ["udp-alpha from=\(Self.udpClusterIP):53"])
  }

  /// The agent's program ids per hook, from its last "socket LB attached" log line.
  private func attachedIDs(_ agent: TestAgent) throws -> [CgroupHook: UInt32] {
    let line = try XCTUnwrap(
      agent.log.split(separator: "\n").last { $0.contains("socket LB attached") }, agent.log)
    var ids: [CgroupHook: UInt32] = [:]
    for hook in CgroupHook.allCases {
      let pattern = "\(hook)="
      let range = try XCTUnwrap(line.range(of: pattern), "\(hook) in \(line)")
      let digits = line[range.upperBound...].prefix { $0.isNumber }
      ids[hook] = try XCTUnwrap(UInt32(digits), String(line))
    }
    return ids
  }

  /// A cgroup2 mount of the test's own, to see the unified hierarchy's root (where the agent's
  /// own mount, in its private mount namespace, attached); unmounted in tearDown.
  private func mountCgroup2() throws -> String {
    let path = URL(fileURLWithPath: NSTemporaryDirectory())
      .appendingPathComponent(TestNode.uniqueName("cgq")).path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    cleanups.append { try? FileManager.default.removeItem(atPath: path) }
    try CgroupFilesystem.mount(at: path)
    cleanups.append { _ = umount2(path, Int32(MNT_DETACH)) }
    return path
  }

  private func assertAttached(
    _ ids: [CgroupHook: UInt32], at root: String, _ attached: Bool, file: StaticString = #filePath,
    line: UInt = #line
  ) throws {
    for (hook, id) in ids {
      let programs = try CgroupLink.attachedPrograms(at: root, hook: hook)
      XCTAssertEqual(
        programs.contains(id), attached, "\(hook) \(id) in \(programs)", file: file, line: line)
    }
  }

  func testTheProgramsOutliveTheAgentUntilAStartWithoutSocketLB() throws {
    let (node, cgroupRoot) = try makeNode(podSubnet: "10.240.64.0/24")
    let agent = try agent(node)
    let root = try mountCgroup2()

    // Running: cgroup2 mounted at --cgroup-root (in the agent's mount namespace), the eight
    // programs (both families) attached to the hierarchy's root, the namespace's cookie in jnc_node_cfg.
    let mountinfo = try XCTUnwrap(TestAgent.procText("/proc/\(agent.pid)/mountinfo"))
    XCTAssertTrue(
      mountinfo.split(separator: "\n").contains {
        $0.contains(" \(cgroupRoot) ") && $0.contains(" - cgroup2 ")
      },
      mountinfo)
    var ids = try attachedIDs(agent)
    try assertAttached(ids, at: root, true)
    let config = try pinnedMap(node, JUNCTION_MAP_NODE_CONFIG)
    XCTAssertNotEqual(
      try config.lookup(UInt32(0), as: junction_node_config.self)?.host_netns_cookie, 0)

    // A restart attaches again: new programs, the old ones gone.
    try agent.restart()
    let previous = ids
    ids = try attachedIDs(agent)
    XCTAssertNotEqual(ids, previous)
    try assertAttached(ids, at: root, true)
    try assertAttached(previous, at: root, false)

    // Killed: the pinned links keep the programs attached (no window in which the node's
    // connects go untranslated); the next start replaces them in place.
    let alpha = try startBackend("alpha", on: node)
    try node.apply(service("sock-web", clusterIP: Self.clusterIP, backends: [alpha]))
    agent.kill()
    try assertAttached(ids, at: root, true)
    XCTAssertEqual(
      try python(in: node.name, Self.tcpClient, [Self.clusterIP, "80"]),
      ["alpha peer=\(Self.clusterIP):80"], "a connect while the agent is down")
    try agent.start()
    let beforeKill = ids
    ids = try attachedIDs(agent)
    XCTAssertNotEqual(ids, beforeKill)
    try assertAttached(ids, at: root, true)
    try assertAttached(beforeKill, at: root, false)

    // Stopped: still attached and translating, for the next start to take over; the
    // directory it made is gone, and so is its mount (it lived in the agent's mount
    // namespace; none leaked into ours).
    XCTAssertEqual(agent.stop(), 0)
    try assertAttached(ids, at: root, true)
    XCTAssertEqual(
      try python(in: node.name, Self.tcpClient, [Self.clusterIP, "80"]),
      ["alpha peer=\(Self.clusterIP):80"], "a connect while the agent is stopped")
    XCTAssertNotEqual(
      try config.lookup(UInt32(0), as: junction_node_config.self)?.host_netns_cookie, 0)
    XCTAssertFalse(FileManager.default.fileExists(atPath: cgroupRoot), "\(cgroupRoot) is left")
    XCTAssertEqual(TestAgent.mounts(under: cgroupRoot), [])

    // A start without --socket-lb turns it off: nothing attached, no link pinned.
    agent.extraArguments.removeAll { $0 == "--socket-lb" }
    try agent.start()
    try assertAttached(ids, at: root, false)
    for name in [
      JUNCTION_PROG_SOCK_CONNECT4, JUNCTION_PROG_SOCK_SENDMSG4, JUNCTION_PROG_SOCK_RECVMSG4,
      JUNCTION_PROG_SOCK_GETPEERNAME4, JUNCTION_PROG_SOCK_CONNECT6, JUNCTION_PROG_SOCK_SENDMSG6,
      JUNCTION_PROG_SOCK_RECVMSG6, JUNCTION_PROG_SOCK_GETPEERNAME6,
    ] {
      XCTAssertFalse(
        FileManager.default.fileExists(atPath: "\(agent.bpfFS)/\(name)_link"), "\(name)_link")
    }
    XCTAssertEqual(agent.stop(), 0)
  }

  /// In the test's own mount namespace (no `ip netns exec`), the mount the agent makes is
  /// everybody's: it must be gone after a stop, and a cgroup2 already there must stay.
  func testAnAgentOutsideANamespaceUnmountsOnlyWhatItMounted() throws {
    let directory = URL(fileURLWithPath: NSTemporaryDirectory())
      .appendingPathComponent(TestNode.uniqueName("cgh")).path
    cleanups.append { try? FileManager.default.removeItem(atPath: directory) }
    // After a failure, whatever the agent left mounted there.
    cleanups.append {
      for point in TestAgent.mounts(under: directory) { _ = umount2(point, Int32(MNT_DETACH)) }
    }
    let ownRoot = directory + "/agent-made"
    let agent = try TestAgent(
      arguments: ["--socket-lb", "--cgroup-root", ownRoot], premountBPFFS: true)
    cleanups.append { agent.tearDown() }
    XCTAssertTrue(CgroupFilesystem.isCgroup2(ownRoot))
    XCTAssertEqual(TestAgent.mounts(under: ownRoot), [ownRoot])
    XCTAssertEqual(agent.stop(), 0)
    XCTAssertEqual(TestAgent.mounts(under: ownRoot), [])
    XCTAssertFalse(FileManager.default.fileExists(atPath: ownRoot))

    // Killed, it cannot clean up; the next start takes the mount and directory back as its
    // own (from the record in its state dir) and removes them when it stops.
    try agent.start()
    agent.kill()
    XCTAssertEqual(TestAgent.mounts(under: ownRoot), [ownRoot])
    try agent.start()
    XCTAssertEqual(TestAgent.mounts(under: ownRoot), [ownRoot], "mounted once, not stacked")
    XCTAssertEqual(agent.stop(), 0)
    XCTAssertEqual(TestAgent.mounts(under: ownRoot), [])
    XCTAssertFalse(FileManager.default.fileExists(atPath: ownRoot))
    XCTAssertFalse(
      FileManager.default.fileExists(atPath: agent.stateDir + "/socket-lb-cgroup.json"))

    // A cgroup2 that is already mounted is used, and left mounted.
    let existing = try mountCgroup2()
    agent.extraArguments = ["--socket-lb", "--cgroup-root", existing]
    try agent.start()
    XCTAssertEqual(agent.stop(), 0)
    XCTAssertTrue(
      CgroupFilesystem.isCgroup2(existing), "the agent unmounted a cgroup2 it did not mount")
  }
}
