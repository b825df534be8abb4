import Foundation
import XCTest

/// ICMP errors about a Service connection reach the client's socket, end to end over real
/// veths (bpf/lib/icmp_error.h, icmp_error6.h on to_endpoint). Dual-stack pods wired by the
/// plugin in native mode; a UDP Service whose only backend has no socket on the target port.
/// The backend's kernel answers the DNATed datagram with a port unreachable quoting
/// client -> backend:8080; translated back, it matches the client's socket connected to
/// VIP:80, whose recv fails with ECONNREFUSED at once. Untranslated, the kernel finds no
/// socket for the quote and recv times out.
final class ICMPErrorServiceTests: XCTestCase {
  private var node: TestNode?

  override func tearDown() {
    node?.tearDown()
    node = nil
    super.tearDown()
  }

  /// A UDP socket connected to [vip]:80 sends up to 3 times; one line per try: "refused
  /// <errno>", "answer", or "timeout".
  private static let client = """
    import socket, sys
    vip = sys.argv[1]
    s = socket.socket(socket.AF_INET6 if ":" in vip else socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.connect((vip, 80))
    for _ in range(3):
        try:
            s.send(b"anyone?"); s.recv(2048); print("answer"); break
        except ConnectionRefusedError as e: print("refused", e.errno); break
        except socket.timeout: print("timeout")
    """

  /// A dual-stack node (one host-local range per family) with a client and a backend pod:
  /// the backend's address of the family of `vip`. No process listens in the backend.
  private func setUp(family6: Bool) throws -> (node: TestNode, client: String, backend: String) {
    let ipam: [String: Any] = [
      "ranges": [[["subnet": "10.240.77.0/24"]], [["subnet": "fd00:10:240:77::/64"]]]
    ]
    let node = try TestNode(podSubnet: "10.240.77.0/24", ipam: ipam)
    self.node = node
    let client = try node.makePodNamespace()
    try node.addPod(client)
    let backend = try node.makePodNamespace()
    let result = try node.driver("add", pod: backend)
    XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
    let addresses = (result.json?["ips"] as? [[String: Any]] ?? []).compactMap {
      ($0["address"] as? String)?.split(separator: "/").first.map(String.init)
    }
    let address = try XCTUnwrap(
      addresses.first { $0.contains(":") == family6 }, "no address of the family: \(addresses)")
    let ping = try node.exec(
      in: client, ["ping", family6 ? "-6" : "-4", "-c", "1", "-W", "2", address])
    XCTAssertEqual(ping.status, 0, "no route from the client to the backend \(address)")
    return (node, client, address)
  }

  private func manifest(vip: String, backend: String, family6: Bool) -> String {
    """
    apiVersion: v1
    kind: Service
    metadata: {name: silent, namespace: default}
    spec:
      type: ClusterIP
      clusterIP: \(vip)
      clusterIPs: [\(vip)]
      ipFamilies: [\(family6 ? "IPv6" : "IPv4")]
      ipFamilyPolicy: SingleStack
      ports:
      - {name: udp, port: 80, protocol: UDP, targetPort: 8080}
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: silent-1
      namespace: default
      labels: {kubernetes.io/service-name: silent}
    addressType: \(family6 ? "IPv6" : "IPv4")
    ports:
    - {name: udp, port: 8080, protocol: UDP}
    endpoints:
    - addresses: ["\(backend)"]
      conditions: {ready: true}
    """
  }

  private func assertConnectedUDPToTheVIPIsRefused(vip: String, family6: Bool) throws {
    let (node, client, backend) = try setUp(family6: family6)
    let applied = try node.junctionctl(
      ["apply", "-f", "-"], stdin: manifest(vip: vip, backend: backend, family6: family6))
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)
    let lb = try node.junctionctl(["bpf", "lb", "list"])
    XCTAssertTrue(lb.stdout.contains(backend), lb.stdout)

    let result = try node.exec(in: client, ["python3", "-c", Self.client, vip], timeout: 60)
    XCTAssertEqual(result.status, 0, result.stderr)
    let lines = result.stdout.split(separator: "\n").map(String.init)
    // ECONNREFUSED (111), from the port unreachable the backend's kernel sent.
    XCTAssertEqual(lines.last, "refused \(ECONNREFUSED)", result.stdout)
  }

  func testAConnectedUDPSocketToAnIPv4VIPWithoutAListenerGetsConnectionRefused() throws {
    try assertConnectedUDPToTheVIPIsRefused(vip: "10.96.77.10", family6: false)
  }

  func testAConnectedUDPSocketToAnIPv6VIPWithoutAListenerGetsConnectionRefused() throws {
    try assertConnectedUDPToTheVIPIsRefused(vip: "fd00:96:77::a", family6: true)
  }
}
