import Foundation
import XCTest

/// The agent with `--envoy`: `junctionctl apply` of the seed's CiliumEnvoyConfig (with its
/// Services and EndpointSlices) reaches the agent's Envoy, whose clusters follow the Services'
/// backends; `junctionctl envoy list` shows it accepted, a bad version refused with Envoy's
/// message while the accepted one keeps serving; delete removes it. (The redirect of the
/// Services' frontends is the datapath half's, branch envoy-dp; here the listener is hit
/// directly.)
final class EnvoyAgentTests: XCTestCase {
  func ctl(_ agent: TestAgent, _ arguments: [String], stdin: String = "") throws -> CommandOutput {
    try Shell.run(
      [Artifacts.junctionctl, "--socket", agent.socketPath] + arguments, stdin: stdin)
  }

  func testAgentServesTheSeedConfigListsItAndRefusesABadVersion() throws {
    try EnvoyL7Tests.requireEnvoy()
    let agent = try TestAgent(arguments: ["--envoy", EnvoyL7Tests.envoyPath])
    defer { agent.tearDown() }
    // A backend answering "echo <path>".
    let port = UInt16(32600 + Int(getpid() % 160))
    let backend = Process()
    backend.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    backend.arguments = [
      "-c",
      """
      import http.server, sys
      class H(http.server.BaseHTTPRequestHandler):
          def do_GET(self):
              body = ("echo %s\\n" % self.path).encode()
              self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
              self.wfile.write(body)
          def log_message(self, *a): pass
      http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
      """, String(port),
    ]
    try backend.run()
    defer {
      backend.terminate()
      backend.waitUntilExit()
    }

    var applied = try ctl(
      agent, ["apply", "-f", "-"],
      stdin: SeedEnvoyManifests.echoServices(backendPort: port, subnet: 200)
        + SeedEnvoyManifests.envoyConfig)
    XCTAssertEqual(applied.status, 0, applied.stderr + agent.log)
    var listener: Int?
    var list: [String: Any] = [:]
    let deadline = Date().addingTimeInterval(20)
    while Date() < deadline {
      list = try ctl(agent, ["envoy", "list", "-o", "json"]).json ?? [:]
      let configs = list["configs"] as? [[String: Any]] ?? []
      if let config = configs.first, config["accepted"] as? Bool == true {
        listener = (config["listeners"] as? [String: Int])?.values.first
        break
      }
      usleep(100_000)
    }
    let listenerPort = try XCTUnwrap(listener, "\(list)\n\(agent.log)")
    XCTAssertNotNil(list["pid"] as? Int, "\(list)")
    let services = ((list["configs"] as? [[String: Any]])?.first?["services"] as? [String]) ?? []
    XCTAssertEqual(services.count, 2, "\(services)")

    func get(_ path: String) -> String? {
      let result = try? Shell.run(
        ["curl", "-s", "--max-time", "3", "http://127.0.0.1:\(listenerPort)\(path)"])
      return result?.status == 0 ? result?.stdout : nil
    }
    var body: String?
    let served = Date().addingTimeInterval(20)
    while Date() < served, body == nil || body?.hasPrefix("echo") != true {
      body = get("/foo/x")
      usleep(100_000)
    }
    // Both clusters got the Services' backend from the agent (EDS); /foo.* is rewritten to /.
    XCTAssertEqual(body, "echo /\n", agent.log)

    // The access log became L7 flows.
    var observed = ""
    let flowsBy = Date().addingTimeInterval(10)
    while Date() < flowsBy, !observed.contains("http-response") {
      observed = try ctl(agent, ["observe", "--type", "l7"]).stdout
      usleep(200_000)
    }
    XCTAssertTrue(
      observed.contains(
        "http-request FORWARDED (HTTP/1.1 GET http://127.0.0.1:\(listenerPort)/foo/x)"), observed)
    XCTAssertTrue(observed.contains("http-response FORWARDED (HTTP/1.1 200 "), observed)

    // A version Envoy refuses: listed with Envoy's message, the accepted one keeps serving.
    let bad = SeedEnvoyManifests.envoyConfig.replacingOccurrences(
      of: "lb_policy: ROUND_ROBIN", with: "lb_policy: NO_SUCH_POLICY")
    applied = try ctl(agent, ["apply", "-f", "-"], stdin: bad)
    XCTAssertEqual(applied.status, 0, applied.stderr)
    var refused: [String: Any]?
    let refusedBy = Date().addingTimeInterval(20)
    while Date() < refusedBy, refused == nil {
      let configs =
        try ctl(agent, ["envoy", "list", "-o", "json"]).json?["configs"] as? [[String: Any]]
      refused = configs?.first { $0["accepted"] as? Bool == false }
      usleep(100_000)
    }
    let message = try XCTUnwrap(refused?["message"] as? String, agent.log)
    XCTAssertTrue(message.contains("NO_SUCH_POLICY"), message)
    XCTAssertEqual(refused?["serving"] as? Bool, true)
    XCTAssertEqual(get("/"), "echo /\n")
    let table = try ctl(agent, ["envoy", "list"])
    XCTAssertTrue(table.stdout.contains("refused (previous serving)"), table.stdout)
    XCTAssertTrue(table.stdout.contains("envoy: "), table.stdout)

    // Deleting the config: nothing listed, the listener closes.
    XCTAssertEqual(
      try ctl(agent, ["delete", "-f", "-"], stdin: SeedEnvoyManifests.envoyConfig).status, 0)
    let closed = Date().addingTimeInterval(20)
    while Date() < closed, get("/") != nil { usleep(100_000) }
    XCTAssertNil(get("/"))
    XCTAssertEqual(
      (try ctl(agent, ["envoy", "list", "-o", "json"]).json?["configs"] as? [Any])?.count, 0)
  }
}
