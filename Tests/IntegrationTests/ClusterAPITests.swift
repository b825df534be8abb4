import Foundation
import StandinSupport
import XCTest

/// Polls `condition` every 100 ms until it holds; after `timeout`, fails the test naming
/// `what` (and `detail`, what the agent said then).
private func pollUntil(
  _ what: String, timeout: TimeInterval, detail: () -> String = { "" },
  file: StaticString, line: UInt, _ condition: () throws -> Bool
) throws {
  let deadline = Date().addingTimeInterval(timeout)
  while Date() < deadline {
    if try condition() { return }
    usleep(100_000)
  }
  XCTFail("timed out waiting for \(what)\(detail())", file: file, line: line)
}

/// The agent following the Kubernetes API (tools/standin-apiserver, run in the node's
/// namespace on 127.0.0.1): a pod's connections to a ClusterIP follow Service and
/// EndpointSlice changes made through the API; a relist that finds nothing changed writes no
/// map entry; an agent started while the API is down serves its stored state, then syncs.
final class ClusterAPITests: XCTestCase {
  private var node: TestNode!
  private var traffic: PodTraffic!
  private var api: StandinServer!

  override func setUpWithError() throws {
    node = try TestNode(podSubnet: "10.240.31.0/24") { namespace in
      self.api = try StandinServer(arguments: ["--bookmark-interval", "0.5"], namespace: namespace)
      return ["--kubeconfig", self.api.kubeconfig]
    }
    traffic = PodTraffic(node: node)
  }

  override func tearDown() {
    traffic?.tearDown()
    node?.tearDown()
    api?.stop()
    api = nil
    super.tearDown()
  }

  private func junctionctl(_ arguments: [String], stdin: String = "") throws -> CommandOutput {
    try node.junctionctl(arguments, stdin: stdin)
  }

  /// GET /v1/healthz's `cluster`.
  private func cluster() throws -> [String: Any] {
    let response = try XCTUnwrap(node.agent).request("GET", "/v1/healthz")
    return ((response.json as? [String: Any])?["cluster"] as? [String: Any]) ?? [:]
  }

  private func waitUntil(
    _ what: String, timeout: TimeInterval = 20, file: StaticString = #filePath, line: UInt = #line,
    _ condition: () throws -> Bool
  ) throws {
    try pollUntil(what, timeout: timeout, file: file, line: line, condition)
  }

  /// The answers of `count` connections to 10.96.0.31:80 from `client`.
  private func answers(_ client: String, count: Int = 20) throws -> Set<String> {
    Set(try traffic.connect(from: client, to: "10.96.0.31", port: 80, count: count))
  }

  /// A client pod, and r2d2 behind the droids Service's ClusterIP (made through the API).
  private func r2d2BehindTheClusterIP() throws -> String {
    let (client, addresses) = try traffic.clientAndBackends(["r2d2"])
    try api.createService("droids", clusterIP: "10.96.0.31")
    try api.putEndpointSlice("droids-abc", service: "droids", backends: addresses)
    try waitUntil("r2d2 behind the ClusterIP") { try answers(client, count: 3) == ["r2d2"] }
    return client
  }

  func testConnectionsFollowServiceAndEndpointSliceChangesFromTheAPI() throws {
    let (client, addresses) = try traffic.clientAndBackends(["r2d2", "c3po"])
    try waitUntil("the first sync") { try cluster()["synced"] as? Bool == true }

    try api.createService("droids", clusterIP: "10.96.0.31")
    try api.putEndpointSlice("droids-abc", service: "droids", backends: [addresses[0]])
    try waitUntil("r2d2 behind the ClusterIP") { try answers(client, count: 3) == ["r2d2"] }

    try api.putEndpointSlice(
      "droids-abc", service: "droids", backends: [addresses[1]], replace: true)
    try waitUntil("c3po instead") { try answers(client, count: 3) == ["c3po"] }
    XCTAssertEqual(try answers(client), ["c3po"])

    try api.request("DELETE", "/api/v1/namespaces/default/services/droids")
    try waitUntil("the ClusterIP gone") { try answers(client, count: 1) != ["c3po"] }
    let listed = try junctionctl(["service", "list"])
    XCTAssertFalse(listed.stdout.contains("10.96.0.31"), listed.stdout)

    // One source of truth: apply is refused, with the reason.
    let applied = try junctionctl(
      ["apply", "-f", "-"],
      stdin: ServiceManifest.clusterIP(name: "x", clusterIP: "10.96.0.99", backends: []))
    XCTAssertEqual(applied.status, 1)
    XCTAssertTrue(
      applied.stderr.contains("the cluster is the source of Services"), applied.stderr)

    let status = try junctionctl(["status"])
    XCTAssertTrue(status.stdout.contains("Kubernetes API:"), status.stdout)
    XCTAssertTrue(status.stdout.contains("endpointslices.discovery.k8s.io"), status.stdout)
    let summary = try cluster()
    let latency = try XCTUnwrap(summary["programmingLatency"] as? [String: Any])
    XCTAssertGreaterThanOrEqual(latency["count"] as? Int ?? 0, 3, "\(latency)")
    XCTAssertNotNil(latency["p99Milliseconds"] as? Double, "\(latency)")
  }

