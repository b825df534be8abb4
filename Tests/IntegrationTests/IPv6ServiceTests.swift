import Foundation
import XCTest

/// An IPv6 ClusterIP end to end over real veths: pods wired by the plugin (IPv4, native
/// mode, so the endpoint programs sit on their host-side veths), given IPv6 addresses by the
/// test itself (fd00:64::/64 host routes, the node's fe80::1 on each host veth as gateway;
/// independent of the CNI's own dual-stack addressing), a Service with only an IPv6 cluster
/// IP and an IPv6 EndpointSlice applied through junctionctl. A client pod reaches the VIP
/// over TCP and UDP; each answer names the backend that gave it and the client address it
/// saw, and the client sees the VIP:80 as its peer (reverse NAT). Neighbor Discovery crosses
/// the same programs untouched, or nothing would be reached at all.
final class IPv6ServiceTests: XCTestCase {
  private var node: TestNode?
  private var servers: [Process] = []

  override func tearDown() {
    for server in servers where server.isRunning {
      server.terminate()
      server.waitUntilExit()
    }
    servers = []
    node?.tearDown()
    node = nil
    super.tearDown()
  }

  /// Answers TCP connections and UDP datagrams on [::]:8080 with "name peer-address".
  private static let server = """
    import socket, sys, threading
    name = sys.argv[1]
    def tcp():
        s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", 8080)); s.listen(16)
        while True:
            c, peer = s.accept(); c.sendall(f"{name} {peer[0]}\\n".encode()); c.close()
    threading.Thread(target=tcp, daemon=True).start()
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind(("::", 8080))
    while True:
        _, peer = u.recvfrom(2048); u.sendto(f"{name} {peer[0]}".encode(), peer)
    """

  /// `count` TCP connections then `count` UDP exchanges with [vip]:80, one line each:
  /// "answer | peer-address peer-port", or "timeout" / "error:...".
  private static let client = """
    import socket, sys
    vip, count = sys.argv[1], int(sys.argv[2])
    for _ in range(count):
        try:
            c = socket.create_connection((vip, 80), timeout=3)
            answer = c.makefile("rb").readline().decode().strip()
            print(answer, "|", *c.getpeername()[:2]); c.close()
        except socket.timeout: print("timeout")
        except OSError as e: print("error:" + str(e))
    for _ in range(count):
        u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.settimeout(3)
        try:
            u.sendto(b"who", (vip, 80)); data, peer = u.recvfrom(2048)
            print(data.decode(), "|", *peer[:2])
        except socket.timeout: print("timeout")
        except OSError as e: print("error:" + str(e))
        u.close()
    """

  /// Gives `pod` the IPv6 address `address`/128 on eth0, a default route via fe80::1, and
  /// the node the matching host route through the pod's host-side veth (found by the peer
  /// index eth0 names).
  private func addIPv6(_ address: String, to pod: String, on node: TestNode) throws {
    for setting in [
      "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0",
      "net.ipv6.conf.eth0.disable_ipv6=0", "net.ipv6.conf.eth0.accept_dad=0",
      "net.ipv6.conf.eth0.accept_ra=0",
    ] {
      try Shell.must(["ip", "netns", "exec", pod, "sysctl", "-qw", setting])
    }
    try Shell.must(["ip", "-n", pod, "-6", "addr", "add", "\(address)/128", "dev", "eth0", "nodad"])
    let link = try Shell.must(["ip", "-n", pod, "-o", "link", "show", "eth0"])
    // "2: eth0@if7: <...>": the host-side veth's index.
    guard let range = link.range(of: "@if"),
      let index = Int(link[range.upperBound...].prefix(while: \.isNumber))
    else { throw TestNode.MissingPrerequisite(description: "no peer index in: \(link)") }
    let hostLinks = try Shell.must(["ip", "-n", node.name, "-o", "link", "show"])
    guard
      let line = hostLinks.split(separator: "\n").first(where: { $0.hasPrefix("\(index): ") }),
      let veth = line.split(separator: ":").dropFirst().first?
        .trimmingCharacters(in: .whitespaces).split(separator: "@").first.map(String.init)
    else { throw TestNode.MissingPrerequisite(description: "no host link \(index)") }
    try Shell.must(
      ["ip", "netns", "exec", node.name, "sysctl", "-qw", "net.ipv6.conf.\(veth).disable_ipv6=0"])
    try Shell.must(["ip", "-n", node.name, "-6", "addr", "add", "fe80::1/64", "dev", veth, "nodad"])
    try Shell.must(["ip", "-n", node.name, "-6", "route", "add", "\(address)/128", "dev", veth])
    try Shell.must([
      "ip", "-n", pod, "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0",
    ])
  }

