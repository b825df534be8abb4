import Foundation
import XCTest

/// `junctionctl ui` end to end: a client pod connecting to the droids Service (two backend
/// pods) and to a Service without backends, the agent's flows read by `junctionctl ui`
/// through the socket, and the page it serves rendered by headless Chromium (Debian's
/// `chromium`, install/deps.sh test): what the DOM holds after the page's scripts ran, and
/// a screenshot of the requested size.
final class ServiceMapUITests: XCTestCase {
  private var node: TestNode!
  private var traffic: PodTraffic!
  private var server: Process?
  private var scratch: URL?

  override func setUpWithError() throws {
    node = try TestNode(podSubnet: "10.240.41.0/24")
    traffic = PodTraffic(node: node)
  }

  override func tearDown() {
    if let server, server.isRunning {
      server.terminate()
      server.waitUntilExit()
    }
    if let scratch { try? FileManager.default.removeItem(at: scratch) }
    traffic?.tearDown()
    node?.tearDown()
    super.tearDown()
  }

  private func pod(_ namespace: String, _ name: String) throws -> (netns: String, address: String) {
    try node.addNamedPod(namespace, name)
  }

  /// The lab's picture: default/client → default/droids (10.96.41.10:80) → droids/r2d2 and
  /// droids/c3po; default/client → default/empty (no backends), dropped.
  private func droidsTraffic() throws {
    let client = try pod("default", "client")
    let r2d2 = try pod("droids", "r2d2")
    let c3po = try pod("droids", "c3po")
    try traffic.startBackend("r2d2", in: r2d2.netns)
    try traffic.startBackend("c3po", in: c3po.netns)
    let yaml =
      ServiceManifest.clusterIP(
        name: "droids", clusterIP: "10.96.41.10", backends: [r2d2.address, c3po.address])
      + "\n---\n" + ServiceManifest.clusterIP(name: "empty", clusterIP: "10.96.41.11", backends: [])
    let applied = try node.junctionctl(["apply", "-f", "-"], stdin: yaml)
    XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)
    let answers = try traffic.connect(from: client.netns, to: "10.96.41.10", port: 80, count: 8)
    XCTAssertEqual(Set(answers), ["r2d2", "c3po"], "\(answers)")
    XCTAssertEqual(
      try traffic.connect(from: client.netns, to: "10.96.41.11", port: 80, count: 2),
      ["refused", "refused"])
  }

  /// Starts `junctionctl ui --port 0` on this node's agent; the address it prints.
  private func startUI() throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Artifacts.junctionctl)
    process.arguments = ["--socket", node.agentSocket, "ui", "--port", "0"]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.standardError
    try process.run()
    server = process
    // One line once it listens: "Serving the service map on http://127.0.0.1:PORT/ ...".
    let line = DispatchSemaphore(value: 0)
    var text = ""
    DispatchQueue.global().async {
      var data = Data()
      while !data.contains(UInt8(ascii: "\n")) {
        let chunk = output.fileHandleForReading.availableData
        if chunk.isEmpty { break }
        data.append(chunk)
      }
      text = String(decoding: data, as: UTF8.self)
      line.signal()
    }
    XCTAssertEqual(line.wait(timeout: .now() + 15), .success, "junctionctl ui printed nothing")
    let match = try XCTUnwrap(text.firstMatch(of: #/http://127\.0\.0\.1:(\d+)//#), text)
    return "http://127.0.0.1:\(match.output.1)/"
  }

  private func get(_ url: String) throws -> CommandOutput {
    try Shell.run(["curl", "-sS", "-w", "\n%{http_code}", url], timeout: 30)
  }

  /// GET /api/map until the three hops have flows (the agent's consumer polls its ring every
  /// 100 ms), or what it answered after 5 s.
  private func waitForMap(_ base: String) throws -> [String: Any] {
    let deadline = Date().addingTimeInterval(5)
    var last: [String: Any] = [:]
    repeat {
      let answer = try get(base + "api/map")
      let body = answer.stdout.split(separator: "\n").dropLast().joined(separator: "\n")
      last = (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:]
      let edges = (last["graph"] as? [String: Any])?["edges"] as? [[String: Any]] ?? []
      let hops = Set(edges.map { "\($0["from"] ?? "")>\($0["to"] ?? "")" })
      if hops.isSuperset(of: [
        "pod:default/client>service:default/droids", "service:default/droids>pod:droids/r2d2",
        "service:default/droids>pod:droids/c3po", "pod:default/client>service:default/empty",
      ]) {
        return last
      }
      usleep(200_000)
    } while Date() < deadline
    return last
  }

  func testThePageShowsTheClientTheDroidsServiceAndItsBackendsWithCountedEdgesInChromium()
    throws
  {
    let chromium = try headlessChromium()
    try droidsTraffic()
    let base = try startUI()

    // The JSON the page reads.
    let map = try waitForMap(base)
    let graph = try XCTUnwrap(map["graph"] as? [String: Any], "\(map)")
    let edges = try XCTUnwrap(graph["edges"] as? [[String: Any]])
    func edge(_ from: String, _ to: String) -> [String: Any]? {
      edges.first { $0["from"] as? String == from && $0["to"] as? String == to }
    }
    let toDroids = try XCTUnwrap(edge("pod:default/client", "service:default/droids"), "\(edges)")
    XCTAssertGreaterThanOrEqual(toDroids["total"] as? Int ?? 0, 8)
    XCTAssertEqual(toDroids["dropped"] as? Int, 0)
    XCTAssertEqual(toDroids["ports"] as? [String], ["80/TCP"])
    let toEmpty = try XCTUnwrap(edge("pod:default/client", "service:default/empty"))
    XCTAssertGreaterThanOrEqual(toEmpty["dropped"] as? Int ?? 0, 2)
    XCTAssertEqual(toEmpty["dropped"] as? Int, toEmpty["total"] as? Int)
    XCTAssertNil(edge("pod:default/client", "pod:droids/r2d2"), "a hop around the Service")

    // Filters are observe's; a wrong one is a 400 in words.
    let bad = try get(base + "api/map?verdict=MAYBE")
    XCTAssertTrue(bad.stdout.hasSuffix("\n400"), bad.stdout)
    XCTAssertTrue(bad.stdout.contains("MAYBE"), bad.stdout)
    let dropsOnly = try get(base + "api/map?verdict=DROPPED")
    XCTAssertTrue(dropsOnly.stdout.contains("service:default/empty"), dropsOnly.stdout)
    XCTAssertFalse(dropsOnly.stdout.contains("pod:droids/r2d2"), dropsOnly.stdout)

    // What Chromium rendered once the page's script ran.
    let dom = try chromium.run(["--dump-dom", base])
    for id in [
      "pod:default/client", "service:default/droids", "pod:droids/r2d2", "pod:droids/c3po",
      "service:default/empty",
    ] {
      XCTAssertTrue(dom.contains("data-id=\"\(id)\""), "node \(id) not rendered:\n\(dom)")
    }
    for (from, to) in [
      ("pod:default/client", "service:default/droids"),
      ("service:default/droids", "pod:droids/r2d2"), ("service:default/droids", "pod:droids/c3po"),
      ("pod:default/client", "service:default/empty"),
    ] {
      let rendered = dom.firstMatch(
        of: try Regex(
          "class=\"edge (\\w+)\" data-from=\"\(from)\" data-to=\"\(to)\" data-total=\"(\\d+)\""))
      let total = rendered.flatMap { Int($0.output[2].substring ?? "") } ?? 0
      XCTAssertGreaterThan(total, 0, "edge \(from) -> \(to) not rendered with flows:\n\(dom)")
      let colour = rendered.flatMap { $0.output[1].substring.map(String.init) }
      XCTAssertEqual(colour, to == "service:default/empty" ? "dropped" : "ok", "\(from) -> \(to)")
    }
    let rows = dom.matches(of: #/<tr class="flow" data-verdict="([A-Z]+)">/#)
    XCTAssertGreaterThanOrEqual(rows.count, 10, dom)
    XCTAssertTrue(rows.contains { $0.output.1 == "DROPPED" }, "no dropped row")
    XCTAssertTrue(dom.contains("<td class=\"source\">default/client:"), "no client row")

    // A filtered page: only the drops.
    let filtered = try chromium.run(["--dump-dom", base + "?verdict=DROPPED"])
    XCTAssertTrue(filtered.contains("data-id=\"service:default/empty\""), filtered)
    XCTAssertFalse(filtered.contains("data-id=\"pod:droids/r2d2\""), filtered)

    // The screenshot, at the size asked for.
    let png = try XCTUnwrap(scratch).appendingPathComponent("service-map.png")
    _ = try chromium.run(["--screenshot=\(png.path)", "--window-size=1100,640", base])
    let image = try Data(contentsOf: png)
    XCTAssertEqual(Array(image.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    XCTAssertEqual(String(decoding: image[12..<16], as: UTF8.self), "IHDR")
    func bigEndian(_ at: Int) -> Int { image[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
    XCTAssertEqual(bigEndian(16), 1100)
    XCTAssertEqual(bigEndian(20), 640)
    // install/ui-screenshot.sh-style refresh of docs/service-map.png, on request only.
    if let keep = ProcessInfo.processInfo.environment["JUNCTION_UI_SCREENSHOT"] {
      try? FileManager.default.removeItem(atPath: keep)
      try FileManager.default.copyItem(at: png, to: URL(fileURLWithPath: keep))
    }
    XCTAssertEqual(chromium.leftovers(), [], "chromium processes left behind")
  }

  func testANonLoopbackAddressIsRefusedUnlessAsked() throws {
    let refused = try node.junctionctl(["ui", "--address", "0.0.0.0", "--port", "0"])
    XCTAssertNotEqual(refused.status, 0)
    XCTAssertTrue(refused.stderr.contains("not a loopback address"), refused.stderr)
    XCTAssertTrue(refused.stderr.contains("--allow-remote"), refused.stderr)
  }

  private static func chromiumBinary() -> String? {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
      FileManager.default.isExecutableFile(atPath: $0)
    }
  }

  private func headlessChromium() throws -> HeadlessChromium {
    guard let binary = Self.chromiumBinary() else {
      throw TestNode.missing("chromium is not installed (install/deps.sh test)")
    }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "junction-ui-\(getpid())-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    scratch = directory
    return HeadlessChromium(binary: binary, directory: directory)
  }
}

/// One headless Chromium run per call, in a process group of its own (setsid) with its
/// profile in the test's scratch directory: Chromium forks zygotes, renderers and helpers,
/// so the whole group is killed once the run ends, and the directory goes with the test.
struct HeadlessChromium {
  var binary: String
  var directory: URL
  private static var groups: [Int32] = []
  private static let lock = NSLock()

  /// Runs chromium with `arguments` after the common headless ones; its stdout.
  func run(_ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
    process.arguments =
      [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--no-default-browser-check", "--disable-extensions",
        "--disable-background-networking", "--disable-sync", "--hide-scrollbars",
        "--user-data-dir=\(directory.appendingPathComponent("profile").path)",
        // Time enough for the first fetch and drawing; virtual, so it costs nothing
        // while the page is idle.
        "--virtual-time-budget=5000", "--window-size=1100,640",
      ] + arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    let exited = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in exited.signal() }
    try process.run()
    // setsid(1) execs chromium directly (the child is no group leader), so its pid is the
    // group's id.
    let group = process.processIdentifier
    Self.lock.withLock { Self.groups.append(group) }
    var stdout = Data()
    var stderr = Data()
    let readers = DispatchGroup()
    DispatchQueue.global().async(group: readers) {
      stdout = output.fileHandleForReading.readDataToEndOfFile()
    }
    DispatchQueue.global().async(group: readers) {
      stderr = errors.fileHandleForReading.readDataToEndOfFile()
    }
    let finished = exited.wait(timeout: .now() + 90) == .success
    kill(-group, SIGKILL)
    if !finished { exited.wait() }
    readers.wait()
    let text = String(decoding: stdout, as: UTF8.self)
    guard finished, process.terminationStatus == 0 else {
      throw TestNode.MissingPrerequisite(
        description: "chromium \(arguments) "
          + (finished ? "exited \(process.terminationStatus)" : "ran over 90 s") + ": "
          + String(decoding: stderr, as: UTF8.self).suffix(2000))
    }
    return text
  }

  /// The live processes (not zombies) of this test's runs' groups, after a second's grace.
  func leftovers() -> [String] {
    let groups = Set(Self.lock.withLock { Self.groups })
    var alive: [String] = []
    for _ in 0..<10 {
      alive = []
      let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
      for pid in entries where Int32(pid) != nil {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")")
        else { continue }
        // After "(comm)": state, ppid, pgrp.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        if fields.count > 2, fields[0] != "Z", let group = Int32(fields[2]), groups.contains(group)
        {
          alive.append("\(pid) \(stat.prefix(60))")
        }
      }
      if alive.isEmpty { break }
      usleep(100_000)
    }
    return alive
  }
}
