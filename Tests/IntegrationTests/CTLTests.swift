import Foundation
import XCTest

/// `junctionctl` against a real `junction-agent` (TestAgent): what people read (the status
/// block, the endpoint table), what scripts read (-o json), and the one-line errors.
final class CTLTests: XCTestCase {
  static var binary: String { Artifacts.junctionctl }

  /// A registration as the CNI plugin would send it, for an interface that need not exist.
  static let spec: [String: Any] = [
    "containerID": "ctlctr1", "ifname": "eth0", "network": "pods", "podNamespace": "default",
    "podName": "web-0", "podUID": "8b1c5e2a-0d4f-4b6e-9a51-3f0c2d7e8a11",
    "netns": "/var/run/netns/ctl-test", "hostInterface": "jnc0123456789ab", "hostIfindex": 4242,
    "podInterfaceIndex": 2, "ips": ["10.240.9.5/32", "fd00:240:9::5/128"],
    "mac": "8a:3e:11:22:33:44", "hostMAC": "ee:aa:bb:cc:dd:01",
  ]
  static let specID = "ctlctr1:eth0"

  // MARK: - With an agent

  func testStatusShowsNodeAndNoEndpoints() throws {
    let agent = try startAgent()
    defer { agent.tearDown() }

    let status = try ctl(["--socket", agent.socketPath, "status"])
    XCTAssertEqual(status.status, 0, status.stderr)
    let block = fields(status.stdout)
    XCTAssertEqual(block["Node"], agent.name, status.stdout)
    XCTAssertEqual(block["Endpoints"], "0", status.stdout)
    XCTAssertEqual(block["Status"], "ok", status.stdout)
    XCTAssertEqual(block["Datapath loaded"], "yes", status.stdout)
    XCTAssertEqual(block["TC hook"], "clsact", status.stdout)
    XCTAssertNotNil(block["Version"], status.stdout)
    XCTAssertEqual(block["api"], "ok", "components are listed: \(status.stdout)")

    let json = try ctl(["--socket", agent.socketPath, "status", "-o", "json"])
    XCTAssertEqual(json.status, 0, json.stderr)
    XCTAssertEqual(json.json?["nodeName"] as? String, agent.name, json.stdout)
    XCTAssertEqual(json.json?["endpoints"] as? Int, 0, json.stdout)
    XCTAssertNotNil(json.json?["components"] as? [String: String], json.stdout)

    let list = try ctl(["--socket", agent.socketPath, "endpoint", "list", "-o", "json"])
    XCTAssertEqual(list.status, 0, list.stderr)
    XCTAssertEqual(list.stdout, "[]\n")
    XCTAssertEqual(list.stderr, "")

    let table = try ctl(["--socket", agent.socketPath, "endpoint", "list"])
    XCTAssertEqual(table.status, 0, table.stderr)
    XCTAssertEqual(lines(table.stdout).count, 1, "only the header: \(table.stdout)")
    XCTAssertEqual(
      lines(table.stdout).first?.split(separator: " ").map(String.init),
      ["ID", "POD", "NETWORK", "IPS", "HOST-IF", "IFINDEX", "ATTACHED", "PACKETS", "BYTES"])
  }

