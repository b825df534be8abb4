import Foundation
import XCTest

/// North-south flows end to end on `install/lab` in DSR mode: a NodePort Service whose only
/// backend pod (echo2, label app=echo) is on node2, asked over TCP from the external client
/// at node1's address. `junctionctl observe` on node1 shows the connection entering at its
/// from-netdev, sent on by DSR; on node2 the same connection arrives at from-netdev with the
/// option's frontend. The agents run at the default monitor level.
final class FlowNorthSouthTests: XCTestCase {
  private static let client = "172.30.0.100"
  private static let node1 = "172.30.0.11"
  private static let nodePort = 30080

  private static let manifest = """
    apiVersion: v1
    kind: Service
    metadata: {name: echo, namespace: default}
    spec:
      type: NodePort
      clusterIP: 10.96.51.10
      selector: {app: echo}
      ports:
      - {name: tcp, port: 80, targetPort: 8080, nodePort: \(nodePort), protocol: TCP}
    """
  /// Answers its name to every TCP connection on `port`.
  private static let server = """
    import socket, sys
    port, name = int(sys.argv[1]), sys.argv[2]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    while True:
        c, peer = s.accept()
        c.sendall((name + "\\n").encode())
        c.close()
    """
  private static let asker = """
    import socket, sys
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
    print(s.recv(200).decode().strip())
    """

  /// The flows (JSON objects) of `node` that `match` selects, once there is one (the
  /// consumer drains the ring every 20 ms), or none after 5 s.
  private func flows(
    _ lab: LabHarness, _ node: String, where match: ([String: Any]) -> Bool
  ) throws -> [[String: Any]] {
    let deadline = Date().addingTimeInterval(5)
    var last = ""
    repeat {
      let output = try lab.must(["ctl", node, "observe", "--last", "200", "-o", "json"])
      last = output
      let found = try output.split(separator: "\n").compactMap { line -> [String: Any]? in
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        return object?["flow"] as? [String: Any]
      }.filter(match)
      if !found.isEmpty { return found }
      usleep(200_000)
    } while Date() < deadline
    XCTFail("no matching flow on \(node) in:\n\(last)")
    return []
  }

  func testNodePortInDSRModeHasFromNetdevEventsOnTheIngressNodeAndOnTheBackendsNode() throws {
    try LabHarness.requirePrerequisites(tools: ["python3"])
    let lab = try LabHarness(scratch: "flowns")
    defer { lab.tearDown() }
    let server = try lab.write(Self.server, to: "server.py")
    let asker = try lab.write(Self.asker, to: "ask.py")
    let manifest = try lab.write(Self.manifest, to: "services.yaml")
    try lab.must(["up", "--nodes", "2", "--lb-mode", "dsr"])
    let agentPIDs = try lab.agentPIDs(nodes: 2)
    try lab.must(["pod", "add", "echo2", "--node", "node2", "--label", "app=echo"])
    try lab.must(["exec", "--detach", "echo2", "--", "python3", server, "8080", "echo2"])
    try lab.must(["apply", "-f", manifest])

    var answer: String?
    for _ in 0..<10 where answer == nil {
      let result = try lab.run(
        ["exec-client", "--", "python3", asker, Self.node1, "\(Self.nodePort)"])
      if result.status == 0 { answer = result.stdout } else { usleep(300_000) }
    }
    XCTAssertEqual(answer?.trimmingCharacters(in: .whitespacesAndNewlines), "echo2")

    let frontend = "\(Self.node1):\(Self.nodePort)"
    func isTheSYN(_ flow: [String: Any]) -> Bool {
      flow["tracePoint"] as? String == "from-netdev"
        && (flow["source"] as? [String: Any])?["ip"] as? String == Self.client
        && flow["tcpFlags"] as? [String] == ["SYN"]
    }
    // node1: the client's SYN to the frontend, translated to echo2 and sent on by DSR.
    let ingress = try flows(lab, "node1", where: isTheSYN)
    if let flow = ingress.first {
      XCTAssertEqual(flow["northSouth"] as? String, "dsr", "\(flow)")
      XCTAssertEqual(flow["original"] as? String, frontend)
      XCTAssertEqual(flow["newConnection"] as? Bool, true)
      XCTAssertEqual(flow["verdict"] as? String, "FORWARDED")
      XCTAssertEqual(flow["isReply"] as? Bool, false)
      XCTAssertEqual(
        (flow["destinationService"] as? [String: Any])?["name"] as? String, "echo", "\(flow)")
      // echo2 lives on node2: node1 follows only its own node's Pods, so it names the
      // backend by address (the pod's, not the frontend's).
      let destination = flow["destination"] as? [String: Any]
      XCTAssertEqual(destination?["port"] as? Int, 8080)
      XCTAssertTrue((destination?["ip"] as? String)?.hasPrefix("10.240.2.") == true, "\(flow)")
      XCTAssertNil(flow["snat"], "DSR keeps the client's address")
    }
    // node2: the same SYN as it arrived with the option, the frontend it names.
    let backendSide = try flows(lab, "node2", where: isTheSYN)
    if let flow = backendSide.first {
      XCTAssertEqual(flow["northSouth"] as? String, "dsr", "\(flow)")
      XCTAssertEqual(flow["original"] as? String, frontend, "\(flow)")
      XCTAssertEqual(flow["newConnection"] as? Bool, true)
      // node2 follows echo2's Pod: its name and labels.
      let destination = flow["destination"] as? [String: Any]
      XCTAssertEqual(destination?["podName"] as? String, "echo2", "\(flow)")
      XCTAssertTrue(
        (destination?["labels"] as? [String])?.contains("app=echo") == true, "\(flow)")
    }
    // The compact line says it too.
    let compact = try lab.must([
      "ctl", "node1", "observe", "--last", "200", "--from-ip", Self.client,
    ])
    XCTAssertTrue(
      compact.split(separator: "\n").contains {
        $0.contains("from-netdev") && $0.contains("DSR)") && $0.contains("TCP Flags: SYN")
      }, compact)

    try lab.must(["down"])
    lab.assertNoTrace(agentPIDs: agentPIDs)
  }

