import Foundation
import XCTest

/// The seed's Ingress end to end on `install/lab`, whose agents follow the lab's stand-in API
/// server: two nodes whose agents run Envoy (`--agent-arg --envoy=...`), the foo-app and
/// bar-app pods and Services of the seed, and its Ingress (class cilium). The agent creates
/// `junction-ingress-cilium-ingress` (LoadBalancer, owned by the Ingress) in the API; the
/// test, acting as the LB provider, writes an address into that Service's status; the agent
/// copies it into the Ingress's status, and the external client reaches the Ingress through
/// it: /foo → foo, /bar → bar, `Server: envoy`. Both agents write; once the address is in, the
/// Ingress is not rewritten (no churn). Deleting the Ingress deletes the Service
/// (the stand-in's garbage collector, by the owner reference).
final class EnvoyIngressLabTests: XCTestCase {
  private static let node1 = "172.30.0.11"
  private static let loadBalancerIP = "192.0.2.31"

  private static let services = """
    apiVersion: v1
    kind: Service
    metadata: {name: foo-app, namespace: default, labels: {run: foo-app}}
    spec:
      clusterIP: 10.96.61.10
      selector: {run: foo-app}
      ports: [{port: 5678, targetPort: 5678, protocol: TCP}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: bar-app, namespace: default, labels: {run: bar-app}}
    spec:
      clusterIP: 10.96.61.20
      selector: {run: bar-app}
      ports: [{port: 5678, targetPort: 5678, protocol: TCP}]
    """

  /// hashicorp/http-echo's behaviour: answers its -text on 5678.
  private static let echo = """
    import http.server, sys
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = (sys.argv[1] + "\\n").encode()
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a): pass
    http.server.ThreadingHTTPServer(("0.0.0.0", 5678), H).serve_forever()
    """

  func testSeedIngressGetsItsServiceAndAddressThroughTheAPIAndAnswersTheExternalClient() throws {
    try LabHarness.requirePrerequisites(tools: ["python3", "curl"])
    try EnvoyL7Tests.requireEnvoy()
    let lab = try LabHarness(scratch: "ingress")
    defer { lab.tearDown() }
    let echo = try lab.write(Self.echo, to: "echo.py")
    // Two nodes: both agents write (create, status); they must converge without churn.
    try lab.must(["up", "--nodes", "2", "--agent-arg", "--envoy=\(EnvoyL7Tests.envoyPath)"])
    let agentPIDs = try lab.agentPIDs(nodes: 2)
    for name in ["foo", "bar"] {
      try lab.must(["pod", "add", "\(name)-app", "--node", "node1", "--label", "run=\(name)-app"])
      try lab.must(["exec", "--detach", "\(name)-app", "--", "python3", echo, name])
    }
    try lab.apply(Self.services, as: "services.yaml")
    try lab.apply(SeedEnvoyManifests.ingress, as: "ingress.yaml")
    let serviceName = "default/junction-ingress-cilium-ingress"

    /// The object from the lab's API server, once `condition` holds for it (20 s).
    func object(_ kind: String, _ name: String, until condition: ([String: Any]) -> Bool)
      throws -> [String: Any]
    {
      var last = ""
      for _ in 0..<100 {
        let answer = try lab.run(["get", kind, name])
        last = answer.stdout + answer.stderr
        if answer.status == 0,
          let object = try JSONSerialization.jsonObject(with: Data(answer.stdout.utf8))
            as? [String: Any], condition(object)
        {
          return object
        }
        usleep(200_000)
      }
      XCTFail("\(kind) \(name) not as expected in the API server: \(last)")
      throw LabCommandFailed(description: "\(kind) \(name)")
    }
    func loadBalancerIPs(_ object: [String: Any]) -> [String] {
      let status = object["status"] as? [String: Any]
      let entries = (status?["loadBalancer"] as? [String: Any])?["ingress"] as? [[String: Any]]
      return (entries ?? []).compactMap { $0["ip"] as? String }
    }
    let ingressObject = try object("Ingress", "default/cilium-ingress") { _ in true }
    let uid = (ingressObject["metadata"] as? [String: Any])?["uid"] as? String
    let service = try object("Service", serviceName) { _ in true }
    let spec = service["spec"] as? [String: Any]
    XCTAssertEqual(spec?["type"] as? String, "LoadBalancer")
    XCTAssertEqual((spec?["ports"] as? [[String: Any]])?.compactMap { $0["port"] as? Int }, [80])
    let owners = (service["metadata"] as? [String: Any])?["ownerReferences"] as? [[String: Any]]
    XCTAssertEqual(owners?.first?["kind"] as? String, "Ingress")
    XCTAssertEqual(owners?.first?["uid"] as? String, uid)
    XCTAssertEqual(loadBalancerIPs(ingressObject), [], "no address before the LB provider's")

    // The LB provider's part: the Service's status gets an address.
    try lab.must([
      "set-status", "Service", serviceName,
      #"{"loadBalancer":{"ingress":[{"ip":"\#(Self.loadBalancerIP)"}]}}"#,
    ])
    let withAddress = try object("Ingress", "default/cilium-ingress") {
      loadBalancerIPs($0) == [Self.loadBalancerIP]
    }
    // Both agents have seen the address; neither writes again (no churn between them).
    func resourceVersion(_ object: [String: Any]) -> String? {
      (object["metadata"] as? [String: Any])?["resourceVersion"] as? String
    }
    sleep(2)
    let settled = try object("Ingress", "default/cilium-ingress") { _ in true }
    XCTAssertEqual(
      resourceVersion(settled), resourceVersion(withAddress), "the Ingress is rewritten")
    try lab.must([
      "exec-client", "--", "ip", "route", "add", Self.loadBalancerIP + "/32", "via", Self.node1,
    ])

    func get(_ path: String) throws -> String {
      var output = ""
      for _ in 0..<40 {
        let answer = try lab.run([
          "exec-client", "--", "curl", "-s", "-i", "--max-time", "3",
          "http://\(Self.loadBalancerIP)\(path)",
        ])
        output = answer.stdout
        if output.lowercased().contains("server: envoy") && output.contains(" 200 ") { break }
        usleep(300_000)
      }
      return output
    }
    let foo = try get("/foo")
    XCTAssertTrue(foo.lowercased().contains("server: envoy"), foo)
    XCTAssertTrue(foo.hasSuffix("foo\n"), foo)
    let bar = try get("/bar")
    XCTAssertTrue(bar.hasSuffix("bar\n"), bar)
    let services = try lab.must(["ctl", "node1", "service", "list"])
    XCTAssertTrue(
      services.split(separator: "\n").contains {
        $0.contains("\(Self.loadBalancerIP):80/TCP") && $0.contains("L7 proxy")
      }, services)

    try lab.must(["delete", "-f", lab.write(SeedEnvoyManifests.ingress, to: "ingress.yaml")])
    XCTAssertNotEqual(try lab.run(["get", "Service", serviceName]).status, 0, "garbage-collected")

    try lab.must(["down"])
    lab.assertNoTrace(agentPIDs: agentPIDs)
  }
}
