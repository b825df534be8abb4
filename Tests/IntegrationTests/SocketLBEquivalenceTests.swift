import BPFKit
import DatapathABI
import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// Decision equivalence of socket LB for pods (issue 17, part 1): each case runs the same
/// scenario on two nodes built alike, one per path: `--socket-lb` (bpf/sock.c translates the
/// pod's sockets: no conntrack entry) and `--socket-lb-hostns-only` (from_endpoint translates
/// the pod's packets: conntrack entries), and asserts the same backends answered. Both nodes
/// have the same dual-stack pod subnets and create their pods in the same order, so every
/// client and backend has the same addresses on both, and the agents write the same slots
/// and Maglev tables: the inputs of the selection are equal.
///
/// What both paths hash (read from bpf/sock.c and lib/lb4.h): the client is the pod's address
/// (the socket path takes it from jnc_pod_netns while the socket is unbound), the source port
/// is the socket's bound one, else (socket path, not bound yet) a random stand-in. So Maglev
/// agrees per connection only for a bound source port, and ClientIP affinity + Maglev (whose
/// hash leaves the port out) agrees for every connection of a client.
final class SocketLBEquivalenceTests: PodNodesTestCase {
  private enum Path: CaseIterable { case socket, perPacket }

  private struct Pod {
    let netns: String
    let v4: String
    let v6: String
  }

  /// One answer per connection or datagram: "NAME peer=VIP:80" (TCP), "NAME from=VIP:80"
  /// (unconnected UDP), "NAME from=VIP:80 peer=VIP:80" (connected UDP), [VIP]:80 for IPv6;
  /// else "timeout" / "error:...". argv: address, kind (tcp, udp, udp-connected), count,
  /// and optionally the comma-separated source ports to bind, one per connection.
  private static let client = """
    import socket, sys
    vip, kind, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ports = [int(p) for p in sys.argv[4].split(",")] if len(sys.argv) > 4 and sys.argv[4] else []
    v6 = ":" in vip
    family = socket.AF_INET6 if v6 else socket.AF_INET
    def show(a): return ("[%s]:%d" if v6 else "%s:%d") % tuple(a[:2])
    for i in range(count):
        s = socket.socket(family, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
        s.settimeout(3)
        try:
            if ports:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("::" if v6 else "0.0.0.0", ports[i]))
            if kind == "udp":
                s.sendto(b"who", (vip, 80)); data, source = s.recvfrom(2048)
                print(data.decode().split()[0], "from=" + show(source))
            elif kind == "tcp":
                s.connect((vip, 80)); data = s.makefile("rb").readline()
                print(data.decode().split()[0], "peer=" + show(s.getpeername()))
            else:
                s.connect((vip, 80)); s.send(b"who"); data, source = s.recvfrom(2048)
                print(data.decode().split()[0], "from=" + show(source),
                      "peer=" + show(s.getpeername()))
        except socket.timeout: print("timeout")
        except (OSError, IndexError) as e: print("error:" + str(e))
        s.close()
    """

  // MARK: - Helpers

  /// A dual-stack node (10.240.`n`.0/24, fd00:10:240:`n`::/64) for `path`.
  private func makeNode(_ n: Int, path: Path, extra: [String]) throws -> TestNode {
    let cgroupRoot = URL(fileURLWithPath: NSTemporaryDirectory())
      .appendingPathComponent(TestNode.uniqueName("cg")).path
    let node = try TestNode(
      podSubnet: "10.240.\(n).0/24",
      ipam: ["ranges": [[["subnet": "10.240.\(n).0/24"]], [["subnet": "fd00:10:240:\(n)::/64"]]]],
      agentArguments: [
        path == .socket ? "--socket-lb" : "--socket-lb-hostns-only", "--cgroup-root", cgroupRoot,
      ] + extra)
    nodes.append(node)
    return node
  }

