import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// One `junction-agent` process for a test, with its own temporary socket, state dir and
/// bpffs dir, optionally inside a network namespace (`ip netns exec NAME`), so any number
/// can run side by side and next to a real agent.
///
///     let agent = try TestAgent(namespace: node.name)
///     defer { agent.tearDown() }
///     let response = try agent.request("GET", "/v1/endpoints")
///
/// `start` waits (at most `readyTimeout`) until GET /v1/healthz answers; `stop` sends
/// SIGTERM to this agent's pid only and waits (bounded); `kill` is SIGKILL, for crash
/// tests; `tearDown` stops it, unmounts any bpffs under its directory and removes the
/// directory. The agent's standard error is kept in `log`.
final class TestAgent {
  /// The agent binary: $JUNCTION_AGENT_BIN, else the package's debug build.
  static var binary: String {
    ProcessInfo.processInfo.environment["JUNCTION_AGENT_BIN"]
      ?? Artifacts.repoRoot.appendingPathComponent(".build/debug/junction-agent").path
  }

  /// The datapath objects: $JUNCTION_BPF_OBJECTS, else install/build-bpf.sh's default.
  static var bpfObjects: String {
    ProcessInfo.processInfo.environment["JUNCTION_BPF_OBJECTS"]
      ?? Artifacts.repoRoot.appendingPathComponent(".build/bpf").path
  }

  let name: String
  let directory: URL
  let socketPath: String
  let stateDir: String
  let bpfFS: String
  /// The network namespace the agent runs in (nil: the test's own).
  let namespace: String?
  /// Flags added to the standard ones on every start (e.g. ["--shutdown-grace", "3"]).
  var extraArguments: [String]
  /// A command the agent is started through, inside the namespace (e.g. setpriv with a
  /// capability set); empty: the agent itself.
  var launcher: [String] = []
  var readyTimeout: TimeInterval = 20
  var stopTimeout: TimeInterval = 10

  private var process: Process?
  private var starts = 0
  private var mountedBPFFS = false
  private static var counter = 0

  /// The running agent's pid (0 when not running).
  var pid: Int32 { process.map { $0.isRunning ? $0.processIdentifier : 0 } ?? 0 }
  var isRunning: Bool { process?.isRunning ?? false }

  /// - Parameters:
  ///   - namespace: run inside this network namespace (`ip netns exec`).
  ///   - premountBPFFS: mount a bpffs at `bpfFS` from the test's mount namespace before
  ///     starting. Default: when `namespace` is given, because `ip netns exec` gives the
  ///     agent a private mount namespace whose own mounts nobody else (a CNI plugin, the
  ///     next agent) would see.
  ///   - start: start it now.
  init(
    namespace: String? = nil, arguments: [String] = [], premountBPFFS: Bool? = nil,
    launcher: [String] = [], start: Bool = true
  ) throws {
    try TestAgent.requirePrerequisites()
    TestAgent.counter += 1
    name = "jta\(getpid() % 100000)x\(TestAgent.counter)"
    directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(name)
    socketPath = directory.appendingPathComponent("run/agent.sock").path
    stateDir = directory.appendingPathComponent("state").path
    bpfFS = directory.appendingPathComponent("bpf").path
    self.namespace = namespace
    extraArguments = arguments
    self.launcher = launcher
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    if premountBPFFS ?? (namespace != nil) {
      try FileManager.default.createDirectory(atPath: bpfFS, withIntermediateDirectories: true)
      let result = try Shell.run(["mount", "-t", "bpf", "bpf", bpfFS])
      guard result.status == 0 else {
        tearDown()
        throw TestAgentError("cannot mount a bpffs at \(bpfFS): \(result.stderr)")
      }
      mountedBPFFS = true
    }
    if start {
      do {
        try self.start()
      } catch {
        tearDown()
        throw error
      }
    }
  }

  /// Root, the agent binary and the BPF objects. Under CI a missing one fails the test;
  /// elsewhere the test is skipped with the reason.
  static func requirePrerequisites() throws {
    var problem: String?
    if getuid() != 0 {
      problem = "agent integration tests need root: network namespaces, bpffs, a root-only socket"
    } else if !FileManager.default.isExecutableFile(atPath: binary) {
      problem = "junction-agent (swift build --product junction-agent) is missing at \(binary)"
    } else if !FileManager.default.fileExists(atPath: bpfObjects + "/endpoint.o") {
      problem = "the BPF objects (install/build-bpf.sh) are missing at \(bpfObjects)"
    }
    guard let problem else { return }
    throw TestNode.missing(problem)
  }