  func testARelistWithNothingChangedWritesNoMapEntryAndAStartWithTheAPIDownServesStoredState()
    throws
  {
    let client = try r2d2BehindTheClusterIP()
    let writes = try XCTUnwrap(try cluster()["mapWrites"] as? Int)
    XCTAssertGreaterThan(writes, 0)

    // Beyond the window: the watches fall behind, the history is compacted → 410 → relist.
    try api.request("POST", "/standin/hold-watches")
    try api.request(
      "POST", "/api/v1/namespaces/default/services",
      #"{"metadata":{"name":"other","labels":{"service.kubernetes.io/service-proxy-name":"elsewhere"}},"spec":{"clusterIP":"10.96.0.77"}}"#
    )
    try api.request("POST", "/standin/compact")
    try api.request("POST", "/standin/drop-watches")
    try waitUntil("relists") { try relists() >= 2 }
    XCTAssertEqual(
      try cluster()["mapWrites"] as? Int, writes, "a relist with no change wrote map entries")
    XCTAssertEqual(try answers(client), ["r2d2"])

    // The API goes away; the agent restarts without it: stored state, then the sync.
    api.stop()
    let agent = try XCTUnwrap(node.agent)
    try agent.restart()
    XCTAssertEqual(try answers(client, count: 5), ["r2d2"], "the stored state is not served")
    try waitUntil("the failure reported") { try cluster()["unreachableSince"] as? String != nil }
    XCTAssertEqual(try cluster()["synced"] as? Bool, false)
    let status = try junctionctl(["status"])
    XCTAssertTrue(status.stdout.contains("Failing since:"), status.stdout)
    XCTAssertTrue(status.stdout.contains("unreachable"), status.stdout)

    try api.start()
    try waitUntil("the sync once the API is back", timeout: 60) {
      try cluster()["synced"] as? Bool == true
    }
    XCTAssertNil(try cluster()["unreachableSince"] as? String)
    XCTAssertEqual(try cluster()["mapWrites"] as? Int, 0, "the sync rewrote unchanged services")
    XCTAssertEqual(try answers(client), ["r2d2"])
  }

  /// PreferClose: connections stay in the node's zone, and follow its Node's zone label as
  /// the API changes it, live.
  func testAZoneLabelChangeOnTheNodeReplansTopologyLive() throws {
    let (client, addresses) = try traffic.clientAndBackends(["r2d2", "bb8"])
    let nodeName = try XCTUnwrap(node.agent).name
    func nodeObject(_ zone: String) -> String {
      #"{"metadata":{"name":"\#(nodeName)","labels":{"topology.kubernetes.io/zone":"\#(zone)"}}}"#
    }
    try api.request("POST", "/api/v1/nodes", nodeObject("zone-a"))
    try api.request(
      "POST", "/api/v1/namespaces/default/services",
      #"{"metadata":{"name":"droids"},"spec":{"clusterIP":"10.96.0.31","trafficDistribution":"PreferClose","ports":[{"name":"http","port":80,"targetPort":8080}]}}"#
    )
    try api.request(
      "POST", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
      #"{"metadata":{"name":"droids-a","labels":{"kubernetes.io/service-name":"droids"}},"addressType":"IPv4","ports":[{"name":"http","port":8080}],"endpoints":[{"addresses":["\#(addresses[0])"],"zone":"zone-a","conditions":{"ready":true}},{"addresses":["\#(addresses[1])"],"zone":"zone-b","conditions":{"ready":true}}]}"#
    )
    try waitUntil("r2d2, in the node's zone-a") { try answers(client, count: 3) == ["r2d2"] }
    XCTAssertEqual(try answers(client), ["r2d2"])
    try api.request("PUT", "/api/v1/nodes/\(nodeName)", nodeObject("zone-b"))
    try waitUntil("bb8, in zone-b now") { try answers(client, count: 3) == ["bb8"] }
    XCTAssertEqual(try answers(client), ["bb8"])
  }

