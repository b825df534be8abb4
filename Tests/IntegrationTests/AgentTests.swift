import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// The node agent as a process: its API refuses bad input without changing state, its
/// socket is root-only, it shuts down and restarts cleanly, keeps and reconciles its state,
/// replays the CNI plugin's deletion queue, and several agents share a machine.
///
/// Each agent runs inside its own "node" network namespace (as the lab does), so the
/// veths that stand for pods' host interfaces never touch the test machine's namespace.
final class AgentTests: XCTestCase {
  private var nodes: [AgentNode] = []
  private var agents: [TestAgent] = []

  override func tearDown() {
    for agent in agents { agent.tearDown() }
    for node in nodes { node.tearDown() }
    agents = []
    nodes = []
    super.tearDown()
  }

  private func makeNode() throws -> AgentNode {
    try TestAgent.requirePrerequisites()
    let node = try AgentNode()
    nodes.append(node)
    return node
  }

  private func makeAgent(in node: AgentNode?, arguments: [String] = []) throws -> TestAgent {
    let agent = try TestAgent(namespace: node?.name, arguments: arguments)
    agents.append(agent)
    return agent
  }

  /// The endpoint list as canonical JSON, to compare before and after.
  private func snapshot(_ agent: TestAgent) throws -> String {
    let response = try agent.request("GET", "/v1/endpoints")
    XCTAssertEqual(response.status, 200, response.text)
    let object = try JSONSerialization.jsonObject(with: response.body)
    return String(
      decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]),
      as: UTF8.self)
  }

  private static func id(_ spec: [String: Any]) -> String {
    "\(spec["containerID"]!):\(spec["ifname"]!)"
  }

  private static func json(_ object: Any) -> Data {
    try! JSONSerialization.data(withJSONObject: object)
  }

  // MARK: - Bad input

  func testBadInputIsAnswered4xxWithAMessageAndChangesNothing() throws {
    let node = try makeNode()
    let agent = try makeAgent(in: node)
    let spec = try node.addPod()
    let id = Self.id(spec)
    try agent.register(spec)
    let before = try snapshot(agent)
    let filesBefore = agent.stateFiles()
    XCTAssertEqual(filesBefore, ["endpoints", "endpoints/\(id).json"])

    func expect(
      _ status: Int, _ method: String, _ path: String, body: Data? = nil,
      headers: [String: String] = [:], mentioning words: [String] = [],
      file: StaticString = #filePath, line: UInt = #line
    ) throws {
      let response = try agent.request(method, path, body: body, headers: headers)
      XCTAssertEqual(
        response.status, status, "\(method) \(path): \(response.text)", file: file, line: line)
      let message = try XCTUnwrap(
        response.errorMessage, "\(method) \(path): no error message in \(response.text)",
        file: file, line: line)
      XCTAssertFalse(message.isEmpty, file: file, line: line)
      for word in words {
        XCTAssertTrue(
          message.contains(word), "\"\(message)\" does not mention \(word)", file: file, line: line)
      }
      XCTAssertEqual(
        try snapshot(agent), before, "state changed after \(method) \(path)", file: file, line: line
      )
      XCTAssertEqual(agent.stateFiles(), filesBefore, file: file, line: line)
    }

    let path = "/v1/endpoints/\(id)"
    func with(_ changes: [String: Any?]) -> Data {
      var edited = spec
      for (key, value) in changes { edited[key] = value }
      return Self.json(edited)
    }

    // Malformed JSON, not an object, empty.
    try expect(
      400, "PUT", path, body: Data("{\"containerID\": ".utf8), mentioning: ["malformed JSON"])
    try expect(400, "PUT", path, body: Data("[1, 2]".utf8), mentioning: ["JSON object"])
    try expect(400, "PUT", path, body: Data(), mentioning: ["empty"])
    // Unknown fields, each named.
    try expect(
      400, "PUT", path, body: with(["bogus": 1, "hostIfIndex": 3]),
      mentioning: ["'bogus'", "'hostIfIndex'"])
    // Wrong types, the field named.
    try expect(
      400, "PUT", path, body: with(["hostIfindex": "12"]), mentioning: ["hostIfindex", "integer"])
    try expect(400, "PUT", path, body: with(["hostIfindex": 1.5]), mentioning: ["hostIfindex"])
    try expect(400, "PUT", path, body: with(["ips": "10.0.0.1/32"]), mentioning: ["ips", "array"])
    try expect(400, "PUT", path, body: with(["ips": [1]]), mentioning: ["ips[0]"])
    try expect(400, "PUT", path, body: with(["netns": NSNull()]), mentioning: ["netns"])
    // Missing required fields.
    try expect(400, "PUT", path, body: with(["netns": nil]), mentioning: ["missing", "netns"])
    // Values that break the rules (here on the registered id: a bad replacement).
    try expect(400, "PUT", path, body: with(["hostIfindex": 0]), mentioning: ["hostIfindex"])
    try expect(400, "PUT", path, body: with(["ips": ["10.0.0.300/32"]]), mentioning: ["ips[0]"])
    try expect(400, "PUT", path, body: with(["netns": "relative/ns"]), mentioning: ["netns"])
    try expect(400, "PUT", path, body: with(["mac": "not-a-mac"]), mentioning: ["mac"])
    try expect(400, "PUT", "/v1/endpoints/other:eth0", body: with([:]), mentioning: ["path"])
    // Over 1 MiB: by Content-Length, and chunked without one.
    let big = with(["podName": String(repeating: "a", count: 2 << 20)])
    try expect(413, "PUT", path, body: big, mentioning: ["1048576"])
    try expect(
      413, "PUT", path, body: Self.chunked(big), headers: ["Transfer-Encoding": "chunked"],
      mentioning: ["1048576"])
    // Ids with '/' (encoded, or raw: extra segments) or "..".
    for bad in [
      "ctr%2Fx:eth0", "..", "%2E%2E", "ctr:eth0%2F..%2F..", "a/b:eth0", "../../etc", "ctr..x:eth0",
    ] {
      for method in ["GET", "PUT", "DELETE"] {
        try expect(
          400, method, "/v1/endpoints/\(bad)", body: method == "PUT" ? with([:]) : nil,
          mentioning: ["endpoint id"])
      }
    }
    // Unknown ids, methods and paths.
    try expect(404, "DELETE", "/v1/endpoints/unknown:eth0", mentioning: ["unknown:eth0"])
    try expect(404, "GET", "/v1/endpoints/unknown:eth0", mentioning: ["unknown:eth0"])
    try expect(405, "POST", "/v1/endpoints", body: with([:]), mentioning: ["POST"])
    try expect(404, "GET", "/v1/nothing-here")
    let allow = try agent.request("PATCH", path)
    XCTAssertEqual(allow.headers["allow"], "GET, PUT, DELETE")

    // And the valid request still works afterwards.
    XCTAssertEqual(try agent.request("DELETE", path).status, 204)
    XCTAssertEqual(try agent.endpointIDs(), [])
    XCTAssertEqual(agent.stateFiles(), ["endpoints"])
  }

  func testRequestsWhileShuttingDownAre503() throws {
    let node = try makeNode()
    // --shutdown-grace (hidden, for tests): after SIGTERM, answer 503 for that long.
    let agent = try makeAgent(in: node, arguments: ["--shutdown-grace", "5"])
    let kept = try node.addPod()
    let late = try node.addPod()
    try agent.register(kept)
    let files = agent.stateFiles()

    agent.signalTerminate()
    var health: HTTPResponse?
    let deadline = Date().addingTimeInterval(5)
    while Date() < deadline {
      if let response = try? agent.request("GET", "/v1/healthz"), response.status == 503 {
        health = response
        break
      }
      usleep(20_000)
    }
    let response = try XCTUnwrap(health, "healthz never answered 503 after SIGTERM:\n\(agent.log)")
    XCTAssertEqual((response.json as? [String: Any])?["status"] as? String, "shutting-down")
    XCTAssertEqual(response.errorMessage, "the agent is shutting down")

    for (method, path, body) in [
      ("PUT", "/v1/endpoints/\(Self.id(late))", Self.json(late)),
      ("DELETE", "/v1/endpoints/\(Self.id(kept))", nil),
      ("GET", "/v1/endpoints", nil),
      ("GET", "/v1/config", nil),
    ] as [(String, String, Data?)] {
      let answer = try agent.request(method, path, body: body)
      XCTAssertEqual(answer.status, 503, "\(method) \(path): \(answer.text)")
      XCTAssertEqual(answer.errorMessage, "the agent is shutting down")
    }

    XCTAssertEqual(agent.waitForExit(timeout: 20), 0, agent.log)
    XCTAssertFalse(
      FileManager.default.fileExists(atPath: agent.socketPath), "the socket was left behind")
    XCTAssertEqual(agent.stateFiles(), files, "a request during shutdown changed the state")
  }

  // MARK: - The socket

  func testSocketIsRootOnlyAndRefusesOtherUsers() throws {
    let node = try makeNode()
    let agent = try makeAgent(in: node)
    var info = stat()
    XCTAssertEqual(lstat(agent.socketPath, &info), 0)
    XCTAssertEqual(info.st_mode & S_IFMT, S_IFSOCK)
    XCTAssertEqual(info.st_mode & 0o7777, 0o600, String(info.st_mode, radix: 8))
    XCTAssertEqual(info.st_uid, 0)
    XCTAssertEqual(info.st_gid, 0)
    // The directories on the way are searchable, so only the socket's mode refuses.
    XCTAssertEqual(stat((agent.socketPath as NSString).deletingLastPathComponent, &info), 0)
    XCTAssertEqual(info.st_mode & 0o005, 0o005)

    XCTAssertEqual(try agent.request("GET", "/v1/healthz").status, 200)
    let drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    if FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") {
      let script = """
        import socket, sys
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(sys.argv[1])
            print("connected")
        except PermissionError:
            print("EACCES")
        except OSError as e:
            print("errno", e.errno)
        """
      let result = try Shell.run(drop + ["/usr/bin/python3", "-c", script, agent.socketPath])
      XCTAssertEqual(
        result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "EACCES", result.stderr)
    } else if FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") {
      let result = try Shell.run(
        drop + [
          "/usr/bin/curl", "-sS", "--unix-socket", agent.socketPath, "http://agent/v1/healthz",
        ])
      XCTAssertEqual(result.status, 7, "curl as nobody: \(result.stdout) \(result.stderr)")
      XCTAssertTrue(result.stderr.contains("Permission denied"), result.stderr)
    } else {
      throw TestNode.missing("neither python3 nor curl to act as a non-root client")
    }
  }

  func testStaleSocketFromAKilledAgentIsReplacedAtRestart() throws {
    let node = try makeNode()
    let agent = try makeAgent(in: node)
    let spec = try node.addPod()
    try agent.register(spec)
    agent.kill()

    var info = stat()
    XCTAssertEqual(lstat(agent.socketPath, &info), 0, "a crash leaves the socket file")
    XCTAssertThrowsError(try agent.request("GET", "/v1/healthz")) { error in
      XCTAssertEqual((error as? UnixHTTP.Failure)?.connectErrno, ECONNREFUSED)
    }

    try agent.start()
    XCTAssertTrue(agent.log.contains("removed a stale socket"), agent.log)
    XCTAssertEqual(try agent.request("GET", "/v1/healthz").status, 200)
    XCTAssertEqual(try agent.endpointIDs(), [Self.id(spec)])
    XCTAssertEqual(agent.stop(), 0)
  }

  func testSecondAgentOnAnInUseSocketExitsWithOneLine() throws {
    // This one runs in the test's own namespaces: the agent mounts its bpffs itself, and
    // tearDown unmounts it.
    try TestAgent.requirePrerequisites()
    let agent = try makeAgent(in: nil)
    XCTAssertEqual(TestAgent.mounts(under: agent.directory.path), [agent.bpfFS])
    var before = stat()
    lstat(agent.socketPath, &before)
    let other = agent.directory.appendingPathComponent("second")
    let result = try TestAgent.runOnce([
      "--socket", agent.socketPath, "--state-dir", other.appendingPathComponent("state").path,
      "--bpf-fs", other.appendingPathComponent("bpf").path, "--bpf-objects", TestAgent.bpfObjects,
    ])
    XCTAssertEqual(result.status, 1, result.stderr)
    let lines = result.stderr.split(separator: "\n")
    XCTAssertEqual(lines.count, 1, result.stderr)
    XCTAssertEqual(
      lines.first.map(String.init),
      "junction-agent: socket \(agent.socketPath) is in use by another agent")

    // The first agent is untouched.
    var after = stat()
    lstat(agent.socketPath, &after)
    XCTAssertEqual(after.st_ino, before.st_ino)
    XCTAssertEqual(try agent.request("GET", "/v1/healthz").status, 200)
    XCTAssertTrue(TestAgent.mounts(under: other.path).isEmpty)
  }

  func testUnreadableOrInvalidConfigExitsWithOneLine() throws {
    try TestAgent.requirePrerequisites()
    let directory = URL(fileURLWithPath: NSTemporaryDirectory())
      .appendingPathComponent(TestNode.uniqueName("c"))
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let invalid = directory.appendingPathComponent("invalid.json")
    try Data("{\"socket\": ".utf8).write(to: invalid)
    let unknown = directory.appendingPathComponent("unknown.json")
    try Data("{\"sockets\": \"/x\"}".utf8).write(to: unknown)

    for (config, words) in [
      (
        directory.appendingPathComponent("missing.json").path,
        ["cannot read config", "No such file"]
      ),
      (directory.path, ["cannot read config", "directory"]),
      (invalid.path, ["not valid JSON"]),
      (unknown.path, ["unknown key 'sockets'"]),
    ] {
      let result = try TestAgent.runOnce([
        "--config", config, "--socket", directory.appendingPathComponent("run/agent.sock").path,
        "--state-dir", directory.appendingPathComponent("state").path,
        "--bpf-fs", directory.appendingPathComponent("bpf").path,
      ])
      XCTAssertEqual(result.status, 1, "\(config): \(result.stderr)")
      let lines = result.stderr.split(separator: "\n")
      XCTAssertEqual(lines.count, 1, "\(config): \(result.stderr)")
      let line = String(lines.first ?? "")
      XCTAssertTrue(line.hasPrefix("junction-agent: "), line)
      XCTAssertTrue(line.contains(config), line)
      for word in words { XCTAssertTrue(line.contains(word), "\(line) does not mention \(word)") }
    }
    // Refused before touching anything.
    for name in ["run", "state", "bpf"] {
      XCTAssertFalse(
        FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path), name)
    }
  }

  // MARK: - Several agents

  func testTwoAgentsOnOneMachineEachKeepTheirOwnEndpoints() throws {
    let nodeA = try makeNode()
    let nodeB = try makeNode()
    let agentA = try makeAgent(in: nodeA)
    let agentB = try makeAgent(in: nodeB)
    let specA = try nodeA.addPod()
    let specB = try nodeB.addPod()
    try agentA.register(specA)
    try agentB.register(specB)

    XCTAssertEqual(try agentA.endpointIDs(), [Self.id(specA)])
    XCTAssertEqual(try agentB.endpointIDs(), [Self.id(specB)])
    XCTAssertEqual(agentA.stateFiles(), ["endpoints", "endpoints/\(Self.id(specA)).json"])
    XCTAssertEqual(agentB.stateFiles(), ["endpoints", "endpoints/\(Self.id(specB)).json"])
    for agent in [agentA, agentB] {
      let config = try XCTUnwrap(try agent.request("GET", "/v1/config").json as? [String: Any])
      XCTAssertEqual(config["socket"] as? String, agent.socketPath)
      XCTAssertEqual(config["stateDir"] as? String, agent.stateDir)
      XCTAssertEqual(config["bpfFS"] as? String, agent.bpfFS)
      XCTAssertEqual(config["nodeName"] as? String, agent.name)
      XCTAssertTrue((config["fromEndpointProgram"] as? String ?? "").hasPrefix(agent.bpfFS + "/"))
    }

    // Stopping one leaves the other serving, with its endpoints.
    XCTAssertEqual(agentA.stop(), 0)
    XCTAssertFalse(FileManager.default.fileExists(atPath: agentA.socketPath))
    XCTAssertEqual(try agentB.request("GET", "/v1/healthz").status, 200)
    XCTAssertEqual(try agentB.endpointIDs(), [Self.id(specB)])
    try agentA.start()
    XCTAssertEqual(try agentA.endpointIDs(), [Self.id(specA)])
  }

  // MARK: - State

  func testEndpointsSurviveARestartAndStaleOnesAreReconciledAway() throws {
    let node = try makeNode()
    let agent = try makeAgent(in: node)
    let live = try node.addPod()
    // Its host interface outlives the pod namespace: only the netns goes.
    let netnsGone = try node.addPod(hostOutlivesPod: true)
    let linkGone = try node.addPod()
    for spec in [live, netnsGone, linkGone] { try agent.register(spec) }
    let created = try XCTUnwrap(
      try agent.endpoints().first { $0["id"] as? String == Self.id(live) }?["createdAt"] as? String)
    for id in [live, netnsGone, linkGone].map(Self.id) {
      var info = stat()
      XCTAssertEqual(stat(agent.stateDir + "/endpoints/\(id).json", &info), 0)
      XCTAssertEqual(info.st_mode & 0o777, 0o600)
    }

    XCTAssertEqual(agent.stop(), 0)
    try node.deletePod(netnsGone)
    try node.deleteHostInterface(linkGone)
    try agent.start()

    let endpoints = try agent.endpoints()
    XCTAssertEqual(endpoints.compactMap { $0["id"] as? String }, [Self.id(live)], agent.log)
    XCTAssertEqual(endpoints.first?["createdAt"] as? String, created)
    XCTAssertEqual(agent.stateFiles(), ["endpoints", "endpoints/\(Self.id(live)).json"])
    let log = agent.log
    XCTAssertTrue(log.contains("netns \(netnsGone["netns"]!) no longer exists"), log)
    XCTAssertTrue(
      log.contains("host interface \(linkGone["hostInterface"]!) no longer exists"), log)
  }

  func testAPutThatCannotBePersistedIs500AndChangesNothing() throws {
    let node = try makeNode()
    let agent = try makeAgent(in: node)
    let spec = try node.addPod()
    // A file where the endpoints directory should be: every state write fails (root
    // ignores permissions, so a mode would not do).
    let endpoints = agent.stateDir + "/endpoints"
    try FileManager.default.removeItem(atPath: endpoints)
    try Data().write(to: URL(fileURLWithPath: endpoints))

    let refused = try agent.request("PUT", "/v1/endpoints/\(Self.id(spec))", json: spec)
    XCTAssertEqual(refused.status, 500, refused.text)
    XCTAssertTrue(refused.errorMessage?.contains("nothing changed") ?? false, refused.text)
    XCTAssertEqual(try agent.endpointIDs(), [])
    let health = try XCTUnwrap(try agent.request("GET", "/v1/healthz").json as? [String: Any])
    XCTAssertEqual(health["status"] as? String, "degraded")
    XCTAssertTrue(((health["components"] as? [String: String])?["state"] ?? "").hasPrefix("error:"))

    // Once the directory is back, the same request succeeds and health recovers.
    try FileManager.default.removeItem(atPath: endpoints)
    try FileManager.default.createDirectory(atPath: endpoints, withIntermediateDirectories: false)
    XCTAssertEqual(try agent.register(spec).status, 201)
    let recovered = try XCTUnwrap(try agent.request("GET", "/v1/healthz").json as? [String: Any])
    XCTAssertEqual((recovered["components"] as? [String: String])?["state"], "ok")
  }

  func testTheDeletionQueueIsReplayedAtStart() throws {
    let node = try makeNode()
    let agent = try makeAgent(in: node)
    let queued = try node.addPod()
    let kept = try node.addPod()
    try agent.register(queued)
    try agent.register(kept)
    XCTAssertEqual(agent.stop(), 0)

    // What the CNI plugin writes on DEL while the agent is down (AgentCore.DeleteQueue).
    let queue = URL(fileURLWithPath: agent.socketPath).deletingLastPathComponent()
      .appendingPathComponent("delete-queue")
    try FileManager.default.createDirectory(at: queue, withIntermediateDirectories: true)
    // Queued now, after the registrations: a record older than its endpoint's registration
    // is a later ADD's, which the agent keeps (DeleteQueue.action).
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    let now = formatter.string(from: Date())
    func record(_ spec: [String: Any], socket: String? = nil) -> Data {
      var object: [String: Any] = [
        "id": Self.id(spec), "containerID": spec["containerID"]!, "ifname": spec["ifname"]!,
        "queuedAt": now,
      ]
      if let socket { object["socket"] = socket }
      return Self.json(object)
    }
    try record(queued).write(to: queue.appendingPathComponent("\(Self.id(queued)).json"))
    // For another agent whose socket shares the directory: not this agent's to apply.
    let foreign = "other-agent-\(Self.id(kept)).json"
    try record(
      kept, socket: queue.deletingLastPathComponent().appendingPathComponent("other.sock").path
    )
    .write(to: queue.appendingPathComponent(foreign))
    try Data("{\"id\": ".utf8).write(to: queue.appendingPathComponent("junk.json"))

    try agent.start()
    XCTAssertEqual(try agent.endpointIDs(), [Self.id(kept)], agent.log)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: queue.path), [foreign])
    XCTAssertEqual(agent.stateFiles(), ["endpoints", "endpoints/\(Self.id(kept)).json"])
    XCTAssertTrue(agent.log.contains("endpoint deregistered from the deletion queue"), agent.log)
  }

  // MARK: - Requests the plugin issued in one order, read in another

  private static let issuedAt = "Junction-Issued-At"

  func testARequestIssuedBeforeANewerOneOfTheSameEndpointChangesNothing() throws {
    let node = try makeNode()
    let agent = try makeAgent(in: node)
    let spec = try node.addPod()
    let path = "/v1/endpoints/\(Self.id(spec))"
    let body = Self.json(spec)
    func put(_ issued: String?) throws -> HTTPResponse {
      try agent.request("PUT", path, body: body, headers: issued.map { [Self.issuedAt: $0] } ?? [:])
    }
    func delete(_ issued: String) throws -> HTTPResponse {
      try agent.request("DELETE", path, headers: [Self.issuedAt: issued])
    }

    // DEL of an endpoint the agent does not know (yet): 404, and it orders what comes later.
    XCTAssertEqual(try delete("2000").status, 404)
    let stale = try put("1000")
    XCTAssertEqual(stale.status, 409, stale.text)
    XCTAssertTrue(stale.errorMessage?.contains("nothing changed") ?? false, stale.text)
    XCTAssertEqual(try agent.endpointIDs(), [])
    XCTAssertEqual(agent.stateFiles(), ["endpoints"])

    // An ADD issued after it registers; a DEL issued before that ADD leaves it.
    XCTAssertEqual(try put("3000").status, 201)
    let staleDelete = try delete("2500")
    XCTAssertEqual(staleDelete.status, 409, staleDelete.text)
    XCTAssertEqual(try agent.endpointIDs(), [Self.id(spec)])
    // Without the header (an older plugin, a person with curl): applied as read.
    XCTAssertEqual(try put(nil).status, 200)
    // A malformed header is no header.
    XCTAssertEqual(try put("soon").status, 200)
    XCTAssertEqual(try delete("4000").status, 204)
    XCTAssertEqual(try agent.endpointIDs(), [])
    XCTAssertTrue(agent.log.contains("refused a registration the plugin issued before"), agent.log)
  }

  /// What the chained soak found (seed 61): an agent frozen past the plugin's time-out reads
  /// its backlog when it thaws, in its own order. The ADD that gave up (its PUT still in the
  /// backlog) and the DEL after it (its DELETE too, and its record in the deletion queue)
  /// must leave nothing registered, whichever the agent gets to first.
  func testAThawedAgentKeepsNoRegistrationItsPluginGaveUpOn() throws {
    let node = try makeNode()
    let agent = try makeAgent(in: node, arguments: ["--delete-queue-interval", "0.1"])
    let queue = URL(fileURLWithPath: agent.socketPath).deletingLastPathComponent()
      .appendingPathComponent("delete-queue")
    try FileManager.default.createDirectory(at: queue, withIntermediateDirectories: true)
    let pid = agent.pid
    XCTAssertGreaterThan(pid, 0)

    // Each round one read order: the DELETE's connection ahead of the PUT's, the queue's
    // record with the PUT alone, and the PUT ahead of the DELETE.
    for order in ["delete-first", "queue-only", "put-first"] {
      let spec = try node.addPod(hostOutlivesPod: true)
      let id = Self.id(spec)
      let path = "/v1/endpoints/\(id)"
      let socket = agent.socketPath
      let body = Self.json(spec)
      let put = { () -> Void in
        _ = try? UnixHTTP.request(
          socket: socket, method: "PUT", path: path, body: body,
          headers: [Self.issuedAt: "1000"], timeout: 1)
      }
      let delete = { () -> Void in
        _ = try? UnixHTTP.request(
          socket: socket, method: "DELETE", path: path, headers: [Self.issuedAt: "2000"],
          timeout: 1)
      }
      XCTAssertEqual(kill(pid, SIGSTOP), 0)
      var frozen = true
      defer { if frozen { kill(pid, SIGCONT) } }
      let group = DispatchGroup()
      func inBackground(_ work: @escaping () -> Void) {
        DispatchQueue.global().async(group: group) { work() }
        usleep(100_000)  // connected and sent: in the frozen agent's backlog, in this order
      }
      switch order {
      case "delete-first":
        inBackground(delete)
        inBackground(put)
      case "queue-only":
        inBackground(put)
      default:
        inBackground(put)
        inBackground(delete)
      }
      // Both clients give up, as the plugin does after its time-out.
      XCTAssertEqual(group.wait(timeout: .now() + 10), .success)
      if order == "queue-only" {
        let record: [String: Any] = [
          "id": id, "containerID": spec["containerID"]!, "ifname": spec["ifname"]!,
          "queuedAt": "2000-01-01T00:00:00.000Z", "issuedAt": 2000,
        ]
        try Self.json(record).write(to: queue.appendingPathComponent("\(id).json"))
      }
      XCTAssertEqual(kill(pid, SIGCONT), 0)
      frozen = false

      // Until the backlog and the queue are read (the listing answers after both).
      let deadline = Date().addingTimeInterval(5)
      while Date() < deadline,
        (try? FileManager.default.contentsOfDirectory(atPath: queue.path))?.isEmpty == false
      {
        usleep(50_000)
      }
      usleep(500_000)
      XCTAssertEqual(try agent.endpointIDs(), [], "\(order): \(agent.log)")
      XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: queue.path), [], order)
      XCTAssertEqual(agent.stateFiles(), ["endpoints"], order)
    }
  }

  /// A chunked transfer encoding of `body`, in 64 KiB chunks.
  private static func chunked(_ body: Data) -> Data {
    var result = Data()
    var offset = 0
    while offset < body.count {
      let chunk = body[offset..<min(offset + 65536, body.count)]
      result.append(Data("\(String(chunk.count, radix: 16))\r\n".utf8))
      result.append(chunk)
      result.append(Data("\r\n".utf8))
      offset += chunk.count
    }
    result.append(Data("0\r\n\r\n".utf8))
    return result
  }
}

