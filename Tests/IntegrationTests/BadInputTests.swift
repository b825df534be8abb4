import Foundation
import XCTest

/// Inputs libcni would refuse to send, by raw exec of the plugin: each is answered with
/// the spec's code as JSON on stdout, exit status 1, and leaves no link or address behind.
final class BadInputTests: XCTestCase {
  private var node: TestNode!
  private var pod: String!

  override func setUpWithError() throws {
    node = try TestNode(podSubnet: "10.240.7.0/24")
    pod = try node.makePodNamespace()
  }

  override func tearDown() {
    node?.tearDown()
    super.tearDown()
  }

  private var podPath: String { "/var/run/netns/\(pod!)" }
  private var goodConfig: [String: Any] { node.pluginConfig() }

  private func assertRejected(
    _ expectedCode: Int, command: String = "ADD", stdin: String? = nil,
    containerID: String? = "bad-ctr",
    netns: String? = "default", ifname: String? = "eth0", mentioning words: [String] = [],
    file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let result = try node.rawCall(
      command: command, stdin: stdin ?? TestNode.json(goodConfig), containerID: containerID,
      netns: netns == "default" ? podPath : netns, ifname: ifname)
    XCTAssertEqual(
      result.status, 1, "exit status; stdout: \(result.stdout)", file: file, line: line)
    XCTAssertEqual(
      result.errorCode, expectedCode, "stdout: \(result.stdout) stderr: \(result.stderr)",
      file: file, line: line)
    let json = try XCTUnwrap(
      result.json, "the error is not JSON on stdout: \(result.stdout)", file: file, line: line)
    XCTAssertNotNil(json["cniVersion"], file: file, line: line)
    let message = "\(json["msg"] ?? "") \(json["details"] ?? "")"
    for word in words {
      XCTAssertTrue(
        message.contains(word), "\"\(message)\" does not mention \(word)", file: file, line: line)
    }
    try node.assertNothingLeftBehind(pod: pod, file: file, line: line)
  }

  func testEmptyStdin() throws { try assertRejected(6, stdin: "", mentioning: ["empty"]) }

  func testNonJSON() throws { try assertRejected(6, stdin: "{not json", mentioning: ["JSON"]) }

  func testMissingName() throws {
    var config = goodConfig
    config.removeValue(forKey: "name")
    try assertRejected(7, stdin: TestNode.json(config), mentioning: ["\"name\""])
  }

  func testUnknownCNIVersion() throws {
    var config = goodConfig
    config["cniVersion"] = "7.0.0"
    try assertRejected(1, stdin: TestNode.json(config), mentioning: ["7.0.0"])
  }

  func testMisspeltMode() throws {
    var config = goodConfig
    config["mode"] = "nativ"
    try assertRejected(7, stdin: TestNode.json(config), mentioning: ["\"mode\"", "nativ"])
  }

  func testMissingNetnsOnAdd() throws {
    try assertRejected(4, netns: nil, mentioning: ["CNI_NETNS"])
  }

  func testNetnsNamingARegularFile() throws {
    let file = node.directory.appendingPathComponent("not-a-netns")
    try Data("x".utf8).write(to: file)
    try assertRejected(4, netns: file.path, mentioning: ["CNI_NETNS", "not a network namespace"])
  }

  func testNetnsThatDoesNotExist() throws {
    try assertRejected(3, netns: "/var/run/netns/\(pod!)-missing", mentioning: ["does not exist"])
  }

  func testInterfaceNameLongerThan15Bytes() throws {
    try assertRejected(4, ifname: "eth0123456789012", mentioning: ["CNI_IFNAME", "15 bytes"])
  }

  func testContainerIDWithASlash() throws {
    try assertRejected(4, containerID: "abc/def", mentioning: ["CNI_CONTAINERID"])
  }

  func testTheNodesOwnNamespaceIsRefused() throws {
    try assertRejected(4, netns: node.netnsPath, mentioning: ["own network namespace"])
  }

  func testCheckNeedsAtLeast040() throws {
    var config = goodConfig
    config["cniVersion"] = "0.3.1"
    try assertRejected(1, command: "CHECK", stdin: TestNode.json(config), mentioning: ["0.4.0"])
  }

  func testGCNeeds110() throws {
    try assertRejected(
      1, command: "GC", containerID: nil, netns: nil, ifname: nil, mentioning: ["1.1.0"])
  }

  func testUnknownCommand() throws {
    try assertRejected(4, command: "ATTACH", mentioning: ["CNI_COMMAND"])
  }

  func testVersionListsEverySupportedVersion() throws {
    let result = try node.rawCall(
      command: "VERSION", stdin: "{\"cniVersion\":\"1.0.0\"}", containerID: nil, ifname: nil)
    XCTAssertEqual(result.status, 0)
    XCTAssertEqual(result.json?["cniVersion"] as? String, "1.0.0")
    XCTAssertEqual(
      result.json?["supportedVersions"] as? [String], ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
  }
}
