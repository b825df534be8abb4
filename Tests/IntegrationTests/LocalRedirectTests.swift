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

  @discardableResult
  func lab(_ name: String, _ arguments: [String], timeout: TimeInterval = 120) throws
    -> CommandOutput
  {
    try Shell.run(["bash", LabTests.script, "--name", name] + arguments, timeout: timeout)
  }

  @discardableResult
  func labMust(
    _ name: String, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line
  ) throws -> String {
    let result = try lab(name, arguments)
    XCTAssertEqual(
      result.status, 0, "lab \(arguments.joined(separator: " ")): \(result.stdout)\(result.stderr)",
      file: file, line: line)
    return result.stdout
  }

  func requirePrerequisites(_ tools: [String] = []) throws {
    try TestNode.requirePrerequisites()
    try TestAgent.requirePrerequisites()
    for tool in tools {
      let found = try Shell.run(["sh", "-c", "command -v \(tool) || test -x /usr/sbin/\(tool)"])
      if found.status != 0 {
        throw TestNode.missing("\(tool) is not installed (install/deps.sh test)")
      }
    }
  }

  /// A lab `name` with two nodes, torn down (with `directory`) when the test ends.
  func upLab(_ name: String, directory: URL) throws {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    addTeardownBlock { [self] in
      _ = try? lab(name, ["down"])
      try? FileManager.default.removeItem(at: directory)
    }
    try labMust(name, ["up", "--nodes", "2"])
  }

  /// Pod `pod` on `node` serving "pod\n" over HTTP on `port` (busybox httpd).
  func webPod(
    _ name: String, _ pod: String, node: String, labels: [String], port: Int = 80,
    in directory: URL
  ) throws {
    try labMust(name, ["pod", "add", pod, "--node", node] + labels.flatMap { ["--label", $0] })
    let root = directory.appendingPathComponent(pod)
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    try "\(pod)\n".write(
      to: root.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
    try labMust(
      name,
      ["exec", "--detach", pod, "--", "busybox", "httpd", "-f", "-p", "\(port)", "-h", root.path])
  }

  /// Who answered `count` HTTP requests from `client` to `url`; a failed request (a server
  /// still starting) is retried, ten times at most.
  func answers(_ name: String, _ client: String, _ url: String, count: Int = 12) throws
    -> Set<String>
  {
    var seen: Set<String> = []
    var answered = 0
    var retries = 10
    while answered < count {
      let answer = try lab(name, ["exec", client, "--", "curl", "-s", "-m", "3", url])
      if answer.status == 0 {
        seen.insert(answer.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        answered += 1
      } else if retries > 0 {
        retries -= 1
        usleep(300_000)
      } else {
        XCTFail("\(client): \(url) does not answer: \(answer.stderr)")
        break
      }
    }
    return seen
  }

  func write(_ text: String, to directory: URL, _ file: String) throws -> String {
    let url = directory.appendingPathComponent(file)
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url.path
  }

  func droidsPolicy(skip: Bool) -> String {
    """
    apiVersion: cilium.io/v2
    kind: CiliumLocalRedirectPolicy
    metadata: {name: droids, namespace: default}
    spec:
      redirectFrontend:
        serviceMatcher: {serviceName: droids, namespace: default}
      redirectBackend:
        localEndpointSelector: {matchLabels: {role: droid}}
        toPorts: [{port: "80", protocol: TCP}]
      skipRedirectFromBackend: \(skip)
    """
  }

  let droids = """
    apiVersion: v1
    kind: Service
    metadata: {name: droids, namespace: default}
    spec:
      clusterIP: 10.96.0.10
      selector: {role: jedi}
      ports: [{port: 80, protocol: TCP, targetPort: 80}]
    """

  /// The seed's scenario: the droids Service (jedi backends on both nodes) redirected to the
  /// droid on each caller's node, shown as LocalRedirect; skipRedirectFromBackend: a droid
  /// calling the Service gets the jedis; deleting the policy gives the Service back.
  func testServiceMatcherAnswersFromTheNodesDroidAndDeletingRestoresTheService() throws {
    try requirePrerequisites()
    let name = LabTests.uniqueLabName()
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-lrp")
    try upLab(name, directory: dir)
    try webPod(name, "obi-wan", node: "node1", labels: ["role=jedi"], in: dir)
    try webPod(name, "luke", node: "node2", labels: ["role=jedi"], in: dir)
    try webPod(name, "r2-d2", node: "node1", labels: ["role=droid"], in: dir)
    try webPod(name, "c3-po", node: "node2", labels: ["role=droid"], in: dir)
    for (pod, node) in [("trooper1", "node1"), ("trooper2", "node2")] {
      try labMust(name, ["pod", "add", pod, "--node", node, "--label", "role=soldier"])
    }
    try labMust(name, ["apply", "-f", try write(droids, to: dir, "droids.yaml")])
    let url = "http://10.96.0.10/"
    XCTAssertEqual(try answers(name, "trooper1", url, count: 30), ["obi-wan", "luke"])

    let policy = try write(droidsPolicy(skip: false), to: dir, "lrp.yaml")
    try labMust(name, ["apply", "-f", policy])
    XCTAssertEqual(try answers(name, "trooper1", url), ["r2-d2"])
    XCTAssertEqual(try answers(name, "trooper2", url), ["c3-po"])
    let list = try labMust(name, ["ctl", "node1", "service", "list"])
    XCTAssertTrue(
      list.split(separator: "\n").contains {
        $0.contains("10.96.0.10:80/TCP") && $0.contains("LocalRedirect")
      }, list)
    let lrp = try labMust(name, ["ctl", "node2", "lrp", "list", "-o", "json"])
    let policies = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(lrp.utf8)) as? [[String: Any]], lrp)
    XCTAssertEqual(policies.first?["name"] as? String, "droids")
    let pods = (policies.first?["localBackends"] as? [[String: Any]] ?? []).compactMap {
      $0["pod"] as? String
    }
    XCTAssertEqual(pods, ["default/c3-po"], lrp)

    // Without skipRedirectFromBackend a droid calling droids is sent to itself (a hairpin:
    // it hears itself from 169.254.42.1 and answers through the VIP).
    XCTAssertEqual(try answers(name, "r2-d2", url, count: 6), ["r2-d2"])
    XCTAssertEqual(try answers(name, "c3-po", url, count: 6), ["c3-po"])

    // With skipRedirectFromBackend a droid calling droids gets the original Service (the
    // jedis), not itself.
    try labMust(name, ["apply", "-f", try write(droidsPolicy(skip: true), to: dir, "skip.yaml")])
    XCTAssertEqual(try answers(name, "r2-d2", url, count: 20), ["obi-wan", "luke"])
    XCTAssertEqual(try answers(name, "trooper1", url), ["r2-d2"], "others are still redirected")

    try labMust(name, ["delete", "-f", policy])
    XCTAssertEqual(try answers(name, "trooper1", url, count: 30), ["obi-wan", "luke"])
    XCTAssertEqual(try answers(name, "trooper2", url, count: 30), ["obi-wan", "luke"])
    let after = try labMust(name, ["ctl", "node1", "service", "list"])
    XCTAssertFalse(after.contains("LocalRedirect"), after)
    try labMust(name, ["down"])
  }

  /// The seed's final exercise: 169.254.169.254:8081 from a pod reaches the local
  /// `app: proxy` pod on port 80, on each node; without a local proxy it is not served.
  func testAddressMatcherReachesTheLocalProxy() throws {
    try requirePrerequisites()
    let name = LabTests.uniqueLabName()
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-lrp")
    try upLab(name, directory: dir)
    try webPod(name, "proxy1", node: "node1", labels: ["app=proxy"], in: dir)
    try webPod(name, "proxy2", node: "node2", labels: ["app=proxy"], in: dir)
    for (pod, node) in [("client1", "node1"), ("client2", "node2")] {
      try labMust(name, ["pod", "add", pod, "--node", node])
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
    try labMust(name, ["apply", "-f", try write(policy, to: dir, "lrp.yaml")])
    let url = "http://169.254.169.254:8081/"
    XCTAssertEqual(try answers(name, "client1", url), ["proxy1"])
    XCTAssertEqual(try answers(name, "client2", url), ["proxy2"])
    let list = try labMust(name, ["ctl", "node1", "service", "list"])
    XCTAssertTrue(list.contains("169.254.169.254:8081/TCP"), list)

    try labMust(name, ["pod", "del", "proxy1"])
    let gone = try labMust(name, ["ctl", "node1", "service", "list"])
    XCTAssertFalse(gone.contains("169.254.169.254"), gone)
    XCTAssertEqual(try answers(name, "client2", url), ["proxy2"])
    try labMust(name, ["down"])
  }

  /// The node-local DNS cache for real: kube-dns over dnsmasq upstream pods, a dnsmasq cache
  /// per node forwarding to kube-dns-upstream, and the LRP. Queries to the kube-dns ClusterIP
  /// over UDP and TCP from pods on both nodes are answered by the caller's node's cache (its
  /// log grows, the other node's does not), and the caches' own queries reach the upstream
  /// pods (no loop back into a cache).
  func testNodeLocalDNSCacheAnswersFromTheCallersNode() throws {
    try requirePrerequisites(["dnsmasq", "dig"])
    let name = LabTests.uniqueLabName()
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-dns")
    try upLab(name, directory: dir)
    for (pod, node) in [("client1", "node1"), ("client2", "node2")] {
      try labMust(name, ["pod", "add", pod, "--node", node])
    }
    let deploy = try Shell.run(
      [
        "bash", Self.examples.appendingPathComponent("deploy.sh").path, "--name", name,
        "--upstreams", "node2",
      ], timeout: 180)
    XCTAssertEqual(deploy.status, 0, deploy.stdout + deploy.stderr)

    let pods = "\(LabTests.root)/\(name)/pods"
    func queries(_ pod: String) -> [String] {
      let log = (try? String(contentsOfFile: "\(pods)/\(pod)/dnsmasq.log", encoding: .utf8)) ?? ""
      return log.split(separator: "\n").filter { $0.contains(": query[") }.map(String.init)
    }
    func dig(_ client: String, _ arguments: [String]) throws -> String {
      var last = CommandOutput(status: -1, stdout: "", stderr: "")
      for _ in 0..<10 {
        last = try lab(
          name,
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
    // No loop: a cache never sees its own forwarded query come back to it.
    for node in ["node1", "node2"] {
      let cacheIP = cacheIPs[node == "node1" ? 0 : 1]
      XCTAssertFalse(
        queries("node-local-dns-\(node)").contains { $0.hasSuffix("from \(cacheIP)") },
        "node-local-dns-\(node) queried itself")
    }
    try labMust(name, ["down"])
  }
}