  /// A LocalRedirectPolicy (our CRD) created through the API redirects the Service to the
  /// node's pod it selects (a Pod the API says runs on this node, ready); deleting it gives
  /// the Service back.
  func testALocalRedirectPolicyFromTheAPIWorksAsOneApplied() throws {
    let (client, addresses) = try traffic.clientAndBackends(["obi-wan", "r2d2"])
    let (jedi, droid) = (addresses[0], addresses[1])
    let nodeName = try XCTUnwrap(node.agent).name
    try api.createService("droids", clusterIP: "10.96.0.31")
    try api.putEndpointSlice("droids-abc", service: "droids", backends: [jedi])
    try api.request(
      "POST", "/api/v1/namespaces/default/pods",
      #"{"metadata":{"name":"r2d2","labels":{"role":"droid"}},"spec":{"nodeName":"\#(nodeName)"},"status":{"podIP":"\#(droid)","conditions":[{"type":"Ready","status":"True"}]}}"#
    )
    try waitUntil("the Service's backend") { try answers(client, count: 3) == ["obi-wan"] }

    let policies = "/apis/junction.io/v1alpha1/namespaces/default/localredirectpolicies"
    try api.request(
      "POST", policies,
      #"{"metadata":{"name":"droids"},"spec":{"redirectFrontend":{"serviceMatcher":{"serviceName":"droids","namespace":"default"}},"redirectBackend":{"localEndpointSelector":{"matchLabels":{"role":"droid"}},"toPorts":[{"port":"8080","protocol":"TCP"}]}}}"#
    )
    try waitUntil("the node's droid") { try answers(client, count: 3) == ["r2d2"] }
    XCTAssertEqual(try answers(client), ["r2d2"])
    let listed = try junctionctl(["lrp", "list", "-o", "json"])
    XCTAssertTrue(listed.stdout.contains("default/r2d2"), listed.stdout)

    try api.request("DELETE", "\(policies)/droids")
    try waitUntil("the Service back") { try answers(client, count: 3) == ["obi-wan"] }
  }

  /// A client connecting in a loop through an agent restart (restore, then sync with the
  /// API) never sees a refusal or a timeout.
  func testAnAgentRestartLeavesNoMomentWhereTheClusterIPRefuses() throws {
    let client = try r2d2BehindTheClusterIP()

    let loop = Process()
    loop.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    loop.arguments = [
      "ip", "netns", "exec", client, "python3", "-c",
      """
      import socket, time
      end = time.time() + 8
      while time.time() < end:
          try:
              c = socket.create_connection(("10.96.0.31", 80), timeout=2)
              print(c.recv(100).decode() or "empty", flush=True); c.close()
          except ConnectionRefusedError: print("refused", flush=True)
          except socket.timeout: print("timeout", flush=True)
          except OSError as e: print("error:" + str(e), flush=True)
          time.sleep(0.02)
      """,
    ]
    let output = Pipe()
    loop.standardOutput = output
    try loop.run()
    usleep(1_000_000)
    let agent = try XCTUnwrap(node.agent)
    try agent.restart()
    try waitUntil("the sync after the restart") { try cluster()["synced"] as? Bool == true }
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    loop.waitUntilExit()
    let results = text.split(separator: "\n").map(String.init)
    XCTAssertGreaterThan(results.count, 50, text)
    XCTAssertEqual(Set(results), ["r2d2"], "connections failed through the restart")
    XCTAssertEqual(try cluster()["mapWrites"] as? Int, 0, "the sync rewrote an unchanged Service")
  }

  private func relists() throws -> Int {
    let resources = try cluster()["resources"] as? [[String: Any]] ?? []
    return resources.reduce(0) { $0 + ($1["relists"] as? Int ?? 0) }
  }

