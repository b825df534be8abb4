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
  private let processes = PodProcesses()

  override func tearDown() {
    processes.stopAll()
    node?.tearDown()
    node = nil
    super.tearDown()
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
    try node.addIPv6(clientAddress, to: client)
    var backends: [String] = []
    for (index, address) in backendAddresses.enumerated() {
      let pod = try node.makePodNamespace()
      try node.addPod(pod)
      try node.addIPv6(address, to: pod)
      try processes.spawn(in: pod, EchoScripts.server(ipv6: true), ["b\(index)"])
      backends.append(pod)
    }
    for pod in backends {
      let listening = try node.servesPort8080(in: pod, ipv6: true)
      XCTAssertTrue(listening, "the server in \(pod) did not start")
    }
    // Plain routing first: the client reaches a backend directly (ND through the programs).
    XCTAssertTrue(try node.ping(from: client, backendAddresses[0]), "no IPv6 route to a backend")

    let applied = try node.junctionctl(
      ["apply", "-f", "-"],
      stdin: ServiceManifest.ipv6TCPAndUDP(name: "six", vip: vip, backends: backendAddresses))
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)
    let list = try node.junctionctl(["service", "list"])
    XCTAssertTrue(list.stdout.contains("[\(vip)]:80/TCP"), list.stdout)
    XCTAssertTrue(list.stdout.contains("[\(backendAddresses[0])]:8080/TCP"), list.stdout)
    let lb = try node.junctionctl(["bpf", "lb", "list"])
    XCTAssertTrue(lb.stdout.contains(vip), lb.stdout)
    XCTAssertTrue(lb.stdout.contains(backendAddresses[1]), lb.stdout)

    let result = try node.exec(
      in: client, ["python3", "-c", EchoScripts.client, vip, "12"], timeout: 120)
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
