import Foundation
import XCTest

/// Hairpin end to end: a pod that is the only backend of a ClusterIP connects to that
/// ClusterIP and gets its own answer, over TCP and UDP. Its requests reach it from the
/// service loopback address 169.254.42.1 (what the server sees as its peer) and its answers
/// come back from the VIP (what the client sees as its peer). Natively routed, and chained
/// after the reference bridge plugin.
final class HairpinTests: XCTestCase {
  private var nodes: [TestNode] = []
  private var servers: [Process] = []

  override func tearDown() {
    for server in servers where server.isRunning {
      server.terminate()
      server.waitUntilExit()
    }
    servers = []
    for node in nodes { node.tearDown() }
    nodes = []
    super.tearDown()
  }

  /// Answers every TCP connection and UDP datagram on 8080 with "name peer-address".
  private static let server = """
    import socket, sys, threading
    name = sys.argv[1]
    def tcp():
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 8080)); s.listen(16)
        while True:
            c, peer = s.accept(); c.sendall(f"{name} {peer[0]}\\n".encode()); c.close()
    threading.Thread(target=tcp, daemon=True).start()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 8080))
    while True:
        _, peer = u.recvfrom(2048); u.sendto(f"{name} {peer[0]}".encode(), peer)
    """

  /// From the pod: one TCP connection and one UDP exchange with address:80, each printed as
  /// "answer | peer-address peer-port" (or "timeout"/"error:...").
  private static let client = """
    import socket, sys
    vip = sys.argv[1]
    try:
        c = socket.create_connection((vip, 80), timeout=3)
        answer = c.makefile("rb").readline().decode().strip()
        print(answer, "|", *c.getpeername()); c.close()
    except socket.timeout: print("timeout")
    except OSError as e: print("error:" + str(e))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3)
    try:
        u.sendto(b"who", (vip, 80)); data, peer = u.recvfrom(2048)
        print(data.decode(), "|", *peer)
    except socket.timeout: print("timeout")
    except OSError as e: print("error:" + str(e))
    """

  private func manifest(clusterIP: String, backend: String) -> String {
    """
    apiVersion: v1
    kind: Service
    metadata: {name: myself, namespace: default}
    spec:
      type: ClusterIP
      clusterIP: \(clusterIP)
      ports:
      - {name: tcp, port: 80, protocol: TCP, targetPort: 8080}
      - {name: udp, port: 80, protocol: UDP, targetPort: 8080}
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: myself-abc
      namespace: default
      labels: {kubernetes.io/service-name: myself}
    addressType: IPv4
    ports:
    - {name: tcp, port: 8080, protocol: TCP}
    - {name: udp, port: 8080, protocol: UDP}
    endpoints:
    - addresses: ["\(backend)"]
      conditions: {ready: true}
    """
  }

  /// The scenario on `node`: a pod serving on 8080, the Service over it alone, the pod
  /// calling the Service twice (a new connection, then a new one again).
  private func assertAPodReachesItself(on node: TestNode, clusterIP: String) throws {
    nodes.append(node)
    let pod = try node.makePodNamespace()
    let address = try node.addPod(pod)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["ip", "netns", "exec", pod, "python3", "-c", Self.server, "me"]
    try process.run()
    servers.append(process)
    let listening = try node.servesPort8080(in: pod, ipv6: false)
    XCTAssertTrue(listening, "the server did not start")

    let ctl = Artifacts.junctionctl
    let applied = try Shell.run(
      [ctl, "--socket", node.agentSocket, "apply", "-f", "-"],
      stdin: manifest(clusterIP: clusterIP, backend: address))
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)

    for _ in 0..<2 {
      let result = try node.exec(in: pod, ["python3", "-c", Self.client, clusterIP], timeout: 30)
      XCTAssertEqual(result.status, 0, result.stderr)
      let lines = result.stdout.split(separator: "\n").map(String.init)
      // The server saw the loopback address; the client saw the VIP:80 it dialled.
      XCTAssertEqual(
        lines, ["me 169.254.42.1 | \(clusterIP) 80", "me 169.254.42.1 | \(clusterIP) 80"],
        "TCP then UDP")
    }
    XCTAssertEqual(try node.driver("del", pod: pod).status, 0)
  }

  func testAPodThatIsItsServicesOnlyBackendGetsItsOwnAnswerNatively() throws {
    try assertAPodReachesItself(
      on: try TestNode(podSubnet: "10.240.60.0/24"), clusterIP: "10.96.60.10")
  }

  func testAPodThatIsItsServicesOnlyBackendGetsItsOwnAnswerChainedAfterBridge() throws {
    let node = try TestNode(podSubnet: "10.240.61.0/24") { ipam in
      [
        "type": "bridge", "bridge": "jtbr0", "isGateway": true,
        "isDefaultGateway": true, "ipMasq": false, "ipam": ipam,
      ]
    }
    try assertAPodReachesItself(on: node, clusterIP: "10.96.61.10")
  }
}