  /// The API server restarts (same objects, versions and port: its state file) with the
  /// agent's versions still in its window: every watch resumes from where it was, no relist,
  /// and changes made after the restart are programmed.
  func testAnAPIServerRestartWithinTheWindowResumesTheWatchesWithoutARelist() throws {
    let client = try r2d2BehindTheClusterIP()
    XCTAssertEqual(try relists(), 0)
    api.stop()
    try waitUntil("the outage noticed") { try cluster()["unreachableSince"] as? String != nil }
    try api.start()
    try waitUntil("the watches back") { try cluster()["unreachableSince"] as? String == nil }
    try api.createService("bb8", clusterIP: "10.96.0.32")
    try waitUntil("a Service made after the restart") {
      try junctionctl(["service", "list"]).stdout.contains("10.96.0.32")
    }
    XCTAssertEqual(try relists(), 0, "a restart within the window relisted")
    XCTAssertEqual(try answers(client), ["r2d2"])
  }

  /// The API server restarts with its history compacted past the agent's versions, and a
  /// Service was deleted while the agent's watches were stuck: the watches get 410, the agent
  /// relists, and the delete it missed is applied (the other Service stays).
  func testAnAPIServerRestartBeyondTheWindowRelistsAndAppliesTheMissedDeletes() throws {
    let client = try r2d2BehindTheClusterIP()
    try api.createService("bb8", clusterIP: "10.96.0.32")
    try waitUntil("bb8 programmed") {
      try junctionctl(["service", "list"]).stdout.contains("10.96.0.32")
    }
    try api.request("POST", "/standin/hold-watches")
    try api.request("DELETE", "/api/v1/namespaces/default/services/bb8")
    try api.request("POST", "/standin/compact")
    api.stop()
    try api.start()
    try waitUntil("the missed delete applied after a relist") {
      try !junctionctl(["service", "list"]).stdout.contains("10.96.0.32")
    }
    XCTAssertGreaterThanOrEqual(try relists(), 1)
    XCTAssertEqual(try answers(client), ["r2d2"], "the Service that stayed was disturbed")
  }

  /// A Service whose ClusterIP is the API server's own address (here the stand-in's
  /// 127.0.0.1; in a cluster, `kubernetes`'s ClusterIP given as the server): status and
  /// healthz say the agent reaches its server through a frontend it translates, and so does
  /// the log at the next start (from the stored state), while it keeps following; the warning
  /// goes with the Service.
  func testAServerAddressThatIsAFrontendTheAgentTranslatesIsNamed() throws {
    try waitUntil("the first sync") { try cluster()["synced"] as? Bool == true }
    try api.createService("kubernetes", clusterIP: "127.0.0.1", port: 443)
    try waitUntil("the warning") { try cluster()["serverWarning"] as? String != nil }
    let warning = try XCTUnwrap(try cluster()["serverWarning"] as? String)
    XCTAssertTrue(
      warning.contains("127.0.0.1 is a frontend of Service default/kubernetes"), warning)
    let health = try XCTUnwrap(node.agent).request("GET", "/v1/healthz").json as? [String: Any]
    let components = health?["components"] as? [String: String] ?? [:]
    XCTAssertTrue(components.values.contains("warning: \(warning)"), "\(components)")
    let status = try junctionctl(["status"])
    XCTAssertTrue(status.stdout.contains("Warning:"), status.stdout)
    // At start, from the stored state, the log says it too.
    let agent = try XCTUnwrap(node.agent)
    try agent.restart()
    try waitUntil("the sync after the restart") { try cluster()["synced"] as? Bool == true }
    XCTAssertTrue(agent.log.contains(warning), agent.log)
    try api.request("DELETE", "/api/v1/namespaces/default/services/kubernetes")
    try waitUntil("the warning gone") { try cluster()["serverWarning"] as? String == nil }
    XCTAssertEqual(try cluster()["synced"] as? Bool, true)
  }

  func testAMalformedServiceAmongAHundredIsReportedAndTheOthersProgrammed() throws {
    try waitUntil("the first sync") { try cluster()["synced"] as? Bool == true }
    var script = ""
    for index in 0..<100 {
      script +=
        #"{"metadata":{"name":"web-\#(index)"},"spec":{"clusterIP":"10.97.\#(index / 250).\#(index % 250 + 1)","ports":[{"port":80,"protocol":"TCP"}]}}"#
        + "\n"
      if index == 50 {
        script +=
          #"{"metadata":{"name":"bad"},"spec":{"clusterIP":"10.97.9.9","ports":[{"port":70000,"protocol":"TCP"}]}}"#
          + "\n"
      }
    }
    for line in script.split(separator: "\n") {
      try api.request("POST", "/api/v1/namespaces/default/services", String(line))
    }
    func frontends() throws -> Int {
      let listed = try junctionctl(["service", "list", "-o", "json"])
      return (try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [Any])?.count
        ?? -1
    }
    try waitUntil("100 frontends") { try frontends() == 100 }
    XCTAssertEqual(try cluster()["skippedObjects"] as? Int, 1)
    let log = try XCTUnwrap(node.agent).log
    XCTAssertTrue(
      log.contains("Service default/bad: spec.ports[0].port: 70000 is not a valid port"), log)
    let services = (try cluster()["resources"] as? [[String: Any]] ?? []).first {
      $0["resource"] as? String == "services"
    }
    XCTAssertEqual(services?["objects"] as? Int, 101)
  }
}

