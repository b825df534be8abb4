import Foundation
import XCTest

/// Hairpin end to end: a pod that is the only backend of a ClusterIP connects to that
/// ClusterIP and gets its own answer, over TCP and UDP. Its requests reach it from the
/// service loopback address 169.254.42.1 (what the server sees as its peer) and its answers
/// come back from the VIP (what the client sees as its peer). Natively routed, and chained
/// after the reference bridge plugin.
final class HairpinTests: PodNodesTestCase {
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
    try processes.spawn(in: pod, EchoScripts.server(ipv6: false), ["me"])
    let listening = try node.servesPort8080(in: pod, ipv6: false)
    XCTAssertTrue(listening, "the server did not start")

    let ctl = Artifacts.junctionctl
    let applied = try Shell.run(
      [ctl, "--socket", node.agentSocket, "apply", "-f", "-"],
      stdin: manifest(clusterIP: clusterIP, backend: address))
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)

    for _ in 0..<2 {
      let result = try node.exec(
        in: pod, ["python3", "-c", EchoScripts.client, clusterIP], timeout: 30)
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
