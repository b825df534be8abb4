import Foundation
import XCTest

/// Socket LB in the lab (issue 6, part 3): every lab agent runs with `--socket-lb` on a
/// cgroup root under the lab's state dir, all of them attached to the machine's one cgroup
/// hierarchy; from each node's own namespace the droids ClusterIP answers, whether the
/// backend is on that node or another, and so does a NodePort on loopback.
final class LabSocketLBTests: XCTestCase {
  private func lab(_ name: String, _ arguments: [String]) throws -> CommandOutput {
    try Shell.run(["bash", LabTests.script, "--name", name] + arguments, timeout: 120)
  }

  @discardableResult
  private func labMust(
    _ name: String, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line
  ) throws -> String {
    let result = try lab(name, arguments)
    XCTAssertEqual(
      result.status, 0, "lab \(arguments.joined(separator: " ")): \(result.stdout)\(result.stderr)",
      file: file, line: line)
    return result.stdout
  }

  func testNodeNamespacesReachClusterIPAndNodePortThroughTheSocketPrograms() throws {
    try TestNode.requirePrerequisites()
    try TestAgent.requirePrerequisites()
    let name = LabTests.uniqueLabName()
    let web = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-web")
    try FileManager.default.createDirectory(at: web, withIntermediateDirectories: true)
    defer {
      _ = try? lab(name, ["down"])
      try? FileManager.default.removeItem(at: web)
    }
    try labMust(name, ["up", "--nodes", "2"])
    try labMust(name, ["pod", "add", "jedi2", "--node", "node2", "--label", "role=jedi"])
    try "jedi2\n".write(
      to: web.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
    try labMust(
      name,
      ["exec", "--detach", "jedi2", "--", "busybox", "httpd", "-f", "-p", "80", "-h", web.path])
    let manifest = web.appendingPathComponent("droids.yaml")
    try """
    apiVersion: v1
    kind: Service
    metadata: {name: droids, namespace: default}
    spec:
      clusterIP: 10.96.0.10
      selector: {role: jedi}
      ports:
      - {name: http, port: 80, protocol: TCP, targetPort: 80}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: droids-np, namespace: default}
    spec:
      type: NodePort
      clusterIP: 10.96.0.11
      selector: {role: jedi}
      ports:
      - {name: http, port: 80, protocol: TCP, targetPort: 80, nodePort: 30080}
    """.write(to: manifest, atomically: true, encoding: .utf8)
    try labMust(name, ["apply", "-f", manifest.path])

    // node1 (backend elsewhere) and node2 (backend local), from the node's own namespace,
    // with curl's view of the peer: the ClusterIP, or the NodePort on loopback. A few tries:
    // httpd was just started.
    for (node, url, peer) in [
      ("node1", "http://10.96.0.10/", "10.96.0.10"), ("node2", "http://10.96.0.10/", "10.96.0.10"),
      ("node1", "http://127.0.0.1:30080/", "127.0.0.1"),
    ] {
      var answer = CommandOutput(status: -1, stdout: "", stderr: "")
      for _ in 0..<10 {
        answer = try lab(
          name,
          [
            "exec-node", node, "--", "curl", "-s", "-m", "3", "-w", " %{remote_ip}", url,
          ])
        if answer.status == 0 { break }
        usleep(300_000)
      }
      XCTAssertEqual(
        answer.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "jedi2\n \(peer)",
        "\(node) \(url): \(answer.stderr)")
    }

    // down leaves no cgroup root behind (the agents remove what they made).
    let cgroupRoots = (1...2).map { "\(LabTests.root)/\(name)/nodes/node\($0)/cgroup" }
    for root in cgroupRoots {
      XCTAssertTrue(FileManager.default.fileExists(atPath: root), "\(root) while the lab is up")
    }
    try labMust(name, ["down"])
    for root in cgroupRoots {
      XCTAssertFalse(FileManager.default.fileExists(atPath: root), root)
      XCTAssertEqual(TestAgent.mounts(under: root), [])
    }
  }
}