  func testRegisteredEndpointIsListedAndShown() throws {
    let agent = try startAgent()
    defer { agent.tearDown() }
    try agent.register(CTLTests.spec)

    let table = try ctl(["--socket", agent.socketPath, "endpoint", "list"])
    XCTAssertEqual(table.status, 0, table.stderr)
    let rows = try columns(table.stdout)
    XCTAssertEqual(rows.count, 1, table.stdout)
    let row = try XCTUnwrap(rows.first)
    XCTAssertEqual(row["ID"], CTLTests.specID, table.stdout)
    XCTAssertEqual(row["POD"], "default/web-0", table.stdout)
    XCTAssertEqual(row["NETWORK"], "pods", table.stdout)
    XCTAssertEqual(row["IPS"], "10.240.9.5/32,fd00:240:9::5/128", table.stdout)
    XCTAssertEqual(row["HOST-IF"], "jnc0123456789ab", table.stdout)
    XCTAssertEqual(row["IFINDEX"], "4242", table.stdout)
    // No such interface on this host, so the programs cannot be attached.
    XCTAssertEqual(row["ATTACHED"], "no", table.stdout)
    XCTAssertEqual(row["PACKETS"], "0/0", table.stdout)
    XCTAssertEqual(row["BYTES"], "0/0", table.stdout)

    let list = try ctl(["--socket", agent.socketPath, "endpoint", "list", "--output", "json"])
    XCTAssertEqual(list.status, 0, list.stderr)
    let listed = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
    XCTAssertEqual(listed.compactMap { $0["id"] as? String }, [CTLTests.specID])

    let got = try ctl([
      "--socket", agent.socketPath, "endpoint", "get", CTLTests.specID, "-o", "json",
    ])
    XCTAssertEqual(got.status, 0, got.stderr)
    let endpoint = try XCTUnwrap(got.json, got.stdout)
    XCTAssertEqual(endpoint["id"] as? String, CTLTests.specID)
    XCTAssertEqual(
      try canonical(endpoint["spec"] as Any), try canonical(CTLTests.spec), "the spec round-trips")
    XCTAssertNotNil(endpoint["createdAt"] as? String)
    XCTAssertEqual(got.stdout.hasPrefix("{\n  \""), true, "pretty-printed: \(got.stdout)")

    let detail = try ctl(["--socket", agent.socketPath, "endpoint", "get", CTLTests.specID])
    XCTAssertEqual(detail.status, 0, detail.stderr)
    let block = fields(detail.stdout)
    let expected: [String: String] = [
      "ID": CTLTests.specID, "Container ID": "ctlctr1", "Interface": "eth0", "Network": "pods",
      "Pod namespace": "default", "Pod name": "web-0",
      "Pod UID": "8b1c5e2a-0d4f-4b6e-9a51-3f0c2d7e8a11", "Netns": "/var/run/netns/ctl-test",
      "Host interface": "jnc0123456789ab", "Host ifindex": "4242", "Pod ifindex": "2",
      "IPs": "10.240.9.5/32, fd00:240:9::5/128", "MAC": "8a:3e:11:22:33:44",
      "Host MAC": "ee:aa:bb:cc:dd:01", "Created": endpoint["createdAt"] as? String ?? "?",
      "Datapath attached": "no", "Packets from pod": "0", "Packets to pod": "0",
      "Bytes from pod": "0", "Bytes to pod": "0",
    ]
    for (key, value) in expected {
      XCTAssertEqual(block[key], value, "\(key) in\n\(detail.stdout)")
    }
    XCTAssertEqual(Set(block.keys), Set(expected.keys), detail.stdout)

    let status = try ctl(["--socket", agent.socketPath, "status"])
    XCTAssertEqual(fields(status.stdout)["Endpoints"], "1", status.stdout)
  }

  func testUnknownEndpointIsOneLine() throws {
    let agent = try startAgent()
    defer { agent.tearDown() }
    for format in ["table", "json"] {
      let result = try ctl([
        "--socket", agent.socketPath, "endpoint", "get", "nope:eth0", "-o", format,
      ])
      XCTAssertEqual(result.status, 1)
      XCTAssertEqual(result.stdout, "")
      XCTAssertEqual(result.stderr, "junctionctl: endpoint nope:eth0 not found\n")
    }
    // Not an id at all: refused before anything is sent, also in one line.
    let bad = try ctl(["--socket", agent.socketPath, "endpoint", "get", "../x"])
    XCTAssertEqual(bad.status, 1)
    assertOneLine(bad.stderr, mentioning: "is not an endpoint id")
  }