  /// The standard flags: this agent's paths.
  var arguments: [String] {
    [
      "--node-name", name, "--socket", socketPath, "--state-dir", stateDir, "--bpf-fs", bpfFS,
      "--bpf-objects", TestAgent.bpfObjects, "--log-level", "debug",
    ] + extraArguments
  }

  /// The command line that runs the agent with `arguments` (in the namespace, if any).
  func commandLine(_ arguments: [String]) -> [String] {
    (namespace.map { ["ip", "netns", "exec", $0] } ?? []) + launcher + [TestAgent.binary]
      + arguments
  }

  private var logFile: URL { directory.appendingPathComponent("agent.log") }

  /// Everything the agent wrote on standard error, over all its starts.
  var log: String {
    (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
  }

  /// Starts the agent and waits until /v1/healthz answers (any status).
  func start() throws {
    precondition(!isRunning, "\(name) is already running")
    starts += 1
    if !FileManager.default.fileExists(atPath: logFile.path) {
      _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
    }
    let handle = try FileHandle(forWritingTo: logFile)
    handle.seekToEndOfFile()
    handle.write(Data("--- start \(starts)\n".utf8))
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = commandLine(arguments)
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    try? handle.close()
    self.process = process

    let deadline = Date().addingTimeInterval(readyTimeout)
    while Date() < deadline {
      if !process.isRunning {
        self.process = nil
        throw TestAgentError(
          "\(name) exited with status \(process.terminationStatus) while starting:\n\(log)")
      }
      if let response = try? request("GET", "/v1/healthz", timeout: 2), response.status > 0 {
        return
      }
      usleep(50_000)
    }
    kill()
    throw TestAgentError(
      "\(name) did not answer on \(socketPath) within \(readyTimeout) s:\n\(log)")
  }

  /// SIGTERM to this agent and a bounded wait; its exit status (SIGKILL after the
  /// timeout, reported as a failure). nil when it was not running.
  @discardableResult
  func stop(file: StaticString = #filePath, line: UInt = #line) -> Int32? {
    guard let process, process.isRunning else { return nil }
    Glibc.kill(process.processIdentifier, SIGTERM)
    if !waitForExit(process, timeout: stopTimeout) {
      XCTFail(
        "\(name) did not stop within \(stopTimeout) s of SIGTERM:\n\(log)", file: file, line: line)
      Glibc.kill(process.processIdentifier, SIGKILL)
      _ = waitForExit(process, timeout: 5)
    }
    self.process = nil
    return process.terminationStatus
  }

  /// Sends SIGTERM and returns at once (for tests of the shutdown window).
  func signalTerminate() {
    guard let process, process.isRunning else { return }
    Glibc.kill(process.processIdentifier, SIGTERM)
  }

  /// Waits (bounded) for an agent already told to stop; its exit status.
  func waitForExit(timeout: TimeInterval? = nil) -> Int32? {
    guard let process else { return nil }
    guard waitForExit(process, timeout: timeout ?? stopTimeout) else { return nil }
    self.process = nil
    return process.terminationStatus
  }

  /// SIGKILL: a crash. The socket file stays behind.
  func kill() {
    guard let process, process.isRunning else { return }
    Glibc.kill(process.processIdentifier, SIGKILL)
    _ = waitForExit(process, timeout: 10)
    self.process = nil
  }

  func restart() throws {
    stop()
    try start()
  }

  private func waitForExit(_ process: Process, timeout: TimeInterval) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning {
      if Date() > deadline { return false }
      usleep(20_000)
    }
    return true
  }