/// What the agent says when the API refuses it: a 403 names the verb and the resource, a
/// 401 says the credentials were refused; it keeps serving and retrying meanwhile.
final class ClusterAPIPermissionTests: XCTestCase {
  private var node: TestNode!
  private var api: StandinServer!

  override func setUpWithError() throws {
    node = try TestNode(podSubnet: "10.240.32.0/24") { namespace in
      self.api = try StandinServer(
        arguments: [
          "--forbid", "watch:endpointslices.discovery.k8s.io", "--without",
          "ciliumlocalredirectpolicies.cilium.io",
        ], namespace: namespace)
      return ["--kubeconfig", self.api.kubeconfig]
    }
  }

  override func tearDown() {
    node?.tearDown()
    api?.stop()
    api = nil
    super.tearDown()
  }

  private func status() throws -> CommandOutput {
    return try node.junctionctl(["status"])
  }

  private func waitFor(_ text: String, timeout: TimeInterval = 30) throws -> String {
    let deadline = Date().addingTimeInterval(timeout)
    var last = ""
    while Date() < deadline {
      last = try status().stdout
      if last.contains(text) { return last }
      usleep(200_000)
    }
    XCTFail("status never said \"\(text)\":\n\(last)")
    return last
  }

  func testForbiddenAndUnauthorizedAreNamedInStatusAndTheAgentKeepsServing() throws {
    let forbidden = try waitFor(
      "403 Forbidden: RBAC does not allow watch on endpointslices.discovery.k8s.io")
    XCTAssertTrue(forbidden.contains("degraded"), forbidden)
    XCTAssertTrue(forbidden.contains("not-installed"), "the missing CRD is noted: \(forbidden)")
    // The token is refused from now on (rotated on the server, not in the agent's file).
    try "a-token-the-agent-does-not-have".write(
      toFile: api.directory + "/tokens", atomically: true, encoding: .utf8)
    _ = try waitFor("401 Unauthorized")
    XCTAssertTrue(try XCTUnwrap(node.agent).isRunning)
  }
}

/// The credentials of a running agent: a CA that does not sign the server's certificate is
/// named in status and healthz while the agent keeps serving; a token file rotated while the
/// agent runs is read for its next request; a watch line that is not an event ends that watch,
/// which resumes (counted) without a relist.
final class ClusterAPICredentialTests: XCTestCase {
  private var node: TestNode!
  private var api: StandinServer!
  private var other: StandinServer?

  override func tearDown() {
    node?.tearDown()
    api?.stop()
    other?.stop()
    api = nil
    other = nil
    super.tearDown()
  }

  /// A node whose agent follows a stand-in; with `wrongCA`, its kubeconfig names the CA of
  /// another stand-in.
  private func start(wrongCA: Bool = false) throws {
    node = try TestNode(podSubnet: "10.240.33.0/24") { namespace in
      self.api = try StandinServer(arguments: ["--bookmark-interval", "0.5"], namespace: namespace)
      guard wrongCA else { return ["--kubeconfig", self.api.kubeconfig] }
      let other = try StandinServer(namespace: namespace)
      self.other = other
      let kubeconfig = try String(contentsOfFile: self.api.kubeconfig, encoding: .utf8)
        .replacingOccurrences(of: self.api.directory + "/ca.crt", with: other.directory + "/ca.crt")
      let path = self.api.directory + "/kubeconfig-wrong-ca"
      try kubeconfig.write(toFile: path, atomically: true, encoding: .utf8)
      return ["--kubeconfig", path]
    }
  }

  private func health() throws -> [String: Any] {
    let response = try XCTUnwrap(node.agent).request("GET", "/v1/healthz")
    return (response.json as? [String: Any]) ?? [:]
  }