/// A node network namespace for an agent, with pods: each a network namespace and a veth
/// whose host side lives in the node namespace (where the agent looks for it).
final class AgentNode {
  let name: String
  private var pods: [String] = []
  private var addressCounter = 0

  init() throws {
    name = TestNode.uniqueName("g")
    try Shell.must(["ip", "netns", "add", name])
    try Shell.must(["ip", "-n", name, "link", "set", "lo", "up"])
  }

  /// A pod namespace and its host interface; the EndpointSpec JSON that registers it.
  /// `hostOutlivesPod`: the host interface is a veth whose peer stays in the node namespace,
  /// so it survives the pod namespace.
  func addPod(hostOutlivesPod: Bool = false) throws -> [String: Any] {
    let pod = TestNode.uniqueName("q")
    try Shell.must(["ip", "netns", "add", pod])
    pods.append(pod)
    let host = TestNode.uniqueName("h")
    if hostOutlivesPod {
      // Both ends in the node (not every kernel has the dummy driver).
      try Shell.must([
        "ip", "-n", name, "link", "add", host, "type", "veth", "peer", "name", host + "p",
      ])
    } else {
      try Shell.must([
        "ip", "-n", name, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", pod,
      ])
    }
    try Shell.must(["ip", "-n", name, "link", "set", host, "up"])
    let line = try Shell.must(["ip", "-n", name, "-o", "link", "show", host])
    let index = try XCTUnwrap(Int(line.split(separator: ":").first ?? ""), line)
    addressCounter += 1
    return [
      "containerID": "ctr-\(pod)", "ifname": "eth0", "network": "pods", "podNamespace": "default",
      "podName": pod, "netns": "/var/run/netns/\(pod)", "hostInterface": host, "hostIfindex": index,
      "ips": ["10.250.\(addressCounter / 250).\(addressCounter % 250 + 2)/32"],
    ]
  }

  func deletePod(_ spec: [String: Any]) throws {
    let pod = (spec["netns"] as! String).split(separator: "/").last.map(String.init)!
    try Shell.must(["ip", "netns", "del", pod])
    pods.removeAll { $0 == pod }
  }

  func deleteHostInterface(_ spec: [String: Any]) throws {
    try Shell.must(["ip", "-n", name, "link", "del", spec["hostInterface"] as! String])
  }

  /// Removes the pods and the node (with every link in it); safe to call twice.
  func tearDown() {
    for pod in pods { _ = try? Shell.run(["ip", "netns", "del", pod]) }
    pods = []
    _ = try? Shell.run(["ip", "netns", "del", name])
  }
}