  /// Stops the agent, unmounts every mount under its directory (a bpffs it or the fixture
  /// mounted), removes the directory. Safe to call twice.
  func tearDown() {
    if isRunning { stop() }
    // umount2 directly, not through Shell: a failed process launch must not leave the
    // bpffs mounted. The one this agent mounted is unmounted even if mountinfo (read as
    // text) somehow does not list it.
    var points = TestAgent.mounts(under: directory.path)
    if mountedBPFFS && !points.contains(bpfFS) { points.append(bpfFS) }
    for mountPoint in points {
      if umount2(mountPoint, Int32(MNT_DETACH)) != 0 && errno != EINVAL && errno != ENOENT {
        print("TestAgent: cannot unmount \(mountPoint): errno \(errno)")
      }
    }
    mountedBPFFS = false
    try? FileManager.default.removeItem(at: directory)
  }

  /// Mount points at or below `path`, deepest first.
  /// The mount table is read in several read() calls, and the kernel does not keep it
  /// consistent across them: a mount or unmount elsewhere on the machine (another lab, a
  /// netns) meanwhile can make a line vanish from one read. So the answer is the one two
  /// reads in a row agree on.
  static func mounts(under path: String) -> [String] {
    var last = mountsOnce(under: path)
    for _ in 0..<10 {
      let again = mountsOnce(under: path)
      if again == last { return again ?? [] }
      last = again
    }
    return last ?? []
  }

  /// A procfs file read to its end. `String(contentsOfFile:)` trusts the size procfs reports
  /// and was seen to return only part of a mountinfo past 4 KiB (a lab or two mounted).
  static func procText(_ path: String) -> String? {
    guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
    defer { try? handle.close() }
    return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
  }

  private static func mountsOnce(under path: String) -> [String]? {
    guard let table = procText("/proc/self/mountinfo") else { return nil }
    return table.split(separator: "\n").compactMap { line -> String? in
      let fields = line.split(separator: " ")
      guard fields.count > 4 else { return nil }
      // mountinfo escapes spaces and the like as \040; the temp paths here have none.
      let point = String(fields[4])
      return point == path || point.hasPrefix(path + "/") ? point : nil
    }.sorted { $0.count > $1.count }
  }

  // MARK: - API

  func request(
    _ method: String, _ path: String, body: Data? = nil, headers: [String: String] = [:],
    timeout: TimeInterval = 10
  ) throws -> HTTPResponse {
    try UnixHTTP.request(
      socket: socketPath, method: method, path: path, body: body, headers: headers,
      timeout: timeout)
  }

  func request(_ method: String, _ path: String, json: Any) throws -> HTTPResponse {
    try request(method, path, body: try JSONSerialization.data(withJSONObject: json))
  }

  /// GET /v1/endpoints as decoded JSON objects, sorted by id.
  func endpoints(file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
    let response = try request("GET", "/v1/endpoints")
    XCTAssertEqual(response.status, 200, response.text, file: file, line: line)
    return try XCTUnwrap(response.json as? [[String: Any]], response.text, file: file, line: line)
  }

  /// The registered endpoint ids.
  func endpointIDs(file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
    try endpoints(file: file, line: line).compactMap { $0["id"] as? String }
  }

  /// PUT /v1/endpoints/{id} with `spec`; fails the test unless it answers 200 or 201.
  @discardableResult
  func register(_ spec: [String: Any], file: StaticString = #filePath, line: UInt = #line) throws
    -> HTTPResponse
  {
    let id = "\(spec["containerID"] ?? ""):\(spec["ifname"] ?? "")"
    let response = try request("PUT", "/v1/endpoints/\(id)", json: spec)
    XCTAssertTrue(
      [200, 201].contains(response.status), "PUT \(id): \(response.status) \(response.text)",
      file: file, line: line)
    return response
  }

  /// The files under the state directory (relative paths), to compare before and after.
  func stateFiles() -> [String] {
    let enumerator = FileManager.default.enumerator(atPath: stateDir)
    var files: [String] = []
    while let next = enumerator?.nextObject() as? String { files.append(next) }
    return files.sorted()
  }

  /// Runs the agent binary to completion (for start failures), with these arguments only.
  static func runOnce(_ arguments: [String], namespace: String? = nil, timeout: TimeInterval = 30)
    throws -> CommandOutput
  {
    try Shell.run(
      (namespace.map { ["ip", "netns", "exec", $0] } ?? []) + [binary] + arguments,
      timeout: timeout)
  }
}

struct TestAgentError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// What came back over the socket.
struct HTTPResponse {
  var status: Int
  /// Lower-cased names.
  var headers: [String: String]
  var body: Data