  private func manifest(vip: String, backends: [String]) -> String {
    """
    apiVersion: v1
    kind: Service
    metadata: {name: six, namespace: default}
    spec:
      type: ClusterIP
      clusterIP: \(vip)
      clusterIPs: [\(vip)]
      ipFamilies: [IPv6]
      ipFamilyPolicy: SingleStack
      ports:
      - {name: tcp, port: 80, protocol: TCP, targetPort: 8080}
      - {name: udp, port: 80, protocol: UDP, targetPort: 8080}
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: six-v6
      namespace: default
      labels: {kubernetes.io/service-name: six}
    addressType: IPv6
    ports:
    - {name: tcp, port: 8080, protocol: TCP}
    - {name: udp, port: 8080, protocol: UDP}
    endpoints:
    \(backends.map { "- addresses: [\"\($0)\"]\n  conditions: {ready: true}" }.joined(separator: "\n"))
    """
  }

  func testAClientPodReachesAnIPv6ClusterIPAndTheAnsweringBackendIsKnown() throws {
    let node = try TestNode(podSubnet: "10.240.64.0/24")
    self.node = node
    try Shell.must(
      ["ip", "netns", "exec", node.name, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
    let clientAddress = "fd00:64::5"
    let backendAddresses = ["fd00:64::b", "fd00:64::c"]
    let vip = "fd00:96:64::a"

    let client = try node.makePodNamespace()
    try node.addPod(client)
    try addIPv6(clientAddress, to: client, on: node)
    var backends: [String] = []
    for (index, address) in backendAddresses.enumerated() {
      let pod = try node.makePodNamespace()
      try node.addPod(pod)
      try addIPv6(address, to: pod, on: node)
      let process = Process()
      process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      process.arguments = ["ip", "netns", "exec", pod, "python3", "-c", Self.server, "b\(index)"]
      try process.run()
      servers.append(process)
      backends.append(pod)
    }
    for pod in backends {
      let listening = try node.servesPort8080(in: pod, ipv6: true)
      XCTAssertTrue(listening, "the server in \(pod) did not start")
    }
    // Plain routing first: the client reaches a backend directly (ND through the programs).
    XCTAssertTrue(try node.ping(from: client, backendAddresses[0]), "no IPv6 route to a backend")

    let applied = try node.junctionctl(
      ["apply", "-f", "-"], stdin: manifest(vip: vip, backends: backendAddresses))
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)
    let list = try node.junctionctl(["service", "list"])
    XCTAssertTrue(list.stdout.contains("[\(vip)]:80/TCP"), list.stdout)
    XCTAssertTrue(list.stdout.contains("[\(backendAddresses[0])]:8080/TCP"), list.stdout)
    let lb = try node.junctionctl(["bpf", "lb", "list"])
    XCTAssertTrue(lb.stdout.contains(vip), lb.stdout)
    XCTAssertTrue(lb.stdout.contains(backendAddresses[1]), lb.stdout)

    let result = try node.exec(in: client, ["python3", "-c", Self.client, vip, "12"], timeout: 120)
    XCTAssertEqual(result.status, 0, result.stderr)
    let lines = result.stdout.split(separator: "\n").map(String.init)
    XCTAssertEqual(lines.count, 24, result.stdout)
    var answered: Set<String> = []
    for line in lines {
      // "b0 fd00:64::5 | fd00:96:64::a 80": the backend saw the client's own address, the
      // client saw the VIP:80 (reverse NAT on its veth).
      let parts = line.split(separator: " ").map(String.init)
      XCTAssertEqual(parts.count, 5, line)
      guard parts.count == 5 else { continue }
      XCTAssertTrue(["b0", "b1"].contains(parts[0]), line)
      answered.insert(parts[0])
      XCTAssertEqual(parts[1], clientAddress, line)
      XCTAssertEqual(Array(parts[3...]), [vip, "80"], line)
    }
    XCTAssertEqual(answered, ["b0", "b1"], "24 random choices over 2 backends reach both")

    // The connections are IPv6 flows (bpf/lib/events6.h): each SYN from the client with the
    // ClusterIP it dialled, found by an IPv6 CIDR (the agent reads the ring every 20 ms).
    var flows: [String] = []
    for _ in 0..<50 {
      let observed = try node.junctionctl([
        "observe", "--from-ip", "fd00:64::/64", "--to-service", "default/six", "--last", "200",
      ])
      XCTAssertEqual(observed.status, 0, observed.stderr)
      flows = observed.stdout.split(separator: "\n").map(String.init)
      if flows.filter({ $0.hasSuffix("FORWARDED (TCP Flags: SYN)") }).count >= 12 { break }
      usleep(100_000)
    }
    let syns = flows.filter { $0.hasSuffix(" from-endpoint FORWARDED (TCP Flags: SYN)") }
    XCTAssertEqual(syns.count, 12, flows.joined(separator: "\n"))
    XCTAssertTrue(
      syns.allSatisfy {
        $0.contains(" [\(clientAddress)]:") && $0.contains("(service default/six [\(vip)]:80)")
      }, syns.joined(separator: "\n"))
    XCTAssertTrue(
      flows.contains { $0.hasSuffix(" from-endpoint FORWARDED (UDP)") },
      "a new UDP service connection: \(flows.joined(separator: "\n"))")
  }
}