  /// `scenario` on a socket-LB node and on a per-packet node built alike: its results, by
  /// path. Asserts which path ran (unless `checkConntrack` is false, for flows that make no
  /// conntrack entry on either path): no conntrack entry on the socket node, some on the other.
  private func onBothPaths<T>(
    _ n: Int, agentArguments: [String] = [], checkConntrack: Bool = true,
    file: StaticString = #filePath, line: UInt = #line,
    _ scenario: (TestNode) throws -> T
  ) throws -> (socket: T, perPacket: T) {
    var results: [T] = []
    for path in Path.allCases {
      let node = try makeNode(n, path: path, extra: agentArguments)
      results.append(try scenario(node))
      guard checkConntrack else { continue }
      let entries = try conntrackEntries(node)
      if path == .socket {
        XCTAssertEqual(entries, 0, "the per-packet path translated too", file: file, line: line)
      } else {
        XCTAssertGreaterThan(
          entries, 0, "no conntrack entry: the per-packet path did not run on the \(path) node",
          file: file, line: line)
      }
    }
    return (results[0], results[1])
  }

  /// jnc_ct4 and jnc_ct6 entries together.
  private func conntrackEntries(_ node: TestNode) throws -> Int {
    let v4 = try pinnedMap(node, JUNCTION_MAP_CT4).keys(as: junction_ct4_key.self).count
    let v6 = try pinnedMap(node, JUNCTION_MAP_CT6).keys(as: junction_ct6_key.self).count
    return v4 + v6
  }

  private func pinnedMap(_ node: TestNode, _ name: String) throws -> BPFMap {
    try BPFMap.openPinned(at: try XCTUnwrap(node.agent).bpfFS + "/" + name)
  }

  /// A pod through the plugin (both families), serving TCP and UDP on 8080 as `name` when
  /// given (EchoScripts' server: "name peer" per answer).
  private func pod(on node: TestNode, serving name: String? = nil) throws -> Pod {
    let netns = try node.makePodNamespace()
    let result = try node.driver("add", pod: netns)
    XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
    let ips = (result.json?["ips"] as? [[String: Any]] ?? []).compactMap {
      ($0["address"] as? String)?.split(separator: "/").first.map(String.init)
    }
    let pod = Pod(
      netns: netns, v4: try XCTUnwrap(ips.first { !$0.contains(":") }, result.stdout),
      v6: try XCTUnwrap(ips.first { $0.contains(":") }, result.stdout))
    if let name {
      try processes.spawn(in: netns, EchoScripts.server(ipv6: true), [name])
      XCTAssertTrue(try node.servesPort8080(in: netns, ipv6: true), "\(name) did not start")
    }
    return pod
  }

  /// Backend pods serving `names`, created in order: their pods by name.
  private func backends(_ names: [String], on node: TestNode) throws -> [String: Pod] {
    var pods: [String: Pod] = [:]
    for name in names { pods[name] = try pod(on: node, serving: name) }
    return pods
  }

  /// The client script's lines from `pod`.
  private func call(
    _ node: TestNode, from pod: Pod, _ vip: String, _ kind: String, count: Int,
    sourcePorts: [Int] = []
  ) throws -> [String] {
    let result = try node.exec(
      in: pod.netns,
      [
        "python3", "-c", Self.client, vip, kind, "\(count)",
        sourcePorts.map(String.init).joined(separator: ","),
      ], timeout: 60)
    XCTAssertEqual(result.status, 0, result.stderr)
    return result.stdout.split(separator: "\n").map(String.init)
  }

  /// TCP, unconnected and connected UDP, `count` each, from `pod` to `vip`.
  private func callAllKinds(_ node: TestNode, from pod: Pod, _ vip: String, count: Int) throws
    -> [String]
  {
    try ["tcp", "udp", "udp-connected"].flatMap {
      try call(node, from: pod, vip, $0, count: count)
    }
  }

  /// The backend names of answers.
  private static func names(_ lines: [String]) -> Set<String> {
    Set(lines.map { String($0.split(separator: " ").first ?? "") })
  }

  private struct Endpoint {
    var address: String
    var terminating = false
    var nodeName: String? = nil
    var zone: String? = nil
  }

