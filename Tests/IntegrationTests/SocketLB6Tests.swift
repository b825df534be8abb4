import BPFKit
import DatapathABI
import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// Socket load balancing over IPv6 (issue 15, part 4): with `--socket-lb`, the node's own
/// processes reach an IPv6 ClusterIP through bpf/sock.c's connect6/sendmsg6 (no per-packet
/// NAT, so no jnc_ct6 entry) and see the ClusterIP back from recvmsg6/getpeername6; an
/// AF_INET6 socket that is not IPV6_V6ONLY reaches an IPv4 ClusterIP at its IPv4-mapped
/// address; an IPv6 Service without endpoints is refused as an IPv4 one is; and ClientIP
/// affinity is shared with the per-packet IPv6 path (from_endpoint), so one client gets one
/// backend whichever path it comes through.
/// The node is dual-stack (host-local with one range set per family); backends are python3
/// servers in its pods listening on [::]:8080 for both families.
final class SocketLB6Tests: PodNodesTestCase {

  // MARK: - Helpers

  private static let vip = "fd00:96:66::a"
  private static let emptyVIP = "fd00:96:66::e"
  private static let clusterIP4 = "10.96.66.10"
  /// The node's own IPv6 address (on its loopback, as `nodeIP` is for IPv4).
  private static let nodeIPv6 = "fd00:192:168:66::1"

  /// A dual-stack node whose agent runs with socket LB on a cgroup root of its own.
  private func makeNode(subnet: Int) throws -> TestNode {
    let cgroupRoot = URL(fileURLWithPath: NSTemporaryDirectory())
      .appendingPathComponent(TestNode.uniqueName("cg")).path
    let node = try TestNode(
      podSubnet: "10.240.\(subnet).0/24",
      ipam: [
        "ranges": [[["subnet": "10.240.\(subnet).0/24"]], [["subnet": "fd00:10:\(subnet)::/64"]]]
      ],
      agentArguments: ["--socket-lb", "--cgroup-root", cgroupRoot])
    nodes.append(node)
    try Shell.must(["ip", "-n", node.name, "addr", "add", "\(Self.nodeIPv6)/128", "dev", "lo"])
    return node
  }

  /// Answers TCP connections and UDP datagrams on [::]:8080, both families (not V6ONLY),
  /// with "NAME CLIENT-ADDRESS".
  private static let server = """
    import socket, sys, threading
    name = sys.argv[1]
    def bound(kind):
        s = socket.socket(socket.AF_INET6, kind)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", 8080)); return s
    def tcp():
        s = bound(socket.SOCK_STREAM); s.listen(64)
        while True:
            c, peer = s.accept(); c.sendall(f"{name} {peer[0]}\\n".encode()); c.close()
    threading.Thread(target=tcp, daemon=True).start()
    u = bound(socket.SOCK_DGRAM)
    while True:
        _, peer = u.recvfrom(2048); u.sendto(f"{name} {peer[0]}".encode(), peer)
    """

  /// A dual-stack pod running the server as `name`: (IPv4, IPv6) addresses.
  private func startBackend(_ name: String, on node: TestNode) throws -> (v4: String, v6: String) {
    let pod = try node.makePodNamespace()
    let result = try node.driver("add", pod: pod)
    XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
    let addresses = (result.json?["ips"] as? [[String: Any]] ?? []).compactMap {
      ($0["address"] as? String)?.split(separator: "/").first.map(String.init)
    }
    let v4 = try XCTUnwrap(addresses.first { !$0.contains(":") }, result.stdout)
    let v6 = try XCTUnwrap(addresses.first { $0.contains(":") }, result.stdout)
    try processes.spawn(in: pod, Self.server, [name])
    let listening = try node.servesPort8080(in: pod, ipv6: true)
    XCTAssertTrue(listening, "backend \(name) did not start on 8080")
    return (v4, v6)
  }

