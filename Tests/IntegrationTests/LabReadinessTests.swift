import Foundation
import XCTest

/// The lab following its stand-in API server: pods in a namespace other than `default` back
/// a Service of that namespace; a pod marked not ready leaves the ClusterIP's answers and
/// comes back when ready again; a terminating pod takes no new connections while a ready one
/// is left; the EndpointSlice conditions each agent holds follow.
final class LabReadinessTests: XCTestCase {
  func testAPodInAnotherNamespaceLeavesTheClusterIPWhenNotReadyOrTerminatingAndComesBack()
    throws
  {
    try LabHarness.requirePrerequisites()
    let lab = try LabHarness(scratch: "web")
    defer { lab.tearDown() }
    try lab.must(["up", "--nodes", "2"])
    for (pod, node) in [("web1", "node1"), ("web2", "node2")] {
      try lab.must(["pod", "add", pod, "--node", node, "--namespace", "shop", "--label", "app=web"])
      try lab.serveWeb(pod)
    }
    try lab.must(["pod", "add", "client1", "--node", "node1"])
    try lab.apply(
      """
      apiVersion: v1
      kind: Service
      metadata: {name: web, namespace: shop}
      spec:
        clusterIP: 10.96.0.40
        selector: {app: web}
        ports:
        - {name: http, port: 80, protocol: TCP, targetPort: 80}
      """, as: "web.yaml")
    func answers(count: Int = 20) throws -> Set<String> {
      try lab.answers("client1", "http://10.96.0.40/", count: count)
    }
    /// The web Service's backends as node's agent holds them: pod IP → state.
    func backends(_ node: String) throws -> [String: String] {
      let list = try lab.must(["ctl", node, "service", "list", "-o", "json"])
      let services = try XCTUnwrap(
        (try? JSONSerialization.jsonObject(with: Data(list.utf8))) as? [[String: Any]], list)
      let web = services.first { ($0["frontend"] as? String)?.hasPrefix("10.96.0.40:80") == true }
      var states: [String: String] = [:]
      for backend in web?["backends"] as? [[String: Any]] ?? [] {
        let address = (backend["address"] as? String ?? "").split(separator: ":").first
        states[address.map(String.init) ?? ""] = backend["state"] as? String ?? "?"
      }
      return states
    }
    let ip1 = try String(contentsOfFile: "\(lab.state)/pods/web1/ip", encoding: .utf8)
      .trimmingCharacters(in: .whitespacesAndNewlines)
    let ip2 = try String(contentsOfFile: "\(lab.state)/pods/web2/ip", encoding: .utf8)
      .trimmingCharacters(in: .whitespacesAndNewlines)

    XCTAssertEqual(try answers(count: 30), ["web1", "web2"], "both pods of namespace shop")

    try lab.must(["pod", "state", "web1", "not-ready"])
    for node in ["node1", "node2"] {
      XCTAssertEqual(try backends(node)[ip1], "excluded", "\(node): web1 not ready")
    }
    XCTAssertEqual(try answers(), ["web2"], "a not-ready pod gets no connection")

    try lab.must(["pod", "state", "web1", "ready"])
    try lab.must(["pod", "state", "web2", "terminating"])
    XCTAssertEqual(try backends("node1"), [ip1: "active", ip2: "terminating"])
    XCTAssertEqual(try answers(), ["web1"], "a terminating pod gets no new connection")

    try lab.must(["pod", "state", "web2", "ready"])
    XCTAssertEqual(try backends("node2"), [ip1: "active", ip2: "active"])
    XCTAssertEqual(try answers(count: 30), ["web1", "web2"], "both back")

    // The Pods are in the API server as v1 Pods of namespace shop on their nodes.
    let status = try lab.must(["status"])
    XCTAssertTrue(status.contains("API server (stand-in): https://172.30.0.1:6443, up"), status)
    XCTAssertTrue(
      status.split(separator: "\n").contains { $0.hasPrefix("web2") && $0.contains("shop") },
      status)
    try lab.must(["down"])
  }
}
