import Foundation
import XCTest

/// The `junction-install` executable as the DaemonSet and a user run it: exit statuses, what
/// it prints, `--first-in`, `--quiet`, and a refused file left as it was.
final class InstallCommandTests: XCTestCase {
  private var directory = ""

  static var binary: String {
    ProcessInfo.processInfo.environment["JUNCTION_INSTALL_BIN"]
      ?? Artifacts.repoRoot.appendingPathComponent(".build/debug/junction-install").path
  }

  override func setUpWithError() throws {
    guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
      let reason = "junction-install is not built at \(Self.binary) (swift build)"
      throw TestNode.missing(reason)
    }
    directory = NSTemporaryDirectory() + TestNode.uniqueName("inst")
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
  }

  override func tearDownWithError() throws {
    if !directory.isEmpty { try? FileManager.default.removeItem(atPath: directory) }
  }

  func testChainQuietRechainAndUnchainThroughTheCommand() throws {
    let fixture = Artifacts.repoRoot.appendingPathComponent(
      "Tests/CNIConfigEditingTests/Fixtures/10-calico.conflist")
    let original = try Data(contentsOf: fixture)
    let path = directory + "/10-calico.conflist"
    try original.write(to: URL(fileURLWithPath: path))
    XCTAssertTrue(
      FileManager.default.createFile(atPath: directory + "/99-other.conflist", contents: original))

    let pick = try Shell.run([Self.binary, "pick", directory])
    XCTAssertEqual(pick.status, 0, pick.stderr)
    XCTAssertEqual(pick.stdout, path + "\n")

    let chain = try Shell.run([
      Self.binary, "chain", "--first-in", directory, "--agent-socket", "/run/junction/j.sock",
    ])
    XCTAssertEqual(chain.status, 0, chain.stderr)
    XCTAssertEqual(chain.stdout, "\(path): junction appended to plugins\n")
    let list = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        as? [String: Any])
    XCTAssertEqual(
      (list["plugins"] as? [Any])?.last as? NSDictionary,
      ["type": "junction", "mode": "chained", "agentSocket": "/run/junction/j.sock"])

    // The DaemonSet's re-chain loop: silent and successful while nothing changes.
    let again = try Shell.run([Self.binary, "chain", "--first-in", directory, "--quiet"])
    XCTAssertEqual(again.status, 0, again.stderr)
    XCTAssertEqual(again.stdout, "")
    XCTAssertEqual(again.stderr, "")

    let unchain = try Shell.run([Self.binary, "unchain", path])
    XCTAssertEqual(unchain.status, 0, unchain.stderr)
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), original)
    XCTAssertEqual(
      try Data(contentsOf: URL(fileURLWithPath: directory + "/99-other.conflist")), original)
  }

  func testARefusedFileGetsOneLineOnStderrAndExitOne() throws {
    let path = directory + "/10-flannel.conflist"
    let truncated = Data(
      #"{"cniVersion": "0.3.1", "name": "cbr0", "plugins": [{"type": "flannel""#.utf8)
    try truncated.write(to: URL(fileURLWithPath: path))
    let result = try Shell.run([Self.binary, "chain", path])
    XCTAssertEqual(result.status, 1)
    XCTAssertEqual(result.stdout, "")
    XCTAssertEqual(
      result.stderr,
      "junction-install: \(path): refused, nothing changed: byte \(truncated.count): not valid JSON: "
        + "the file ends inside an object (truncated?)\n")
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), truncated)
    XCTAssertEqual(
      try FileManager.default.contentsOfDirectory(atPath: directory), ["10-flannel.conflist"])

    let bad = try Shell.run([Self.binary, "chain", path, "--log-file", "relative.log"])
    XCTAssertEqual(bad.status, 1)
    XCTAssertTrue(bad.stderr.contains("logFile"), bad.stderr)

    let empty = try Shell.run([Self.binary, "chain", "--first-in", directory + "/none"])
    XCTAssertEqual(empty.status, 1)
    XCTAssertTrue(empty.stderr.hasPrefix("junction-install: "), empty.stderr)
  }
}