  /// An IPv6 (or, with `family` IPv4, IPv4) Service with TCP port 80 and UDP port 53 to 8080,
  /// and its EndpointSlice; ClientIP affinity when `affinity`; the `terminating` backends
  /// serving but terminating.
  private func manifest(
    _ name: String, clusterIP: String, family: String = "IPv6", backends: [String],
    affinity: Bool = false, terminating: Set<String> = []
  ) -> String {
    let endpoints =
      backends.isEmpty
      ? "endpoints: []"
      : "endpoints:\n"
        + backends.map {
          let conditions =
            terminating.contains($0)
            ? "{ready: false, serving: true, terminating: true}" : "{ready: true}"
          return "- addresses: [\"\($0)\"]\n  conditions: \(conditions)"
        }
        .joined(separator: "\n")
    let sessionAffinity =
      affinity
      ? "\n  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP: {timeoutSeconds: 10800}"
      : ""
    return """
      apiVersion: v1
      kind: Service
      metadata: {name: \(name), namespace: default}
      spec:
        type: ClusterIP
        clusterIP: \(clusterIP)
        clusterIPs: [\(clusterIP)]
        ipFamilies: [\(family)]
        ipFamilyPolicy: SingleStack\(sessionAffinity)
        ports:
        - {name: tcp, port: 80, protocol: TCP, targetPort: 8080}
        - {name: udp, port: 53, protocol: UDP, targetPort: 8080}
      ---
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata:
        name: \(name)-\(family.lowercased())
        namespace: default
        labels: {kubernetes.io/service-name: \(name)}
      addressType: \(family)
      ports:
      - {name: tcp, port: 8080, protocol: TCP}
      - {name: udp, port: 8080, protocol: UDP}
      \(endpoints)
      """
  }

  /// `count` TCP connections from an AF_INET6 socket (bound to argv[4] unless "-") to
  /// [argv[1]]:argv[2]: "ANSWER | PEER-ADDRESS PEER-PORT" each, or "refused" / "timeout" /
  /// "error:...".
  private static let tcpClient = """
    import socket, sys
    host, port, count, source = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    for _ in range(count):
        c = socket.socket(socket.AF_INET6); c.settimeout(3)
        c.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            if source != "-": c.bind((source, 0))
            c.connect((host, port))
            answer = c.makefile("rb").readline().decode().strip()
            print(answer, "|", *c.getpeername()[:2])
        except ConnectionRefusedError: print("refused")
        except socket.timeout: print("timeout")
        except OSError as e: print("error:" + str(e))
        c.close()
    """

  /// UDP from an AF_INET6 socket to [argv[1]]:argv[2], connected (connect + send + recvfrom +
  /// getpeername) or not (sendto + recvfrom): "ANSWER | FROM-ADDRESS FROM-PORT [| PEER]".
  private static let udpClient = """
    import socket, sys
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    target = (sys.argv[1], int(sys.argv[2]))
    try:
        if sys.argv[3] == "connected":
            s.connect(target); s.send(b"hi")
            data, source = s.recvfrom(2048)
            print(data.decode(), "|", *source[:2], "|", *s.getpeername()[:2])
        else:
            s.sendto(b"hi", target)
            data, source = s.recvfrom(2048)
            print(data.decode(), "|", *source[:2])
    except ConnectionRefusedError: print("refused")
    except socket.timeout: print("timeout")
    except OSError as e: print("error:" + str(e))
    """

  private func python(
    on node: TestNode, _ script: String, _ arguments: [String], file: StaticString = #filePath,
    line: UInt = #line
  ) throws -> [String] {
    let result = try node.exec(in: node.name, ["python3", "-c", script] + arguments, timeout: 60)
    XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
    return result.stdout.split(separator: "\n").map(String.init)
  }

  private func pinnedMap(_ node: TestNode, _ name: String) throws -> BPFMap {
    try BPFMap.openPinned(at: try XCTUnwrap(node.agent).bpfFS + "/" + name)
  }

  private static func bytes6(_ address: String) -> [UInt8] {
    var parsed = in6_addr()
    precondition(inet_pton(AF_INET6, address, &parsed) == 1, address)
    return withUnsafeBytes(of: parsed) { Array($0) }
  }

  private static func text6(_ bytes: [UInt8]) -> String {
    var parsed = in6_addr()
    withUnsafeMutableBytes(of: &parsed) { $0.copyBytes(from: bytes) }
    var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    inet_ntop(AF_INET6, &parsed, &buffer, socklen_t(buffer.count))
    return String(cString: buffer)
  }

