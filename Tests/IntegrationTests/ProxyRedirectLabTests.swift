import Foundation
import XCTest

/// The L7 proxy redirect north-south and for node processes, on `install/lab`: one node
/// whose agent redirects default/echo (`--agent-arg --proxy-redirect=default/echo=15001`),
/// the stand-in proxy of `ProxyRedirectDatapathTests` in the node's namespace, the echo
/// backend pod on the node. The external client (LAB-client) reaches the proxy through the
/// NodePort and the LoadBalancer IP and is seen with its own address; a process in the
/// node's namespace (socket LB) reaches it on 127.0.0.1 while getpeername shows the Service.
final class ProxyRedirectLabTests: XCTestCase {
  private static let node1 = "172.30.0.11"
  private static let client = "172.30.0.100"
  private static let loadBalancerIP = "192.0.2.30"
  private static let clusterIP = "10.96.60.10"

  private static let manifest = """
    apiVersion: v1
    kind: Service
    metadata: {name: echo, namespace: default}
    spec:
      type: LoadBalancer
      clusterIP: \(clusterIP)
      selector: {app: echo}
      ports:
      - {port: 80, targetPort: 8080, nodePort: 30090, protocol: TCP}
    status:
      loadBalancer:
        ingress: [{ip: \(loadBalancerIP)}]
    """

  private static let backend = """
    import socket
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 8080)); s.listen(64)
    while True:
        c, _ = s.accept(); c.sendall(b"backend\\n"); c.close()
    """

  func testExternalClientAndNodeProcessesReachTheProxy() throws {
    try LabHarness.requirePrerequisites(tools: ["python3"])
    let lab = try LabHarness(scratch: "l7")
    defer { lab.tearDown() }
    let proxy = try lab.write(ProxyRedirectDatapathTests.standinProxy, to: "proxy.py")
    let client = try lab.write(ProxyRedirectDatapathTests.client, to: "client.py")
    let backend = try lab.write(Self.backend, to: "backend.py")
    try lab.must([
      "up", "--nodes", "1", "--agent-arg", "--proxy-redirect=default/echo=15001",
    ])
    let agentPIDs = try lab.agentPIDs(nodes: 1)
    try lab.must(["pod", "add", "echo1", "--node", "node1", "--label", "app=echo"])
    try lab.must(["exec", "--detach", "echo1", "--", "python3", backend])
    try lab.apply(Self.manifest, as: "echo.yaml")
    try lab.must(["exec-node", "--detach", "node1", "--", "python3", proxy, "15001"])
    try lab.must([
      "exec-client", "--", "ip", "route", "add", Self.loadBalancerIP + "/32", "via", Self.node1,
    ])

    // A few tries while the proxy and the backend start (the client prints what failed).
    func ask(_ place: [String], _ host: String, _ port: Int) throws -> [String] {
      var fields: [String] = []
      for _ in 0..<10 {
        let answer = try lab.run(place + ["--", "python3", client, host, "\(port)", "0"])
        let line = answer.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        fields = line.split(separator: "|").map(String.init)
        if fields.first?.hasPrefix("proxy ") == true { break }
        usleep(300_000)
      }
      return fields
    }
    // NodePort and LoadBalancer from outside: the proxy sees the client, and the Service
    // address it dialled as its local address; the client hears back from that address.
    for (host, port) in [(Self.node1, 30090), (Self.loadBalancerIP, 80)] {
      let fields = try ask(["exec-client"], host, port)
      XCTAssertEqual(fields.count, 3, "\(host):\(port): \(fields)")
      guard fields.count == 3 else { continue }
      XCTAssertTrue(fields[0].hasPrefix("proxy \(Self.client):"), "\(fields)")
      XCTAssertTrue(fields[0].hasSuffix(" \(host):\(port)"), "\(fields)")
      XCTAssertEqual(fields[1], "\(host):\(port)")
    }
    // A node process through socket LB: sent to 127.0.0.1:15001, getpeername the Service.
    let fields = try ask(["exec-node", "node1"], Self.clusterIP, 80)
    XCTAssertEqual(fields.count, 3, "\(fields)")
    if fields.count == 3 {
      XCTAssertTrue(fields[0].hasPrefix("proxy 127.0.0.1:"), "\(fields)")
      XCTAssertTrue(fields[0].hasSuffix(" 127.0.0.1:15001"), "\(fields)")
      XCTAssertEqual(fields[1], "\(Self.clusterIP):80", "getpeername shows the Service")
    }
    let flows = try lab.must(["ctl", "node1", "observe", "--last", "200"])
    XCTAssertTrue(
      flows.split(separator: "\n").contains { $0.contains("to-proxy") && $0.contains(Self.client) },
      flows)

    try lab.must(["down"])
    lab.assertNoTrace(agentPIDs: agentPIDs)
  }
}