  func testEnvironmentSelectsTheSocketAndTheFlagWins() throws {
    let agent = try startAgent()
    defer { agent.tearDown() }
    let absent = absentSocket()

    let fromEnvironment = try ctl(["status"], environment: ["JUNCTION_SOCKET": agent.socketPath])
    XCTAssertEqual(fromEnvironment.status, 0, fromEnvironment.stderr)
    XCTAssertEqual(fields(fromEnvironment.stdout)["Node"], agent.name, fromEnvironment.stdout)

    let flagWins = try ctl(
      ["endpoint", "list", "--socket", agent.socketPath, "-o", "json"],
      environment: ["JUNCTION_SOCKET": absent])
    XCTAssertEqual(flagWins.status, 0, flagWins.stderr)
    XCTAssertEqual(flagWins.stdout, "[]\n")

    let wrongEnvironment = try ctl(["status"], environment: ["JUNCTION_SOCKET": absent])
    XCTAssertEqual(wrongEnvironment.status, 1)
    XCTAssertEqual(
      wrongEnvironment.stderr, "junctionctl: the Junction agent is not running at \(absent)\n")
  }

  func testPermissionDeniedForAnUnprivilegedUser() throws {
    let agent = try startAgent()
    defer { agent.tearDown() }
    for arguments in [["status"], ["endpoint", "list"], ["endpoint", "get", "a:eth0"]] {
      let result = try Shell.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", CTLTests.binary]
          + ["--socket", agent.socketPath] + arguments,
        environment: environment([:]))
      XCTAssertEqual(result.status, 1, "\(arguments): \(result.stdout) \(result.stderr)")
      XCTAssertEqual(result.stdout, "")
      assertOneLine(result.stderr, mentioning: "permission denied on \(agent.socketPath)")
    }
  }

  func testCrashedAgentIsNotRunning() throws {
    let agent = try startAgent()
    defer { agent.tearDown() }
    agent.kill()
    XCTAssertTrue(
      FileManager.default.fileExists(atPath: agent.socketPath), "SIGKILL leaves the socket file")
    let result = try ctl(["--socket", agent.socketPath, "endpoint", "list"])
    XCTAssertEqual(result.status, 1)
    XCTAssertEqual(result.stdout, "")
    XCTAssertEqual(
      result.stderr, "junctionctl: the Junction agent is not running at \(agent.socketPath)\n")
  }

  // MARK: - Without an agent

  func testNothingListeningIsOneLine() throws {
    try CTLTests.requireBinary()
    let absent = absentSocket()
    for arguments in [
      ["status"], ["status", "-o", "json"], ["endpoint", "list"],
      ["endpoint", "list", "-o", "json"],
      ["endpoint", "get", "a:eth0"],
    ] {
      let result = try ctl(["--socket", absent] + arguments)
      XCTAssertEqual(result.status, 1, "\(arguments)")
      XCTAssertEqual(result.stdout, "", "\(arguments)")
      XCTAssertEqual(
        result.stderr, "junctionctl: the Junction agent is not running at \(absent)\n",
        "\(arguments)")
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: absent))
  }

  func testHelpDescribesTheCommands() throws {
    try CTLTests.requireBinary()
    let help = try ctl(["--help"])
    XCTAssertEqual(help.status, 0, help.stderr)
    for text in [
      "status", "endpoint", "--socket", "JUNCTION_SOCKET", "/run/junction/junction.sock",
    ] {
      XCTAssertTrue(help.stdout.contains(text), "\(text) in\n\(help.stdout)")
    }
    let list = try ctl(["endpoint", "list", "--help"])
    XCTAssertEqual(list.status, 0, list.stderr)
    XCTAssertTrue(list.stdout.contains("-o, --output <format>"), list.stdout)
    XCTAssertTrue(list.stdout.contains("junctionctl endpoint list -o json"), list.stdout)
  }

  // MARK: - Helpers

  /// The CLI must be built; under CI its absence fails, elsewhere it skips.
  static func requireBinary() throws {
    guard !FileManager.default.isExecutableFile(atPath: binary) else { return }
    let problem = "junctionctl (swift build --product junctionctl) is missing at \(binary)"
    throw TestNode.missing(problem)
  }

  /// The CLI and an agent of this test's own (TestAgent checks root, agent and objects).
  func startAgent() throws -> TestAgent {
    try CTLTests.requireBinary()
    return try TestAgent()
  }

  /// This process's environment without JUNCTION_SOCKET, plus `overrides`.
  func environment(_ overrides: [String: String]) -> [String: String] {
    var environment = ProcessInfo.processInfo.environment
    environment.removeValue(forKey: "JUNCTION_SOCKET")
    environment.merge(overrides) { _, new in new }
    return environment
  }

  func ctl(_ arguments: [String], environment overrides: [String: String] = [:]) throws
    -> CommandOutput
  {
    try Shell.run([CTLTests.binary] + arguments, environment: environment(overrides))
  }

  /// A socket path in a directory that does not exist (and is never created).
  func absentSocket() -> String {
    URL(fileURLWithPath: NSTemporaryDirectory())
      .appendingPathComponent("jtctl\(getpid())-absent-\(UUID().uuidString.prefix(8))")
      .appendingPathComponent("junction.sock").path
  }

  func lines(_ text: String) -> [String] {
    text.split(separator: "\n").map(String.init)
  }

  /// "Key:  value" lines (indented ones too) as a dictionary.
  func fields(_ text: String) -> [String: String] {
    var result: [String: String] = [:]
    for line in lines(text) {
      guard let colon = line.range(of: ": ") ?? line.range(of: ":", options: .backwards) else {
        continue
      }
      let key = line[..<colon.lowerBound].trimmingCharacters(in: .whitespaces)
      result[key] = line[colon.upperBound...].trimmingCharacters(in: .whitespaces)
    }
    return result
  }

  /// The table's rows, each cell cut at its header's column: checks the alignment too.
  func columns(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws
    -> [[String: String]]
  {
    let all = lines(text)
    let header = try XCTUnwrap(all.first, "no header", file: file, line: line)
    // Header names have no spaces: a column starts at each non-space after a space.
    let headerCharacters = Array(header)
    var starts: [(name: String, offset: Int)] = []
    for (offset, character) in headerCharacters.enumerated()
    where character != " " && (offset == 0 || headerCharacters[offset - 1] == " ") {
      let name = headerCharacters[offset...].prefix { $0 != " " }
      starts.append((String(name), offset))
    }
    return all.dropFirst().map { row in
      let characters = Array(row)
      var cells: [String: String] = [:]
      for (index, start) in starts.enumerated() {
        let end = index + 1 < starts.count ? starts[index + 1].offset : characters.count
        guard start.offset < characters.count else { continue }
        let cell = String(characters[start.offset..<min(end, characters.count)])
        XCTAssertTrue(
          start.offset == 0 || characters[start.offset - 1] == " ",
          "column \(start.name) starts mid-cell in \(row)", file: file, line: line)
        cells[start.name] = cell.trimmingCharacters(in: .whitespaces)
      }
      return cells
    }
  }

  /// JSON text with sorted keys, to compare two JSON values.
  func canonical(_ value: Any) throws -> String {
    String(
      decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]),
      as: UTF8.self)
  }

  func assertOneLine(
    _ text: String, mentioning expected: String, file: StaticString = #filePath, line: UInt = #line
  ) {
    XCTAssertTrue(text.hasPrefix("junctionctl: "), text, file: file, line: line)
    XCTAssertTrue(text.hasSuffix("\n"), text, file: file, line: line)
    XCTAssertEqual(text.filter { $0 == "\n" }.count, 1, "one line: \(text)", file: file, line: line)
    XCTAssertTrue(text.contains(expected), "\(expected) in \(text)", file: file, line: line)
  }
}