  private func cluster() throws -> [String: Any] {
    try health()["cluster"] as? [String: Any] ?? [:]
  }

  private func waitUntil(
    _ what: String, timeout: TimeInterval = 30, file: StaticString = #filePath, line: UInt = #line,
    _ condition: () throws -> Bool
  ) throws {
    try pollUntil(
      what, timeout: timeout, detail: { ": \((try? self.cluster()) ?? [:])" }, file: file,
      line: line, condition)
  }

  /// The frontends the agent lists.
  private func frontends() throws -> String {
    try node.junctionctl(["service", "list"]).stdout
  }

  func testAWrongCAIsNamedInStatusAndHealthzAndTheAgentKeepsServing() throws {
    try start(wrongCA: true)
    try waitUntil("the certificate error") {
      (try cluster()["lastError"] as? String)?.contains("certificate not trusted") == true
    }
    let components = try XCTUnwrap(health()["components"] as? [String: String])
    let component = components.first { $0.value.contains("certificate not trusted") }
    XCTAssertNotNil(component, "\(components)")
    let status = try node.junctionctl(["status"])
    XCTAssertEqual(status.status, 0, status.stderr)
    XCTAssertTrue(status.stdout.contains("certificate not trusted (check the CA)"), status.stdout)
    XCTAssertTrue(status.stdout.contains("Failing since:"), status.stdout)
    XCTAssertTrue(try XCTUnwrap(node.agent).isRunning)
    XCTAssertEqual(try cluster()["synced"] as? Bool, false)
  }

  func testATokenFileRotatedWhileTheAgentRunsIsSentAndTheSyncRecovers() throws {
    try start()
    try waitUntil("the first sync") { try cluster()["synced"] as? Bool == true }
    // A rotation as a cluster does it: the new token is valid before the kubelet writes it
    // to the file the agent reads, the old one is revoked after (here at once, where a
    // cluster waits for its expiry), then every open watch is closed, so the agent makes
    // new requests, which must carry the new token. (Revoking the old one before the file
    // is rewritten would refuse whatever request the agent happens to send in between.)
    let old = api.token.trimmingCharacters(in: .whitespacesAndNewlines)
    let new = "rotated-\(getpid())"
    try "\(old)\n\(new)\n".write(
      toFile: api.directory + "/tokens", atomically: true, encoding: .utf8)
    try new.write(toFile: api.directory + "/token", atomically: true, encoding: .utf8)
    try "\(new)\n".write(toFile: api.directory + "/tokens", atomically: true, encoding: .utf8)
    try api.request("POST", "/standin/drop-watches")
    try api.createService("droids", clusterIP: "10.96.0.33")
    try waitUntil("the Service after the rotation") { try frontends().contains("10.96.0.33") }
    // A watch restarted in the instant of the rotation may be refused once (counted); every
    // one must then succeed with the file's new token and clear its error.
    try waitUntil("every collection followed again with the new token", timeout: 15) {
      let resources = try cluster()["resources"] as? [[String: Any]] ?? []
      return !resources.isEmpty && resources.allSatisfy { $0["lastError"] == nil }
    }
    XCTAssertNil(try cluster()["lastError"] as? String)
  }

  func testAWatchLineThatIsNotAnEventEndsTheWatchWhichResumesCounted() throws {
    try start()
    try waitUntil("the first sync") { try cluster()["synced"] as? Bool == true }
    try api.createService("droids", clusterIP: "10.96.0.33")
    try waitUntil("the first Service") { try frontends().contains("10.96.0.33") }
    try api.request("POST", "/standin/garbage-watches")
    func resources() throws -> [[String: Any]] {
      try cluster()["resources"] as? [[String: Any]] ?? []
    }
    try waitUntil("the broken watches counted") {
      try resources().reduce(0) { $0 + ($1["errors"] as? Int ?? 0) } >= 6
    }
    // Each watch resumed from its version: no relist, and changes flow again.
    XCTAssertEqual(try resources().reduce(0) { $0 + ($1["relists"] as? Int ?? 0) }, 0)
    try api.createService("bb8", clusterIP: "10.96.0.34")
    try waitUntil("a Service after the broken watches") { try frontends().contains("10.96.0.34") }
    XCTAssertTrue(try frontends().contains("10.96.0.33"))
    XCTAssertTrue(try XCTUnwrap(node.agent).isRunning)
  }
}
