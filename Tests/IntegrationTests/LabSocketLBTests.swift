import Foundation
import XCTest

/// Socket LB in the lab (issue 6, part 3): every lab agent runs with `--socket-lb` on a
/// cgroup root under the lab's state dir, all of them attached to the machine's one cgroup
/// hierarchy; from each node's own namespace the droids ClusterIP answers, whether the
/// backend is on that node or another, and so does a NodePort on loopback.
final class LabSocketLBTests: XCTestCase {
  func testNodeNamespacesReachClusterIPAndNodePortThroughTheSocketPrograms() throws {
    try LabHarness.requirePrerequisites()
    let lab = try LabHarness(scratch: "web")
    defer { lab.tearDown() }
    try lab.must(["up", "--nodes", "2"])
    try lab.webPod("jedi2", node: "node2", labels: ["role=jedi"])
    let nodePortDroids = """
      apiVersion: v1
      kind: Service
      metadata: {name: droids-np, namespace: default}
      spec:
        type: NodePort
        clusterIP: 10.96.0.11
        selector: {role: jedi}
        ports:
        - {name: http, port: 80, protocol: TCP, targetPort: 80, nodePort: 30080}
      """
    try lab.apply(LabHarness.droids() + "\n---\n" + nodePortDroids, as: "droids.yaml")

    // node1 (backend elsewhere) and node2 (backend local), from the node's own namespace,
    // with curl's view of the peer: the ClusterIP, or the NodePort on loopback. A few tries:
    // httpd was just started.
    for (node, url, peer) in [
      ("node1", "http://10.96.0.10/", "10.96.0.10"), ("node2", "http://10.96.0.10/", "10.96.0.10"),
      ("node1", "http://127.0.0.1:30080/", "127.0.0.1"),
    ] {
      let answer = try lab.retried([
        "exec-node", node, "--", "curl", "-s", "-m", "3", "-w", " %{remote_ip}", url,
      ])
      XCTAssertEqual(
        answer.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "jedi2\n \(peer)",
        "\(node) \(url): \(answer.stderr)")
    }

    // down leaves no cgroup root behind (the agents remove what they made).
    let cgroupRoots = (1...2).map { "\(lab.state)/nodes/node\($0)/cgroup" }
    for root in cgroupRoots {
      XCTAssertTrue(FileManager.default.fileExists(atPath: root), "\(root) while the lab is up")
    }
    try lab.must(["down"])
    for root in cgroupRoots {
      XCTAssertFalse(FileManager.default.fileExists(atPath: root), root)
      XCTAssertEqual(TestAgent.mounts(under: root), [])
    }
  }
}
