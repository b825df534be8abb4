import Foundation
import XCTest

/// /metrics end to end: an agent with --prometheus-serve-addr in a node namespace, drops
/// caused through the real datapath (connections to a Service without backends), and a real
/// Prometheus server (Debian's, a process of the test's own, in the same namespace) that
/// scrapes the agent and answers a PromQL query with the number of drops the test caused.
final class MetricsTests: XCTestCase {
  private var node: TestNode!
  private var traffic: PodTraffic!
  private var prometheus: Process?
  private var prometheusDirectory: URL?

  /// In the node's own namespace, so any port is free there.
  private let metricsAddress = "127.0.0.1:9962"
  private let prometheusAddress = "127.0.0.1:9090"

  override func setUpWithError() throws {
    node = try TestNode(
      podSubnet: "10.240.28.0/24", agentArguments: ["--prometheus-serve-addr", metricsAddress])
    traffic = PodTraffic(node: node)
  }

  override func tearDown() {
    if let prometheus, prometheus.isRunning {
      kill(prometheus.processIdentifier, SIGKILL)
      prometheus.waitUntilExit()
    }
    if let prometheusDirectory { try? FileManager.default.removeItem(at: prometheusDirectory) }
    traffic?.tearDown()
    node?.tearDown()
    super.tearDown()
  }

  private static func tool(_ name: String) throws -> String {
    for directory in ["/usr/bin", "/usr/local/bin"] {
      let path = "\(directory)/\(name)"
      if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw TestNode.missing("\(name) is missing (install/deps.sh test installs Debian's prometheus)")
  }

  /// curl inside the node's namespace.
  private func get(_ url: String, _ extra: [String] = []) throws -> CommandOutput {
    try node.exec(in: node.name, ["curl", "-sS", "--max-time", "10"] + extra + [url])
  }

  private func pod(_ namespace: String, _ name: String) throws -> String {
    try node.addNamedPod(namespace, name).netns
  }

  func testPrometheusScrapesTheDropsTheTestCausedAndPromtoolFindsNoProblem() throws {
    let prometheusBinary = try Self.tool("prometheus")
    let promtool = try Self.tool("promtool")

    // Three connections to a Service without backends: three SYNs dropped.
    let client = try pod("default", "client")
    let applied = try node.junctionctl(
      ["apply", "-f", "-"],
      stdin: ServiceManifest.clusterIP(name: "empty", clusterIP: "10.96.28.11", backends: []))
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)
    XCTAssertEqual(
      try traffic.connect(from: client, to: "10.96.28.11", port: 80, count: 3),
      ["refused", "refused", "refused"])
    let drops = try node.junctionctl(["bpf", "drops"])
    XCTAssertEqual(drops.status, 0, drops.stderr)

    // /metrics as the agent serves it: well-formed for promtool, the drops in it.
    let scraped = try get("http://\(metricsAddress)/metrics")
    XCTAssertEqual(scraped.status, 0, scraped.stderr)
    let expected =
      #"junction_drop_count_total{reason="Service backend not found",direction="from-endpoint"} 3"#
    XCTAssertTrue(
      scraped.stdout.contains(expected),
      "\(expected) in:\n\(scraped.stdout)\njunctionctl bpf drops:\n\(drops.stdout)")
    XCTAssertTrue(scraped.stdout.contains("junction_services 1.0"), scraped.stdout)
    XCTAssertTrue(scraped.stdout.contains("junction_endpoints 1.0"), scraped.stdout)
    let check = try Shell.run([promtool, "check", "metrics"], stdin: scraped.stdout)
    XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
    XCTAssertEqual(check.stdout + check.stderr, "", "promtool's problems")

    // A Prometheus of the test's own: its config, its storage, its port, killed by PID.
    let directory = URL(fileURLWithPath: NSTemporaryDirectory())
      .appendingPathComponent("jtprom\(getpid())x\(node.name)")
    prometheusDirectory = directory
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let config = directory.appendingPathComponent("prometheus.yml")
    try """
    global:
      scrape_interval: 1s
      evaluation_interval: 1s
    scrape_configs:
      - job_name: junction-agent
        scrape_interval: 1s
        static_configs:
          - targets: ["\(metricsAddress)"]
    """.write(to: config, atomically: true, encoding: .utf8)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
    if !FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") {
      process.executableURL = URL(fileURLWithPath: "/sbin/ip")
    }
    // `ip netns exec` execs the command: the PID is Prometheus'.
    process.arguments = [
      "netns", "exec", node.name, prometheusBinary, "--config.file=\(config.path)",
      "--storage.tsdb.path=\(directory.appendingPathComponent("data").path)",
      "--web.listen-address=\(prometheusAddress)", "--log.level=warn",
    ]
    let log = directory.appendingPathComponent("prometheus.log")
    _ = FileManager.default.createFile(atPath: log.path, contents: nil)
    let logHandle = try FileHandle(forWritingTo: log)
    defer { try? logHandle.close() }
    process.standardOutput = logHandle
    process.standardError = logHandle
    try process.run()
    prometheus = process

    // The query, until Prometheus has scraped the agent (its first scrape comes within a
    // few seconds of starting).
    let query =
      #"sum(junction_drop_count_total{job="junction-agent",reason="Service backend not found"})"#
    var value: String?
    var last = ""
    let deadline = Date().addingTimeInterval(60)
    while value == nil, Date() < deadline, process.isRunning {
      let answer = try get(
        "http://\(prometheusAddress)/api/v1/query", ["-G", "--data-urlencode", "query=\(query)"])
      last = answer.stdout + answer.stderr
      if answer.status == 0,
        let object = try? JSONSerialization.jsonObject(with: Data(answer.stdout.utf8))
          as? [String: Any],
        object["status"] as? String == "success",
        let result = (object["data"] as? [String: Any])?["result"] as? [[String: Any]],
        let sample = result.first?["value"] as? [Any], sample.count == 2
      {
        value = sample[1] as? String
      } else {
        usleep(500_000)
      }
    }
    let prometheusLog = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
    XCTAssertTrue(process.isRunning, "prometheus exited: \(prometheusLog)")
    XCTAssertEqual(value, "3", "PromQL \(query): \(last)\nprometheus: \(prometheusLog)")

    // The target is healthy in Prometheus' own view.
    let targets = try get("http://\(prometheusAddress)/api/v1/targets")
    XCTAssertTrue(targets.stdout.contains(#""health":"up""#), targets.stdout)

    // The metrics server stops with the agent: SIGTERM still means a clean exit.
    let agent = try XCTUnwrap(node.agent)
    XCTAssertEqual(agent.stop(), 0, agent.log)
  }

  func testMetricsAreOffByDefault() throws {
    let plain = try TestNode(podSubnet: "10.240.29.0/24")
    defer { plain.tearDown() }
    let answer = try plain.exec(
      in: plain.name, ["curl", "-sS", "--max-time", "5", "http://\(metricsAddress)/metrics"])
    // curl's 7: could not connect (nothing listens), not an HTTP error from someone.
    XCTAssertEqual(
      answer.status, 7, "something answered /metrics: \(answer.stdout)\(answer.stderr)")
  }
}
