import Foundation
import XCTest

/// The CNI plugin and the node agent together: attach, registration, counters, restarts,
/// the agent being down, and cleanup, on the real kernel through libcni.
final class PluginAgentTests: XCTestCase {
  private var nodes: [TestNode] = []

  override func tearDown() {
    for node in nodes { node.tearDown() }
    nodes = []
    super.tearDown()
  }

  private func makeNode(startAgent: Bool = true) throws -> TestNode {
    let node = try TestNode(podSubnet: "10.240.5.0/24", startAgent: startAgent)
    nodes.append(node)
    return node
  }

  /// The agent's pins (the kernel's *.debug files aside).
  private func agentPins(_ agent: TestAgent) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: agent.bpfFS)
      .filter { !$0.hasSuffix(".debug") }.sorted()
  }

  private func endpoint(_ node: TestNode, _ pod: String) throws -> [String: Any]? {
    let agent = try XCTUnwrap(node.agent)
    let response = try agent.request("GET", "/v1/endpoints/\(node.containerID(pod)):eth0")
    return response.status == 200 ? response.json as? [String: Any] : nil
  }

  private func counters(_ node: TestNode, _ pod: String) throws -> [String: UInt64] {
    let counters = try XCTUnwrap(try endpoint(node, pod)?["counters"] as? [String: Any])
    return counters.compactMapValues { ($0 as? NSNumber)?.uint64Value }
  }

  /// The programs on a host interface's tc hooks (clsact filters and tcx), by direction.
  private func filters(_ node: TestNode, _ hostInterface: String) throws -> (
    ingress: String, egress: String
  ) {
    try HookPrograms.listing(in: node.name, link: hostInterface)
  }

  func testAddAttachesBothProgramsAndRegistersThePodWithItsKubernetesIdentity() throws {
    let node = try makeNode()
    let pod = try node.makePodNamespace()
    let result = try node.driver(
      "add", pod: pod,
      extraEnvironment: [
        "CNI_ARGS":
          "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_UID=1234-abcd"
      ])
    XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
    let hostName = try XCTUnwrap(
      (result.json?["interfaces"] as? [[String: Any]])?.first?["name"] as? String)

    let registered = try XCTUnwrap(try endpoint(node, pod), "the endpoint was not registered")
    let spec = try XCTUnwrap(registered["spec"] as? [String: Any])
    XCTAssertEqual(spec["podNamespace"] as? String, "shop")
    XCTAssertEqual(spec["podName"] as? String, "web-0")
    XCTAssertEqual(spec["podUID"] as? String, "1234-abcd")
    XCTAssertEqual(spec["hostInterface"] as? String, hostName)
    XCTAssertEqual(spec["netns"] as? String, "/var/run/netns/\(pod)")
    XCTAssertEqual(spec["network"] as? String, node.network)
    // The pod's netns cookie, read by the plugin in there, so the agent needs no setns.
    XCTAssertEqual(
      (spec["netnsCookie"] as? NSNumber)?.uint64Value, try node.netnsCookie(of: pod), "\(spec)")
    XCTAssertEqual(registered["datapathAttached"] as? Bool, true)

    let (ingress, egress) = try filters(node, hostName)
    XCTAssertTrue(ingress.contains("from_endpoint"), "tc ingress: \(ingress)")
    XCTAssertTrue(egress.contains("to_endpoint"), "tc egress: \(egress)")
  }

  func testCountersFollowTrafficAndJunctionctlShowsThem() throws {
    let node = try makeNode()
    let pod = try node.makePodNamespace()
    try node.addPod(pod)
    let before = try counters(node, pod)
    XCTAssertEqual(
      try node.exec(in: pod, ["ping", "-c", "5", "-i", "0.05", node.nodeIP]).status, 0)
    let after = try counters(node, pod)
    XCTAssertGreaterThanOrEqual(
      (after["fromPackets"] ?? 0) - (before["fromPackets"] ?? 0), 5, "\(after)")
    XCTAssertGreaterThanOrEqual(
      (after["toPackets"] ?? 0) - (before["toPackets"] ?? 0), 5, "\(after)")
    XCTAssertGreaterThanOrEqual(
      (after["fromBytes"] ?? 0) - (before["fromBytes"] ?? 0), 5 * 98, "\(after)")

    let agent = try XCTUnwrap(node.agent)
    let shown = try Shell.run(
      [
        Artifacts.junctionctl, "--socket",
        agent.socketPath,
        "endpoint", "get", "\(node.containerID(pod)):eth0", "-o", "json",
      ])
    XCTAssertEqual(shown.status, 0, shown.stderr)
    let shownPackets =
      ((shown.json?["counters"] as? [String: Any])?["fromPackets"] as? NSNumber)?.uint64Value ?? 0
    XCTAssertGreaterThanOrEqual(shownPackets, 5, shown.stdout)
  }

  func testAgentRestartKeepsEndpointsCountersAndTraffic() throws {
    let node = try makeNode()
    let agent = try XCTUnwrap(node.agent)
    let podA = try node.makePodNamespace()
    let podB = try node.makePodNamespace()
    try node.addPod(podA)
    let ipB = try node.addPod(podB)
    XCTAssertEqual(try node.exec(in: podA, ["ping", "-c", "3", "-i", "0.05", ipB]).status, 0)
    let countersBefore = try counters(node, podA)

    // Ping through the restart: 0.05 s apart for 4 s, while the agent stops and starts.
    let pinger = Process()
    pinger.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    pinger.arguments = [
      "ip", "netns", "exec", podA, "ping", "-c", "80", "-i", "0.05", "-W", "1", ipB,
    ]
    let output = Pipe()
    pinger.standardOutput = output
    try pinger.run()
    usleep(500_000)
    try agent.restart()
    pinger.waitUntilExit()
    let summary = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    XCTAssertTrue(
      summary.contains(" 0% packet loss"), "traffic was interrupted by the restart: \(summary)")

    XCTAssertEqual(
      Set(try agent.endpointIDs()),
      ["\(node.containerID(podA)):eth0", "\(node.containerID(podB)):eth0"])
    let countersAfter = try counters(node, podA)
    XCTAssertGreaterThanOrEqual(
      countersAfter["fromPackets"] ?? 0, (countersBefore["fromPackets"] ?? 0) + 80,
      "counters did not survive the restart: before \(countersBefore), after \(countersAfter)")
    XCTAssertEqual(try endpoint(node, podA)?["datapathAttached"] as? Bool, true)
  }

  func testAgentStartReattachesProgramsMissingFromALiveEndpoint() throws {
    let node = try makeNode()
    let agent = try XCTUnwrap(node.agent)
    let pod = try node.makePodNamespace()
    let result = try node.driver("add", pod: pod)
    let hostName = try XCTUnwrap(
      (result.json?["interfaces"] as? [[String: Any]])?.first?["name"] as? String)
    XCTAssertEqual(agent.stop(), 0)
    // Someone flushed the veth's programs while the agent was down.
    try HookPrograms.flush(in: node.name, link: hostName)
    XCTAssertFalse(try filters(node, hostName).ingress.contains("from_endpoint"))

    try agent.start()
    let (ingress, egress) = try filters(node, hostName)
    XCTAssertTrue(ingress.contains("from_endpoint"), "not re-attached on ingress: \(ingress)")
    XCTAssertTrue(egress.contains("to_endpoint"), "not re-attached on egress: \(egress)")
    XCTAssertEqual(try endpoint(node, pod)?["datapathAttached"] as? Bool, true)
    XCTAssertEqual(try node.driver("check", pod: pod).status, 0)
  }

  func testAddWithoutAnAgentFailsWithCode11AndLeavesNothing() throws {
    let node = try makeNode(startAgent: false)
    let pod = try node.makePodNamespace()
    let result = try node.driver("add", pod: pod)
    XCTAssertEqual(result.status, 1)
    XCTAssertEqual(result.errorCode, 11, result.stdout)
    try node.assertNothingLeftBehind(pod: pod)
  }

  func testAddFailsWithCode11WhenTheAgentDoesNotAnswerInTimeAndLeavesNothing() throws {
    // A frozen agent: its socket still accepts connections (the kernel queues them) and its
    // pins are there, but nothing answers. The configured agentTimeout (5 s in the tests)
    // bounds the wait for the registration, and everything ADD did is undone.
    let node = try makeNode()
    let agent = try XCTUnwrap(node.agent)
    let pod = try node.makePodNamespace()
    XCTAssertEqual(Glibc.kill(agent.pid, SIGSTOP), 0)
    defer { Glibc.kill(agent.pid, SIGCONT) }

    let started = Date()
    let result = try node.driver("add", pod: pod)
    let waited = Date().timeIntervalSince(started)
    XCTAssertEqual(result.errorCode, 11, result.stdout)
    XCTAssertGreaterThanOrEqual(waited, 4.5, "ADD gave up before the configured timeout")
    XCTAssertLessThan(waited, 30, "the timeout did not bound the wait")
    try node.assertNothingLeftBehind(pod: pod)
  }

  func testDeleteWhileTheAgentIsDownSucceedsAndTheAgentForgetsTheEndpointAtStart() throws {
    let node = try makeNode()
    let agent = try XCTUnwrap(node.agent)
    let pod = try node.makePodNamespace()
    let keep = try node.makePodNamespace()
    try node.addPod(pod)
    try node.addPod(keep)
    XCTAssertEqual(agent.stop(), 0)

    let result = try node.driver("del", pod: pod)
    XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
    XCTAssertEqual(node.reservedAddresses().count, 1, "DEL did not release the address")

    try agent.start()
    XCTAssertEqual(try agent.endpointIDs(), ["\(node.containerID(keep)):eth0"])
  }

  func testTwentyConcurrentAddsRegisterAndAttachAndTwentyDeletesLeaveNothing() throws {
    let node = try makeNode()
    let agent = try XCTUnwrap(node.agent)
    let pinsBefore = try agentPins(agent)
    XCTAssertTrue(pinsBefore.contains("from_endpoint") && pinsBefore.contains("to_endpoint"))
    let pods = try (0..<20).map { _ in try node.makePodNamespace() }
    var statuses = [Int32](repeating: -1, count: pods.count)
    let lock = NSLock()
    DispatchQueue.concurrentPerform(iterations: pods.count) { index in
      let status = (try? node.driver("add", pod: pods[index]))?.status ?? -1
      lock.lock()
      statuses[index] = status
      lock.unlock()
    }
    XCTAssertEqual(statuses, [Int32](repeating: 0, count: 20))
    let endpoints = try agent.endpoints()
    XCTAssertEqual(endpoints.count, 20)
    XCTAssertTrue(
      endpoints.allSatisfy { $0["datapathAttached"] as? Bool == true }, "not all attached")
    // Both programs on every pod veth, on the agent's hook (clsact or tcx).
    let running = try node.hostLinks().filter { link in
      let listing = try filters(node, link)
      return listing.ingress.contains("from_endpoint") && listing.egress.contains("to_endpoint")
    }
    XCTAssertEqual(running.count, 20, "both programs on each pod veth expected")

    DispatchQueue.concurrentPerform(iterations: pods.count) { index in
      XCTAssertEqual((try? node.driver("del", pod: pods[index]))?.status, 0)
    }
    XCTAssertEqual(try agent.endpointIDs(), [])
    XCTAssertEqual(try node.hostLinks(), [])
    XCTAssertFalse(try node.exec(in: node.name, ["tc", "qdisc", "show"]).stdout.contains("clsact"))
    // Only the agent's own pins remain (programs and maps): none was added per endpoint.
    XCTAssertEqual(try agentPins(agent), pinsBefore)
  }

  func testCheckFailsWhenAProgramIsDetachedOrTheEndpointIsUnknown() throws {
    let node = try makeNode()
    let agent = try XCTUnwrap(node.agent)
    let pod = try node.makePodNamespace()
    let result = try node.driver("add", pod: pod)
    let hostName = try XCTUnwrap(
      (result.json?["interfaces"] as? [[String: Any]])?.first?["name"] as? String)
    XCTAssertEqual(try node.driver("check", pod: pod).status, 0)

    try HookPrograms.remove(in: node.name, link: hostName, direction: "ingress")
    let detached = try node.driver("check", pod: pod)
    XCTAssertEqual(detached.errorCode, 105, detached.stdout)
    XCTAssertTrue(
      (detached.json?["details"] as? String ?? "").contains("from_endpoint"), detached.stdout)

    XCTAssertEqual(
      try agent.request("DELETE", "/v1/endpoints/\(node.containerID(pod)):eth0").status, 204)
    let unknown = try node.driver("check", pod: pod)
    XCTAssertEqual(unknown.errorCode, 105, unknown.stdout)
    XCTAssertTrue(
      (unknown.json?["details"] as? String ?? "").contains("not registered"), unknown.stdout)
  }

  func testStatusReports50WhenTheAgentIsDown() throws {
    let node = try makeNode()
    XCTAssertEqual(try node.driver("status", pod: nil, cniVersion110: true).status, 0)
    XCTAssertEqual(node.agent?.stop(), 0)
    let down = try node.driver("status", pod: nil, cniVersion110: true)
    XCTAssertEqual(down.status, 1)
    XCTAssertEqual(down.errorCode, 50, down.stdout)
  }

  func testGarbageCollectionDeregistersEndpointsNotListedAsValid() throws {
    let node = try makeNode()
    let agent = try XCTUnwrap(node.agent)
    let keep = try node.makePodNamespace()
    let stale = try node.makePodNamespace()
    try node.addPod(keep)
    try node.addPod(stale)
    // An endpoint of another network must survive this network's GC.
    try agent.register([
      "containerID": "other-net", "ifname": "eth0", "network": "other",
      "netns": "/var/run/netns/\(keep)",
      "hostInterface": "lo", "hostIfindex": 1, "ips": ["10.9.9.9/32"],
    ])
    let valid = "[{\"containerID\":\"\(node.containerID(keep))\",\"ifname\":\"eth0\"}]"
    let result = try node.driver(
      "gc", pod: nil, cniVersion110: true, extraEnvironment: ["CNI_VALID_ATTACHMENTS": valid])
    XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
    XCTAssertEqual(
      Set(try agent.endpointIDs()), ["\(node.containerID(keep)):eth0", "other-net:eth0"])
  }
}
