import Foundation
import XCTest

/// `--tc-hook tcx`: the plugin attaches the endpoint programs to the veth's tcx hook, as the
/// agent tells it, and they translate a pod's Service traffic there; a start with
/// `--tc-hook clsact` moves them back without ever running them twice. Needs a kernel with
/// tcx (6.6 or later; the lab and CI machines run 6.18).
final class TCXHookTests: XCTestCase {
  private var nodes: [TestNode] = []
  private var traffic: [PodTraffic] = []

  override func tearDown() {
    for backends in traffic { backends.tearDown() }
    traffic = []
    for node in nodes { node.tearDown() }
    nodes = []
    super.tearDown()
  }

  private func hostVeth(_ node: TestNode, _ pod: String) throws -> String {
    let endpoint = try XCTUnwrap(
      try XCTUnwrap(node.agent).request("GET", "/v1/endpoints/\(node.containerID(pod)):eth0")
        .json as? [String: Any])
    XCTAssertEqual(endpoint["datapathAttached"] as? Bool, true, "\(endpoint)")
    return try XCTUnwrap((endpoint["spec"] as? [String: Any])?["hostInterface"] as? String)
  }

  private func clsactFilters(_ node: TestNode, _ link: String) throws -> String {
    try ["ingress", "egress"].map {
      try Shell.run(["tc", "-n", node.name, "filter", "show", "dev", link, $0]).stdout
    }.joined()
  }

  private func fromPackets(_ node: TestNode, _ pod: String) throws -> UInt64 {
    let endpoint =
      try XCTUnwrap(node.agent).request(
        "GET", "/v1/endpoints/\(node.containerID(pod)):eth0"
      ).json as? [String: Any]
    return ((endpoint?["counters"] as? [String: Any])?["fromPackets"] as? NSNumber)?
      .uint64Value ?? 0
  }

  /// A node whose agent runs with `--tc-hook hook`, and that agent.
  private func node(subnet: String, hook: String) throws -> (TestNode, TestAgent) {
    let node = try TestNode(podSubnet: subnet, agentArguments: ["--tc-hook", hook])
    nodes.append(node)
    return (node, try XCTUnwrap(node.agent))
  }

  /// The hook the agent tells the plugin (GET /v1/config).
  private func announcedHook(_ agent: TestAgent) throws -> String? {
    (try agent.request("GET", "/v1/config").json as? [String: Any])?["tcHook"] as? String
  }

  func testPodsServiceTrafficRunsOnTCXAndMovesToClsactOnAnotherStart() throws {
    let (node, agent) = try node(subnet: "10.240.42.0/24", hook: "tcx")
    XCTAssertEqual(try announcedHook(agent), "tcx")

    let backends = PodTraffic(node: node)
    traffic.append(backends)
    let (client, addresses) = try backends.clientAndBackends(["r2d2", "c3po"])
    let applied = try node.junctionctl(
      ["apply", "-f", "-"],
      stdin: ServiceManifest.clusterIP(
        name: "droids", clusterIP: "10.96.42.10", backends: addresses))
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)

    let veth = try hostVeth(node, client)
    let onTCX = try TCXWitness.programs(in: node.name, link: veth)
    XCTAssertEqual(onTCX.ingress, ["from_endpoint"])
    XCTAssertEqual(onTCX.egress, ["to_endpoint"])
    XCTAssertEqual(try clsactFilters(node, veth), "", "tcx mode put a filter on clsact")
    XCTAssertFalse(
      try Shell.run(["tc", "-n", node.name, "qdisc", "show"]).stdout.contains("clsact"),
      "tcx mode created a clsact qdisc")

    var answers = try backends.connect(from: client, to: "10.96.42.10", port: 80, count: 20)
    XCTAssertEqual(Set(answers), ["r2d2", "c3po"], "\(answers)")
    XCTAssertEqual(try node.driver("check", pod: client).status, 0)

    // The next start with clsact: reconcile moves every endpoint's programs.
    XCTAssertEqual(agent.stop(), 0)
    agent.extraArguments = ["--tc-hook", "clsact"]
    try agent.start()
    XCTAssertEqual(try announcedHook(agent), "clsact")
    let moved = try TCXWitness.programs(in: node.name, link: veth)
    XCTAssertEqual(moved.ingress + moved.egress, [], "left on tcx after the move")
    let filters = try clsactFilters(node, veth)
    XCTAssertTrue(
      filters.contains("from_endpoint") && filters.contains("to_endpoint"), filters)
    _ = try hostVeth(node, client)

    // Once, not twice: five pings count five packets (give or take a neighbour probe).
    let before = try fromPackets(node, client)
    XCTAssertEqual(
      try node.exec(in: client, ["ping", "-c", "5", "-i", "0.05", addresses[0]]).status, 0)
    let counted = try fromPackets(node, client) - before
    XCTAssertTrue((5...7).contains(counted), "5 pings counted as \(counted) packets")
    answers = try backends.connect(from: client, to: "10.96.42.10", port: 80, count: 20)
    XCTAssertEqual(Set(answers), ["r2d2", "c3po"], "\(answers)")
  }

  func testAnAgentAskedForTCXOnlyStartsWhereTheKernelHasIt() throws {
    // This kernel has tcx, so the start succeeds and says so in its log.
    let (node, agent) = try node(subnet: "10.240.43.0/24", hook: "auto")
    XCTAssertEqual(try announcedHook(agent), "tcx")
    let status = try node.junctionctl(["status"])
    XCTAssertTrue(
      status.stdout.split(separator: "\n").contains {
        $0.hasPrefix("TC hook:") && $0.hasSuffix(" tcx")
      },
      status.stdout)
    let loaded = agent.log.split(separator: "\n").filter { $0.contains("datapath loaded") }
    XCTAssertTrue(
      loaded.contains { $0.contains("tc_hook") && $0.contains("tcx") },
      "the datapath log line does not name the hook: \(loaded)")
  }
}