  /// Four network-order words as the maps store an IPv6 address.
  private static func words(_ bytes: [UInt8]) -> (UInt32, UInt32, UInt32, UInt32) {
    var value: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
    withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: bytes) }
    return value
  }

  private static func bytes(_ words: (UInt32, UInt32, UInt32, UInt32)) -> [UInt8] {
    withUnsafeBytes(of: words) { Array($0) }
  }

  /// A TCP SYN from [client]:40000 to [vip]:80 as from_endpoint sees a pod's packet.
  private static func syn(from client: String, to vip: String) -> [UInt8] {
    var frame: [UInt8] = [0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x86, 0xdd]
    frame += [0x60, 0, 0, 0, 0, 20, 6, 64] + bytes6(client) + bytes6(vip)
    frame += [0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]
    return frame
  }

  /// The backend the per-packet IPv6 path (the node's pinned from_endpoint, run on a SYN
  /// from `client`) DNATs the connection to.
  private func perPacketBackend(_ node: TestNode, client: String) throws -> String {
    let program = try BPFProgram.openPinned(
      at: try XCTUnwrap(node.agent).bpfFS + "/" + JUNCTION_PROG_FROM_ENDPOINT)
    let result = try ProgramTestRun.run(
      program: program, packet: Self.syn(from: client, to: Self.vip))
    XCTAssertEqual(result.verdict, .next, "from_endpoint did not pass the SYN")
    return Self.text6(Array(result.output[38..<54]))
  }

  /// jnc_lb6_aff's backend for `client` (of any service), as an address.
  private func affinityBackend(_ node: TestNode, client: String) throws -> String? {
    let affinity = try pinnedMap(node, JUNCTION_MAP_LB6_AFFINITY)
    let backends = try pinnedMap(node, JUNCTION_MAP_LB6_BACKENDS)
    let wanted = Self.bytes6(client)
    guard
      let key = try affinity.keys(as: junction_lb6_affinity_key.self)
        .first(where: { Self.bytes($0.client) == wanted }),
      let entry = try affinity.lookup(key, as: junction_lb4_affinity.self),
      let backend = try backends.lookup(
        junction_lb4_backend_key(backend_id: entry.backend_id), as: junction_lb6_backend.self)
    else { return nil }
    return Self.text6(Self.bytes(backend.address))
  }

  // MARK: - Tests

  func testTCPAndUDPFromTheNodeReachAnIPv6ClusterIPWithoutPerPacketNAT() throws {
    let node = try makeNode(subnet: 66)
    let alpha = try startBackend("alpha", on: node)
    let beta = try startBackend("beta", on: node)
    try node.apply(manifest("six", clusterIP: Self.vip, backends: [alpha.v6, beta.v6]))
    try node.apply(manifest("six-empty", clusterIP: Self.emptyVIP, backends: []))

    // TCP: each connection answered by a backend, the ClusterIP as the peer (getpeername6).
    var answered: Set<String> = []
    for line in try python(on: node, Self.tcpClient, [Self.vip, "80", "16", "-"]) {
      let parts = line.split(separator: " ").map(String.init)
      XCTAssertEqual(parts.count, 5, line)
      guard parts.count == 5 else { continue }
      answered.insert(parts[0])
      XCTAssertEqual(Array(parts[2...]), ["|", Self.vip, "80"], line)
    }
    XCTAssertEqual(answered, ["alpha", "beta"], "16 random choices over 2 backends reach both")
    // UDP, connected and not: replies read as coming from the ClusterIP (recvmsg6).
    let connected = try python(on: node, Self.udpClient, [Self.vip, "53", "connected"])
    XCTAssertEqual(connected.count, 1, "\(connected)")
    XCTAssertTrue(
      connected.first?.hasSuffix("| \(Self.vip) 53 | \(Self.vip) 53") ?? false, "\(connected)")
    let unconnected = try python(on: node, Self.udpClient, [Self.vip, "53", "unconnected"])
    XCTAssertEqual(unconnected.count, 1, "\(unconnected)")
    XCTAssertTrue(unconnected.first?.hasSuffix("| \(Self.vip) 53") ?? false, "\(unconnected)")
    XCTAssertTrue(
      ["alpha", "beta"].contains(unconnected.first?.split(separator: " ").first ?? ""),
      "\(unconnected)")

    // Translated at the socket: the per-packet path saw only backend addresses, so it kept
    // no connection, and the socket's reverse entries name the ClusterIP.
    let conntrack = try pinnedMap(node, JUNCTION_MAP_CT6)
    XCTAssertEqual(try conntrack.keys(as: junction_ct6_key.self).count, 0)
    let reverse = try pinnedMap(node, JUNCTION_MAP_LB6_SOCK_REVNAT)
    let frontends = try reverse.keys(as: junction_lb6_sock_key.self).compactMap {
      try reverse.lookup($0, as: junction_lb6_sock_revnat.self)
    }.map { "[\(Self.text6(Self.bytes($0.address)))]:\(UInt16(bigEndian: $0.port))" }
    XCTAssertFalse(frontends.isEmpty)
    XCTAssertEqual(Set(frontends), ["[\(Self.vip)]:80", "[\(Self.vip)]:53"])

    // A Service without endpoints: refused at once, as the IPv4 path does.
    XCTAssertEqual(
      try python(on: node, Self.tcpClient, [Self.emptyVIP, "80", "1", "-"]), ["refused"])
    XCTAssertEqual(
      try python(on: node, Self.udpClient, [Self.emptyVIP, "53", "connected"]), ["refused"])

    // Each translation and refusal is an IPv6 flow (bpf/lib/events6.h), shown with the
    // ClusterIP dialled and found by an IPv6 CIDR filter.
    let translated = try observe(
      node, ["--type", "sock", "--to-ip", "fd00:10:66::/64", "--last", "100"], atLeast: 16)
    XCTAssertTrue(
      translated.allSatisfy {
        $0.contains("(service default/six [\(Self.vip)]:80)") && $0.contains(" sock TRANSLATED")
          || $0.contains("(service default/six [\(Self.vip)]:53)")
      }, translated.joined(separator: "\n"))
    let refused = try observe(node, ["--type", "drop", "--ip", Self.emptyVIP], atLeast: 2)
    XCTAssertTrue(
      refused.allSatisfy { $0.contains("default/six-empty:") && $0.contains("DROPPED") },
      refused.joined(separator: "\n"))
  }

  /// `observe`'s lines once it has at least `lines` (the agent reads the ring every 20 ms).
  private func observe(_ node: TestNode, _ arguments: [String], atLeast lines: Int) throws
    -> [String]
  {
    var output: [String] = []
    for _ in 0..<50 {
      let result = try node.junctionctl(["observe"] + arguments)
      XCTAssertEqual(result.status, 0, result.stderr)
      output = result.stdout.split(separator: "\n").map(String.init)
      if output.count >= lines { break }
      usleep(100_000)
    }
    XCTAssertGreaterThanOrEqual(output.count, lines, output.joined(separator: "\n"))
    return output
  }

  func testAnIPv4MappedAddressOnADualStackSocketReachesTheIPv4Service() throws {
    let node = try makeNode(subnet: 67)
    let alpha = try startBackend("alpha", on: node)
    try node.apply(
      manifest("four", clusterIP: Self.clusterIP4, family: "IPv4", backends: [alpha.v4]))
    let mapped = "::ffff:\(Self.clusterIP4)"

    // TCP: the IPv4 backend answers (it sees the node's IPv4 address, mapped, on its
    // dual-stack listener), and getpeername6 gives the mapped ClusterIP back.
    let tcp = try python(on: node, Self.tcpClient, [mapped, "80", "3", "-"])
    XCTAssertEqual(tcp.count, 3, "\(tcp)")
    for line in tcp {
      let parts = line.split(separator: " ").map(String.init)
      XCTAssertEqual(parts.count, 5, line)
      guard parts.count == 5 else { continue }
      XCTAssertEqual(parts[0], "alpha", line)
      XCTAssertTrue(parts[1].hasPrefix("::ffff:"), "the backend was reached over IPv4: \(line)")
      XCTAssertEqual(Array(parts[2...]), ["|", mapped, "80"], line)
    }
    // UDP, connected and not: replies from the mapped ClusterIP.
    XCTAssertEqual(
      try python(on: node, Self.udpClient, [mapped, "53", "connected"]).map {
        $0.split(separator: "|").dropFirst().map { $0.trimmingCharacters(in: .whitespaces) }
      },
      [["\(mapped) 53", "\(mapped) 53"]])
    XCTAssertEqual(
      try python(on: node, Self.udpClient, [mapped, "53", "unconnected"]).map {
        $0.split(separator: "|").dropFirst().map { $0.trimmingCharacters(in: .whitespaces) }
      },
      [["\(mapped) 53"]])
    // The IPv4 path translated it: its reverse entries, none in the IPv6 map.
    let reverse4 = try pinnedMap(node, JUNCTION_MAP_LB4_SOCK_REVNAT)
    XCTAssertFalse(try reverse4.keys(as: junction_lb4_sock_key.self).isEmpty)
    let reverse6 = try pinnedMap(node, JUNCTION_MAP_LB6_SOCK_REVNAT)
    XCTAssertEqual(try reverse6.keys(as: junction_lb6_sock_key.self).count, 0)
    // The node's ordinary IPv4 socket still reaches the same Service.
    let four = try node.exec(
      in: node.name,
      [
        "python3", "-c",
        "import socket; c = socket.create_connection(('\(Self.clusterIP4)', 80), timeout=3); "
          + "print(c.makefile('rb').readline().decode().split()[0], *c.getpeername())",
      ])
    XCTAssertEqual(
      four.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "alpha \(Self.clusterIP4) 80")
  }

  /// A terminating backend gets no new connection from the node's sockets (the slots and
  /// lib/lb6.h's active_backend6, as on the per-packet path).
  func testATerminatingIPv6BackendGetsNoNewConnection() throws {
    let node = try makeNode(subnet: 69)
    let alpha = try startBackend("alpha", on: node)
    let beta = try startBackend("beta", on: node)
    try node.apply(
      manifest(
        "six", clusterIP: Self.vip, backends: [alpha.v6, beta.v6], terminating: [beta.v6]))
    let names = try python(on: node, Self.tcpClient, [Self.vip, "80", "12", "-"]).map {
      String($0.split(separator: " ").first ?? "")
    }
    XCTAssertEqual(names, Array(repeating: "alpha", count: 12))
  }

  /// ClientIP affinity is one table for both paths: a client the socket path placed keeps
  /// its backend on the per-packet path, and the other way round. Clients are node
  /// addresses the sockets bind to; the per-packet path is the node's own from_endpoint run
  /// on a SYN from the same address.
  func testClientIPAffinityIsSharedWithThePerPacketPath() throws {
    let node = try makeNode(subnet: 68)
    var backendByName: [String: String] = [:]
    for name in ["alpha", "beta", "gamma"] {
      backendByName[name] = try startBackend(name, on: node).v6
    }
    try node.apply(
      manifest(
        "sticky", clusterIP: Self.vip, backends: backendByName.values.sorted(), affinity: true))
    let clients = (1...6).map { "fd00:192:168:66::1\($0)" }
    for client in clients {
      try Shell.must(["ip", "-n", node.name, "addr", "add", "\(client)/128", "dev", "lo"])
    }

    // Socket first: every connection of a client to one backend, the one its affinity entry
    // names, which the per-packet path then picks for the same client.
    for client in clients.prefix(3) {
      let names = try python(on: node, Self.tcpClient, [Self.vip, "80", "4", client]).map {
        String($0.split(separator: " ").first ?? "")
      }
      XCTAssertEqual(Set(names).count, 1, "\(client): \(names)")
      let chosen = try XCTUnwrap(backendByName[names.first ?? ""], "\(client): \(names)")
      XCTAssertEqual(try affinityBackend(node, client: client), chosen, client)
      XCTAssertEqual(try perPacketBackend(node, client: client), chosen, client)
    }
    // Per-packet first: the socket path follows the entry it wrote.
    for client in clients.suffix(3) {
      let chosen = try perPacketBackend(node, client: client)
      XCTAssertEqual(try affinityBackend(node, client: client), chosen, client)
      let names = try python(on: node, Self.tcpClient, [Self.vip, "80", "4", client]).map {
        String($0.split(separator: " ").first ?? "")
      }
      XCTAssertEqual(names.map { backendByName[$0] }, Array(repeating: chosen, count: 4), client)
    }
  }
}
