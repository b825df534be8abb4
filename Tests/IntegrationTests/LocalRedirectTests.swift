import Foundation
import XCTest

/// Local Redirect Policy and the node-local DNS cache end to end, in a two-node `install/lab`
/// (real kernel, pods through the real CNI plugin, one agent per node), as the seed lab
/// drives them: the droids Service redirected to each node's droid, a metadata address
/// redirected to the local proxy, a backend reaching its own frontend, and cluster DNS
/// answered by each node's cache.
final class LocalRedirectTests: XCTestCase {
  static let examples = Artifacts.repoRoot.appendingPathComponent(
    "install/lab-examples/node-local-dns")

  /// A two-node lab, torn down (with its scratch directory) when the test ends.
  func upLab(scratch: String) throws -> LabHarness {
    let lab = try LabHarness(scratch: scratch)
    addTeardownBlock { lab.tearDown() }
    try lab.must(["up", "--nodes", "2"])
    return lab
  }

  func droidsPolicy(skip: Bool) -> String {
    ServiceManifest.droidsRedirectPolicy(skipRedirectFromBackend: skip)
  }

  /// The seed's scenario: the droids Service (jedi backends on both nodes) redirected to the
  /// droid on each caller's node, shown as LocalRedirect; skipRedirectFromBackend: a droid
  /// calling the Service gets the jedis; deleting the policy gives the Service back.
  func testServiceMatcherAnswersFromTheNodesDroidAndDeletingRestoresTheService() throws {
    try LabHarness.requirePrerequisites()
    let lab = try upLab(scratch: "lrp")
    try lab.webPod("obi-wan", node: "node1", labels: ["role=jedi"])
    try lab.webPod("luke", node: "node2", labels: ["role=jedi"])
    try lab.webPod("r2-d2", node: "node1", labels: ["role=droid"])
    try lab.webPod("c3-po", node: "node2", labels: ["role=droid"])
    for (pod, node) in [("trooper1", "node1"), ("trooper2", "node2")] {
      try lab.must(["pod", "add", pod, "--node", node, "--label", "role=soldier"])
    }
    try lab.apply(LabHarness.droids(), as: "droids.yaml")
    let url = "http://10.96.0.10/"
    XCTAssertEqual(try lab.answers("trooper1", url, count: 30), ["obi-wan", "luke"])

    let policy = try lab.write(droidsPolicy(skip: false), to: "lrp.yaml")
    try lab.must(["apply", "-f", policy])
    XCTAssertEqual(try lab.answers("trooper1", url), ["r2-d2"])
    XCTAssertEqual(try lab.answers("trooper2", url), ["c3-po"])
    let list = try lab.must(["ctl", "node1", "service", "list"])
    XCTAssertTrue(
      list.split(separator: "\n").contains {
        $0.contains("10.96.0.10:80/TCP") && $0.contains("LocalRedirect")
      }, list)
    let lrp = try lab.must(["ctl", "node2", "lrp", "list", "-o", "json"])
    let policies = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(lrp.utf8)) as? [[String: Any]], lrp)
    XCTAssertEqual(policies.first?["name"] as? String, "droids")
    let pods = (policies.first?["localBackends"] as? [[String: Any]] ?? []).compactMap {
      $0["pod"] as? String
    }
    XCTAssertEqual(pods, ["default/c3-po"], lrp)

    // Without skipRedirectFromBackend a droid calling droids is sent to itself (a hairpin:
    // it hears itself from 169.254.42.1 and answers through the VIP).
    XCTAssertEqual(try lab.answers("r2-d2", url, count: 6), ["r2-d2"])
    XCTAssertEqual(try lab.answers("c3-po", url, count: 6), ["c3-po"])

    // With skipRedirectFromBackend a droid calling droids gets the original Service (the
    // jedis), not itself.
    try lab.apply(droidsPolicy(skip: true), as: "skip.yaml")
    XCTAssertEqual(try lab.answers("r2-d2", url, count: 20), ["obi-wan", "luke"])
    XCTAssertEqual(try lab.answers("trooper1", url), ["r2-d2"], "others are still redirected")

    try lab.must(["delete", "-f", policy])
    XCTAssertEqual(try lab.answers("trooper1", url, count: 30), ["obi-wan", "luke"])
    XCTAssertEqual(try lab.answers("trooper2", url, count: 30), ["obi-wan", "luke"])
    let after = try lab.must(["ctl", "node1", "service", "list"])
    XCTAssertFalse(after.contains("LocalRedirect"), after)
    try lab.must(["down"])
  }

  /// The seed's final exercise: 169.254.169.254:8081 from a pod reaches the local
  /// `app: proxy` pod on port 80, on each node; without a local proxy it is not served.
  func testAddressMatcherReachesTheLocalProxy() throws {
    try LabHarness.requirePrerequisites()
    let lab = try upLab(scratch: "lrp")
    try lab.webPod("proxy1", node: "node1", labels: ["app=proxy"])
    try lab.webPod("proxy2", node: "node2", labels: ["app=proxy"])
    for (pod, node) in [("client1", "node1"), ("client2", "node2")] {
      try lab.must(["pod", "add", pod, "--node", node])
    }
    let policy = """
      apiVersion: cilium.io/v2
      kind: CiliumLocalRedirectPolicy
      metadata: {name: lrp-addr}
      spec:
        redirectFrontend:
          addressMatcher:
            ip: "169.254.169.254"
            toPorts: [{port: "8081", protocol: TCP}]
        redirectBackend:
          localEndpointSelector: {matchLabels: {app: proxy}}
          toPorts: [{port: "80", protocol: TCP}]
      """
    try lab.apply(policy, as: "lrp.yaml")
    let url = "http://169.254.169.254:8081/"
    XCTAssertEqual(try lab.answers("client1", url), ["proxy1"])
    XCTAssertEqual(try lab.answers("client2", url), ["proxy2"])
    let list = try lab.must(["ctl", "node1", "service", "list"])
    XCTAssertTrue(list.contains("169.254.169.254:8081/TCP"), list)

    try lab.must(["pod", "del", "proxy1"])
    let gone = try lab.must(["ctl", "node1", "service", "list"])
    XCTAssertFalse(gone.contains("169.254.169.254"), gone)
    XCTAssertEqual(try lab.answers("client2", url), ["proxy2"])
    try lab.must(["down"])
  }

  /// The node-local DNS cache for real: kube-dns over dnsmasq upstream pods, a dnsmasq cache
  /// per node forwarding to kube-dns-upstream, and the LRP. Queries to the kube-dns ClusterIP
  /// over UDP and TCP from pods on both nodes are answered by the caller's node's cache (its
  /// log grows, the other node's does not), and the caches' own queries reach the upstream
  /// pods (no loop back into a cache).
  func testNodeLocalDNSCacheAnswersFromTheCallersNode() throws {
    try LabHarness.requirePrerequisites(tools: ["dnsmasq", "dig"])
    let lab = try upLab(scratch: "dns")
    for (pod, node) in [("client1", "node1"), ("client2", "node2")] {
      try lab.must(["pod", "add", pod, "--node", node])
    }
    let deploy = try Shell.run(
      [
        "bash", Self.examples.appendingPathComponent("deploy.sh").path, "--name", lab.name,
        "--upstreams", "node2",
      ], timeout: 180)
    XCTAssertEqual(deploy.status, 0, deploy.stdout + deploy.stderr)

    let pods = "\(lab.state)/pods"
    func queries(_ pod: String) -> [String] {
      let log = (try? String(contentsOfFile: "\(pods)/\(pod)/dnsmasq.log", encoding: .utf8)) ?? ""
      return log.split(separator: "\n").filter { $0.contains(": query[") }.map(String.init)
    }
    func dig(_ client: String, _ arguments: [String]) throws -> String {
      var last = CommandOutput(status: -1, stdout: "", stderr: "")
      for _ in 0..<10 {
        last = try lab.run(
          ["exec", client, "--", "dig", "@10.96.0.10", "+short", "+time=2", "+tries=1"] + arguments)
        let text = last.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        if last.status == 0, !text.isEmpty, !text.hasPrefix(";;") { return text }
        usleep(300_000)
      }
      XCTFail("\(client): dig \(arguments) got no answer: \(last.stdout)\(last.stderr)")
      return ""
    }

    for (client, node, other) in [("client1", "node1", "node2"), ("client2", "node2", "node1")] {
      let cache = "node-local-dns-\(node)"
      let otherCache = "node-local-dns-\(other)"
      let before = (queries(cache).count, queries(otherCache).count)
      XCTAssertEqual(try dig(client, ["web.default.svc.cluster.local"]), "10.96.0.20", client)
      XCTAssertEqual(
        try dig(client, ["+tcp", "kubernetes.default.svc.cluster.local"]), "10.96.0.1", client)
      XCTAssertEqual(try dig(client, ["TXT", "whoami-cache.cluster.local"]), "\"\(cache)\"")
      XCTAssertEqual(
        try dig(client, ["+tcp", "TXT", "whoami-cache.cluster.local"]), "\"\(cache)\"")
      let after = (queries(cache).count, queries(otherCache).count)
      XCTAssertGreaterThanOrEqual(after.0 - before.0, 4, "\(cache)'s log grows")
      XCTAssertEqual(after.1, before.1, "\(otherCache)'s log stays flat")
      XCTAssertTrue(
        queries(cache).contains { $0.contains("kubernetes.default.svc.cluster.local") }, cache)
    }

    // A cache querying the kube-dns ClusterIP itself is redirected to itself (a hairpin)
    // and answers itself, over UDP and TCP.
    for node in ["node1", "node2"] {
      let cache = "node-local-dns-\(node)"
      XCTAssertEqual(try dig(cache, ["TXT", "whoami-cache.cluster.local"]), "\"\(cache)\"")
      XCTAssertEqual(try dig(cache, ["+tcp", "TXT", "whoami-cache.cluster.local"]), "\"\(cache)\"")
    }

    // The caches forwarded what they did not know to the upstream pod, through
    // kube-dns-upstream: its log shows queries from the caches' addresses only.
    let cacheIPs = try ["node1", "node2"].map {
      try String(contentsOfFile: "\(pods)/node-local-dns-\($0)/ip", encoding: .utf8)
        .trimmingCharacters(in: .whitespacesAndNewlines)
    }
    let upstream = queries("kube-dns-node2")
    XCTAssertTrue(
      upstream.contains { $0.contains("web.default.svc.cluster.local from \(cacheIPs[0])") },
      upstream.joined(separator: "\n"))
    XCTAssertTrue(
      upstream.contains { $0.contains("web.default.svc.cluster.local from \(cacheIPs[1])") },
      upstream.joined(separator: "\n"))
    XCTAssertTrue(
      upstream.allSatisfy { line in cacheIPs.contains { line.hasSuffix("from \($0)") } },
      upstream.joined(separator: "\n"))
    // No loop: a cache never sees its own forwarded query come back to it. (Its own dig of
    // whoami-cache above does come from its address: the lab's agents run --socket-lb, and a
    // pod reaching itself through a service connects to its own address, no hairpin NAT.)
    for node in ["node1", "node2"] {
      let cacheIP = cacheIPs[node == "node1" ? 0 : 1]
      XCTAssertFalse(
        queries("node-local-dns-\(node)").contains {
          $0.hasSuffix("from \(cacheIP)") && !$0.contains("whoami-cache.cluster.local")
        }, "node-local-dns-\(node) queried itself")
    }
    try lab.must(["down"])
  }
}
