import Foundation
import XCTest

/// ClusterIP load balancing end to end: YAML applied with junctionctl, the agent programs
/// the maps, pods reach the service and the replies come back reverse-NATed.
final class ServiceTests: XCTestCase {
  private var node: TestNode!
  private var traffic: PodTraffic!

  override func setUpWithError() throws {
    node = try TestNode(podSubnet: "10.240.8.0/24")
    traffic = PodTraffic(node: node)
  }

  override func tearDown() {
    traffic?.tearDown()
    node?.tearDown()
    super.tearDown()
  }

  private func junctionctl(_ arguments: [String], stdin: String = "") throws -> CommandOutput {
    try node.junctionctl(arguments, stdin: stdin)
  }

  private func manifest(clusterIP: String, backends: [String]) -> String {
    ServiceManifest.clusterIP(name: "droids", clusterIP: clusterIP, backends: backends)
  }

  func testAClusterIPSpreadsConnectionsOverItsBackendsAndRepliesComeFromTheVIP() throws {
    let client = try node.makePodNamespace()
    try node.addPod(client)
    var addresses: [String] = []
    for name in ["r2d2", "c3po", "bb8"] {
      let pod = try node.makePodNamespace()
      addresses.append(try node.addPod(pod))
      try traffic.startBackend(name, in: pod)
    }
    let applied = try junctionctl(
      ["apply", "-f", "-"], stdin: manifest(clusterIP: "10.96.0.10", backends: addresses))
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)
    XCTAssertTrue(applied.stdout.contains("Service default/droids configured"), applied.stdout)

    let listed = try junctionctl(["service", "list"])
    XCTAssertTrue(listed.stdout.contains("10.96.0.10:80/TCP"), listed.stdout)
    XCTAssertTrue(listed.stdout.contains("ClusterIP"), listed.stdout)
    XCTAssertTrue(
      listed.stdout.contains("1 => \(addresses.sorted()[0]):8080/TCP (active)"), listed.stdout)