  private static let droidsPolicy = ServiceManifest.droidsRedirectPolicy()

  /// A Local Redirect Policy sends the droids Service to the node's droid: the flow says it
  /// was a local redirect, and both pods carry their labels.
  func testALocalRedirectPolicysConnectionSaysItWasRedirected() throws {
    try LabHarness.requirePrerequisites()
    let lab = try LabHarness(scratch: "flowlrp")
    defer { lab.tearDown() }
    try lab.must(["up", "--nodes", "1"])
    let agentPIDs = try lab.agentPIDs(nodes: 1)
    try lab.webPod("obi-wan", node: "node1", labels: ["role=jedi"])
    try lab.webPod("r2-d2", node: "node1", labels: ["role=droid"])
    try lab.must(["pod", "add", "trooper1", "--node", "node1", "--label", "role=soldier"])
    try lab.apply(LabHarness.droids(), as: "droids.yaml")
    try lab.apply(Self.droidsPolicy, as: "lrp.yaml")
    XCTAssertEqual(try lab.answers("trooper1", "http://10.96.0.10/"), ["r2-d2"])

    let redirected = try flows(lab, "node1") { flow in
      flow["localRedirect"] as? Bool == true
        && (flow["source"] as? [String: Any])?["podName"] as? String == "trooper1"
    }
    if let flow = redirected.first {
      // The lab's agents run --socket-lb, which covers pods: translated at connect().
      XCTAssertEqual(flow["tracePoint"] as? String, "sock", "\(flow)")
      XCTAssertEqual(flow["original"] as? String, "10.96.0.10:80")
      XCTAssertEqual(
        (flow["destinationService"] as? [String: Any])?["name"] as? String, "droids", "\(flow)")
      let destination = flow["destination"] as? [String: Any]
      XCTAssertEqual(destination?["podName"] as? String, "r2-d2", "\(flow)")
      XCTAssertTrue(
        (destination?["labels"] as? [String])?.contains("role=droid") == true, "\(flow)")
      let source = flow["source"] as? [String: Any]
      XCTAssertTrue((source?["labels"] as? [String])?.contains("role=soldier") == true, "\(flow)")
      XCTAssertNil(flow["northSouth"])
    }
    let compact = try lab.must([
      "ctl", "node1", "observe", "--last", "200", "--from-pod", "default/trooper1",
    ])
    XCTAssertTrue(compact.contains("local redirect)"), compact)
    // The pod's side of the same connection (to-endpoint) is no redirect of its own.
    let delivered = try flows(lab, "node1") { flow in
      (flow["destination"] as? [String: Any])?["podName"] as? String == "r2-d2"
        && flow["tracePoint"] as? String == "to-endpoint"
    }
    XCTAssertTrue(delivered.allSatisfy { $0["localRedirect"] == nil }, "\(delivered)")

    try lab.must(["down"])
    lab.assertNoTrace(agentPIDs: agentPIDs)
  }
}
