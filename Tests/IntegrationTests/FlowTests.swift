import Foundation
import XCTest

/// Flows end to end: pods made through the real plugin with their Kubernetes names, a
/// ClusterIP Service applied with junctionctl, traffic between the pods, and
/// `junctionctl observe` reading what the datapath reported (GET /v1/flows).
final class FlowTests: XCTestCase {
  private var node: TestNode!
  private var traffic: PodTraffic!
  private var followers: [Process] = []

  override func setUpWithError() throws {
    node = try TestNode(podSubnet: "10.240.27.0/24")
    traffic = PodTraffic(node: node)
  }

  override func tearDown() {
    for process in followers where process.isRunning {
      process.terminate()
      process.waitUntilExit()
    }
    traffic?.tearDown()
    node?.tearDown()
    super.tearDown()
  }

  private func junctionctl(_ arguments: [String], stdin: String = "") throws -> CommandOutput {
    try node.junctionctl(arguments, stdin: stdin)
  }

  private func pod(_ namespace: String, _ name: String) throws -> (netns: String, address: String) {
    try node.addNamedPod(namespace, name)
  }

  /// client (default) → Service default/droids 10.96.27.10:80 → r2d2 (droids); and the
  /// Service default/empty 10.96.27.11:80 without backends.
  private func connectThroughAService() throws -> (client: String, backend: String) {
    let client = try pod("default", "client")
    let backend = try pod("droids", "r2d2")
    try traffic.startBackend("r2d2", in: backend.netns)
    let yaml =
      ServiceManifest.clusterIP(
        name: "droids", clusterIP: "10.96.27.10", backends: [backend.address])
      + "\n---\n" + ServiceManifest.clusterIP(name: "empty", clusterIP: "10.96.27.11", backends: [])
    let applied = try junctionctl(["apply", "-f", "-"], stdin: yaml)
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)
    XCTAssertEqual(
      try traffic.connect(from: client.netns, to: "10.96.27.10", port: 80, count: 1), ["r2d2"])
    XCTAssertEqual(
      try traffic.connect(from: client.netns, to: "10.96.27.11", port: 80, count: 1), ["refused"])
    return (client.netns, backend.netns)
  }

  /// `observe` output once it has at least `lines` lines (the consumer polls the ring
  /// every 20 ms), or what it has after 3 s.
  private func observe(_ arguments: [String], atLeast lines: Int) throws -> CommandOutput {
    var output = try junctionctl(["observe"] + arguments)
    let deadline = Date().addingTimeInterval(3)
    while output.stdout.split(separator: "\n").count < lines, Date() < deadline {
      usleep(100_000)
      output = try junctionctl(["observe"] + arguments)
    }
    return output
  }

  func testObserveShowsTheClientTheServiceAndTheBackendWithSYNAndFINAndDropsInWords() throws {
    _ = try connectThroughAService()
    let all = try observe(["--last", "100"], atLeast: 5)
    XCTAssertEqual(all.status, 0, all.stderr)
    let lines = all.stdout.split(separator: "\n").map(String.init)
    func has(_ pattern: Regex<Substring>, _ what: String) {
      XCTAssertTrue(lines.contains { $0.contains(pattern) }, "\(what) in:\n\(all.stdout)")
    }
    let time = #/^[A-Z][a-z]{2} [ 1-3][0-9] \d\d:\d\d:\d\d\.\d{3}: /#
    XCTAssertTrue(lines.allSatisfy { $0.contains(time) }, all.stdout)
    has(
      #/default/client:\d+ -> droids/r2d2:8080 \(service default/droids 10\.96\.27\.10:80\) from-endpoint FORWARDED \(TCP Flags: SYN\)$/#,
      "the client's SYN, translated")
    has(
      #/default/client:\d+ -> droids/r2d2:8080 to-endpoint FORWARDED \(TCP Flags: SYN\)$/#,
      "the SYN delivered to the backend")
    has(#/default/client:\d+ [-<]. droids/r2d2:8080 .*FIN/#, "a FIN")
    has(
      #/default/client:\d+ <> default/empty:80 Service backend not found DROPPED \(TCP Flags: SYN\)$/#,
      "the drop, its reason in words")

    // The same as JSON, one flow per line, filtered by verdict.
    let drops = try junctionctl(["observe", "--verdict", "DROPPED", "-o", "json"])
    XCTAssertEqual(drops.status, 0, drops.stderr)
    let dropLines = drops.stdout.split(separator: "\n")
    XCTAssertGreaterThanOrEqual(dropLines.count, 1, drops.stdout)
    for line in dropLines {
      let object = try XCTUnwrap(
        try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
      let flow = try XCTUnwrap(object["flow"] as? [String: Any], String(line))
      XCTAssertEqual(flow["verdict"] as? String, "DROPPED")
      XCTAssertEqual(flow["dropReason"] as? String, "Service backend not found")
      XCTAssertEqual(flow["dropReasonCode"] as? Int, 5)
      XCTAssertEqual((flow["destinationService"] as? [String: Any])?["name"] as? String, "empty")
    }
  }

  /// A backend on another node: no endpoint here and no Pod object, only its slice's
  /// targetRef (as the EndpointSlice controller writes it) names it in flows.
  func testAFlowToABackendOnAnotherNodeNamesItsPod() throws {
    let client = try pod("default", "client")
    let yaml = """
      apiVersion: v1
      kind: Service
      metadata: {name: remote, namespace: default}
      spec:
        type: ClusterIP
        clusterIP: 10.96.27.12
        ports:
        - {name: http, port: 80, protocol: TCP, targetPort: 8080}
      ---
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata:
        name: remote-1
        namespace: default
        labels: {kubernetes.io/service-name: remote}
      addressType: IPv4
      ports:
      - {name: http, port: 8080, protocol: TCP}
      endpoints:
      - addresses: ["10.240.99.7"]
        conditions: {ready: true}
        nodeName: node2
        targetRef: {kind: Pod, namespace: droids, name: c3po}
      """
    let applied = try junctionctl(["apply", "-f", "-"], stdin: yaml)
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)
    // Nothing answers at 10.240.99.7 (there is no node2): the SYN is translated and sent,
    // which is the flow wanted; the connection itself times out or fails.
    _ = try traffic.connect(from: client.netns, to: "10.96.27.12", port: 80, count: 1)
    let output = try observe(["--last", "100", "--to-pod", "droids/c3po"], atLeast: 1)
    XCTAssertEqual(output.status, 0, output.stderr)
    XCTAssertTrue(
      output.stdout.contains(
        #/default/client:\d+ -> droids/c3po:8080 \(service default/remote 10\.96\.27\.12:80\) from-endpoint FORWARDED \(TCP Flags: SYN\)/#
      ), output.stdout)
  }

  func testFiltersSelectOnlyWhatTheySay() throws {
    _ = try connectThroughAService()
    let all = try observe(["--last", "100"], atLeast: 5).stdout
    let toBackend = try junctionctl(["observe", "--to-pod", "droids/r2d2"])
    XCTAssertEqual(toBackend.status, 0, toBackend.stderr)
    let toLines = toBackend.stdout.split(separator: "\n")
    XCTAssertGreaterThanOrEqual(toLines.count, 2, toBackend.stdout + "\nof\n" + all)
    // To the backend: on the right, whether the datapath knows it is no reply (->) or not (<>).
    XCTAssertTrue(
      toLines.allSatisfy { $0.contains(#/ (->|<>) droids/r2d2:8080/#) }, toBackend.stdout)

    let drops = try junctionctl(["observe", "--type", "drop", "--from-pod", "default/client"])
    let dropLines = drops.stdout.split(separator: "\n")
    XCTAssertGreaterThanOrEqual(dropLines.count, 1, drops.stdout)
    XCTAssertTrue(dropLines.allSatisfy { $0.contains("DROPPED") }, drops.stdout)

    let port = try junctionctl(["observe", "--to-port", "80", "--to-service", "default/droids"])
    XCTAssertTrue(
      port.stdout.split(separator: "\n").allSatisfy { $0.contains("(service default/droids") },
      port.stdout)
    XCTAssertEqual(try junctionctl(["observe", "--from-pod", "default/nobody"]).stdout, "")
    XCTAssertEqual(
      try junctionctl(["observe", "--last", "1"]).stdout.split(separator: "\n").count, 1)
    XCTAssertGreaterThanOrEqual(
      try junctionctl(["observe", "--since", "1h"]).stdout.split(separator: "\n").count, 5)
    XCTAssertEqual(try junctionctl(["observe", "--since", "2099-01-01T00:00:00Z"]).stdout, "")
    XCTAssertEqual(try junctionctl(["observe", "--ip", "192.168.0.0/16"]).stdout, "")
    XCTAssertEqual(try junctionctl(["observe", "--protocol", "udp"]).stdout, "")

    let bad = try junctionctl(["observe", "--verdict", "MAYBE"])
    XCTAssertNotEqual(bad.status, 0)
    XCTAssertTrue(bad.stderr.contains("MAYBE"), bad.stderr)
  }

  /// `junctionctl observe -f` with `arguments`, running until the test ends: the process,
  /// its standard output and error, and what it has written so far.
  private func follow(_ arguments: [String]) throws -> (
    process: Process, pipe: Pipe, errors: Pipe, output: () -> String
  ) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Artifacts.junctionctl)
    process.arguments = ["--socket", node.agentSocket, "observe", "-f"] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    let errors = Pipe()
    process.standardError = errors
    let received = NSMutableString(string: "")
    let lock = NSLock()
    pipe.fileHandleForReading.readabilityHandler = { handle in
      let text = String(decoding: handle.availableData, as: UTF8.self)
      lock.lock()
      received.append(text)
      lock.unlock()
    }
    try process.run()
    followers.append(process)
    usleep(500_000)  // connected and following
    XCTAssertTrue(process.isRunning)
    return (
      process, pipe, errors,
      {
        lock.lock()
        defer { lock.unlock() }
        return received as String
      }
    )
  }

  /// What `output` has once it contains `text`, or after `seconds`.
  private func waitFor(_ text: String, in output: () -> String, seconds: TimeInterval) -> String {
    let start = Date()
    var seen = output()
    while !seen.contains(text), Date().timeIntervalSince(start) < seconds {
      usleep(20_000)
      seen = output()
    }
    return seen
  }

  /// The names a follower gives flows are rebuilt when the Services change (and only then):
  /// a Service applied after it started is named in its flows.
  func testAFollowerNamesAServiceAppliedAfterItStarted() throws {
    let client = try pod("default", "client")
    let backend = try pod("droids", "r2d2")
    try traffic.startBackend("r2d2", in: backend.netns)
    let (_, _, _, output) = try follow(["--to-pod", "droids/r2d2"])
    // A flow before the Service exists, so the follower has named a batch already.
    XCTAssertEqual(
      try traffic.connect(from: client.netns, to: backend.address, port: 8080, count: 1), ["r2d2"])
    _ = waitFor("TCP Flags: SYN)", in: output, seconds: 2)

    let applied = try junctionctl(
      ["apply", "-f", "-"],
      stdin: ServiceManifest.clusterIP(
        name: "droids", clusterIP: "10.96.27.10", backends: [backend.address]))
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)
    usleep(1_200_000)  // past the follower's once-a-second look at the names
    XCTAssertEqual(
      try traffic.connect(from: client.netns, to: "10.96.27.10", port: 80, count: 1), ["r2d2"])
    let seen = waitFor("(service default/droids 10.96.27.10:80)", in: output, seconds: 3)
    XCTAssertTrue(
      seen.contains("(service default/droids 10.96.27.10:80)"),
      "the follower did not name the Service applied after it started:\n\(seen)")
  }

  func testFollowStreamsANewFlowWithinASecond() throws {
    let client = try pod("default", "client")
    let backend = try pod("droids", "r2d2")
    try traffic.startBackend("r2d2", in: backend.netns)
    let (process, pipe, errors, output) = try follow(["--to-pod", "droids/r2d2"])

    let answers = try traffic.connect(from: client.netns, to: backend.address, port: 8080, count: 1)
    XCTAssertEqual(answers, ["r2d2"])
    let seen = waitFor("TCP Flags: SYN)", in: output, seconds: 1)
    XCTAssertTrue(
      seen.contains(
        #/default/client:\d+ -> droids/r2d2:8080 to-endpoint FORWARDED \(TCP Flags: SYN\)/#),
      "no SYN within 1 s of the connection: \(seen)")
    let wasRunning = process.isRunning
    // A follower does not hold the agent up: SIGTERM stops it in time (TestAgent.stop fails
    // the test otherwise), and the streamed answer ends, so observe -f exits.
    let started = Date()
    XCTAssertEqual(try XCTUnwrap(node.agent).stop(), 0)
    XCTAssertLessThan(Date().timeIntervalSince(started), 5)
    let exited = Date().addingTimeInterval(5)
    while process.isRunning, Date() < exited { usleep(50_000) }
    XCTAssertFalse(process.isRunning, "observe -f still running after the agent stopped")
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    XCTAssertTrue(wasRunning, "observe -f ended: \(stderr)")
    pipe.fileHandleForReading.readabilityHandler = nil
  }
}