  /// An IPv4 ClusterIP Service `name` at `vip`, TCP and UDP port 80 (names tcp, udp) → 8080,
  /// and its EndpointSlice; `spec` lines go into the Service's spec, `annotations` on it.
  private func service(
    _ name: String, vip: String, _ endpoints: [Endpoint], spec: [String] = [],
    annotations: [String: String] = [:]
  ) -> String {
    let endpointLines = endpoints.map { endpoint -> String in
      let conditions =
        endpoint.terminating
        ? "{ready: false, serving: true, terminating: true}" : "{ready: true}"
      return "- addresses: [\"\(endpoint.address)\"]\n  conditions: \(conditions)"
        + (endpoint.nodeName.map { "\n  nodeName: \($0)" } ?? "")
        + (endpoint.zone.map { "\n  zone: \($0)" } ?? "")
    }
    let annotationText =
      annotations.isEmpty
      ? ""
      : ", annotations: {\(annotations.map { "\"\($0.key)\": \"\($0.value)\"" }.joined(separator: ", "))}"
    return """
      apiVersion: v1
      kind: Service
      metadata: {name: \(name), namespace: default\(annotationText)}
      spec:
        clusterIP: \(vip)
        ports:
        - {name: tcp, port: 80, protocol: TCP, targetPort: 8080}
        - {name: udp, port: 80, protocol: UDP, targetPort: 8080}
      \(spec.map { "  " + $0 }.joined(separator: "\n"))
      ---
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata:
        name: \(name)-abc
        namespace: default
        labels: {kubernetes.io/service-name: \(name)}
      addressType: IPv4
      ports:
      - {name: tcp, port: 8080, protocol: TCP}
      - {name: udp, port: 8080, protocol: UDP}
      endpoints:
      \(endpointLines.joined(separator: "\n"))
      """
  }

  /// jnc_lb4_aff as client address → backend address.
  private func affinity(_ node: TestNode) throws -> [String: String] {
    let affinity = try pinnedMap(node, JUNCTION_MAP_LB4_AFFINITY)
    let backends = try pinnedMap(node, JUNCTION_MAP_LB4_BACKENDS)
    var result: [String: String] = [:]
    for key in try affinity.keys(as: junction_lb4_affinity_key.self) {
      guard let entry = try affinity.lookup(key, as: junction_lb4_affinity.self),
        let backend = try backends.lookup(
          junction_lb4_backend_key(backend_id: entry.backend_id), as: junction_lb4_backend.self)
      else { continue }
      result[Self.text4(key.client)] = Self.text4(backend.address)
    }
    return result
  }

  private static func text4(_ address: UInt32) -> String {
    var parsed = in_addr(s_addr: address)
    var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
    return inet_ntop(AF_INET, &parsed, &buffer, socklen_t(buffer.count)).map { String(cString: $0) }
      ?? "?"
  }

  // MARK: - Tests

  /// ClientIP affinity with Maglev: the first pick is the Maglev slot of (client, VIP, port)
  /// without the source port, so one client gets one backend for every TCP connection and
  /// every UDP datagram, the same one on both paths, and both paths record it in jnc_lb4_aff
  /// under the pod's address. With affinity alone (random first pick) each path still keeps
  /// the client on one backend.
  func testClientIPAffinityGivesAClientTheSameBackendOnBothPaths() throws {
    let names = ["kirk", "spock", "uhura"]
    let results = try onBothPaths(81) { node -> [String] in
      let pods = try backends(names, on: node)
      let client = try pod(on: node)
      let addresses = names.map { Endpoint(address: pods[$0]!.v4) }
      try node.apply(
        service(
          "sticky", vip: "10.96.81.10", addresses,
          spec: [
            "sessionAffinity: ClientIP", "sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}",
          ],
          annotations: ["service.junction.io/lb-algorithm": "maglev"]))
      let sticky = try callAllKinds(node, from: client, "10.96.81.10", count: 5)
      XCTAssertEqual(sticky.count, 15, "\(sticky)")
      XCTAssertEqual(Self.names(Array(sticky[0..<5])).count, 1, "TCP not sticky: \(sticky)")
      XCTAssertEqual(Self.names(Array(sticky[5...])).count, 1, "UDP not sticky: \(sticky)")
      XCTAssertTrue(Self.names(sticky).isSubset(of: Set(names)), "\(sticky)")
      // The affinity entries are the pod's (not the node's 0 or a stand-in), pointing at the
      // backends that answered.
      let table = try affinity(node)
      let answered = Set(Self.names(sticky).map { pods[$0]?.v4 ?? "?" })
      XCTAssertEqual(Set(table.keys), [client.v4], "\(table)")
      XCTAssertEqual(Set(table.values), answered, "\(table)")

      try node.apply(
        service(
          "sticky-random", vip: "10.96.81.20", addresses,
          spec: [
            "sessionAffinity: ClientIP", "sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}",
          ]))
      let random = try call(node, from: client, "10.96.81.20", "tcp", count: 8)
      XCTAssertEqual(random.count, 8, "\(random)")
      XCTAssertEqual(Self.names(random).count, 1, "affinity alone not sticky: \(random)")
      return sticky
    }
    XCTAssertEqual(results.socket, results.perPacket, "the paths chose different backends")
  }

  /// Maglev without affinity over bound source ports: the socket path hashes the bound port
  /// as the per-packet path hashes the packet's, so each (client, port) lands on the same
  /// backend on both paths, TCP and UDP; the ports spread over more than one backend.
  func testMaglevPicksTheSameBackendForTheSameSourcePortOnBothPaths() throws {
    let names = ["kirk", "spock", "uhura"]
    let results = try onBothPaths(82) { node -> [String] in
      let pods = try backends(names, on: node)
      let client = try pod(on: node)
      try node.apply(
        service(
          "maglev", vip: "10.96.82.10", names.map { Endpoint(address: pods[$0]!.v4) },
          annotations: ["service.junction.io/lb-algorithm": "maglev"]))
      let tcp = try call(
        node, from: client, "10.96.82.10", "tcp", count: 10, sourcePorts: Array(43000..<43010))
      let udp = try call(
        node, from: client, "10.96.82.10", "udp-connected", count: 10,
        sourcePorts: Array(44000..<44010))
      XCTAssertTrue(Self.names(tcp + udp).isSubset(of: Set(names)), "\(tcp + udp)")
      XCTAssertGreaterThan(Self.names(tcp + udp).count, 1, "one backend took all: \(tcp + udp)")
      return tcp + udp
    }
    XCTAssertEqual(results.socket.count, 20)
    XCTAssertEqual(results.socket, results.perPacket, "the paths chose different backends")
  }

  /// The slots the agent writes decide for both paths: trafficDistribution PreferClose keeps
  /// connections in the node's zone (zone-a: kirk), internalTrafficPolicy Local on the node's
  /// own endpoints (spock), a terminating backend (scotty) takes no new connections (uhura).
  func testTopologyLocalPolicyAndTerminatingBackendsDecideAlikeOnBothPaths() throws {
    // A backend's terminating state is its entry's (jnc_lb4_be, shared by every Service it
    // backs, as for a pod in every slice): scotty is terminating, and backs only "ending".
    let names = ["kirk", "spock", "uhura", "scotty"]
    let results = try onBothPaths(83) { node -> [String] in
      let pods = try backends(names, on: node)
      let client = try pod(on: node)
      let nodeName = try XCTUnwrap(node.agent?.name)
      let (kirk, spock, uhura, scotty) = (
        pods["kirk"]!.v4, pods["spock"]!.v4, pods["uhura"]!.v4, pods["scotty"]!.v4
      )
      try node.apply(
        """
        apiVersion: v1
        kind: Node
        metadata: {name: \(nodeName), labels: {topology.kubernetes.io/zone: zone-a}}
        """)
      try node.apply(
        [
          service(
            "close", vip: "10.96.83.10",
            [
              Endpoint(address: kirk, zone: "zone-a"), Endpoint(address: spock, zone: "zone-b"),
              Endpoint(address: uhura, zone: "zone-b"),
            ], spec: ["trafficDistribution: PreferClose"]),
          service(
            "local", vip: "10.96.83.20",
            [
              Endpoint(address: kirk, nodeName: "elsewhere"),
              Endpoint(address: spock, nodeName: nodeName),
              Endpoint(address: uhura, nodeName: "elsewhere"),
            ], spec: ["internalTrafficPolicy: Local"]),
          service(
            "ending", vip: "10.96.83.30",
            [
              Endpoint(address: scotty, terminating: true), Endpoint(address: uhura),
            ]),
        ].joined(separator: "\n---\n"))
      var answers: [String] = []
      for (vip, expected) in [
        ("10.96.83.10", "kirk"), ("10.96.83.20", "spock"), ("10.96.83.30", "uhura"),
      ] {
        let lines = try callAllKinds(node, from: client, vip, count: 4)
        XCTAssertEqual(lines.count, 12, "\(vip): \(lines)")
        if Self.names(lines) != [expected] {
          let listing = try node.junctionctl(["bpf", "lb", "list"])
          XCTFail("\(vip): \(lines), want \(expected); \(listing.stdout)\(listing.stderr)")
        }
        answers += lines
      }
      return answers
    }
    XCTAssertEqual(results.socket, results.perPacket, "the paths answered differently")
  }

  /// Local Redirect Policy with skipRedirectFromBackend: a client pod reaches the node's droid,
  /// the droid itself gets the original Service (the jedi), alike on both paths.
  func testLocalRedirectAndSkipRedirectFromBackendDecideAlikeOnBothPaths() throws {
    let results = try onBothPaths(84) { node -> [String] in
      let pods = try backends(["jedi", "droid"], on: node)
      let client = try pod(on: node)
      let (jedi, droid) = (pods["jedi"]!, pods["droid"]!)
      let nodeName = try XCTUnwrap(node.agent?.name)
      func podObject(_ name: String, _ pod: Pod) -> String {
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: \(name), namespace: default, labels: {role: \(name)}}
        spec: {nodeName: \(nodeName)}
        status:
          podIP: \(pod.v4)
          podIPs: [{ip: \(pod.v4)}, {ip: "\(pod.v6)"}]
          conditions: [{type: Ready, status: "True"}]
        """
      }
      try node.apply(
        [
          service("droids", vip: "10.96.84.10", [Endpoint(address: jedi.v4)]),
          podObject("jedi", jedi), podObject("droid", droid),
          ServiceManifest.droidsRedirectPolicy(
            toPorts: ServiceManifest.tcpAndUDP8080, skipRedirectFromBackend: true),
        ].joined(separator: "\n---\n"))
      let redirected = try callAllKinds(node, from: client, "10.96.84.10", count: 2)
      XCTAssertEqual(Self.names(redirected), ["droid"], "a client: \(redirected)")
      let skipped = try callAllKinds(node, from: droid, "10.96.84.10", count: 2)
      XCTAssertEqual(Self.names(skipped), ["jedi"], "the droid itself: \(skipped)")
      return redirected + skipped
    }
    XCTAssertEqual(results.socket.count, 12)
    XCTAssertEqual(results.socket, results.perPacket, "the paths answered differently")
  }

  /// Hairpin: a pod that is its Service's only backend reaches itself through the ClusterIP
  /// (on the socket path by connecting to its own address, per packet through the service
  /// loopback address); it sees the ClusterIP as its peer on both.
  func testAPodReachingItselfThroughItsServiceGetsItsOwnAnswerOnBothPaths() throws {
    let results = try onBothPaths(85) { node -> [String] in
      let me = try pod(on: node, serving: "me")
      try node.apply(service("myself", vip: "10.96.85.10", [Endpoint(address: me.v4)]))
      let lines = try callAllKinds(node, from: me, "10.96.85.10", count: 2)
      XCTAssertEqual(Self.names(lines), ["me"], "\(lines)")
      return lines
    }
    XCTAssertEqual(results.socket.count, 6)
    XCTAssertEqual(results.socket, results.perPacket, "the paths answered differently")
  }

  /// An L7 proxy frontend (--proxy-redirect) stays on the per-packet path for a pod with
  /// socket LB on: the pod's connection reaches the node's proxy (a stand-in listening with
  /// IP_TRANSPARENT) with the pod as peer and VIP:80 as its local address, the pod sees the
  /// VIP, and the flow log shows from_endpoint's `to-proxy`, on both nodes alike. (The
  /// redirect makes no conntrack entry; the proxy's view, VIP:80 as its local address, is the
  /// per-packet redirect's: a socket translation would have reached the backend instead.)
  func testAPodsL7ProxyFrontendStaysOnThePerPacketPathWithSocketLB() throws {
    let proxyPort = 15001
    let results = try onBothPaths(
      86, agentArguments: ["--proxy-redirect", "default/web=\(proxyPort)"], checkConntrack: false
    ) { node -> [String] in
      let backend = try pod(on: node, serving: "backend")
      let client = try pod(on: node)
      try node.apply(service("web", vip: "10.96.86.10", [Endpoint(address: backend.v4)]))
      try processes.spawn(
        in: node.name, ProxyRedirectDatapathTests.standinProxy, ["\(proxyPort)"])
      var listening = false
      for _ in 0..<50 where !listening {
        listening =
          try node.exec(
            in: node.name, ["grep", "-q", String(format: ":%04X ", proxyPort), "/proc/net/tcp"]
          ).status == 0
        if !listening { usleep(100_000) }
      }
      XCTAssertTrue(listening, "the stand-in proxy did not start")
      let result = try node.exec(
        in: client.netns,
        ["python3", "-c", ProxyRedirectDatapathTests.client, "10.96.86.10", "80", "4096"],
        timeout: 60)
      XCTAssertEqual(result.status, 0, result.stderr)
      let lines = result.stdout.split(separator: "\n").map(String.init)
      // "proxy CLIENT:PORT VIP:80|VIP:80|CLIENT:PORT": the client's port differs per run.
      let fields = (lines.first ?? "").split(separator: "|").map(String.init)
      XCTAssertEqual(fields.count, 3, "\(lines)")
      let clientPort = fields.last?.split(separator: ":").last.map(String.init) ?? "?"
      XCTAssertEqual(
        fields.first, "proxy \(client.v4):\(clientPort) 10.96.86.10:80", "\(lines)")
      XCTAssertEqual(lines.dropFirst().first, "echo 4096 ok", "\(lines)")
      var flows = ""
      for _ in 0..<20 where !flows.contains("to-proxy") {
        flows = try node.junctionctl(["observe", "--last", "200"]).stdout
        if !flows.contains("to-proxy") { usleep(200_000) }
      }
      XCTAssertTrue(flows.contains("to-proxy"), "no to-proxy flow: \(flows)")
      return [fields.first?.replacingOccurrences(of: ":\(clientPort)", with: ":*") ?? ""]
        + Array(fields.dropFirst().prefix(1)) + lines.dropFirst()
    }
    XCTAssertEqual(results.socket, results.perPacket, "the paths answered differently")
  }

  /// A pod's IPv6 sockets: TCP, connected and unconnected UDP to an IPv6 ClusterIP are
  /// translated at the socket (no jnc_ct6 entry) and see [ClusterIP]:80 from recvfrom and
  /// getpeername; the per-packet node answers the same, with conntrack entries.
  func testAPodsIPv6SocketsAreTranslatedAtTheSocketAsPerPacket() throws {
    let vip = "fd00:96::87"
    let results = try onBothPaths(87) { node -> [String] in
      let pods = try backends(["kirk"], on: node)
      let client = try pod(on: node)
      try node.apply(
        ServiceManifest.ipv6TCPAndUDP(name: "six", vip: vip, backends: [pods["kirk"]!.v6]))
      let lines = try callAllKinds(node, from: client, vip, count: 2)
      XCTAssertEqual(
        lines,
        [
          "kirk peer=[\(vip)]:80", "kirk peer=[\(vip)]:80", "kirk from=[\(vip)]:80",
          "kirk from=[\(vip)]:80", "kirk from=[\(vip)]:80 peer=[\(vip)]:80",
          "kirk from=[\(vip)]:80 peer=[\(vip)]:80",
        ])
      return lines
    }
    XCTAssertEqual(results.socket, results.perPacket)
  }
}