  var text: String { String(decoding: body, as: UTF8.self) }
  var json: Any? { try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) }
  /// The `error` of an APIErrorBody.
  var errorMessage: String? { (json as? [String: Any])?["error"] as? String }
}

/// HTTP/1.1 over a Unix socket with plain syscalls: one request per connection
/// (`Connection: close`), the path sent exactly as given (no normalization of "..", no
/// re-encoding), so tests can send what curl would refuse to.
enum UnixHTTP {
  struct Failure: Error, CustomStringConvertible {
    var description: String
    /// connect's errno, when that is what failed.
    var connectErrno: Int32?
  }

  /// Deliberately not AgentAPI's client: the tests judge the server with an HTTP speaker
  /// of their own, which sends exactly the bytes asked for (raw `..`, oversized bodies) and
  /// reads headers the client ignores.
  static func request(
    socket path: String, method: String, path target: String, body: Data? = nil,
    headers: [String: String] = [:], timeout: TimeInterval = 10
  ) throws -> HTTPResponse {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
    defer { close(fd) }
    var limit = timeval(tv_sec: Int(timeout), tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let pathBytes = Array(path.utf8)
    guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
      throw Failure(description: "socket path too long: \(path)")
    }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      for (index, byte) in pathBytes.enumerated() { raw[index] = byte }
    }
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    if connected != 0 {
      let code = errno
      throw Failure(
        description: "connect \(path): \(String(cString: strerror(code)))", connectErrno: code)
    }

    var head = "\(method) \(target) HTTP/1.1\r\nHost: junction-agent\r\nConnection: close\r\n"
    var allHeaders = headers
    if let body {
      allHeaders["Content-Type"] = allHeaders["Content-Type"] ?? "application/json"
      if allHeaders["Transfer-Encoding"] == nil { allHeaders["Content-Length"] = "\(body.count)" }
    }
    for (name, value) in allHeaders.sorted(by: { $0.key < $1.key }) {
      head += "\(name): \(value)\r\n"
    }
    head += "\r\n"
    var outgoing = Data(head.utf8)
    if let body { outgoing.append(body) }
    // The agent may answer (413) and close before reading a large body; a failed send
    // is then expected, and the answer is still readable.
    _ = outgoing.withUnsafeBytes { raw -> Bool in
      var offset = 0
      while offset < raw.count {
        let sent = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
        if sent < 0 {
          if errno == EINTR { continue }
          return false
        }
        offset += sent
      }
      return true
    }

    var received = Data()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let count = recv(fd, &buffer, buffer.count, 0)
      if count < 0 {
        if errno == EINTR { continue }
        if errno == ECONNRESET && !received.isEmpty { break }
        throw Failure(description: "receive: \(String(cString: strerror(errno)))")
      }
      if count == 0 { break }
      received.append(contentsOf: buffer[..<count])
      if let response = parse(received), response.complete { return response.value }
    }
    guard let response = parse(received) else {
      throw Failure(
        description: "not an HTTP response: \(String(decoding: received, as: UTF8.self))")
    }
    return response.value
  }

  private static func parse(_ data: Data) -> (value: HTTPResponse, complete: Bool)? {
    guard let separator = data.range(of: Data("\r\n\r\n".utf8)) else { return nil }
    let head = String(decoding: data[..<separator.lowerBound], as: UTF8.self)
    var lines = head.components(separatedBy: "\r\n")
    let statusParts = lines.removeFirst().split(separator: " ")
    guard statusParts.count >= 2, let status = Int(statusParts[1]) else { return nil }
    var headers: [String: String] = [:]
    for line in lines {
      guard let colon = line.firstIndex(of: ":") else { continue }
      headers[line[..<colon].lowercased()] = line[line.index(after: colon)...]
        .trimmingCharacters(in: .whitespaces)
    }
    let body = data[separator.upperBound...]
    if let length = headers["content-length"].flatMap(Int.init) {
      return (
        HTTPResponse(status: status, headers: headers, body: Data(body.prefix(length))),
        body.count >= length
      )
    }
    return (HTTPResponse(status: status, headers: headers, body: Data(body)), false)
  }
}