    let answers = try traffic.connect(from: client, to: "10.96.0.10", port: 80, count: 60)
    XCTAssertEqual(answers.count, 60)
    XCTAssertEqual(Set(answers), ["r2d2", "c3po", "bb8"], "not every backend answered: \(answers)")
  }

  /// PreferClose on a node in zone-a: new connections go to the zone-a backend; when the
  /// node's Node object says zone-b, to the zone-b one, live.
  func testTrafficDistributionKeepsConnectionsInTheNodesZoneAndFollowsItsLabel() throws {
    let client = try node.makePodNamespace()
    try node.addPod(client)
    var addresses: [String] = []
    for name in ["r2d2", "bb8"] {
      let pod = try node.makePodNamespace()
      addresses.append(try node.addPod(pod))
      try traffic.startBackend(name, in: pod)
    }
    let nodeName = try XCTUnwrap(node.agent).name
    func nodeObject(_ zone: String) -> String {
      "apiVersion: v1\nkind: Node\nmetadata: {name: \(nodeName), labels: "
        + "{topology.kubernetes.io/zone: \(zone)}}\n"
    }
    let yaml = """
      apiVersion: v1
      kind: Service
      metadata: {name: droids, namespace: default}
      spec:
        clusterIP: 10.96.0.14
        trafficDistribution: PreferClose
        ports: [{name: http, port: 80, targetPort: 8080}]
      ---
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata: {name: droids-a, namespace: default, labels: {kubernetes.io/service-name: droids}}
      addressType: IPv4
      ports: [{name: http, port: 8080}]
      endpoints:
      - {addresses: ["\(addresses[0])"], zone: zone-a, conditions: {ready: true}}
      - {addresses: ["\(addresses[1])"], zone: zone-b, conditions: {ready: true}}
      ---
      \(nodeObject("zone-a"))
      """
    let applied = try junctionctl(["apply", "-f", "-"], stdin: yaml)
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)
    XCTAssertTrue(
      try junctionctl(["service", "list"]).stdout.contains("(not-preferred)"), "no backend left out"
    )
    XCTAssertEqual(
      Set(try traffic.connect(from: client, to: "10.96.0.14", port: 80, count: 20)), ["r2d2"])
    XCTAssertEqual(try junctionctl(["apply", "-f", "-"], stdin: nodeObject("zone-b")).status, 0)
    XCTAssertEqual(
      Set(try traffic.connect(from: client, to: "10.96.0.14", port: 80, count: 20)), ["bb8"])
  }

  func testAServiceWithoutBackendsRefusesAtOnce() throws {
    let client = try node.makePodNamespace()
    try node.addPod(client)
    let applied = try junctionctl(
      ["apply", "-f", "-"], stdin: manifest(clusterIP: "10.96.0.11", backends: []))
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)
    let started = Date()
    let answers = try traffic.connect(from: client, to: "10.96.0.11", port: 80, count: 1)
    XCTAssertEqual(answers, ["refused"])
    XCTAssertLessThan(Date().timeIntervalSince(started), 2.5, "refusal was not immediate")
    // The SYN was dropped (answered with port unreachable): junctionctl bpf drops names it.
    let drops = try junctionctl(["bpf", "drops"])
    XCTAssertEqual(drops.status, 0, drops.stderr)
    XCTAssertTrue(
      drops.stdout.contains(#/Service backend not found\s+from-endpoint\s+[1-9]/#), drops.stdout)
    let json = try junctionctl(["bpf", "drops", "-o", "json"])
    XCTAssertTrue(json.stdout.contains("\"reasonCode\" : 5"), json.stdout)
  }

  func testBadYAMLIsRejectedWithFieldPathsAndChangesNothing() throws {
    let good = try junctionctl(
      ["apply", "-f", "-"], stdin: manifest(clusterIP: "10.96.0.12", backends: ["10.240.8.200"]))
    XCTAssertEqual(good.status, 0, good.stderr)
    let before = try junctionctl(["service", "list", "-o", "json"]).stdout

    let bad = """
      apiVersion: v1
      kind: Service
      metadata: {name: broken, namespace: default}
      spec:
        clusterIP: 10.96.0.300
        ports:
        - {name: http, port: 70000}
        - {name: http, port: 81}
      """
    let result = try junctionctl(["apply", "-f", "-"], stdin: bad)
    XCTAssertEqual(result.status, 1)
    for needle in ["spec.clusterIP", "spec.ports[0].port", "70000", "nothing was applied"] {
      XCTAssertTrue(result.stderr.contains(needle), "missing \(needle) in: \(result.stderr)")
    }
    let wrongVersion = try junctionctl(
      ["apply", "-f", "-"],
      stdin: "apiVersion: apps/v1\nkind: Service\nmetadata: {name: x}\nspec: {}\n")
    XCTAssertEqual(wrongVersion.status, 1)
    XCTAssertTrue(wrongVersion.stderr.contains("apiVersion"), wrongVersion.stderr)
    XCTAssertEqual(try junctionctl(["service", "list", "-o", "json"]).stdout, before)
  }

  func testServicesSurviveAgentRestartsAndATornJournalRecordAndDeleteRemovesThem() throws {
    let yaml = manifest(clusterIP: "10.96.0.13", backends: ["10.240.8.201"])
    XCTAssertEqual(try junctionctl(["apply", "-f", "-"], stdin: yaml).status, 0)
    let before = try junctionctl(["service", "list", "-o", "json"]).stdout
    try XCTUnwrap(node.agent).restart()
    XCTAssertEqual(try junctionctl(["service", "list", "-o", "json"]).stdout, before)
    // A change after the restart goes to the journal; a record torn by a crash mid-append
    // after it is dropped at the next start, with a warning, and the change before it kept.
    let changed = manifest(clusterIP: "10.96.0.13", backends: ["10.240.8.202"])
    XCTAssertEqual(try junctionctl(["apply", "-f", "-"], stdin: changed).status, 0)
    let afterChange = try junctionctl(["service", "list", "-o", "json"]).stdout
    XCTAssertNotEqual(afterChange, before)
    let agent = try XCTUnwrap(node.agent)
    let journal = agent.stateDir + "/services/journal.jsonl"
    let handle = try XCTUnwrap(FileHandle(forWritingAtPath: journal), "no journal at \(journal)")
    handle.seekToEndOfFile()
    handle.write(Data("{\"sequence\":99,\"stored\":[".utf8))
    handle.closeFile()
    try agent.restart()
    XCTAssertEqual(try junctionctl(["service", "list", "-o", "json"]).stdout, afterChange)
    XCTAssertTrue(agent.log.contains("dropped a torn last record"), agent.log)
    XCTAssertFalse(FileManager.default.fileExists(atPath: journal), "the journal was not folded")
    let deleted = try junctionctl(["delete", "-f", "-"], stdin: changed)
    XCTAssertEqual(deleted.status, 0, deleted.stderr)
    XCTAssertEqual(
      try junctionctl(["service", "list", "-o", "json"]).stdout.trimmingCharacters(
        in: .whitespacesAndNewlines), "[]")
  }
}
