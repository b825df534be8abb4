import Foundation
import XCTest

/// End to end through the datapath (issue 14 with branch envoy-dp): a node whose agent runs
/// Envoy (`--envoy`), the seed's CiliumEnvoyConfig applied with `junctionctl apply` (its
/// namespace set to the node's "default"), and a client pod dialling the Service's ClusterIP:
/// the frontend hands the connection to Envoy's listener, which splits it over the two
/// Services' backend pods, rewrites /foo.* to /, and answers with `server: envoy`. Deleting the
/// config gives the Service back to BPF balancing.
final class EnvoyDatapathTests: PodNodesTestCase {

  /// HTTP/1.1 on :8080 answering "<name> <path>".
  static let backendServer = """
    import http.server, sys
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            body = ("%s %s\\n" % (sys.argv[1], self.path)).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
    """

  func testPodToClusterIPGoesThroughEnvoyWithTheSeedsSplitAndRewrite() throws {
    try EnvoyL7Tests.requireEnvoy()
    let node = try TestNode(
      podSubnet: "10.240.141.0/24", agentArguments: ["--envoy", EnvoyL7Tests.envoyPath])
    nodes.append(node)
    var backends: [String: String] = [:]
    for name in ["same", "other"] {
      let pod = try node.makePodNamespace()
      backends[name] = try node.addPod(pod)
      try processes.spawn(in: pod, Self.backendServer, [name])
      try processes.waitForPort8080(node, in: pod, udp: false, name: name)
    }
    let clientPod = try node.makePodNamespace()
    _ = try node.addPod(clientPod)
    try node.apply(
      ServiceManifest.clusterIP(
        name: "echo-same-node", clusterIP: "10.96.141.10", backends: [backends["same"]!]))
    try node.apply(
      ServiceManifest.clusterIP(
        name: "echo-other-node", clusterIP: "10.96.141.20", backends: [backends["other"]!]))
    let config = SeedEnvoyManifests.envoyConfig.replacingOccurrences(
      of: "cilium-test", with: "default")
    try node.apply(config)

    func get(_ path: String) throws -> (headers: String, body: String)? {
      let result = try node.exec(
        in: clientPod,
        ["curl", "-s", "-D", "-", "--max-time", "5", "http://10.96.141.10\(path)"])
      guard result.status == 0 else { return nil }
      let parts = result.stdout.components(separatedBy: "\r\n\r\n")
      return (parts.first ?? "", parts.dropFirst().joined())
    }
    var first: (headers: String, body: String)?
    for _ in 0..<100 {
      first = try get("/")
      if first?.headers.lowercased().contains("server: envoy") == true { break }
      usleep(200_000)
    }
    let envoyList =
      try node.junctionctl(["envoy", "list"]).stdout
      + node.junctionctl(["service", "list"]).stdout
      + node.junctionctl(["bpf", "lb", "list"]).stdout
      + node.junctionctl(["observe", "--last", "30"]).stdout
    XCTAssertTrue(
      first?.headers.lowercased().contains("server: envoy") == true,
      "\(String(describing: first))\n\(envoyList)\n\(node.agent?.log.suffix(6000) ?? "")")
    guard first?.headers.lowercased().contains("server: envoy") == true else { return }
    let list = try node.junctionctl(["service", "list"]).stdout
    XCTAssertTrue(list.contains("L7 proxy"), list)
    // Envoy's listener is taken into the socket lookup's map (the redirect's TIME_WAIT-safe
    // hand-off, bpf/proxy_lookup.c) within a second or so of it listening.
    var mapped = false
    for _ in 0..<50 where !mapped {
      mapped = node.agent?.log.contains("proxy listener mapped") ?? false
      if !mapped { usleep(100_000) }
    }
    XCTAssertTrue(mapped, node.agent?.log.suffix(6000).description ?? "")

    var counts: [String: Int] = [:]
    for _ in 0..<60 {
      let body = try XCTUnwrap(try get("/foo/bar")).body
      XCTAssertTrue(body.hasSuffix(" /\n"), body)
      counts[String(body.split(separator: " ").first ?? ""), default: 0] += 1
    }
    // Split over both Services (60 requests at 50/50: each side at least 15, p < 1e-4 otherwise).
    XCTAssertGreaterThanOrEqual(counts["same"] ?? 0, 15, "\(counts)")
    XCTAssertGreaterThanOrEqual(counts["other"] ?? 0, 15, "\(counts)")

    // The redirected connection shows as to-proxy; Envoy's requests as L7 flows.
    var flows = ""
    for _ in 0..<25 {
      flows = try node.junctionctl(["observe", "--last", "500"]).stdout
      if flows.contains("to-proxy") && flows.contains("http-response") { break }
      usleep(200_000)
    }
    XCTAssertTrue(flows.contains("to-proxy"), flows)
    XCTAssertTrue(flows.contains("http-response FORWARDED (HTTP/1.1 200"), flows)

    // Deleted: the Service is balanced by BPF again (its own backend answers, no Envoy).
    let deleted = try node.junctionctl(["delete", "-f", "-"], stdin: config)
    XCTAssertEqual(deleted.status, 0, deleted.stderr)
    var after: (headers: String, body: String)?
    for _ in 0..<50 {
      after = try get("/foo")
      if after?.headers.lowercased().contains("server: envoy") == false { break }
      usleep(200_000)
    }
    XCTAssertEqual(after?.body, "same /foo\n")
    XCTAssertFalse(try node.junctionctl(["service", "list"]).stdout.contains("L7 proxy"))
  }
}
