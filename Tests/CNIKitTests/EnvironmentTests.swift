import CNIKit
import CNITestSupport
import XCTest

final class EnvironmentTests: XCTestCase {
  private let netns = "/var/run/netns/pod1"

  /// A complete ADD environment; `changes` overrides (or with nil, removes) variables.
  private func env(_ command: String = "ADD", _ changes: [String: String?] = [:]) -> [String:
    String]
  {
    var env = [
      "CNI_COMMAND": command, "CNI_CONTAINERID": "abc123", "CNI_NETNS": netns,
      "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin",
    ]
    for (key, value) in changes { env[key] = value }
    return env
  }

  private func request(_ env: [String: String], file: StaticString = #filePath, line: UInt = #line)
    -> CNIRequest?
  {
    do {
      return try CNIRequest.from(environment: env)
    } catch {
      XCTFail("unexpected error \(error.code): \(error.msg)", file: file, line: line)
      return nil
    }
  }

  // MARK: - Commands

  func testAddReadsEveryVariable() throws {
    let request = try XCTUnwrap(request(env("ADD")))
    XCTAssertEqual(request.command, .add)
    XCTAssertEqual(request.containerID, "abc123")
    XCTAssertEqual(request.netns, netns)
    XCTAssertEqual(request.ifname, "eth0")
    XCTAssertEqual(request.path, ["/opt/cni/bin"])
    XCTAssertEqual(request.attachment, Attachment(containerID: "abc123", ifname: "eth0"))
  }

  func testAddAndCheckRequireContainerIDNetnsAndIfname() {
    for command in ["ADD", "CHECK"] {
      for variable in ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"] {
        assertCNIError(
          try CNIRequest.from(environment: env(command, [variable: nil])),
          code: .invalidEnvironment, mentioning: [variable])
        assertCNIError(
          try CNIRequest.from(environment: env(command, [variable: ""])),
          code: .invalidEnvironment, mentioning: [variable])
      }
    }
  }

  func testDelNeedsContainerIDAndIfnameButNotNetns() throws {
    for variable in ["CNI_CONTAINERID", "CNI_IFNAME"] {
      assertCNIError(
        try CNIRequest.from(environment: env("DEL", [variable: nil])),
        code: .invalidEnvironment, mentioning: [variable])
    }
    let withoutNetns = try XCTUnwrap(request(env("DEL", ["CNI_NETNS": nil])))
    XCTAssertEqual(withoutNetns.command, .del)
    XCTAssertEqual(withoutNetns.netns, "")
    XCTAssertEqual(withoutNetns.attachment, Attachment(containerID: "abc123", ifname: "eth0"))

    let emptyNetns = try XCTUnwrap(request(env("DEL", ["CNI_NETNS": ""])))
    XCTAssertEqual(emptyNetns.netns, "")

    let withNetns = try XCTUnwrap(request(env("DEL")))
    XCTAssertEqual(withNetns.netns, netns)
  }

  func testGCStatusAndVersionNeedNoAttachmentVariables() throws {
    for (text, command) in [("GC", CNICommand.gc), ("STATUS", .status), ("VERSION", .version)] {
      let request = try XCTUnwrap(request(["CNI_COMMAND": text]))
      XCTAssertEqual(request.command, command)
      XCTAssertEqual(request.containerID, "")
      XCTAssertEqual(request.netns, "")
      XCTAssertEqual(request.ifname, "")
      XCTAssertEqual(request.path, [])
    }
  }

  func testMissingOrUnknownCommandIsCode4() {
    assertCNIError(
      try CNIRequest.from(environment: [:]), code: .invalidEnvironment, mentioning: ["CNI_COMMAND"])
    assertCNIError(
      try CNIRequest.from(environment: env("")), code: .invalidEnvironment,
      mentioning: ["CNI_COMMAND"])
    for command in ["FOO", "add", "Add", "UPDATE"] {
      assertCNIError(
        try CNIRequest.from(environment: env(command)), code: .invalidEnvironment,
        mentioning: ["CNI_COMMAND", command])
    }
  }

  // MARK: - CNI_CONTAINERID

  func testBadContainerIDsAreCode4() {
    for id in ["abc/123", "", "-abc", "_abc", ".abc", "abc 123", "abc:123"] {
      assertCNIError(
        try CNIRequest.from(environment: env("ADD", ["CNI_CONTAINERID": id])),
        code: .invalidEnvironment, mentioning: ["CNI_CONTAINERID"])
    }
  }

  func testContainerIDMayContainDotsDashesAndUnderscores() throws {
    let id = "0a1B2c_d.e-f"
    XCTAssertEqual(try XCTUnwrap(request(env("ADD", ["CNI_CONTAINERID": id]))).containerID, id)
  }

  // MARK: - CNI_IFNAME

  func testInterfaceNameOfExactly15BytesIsAccepted() throws {
    let name = "abcdefghijklmno"
    XCTAssertEqual(name.utf8.count, 15)
    XCTAssertEqual(try XCTUnwrap(request(env("ADD", ["CNI_IFNAME": name]))).ifname, name)
  }

  func testInterfaceNameLongerThan15BytesIsCode4() {
    let ascii = "abcdefghijklmnop"
    XCTAssertEqual(ascii.utf8.count, 16)
    // Eight characters, sixteen bytes: the limit is IFNAMSIZ bytes, not characters.
    let multiByte = "éééééééé"
    XCTAssertEqual(multiByte.count, 8)
    XCTAssertEqual(multiByte.utf8.count, 16)
    for name in [ascii, multiByte] {
      assertCNIError(
        try CNIRequest.from(environment: env("ADD", ["CNI_IFNAME": name])),
        code: .invalidEnvironment, mentioning: ["CNI_IFNAME", "15"])
    }
  }

  func testReservedOrBadlyCharacterisedInterfaceNamesAreCode4() {
    for name in [".", "..", "eth:0", "eth/0", "eth 0", "eth\t0", "eth0\n"] {
      assertCNIError(
        try CNIRequest.from(environment: env("ADD", ["CNI_IFNAME": name])),
        code: .invalidEnvironment, mentioning: ["CNI_IFNAME"])
    }
  }

  func testInterfaceNameIsValidatedForDelToo() {
    assertCNIError(
      try CNIRequest.from(environment: env("DEL", ["CNI_IFNAME": "eth/0"])),
      code: .invalidEnvironment, mentioning: ["CNI_IFNAME"])
  }

  // MARK: - CNI_NETNS

  func testRelativeNetnsIsCode4() {
    for command in ["ADD", "CHECK", "DEL"] {
      assertCNIError(
        try CNIRequest.from(environment: env(command, ["CNI_NETNS": "var/run/netns/pod1"])),
        code: .invalidEnvironment, mentioning: ["CNI_NETNS", "absolute"])
    }
  }

  // MARK: - CNI_ARGS

  func testArgsAreParsedInOrder() throws {
    let request = try XCTUnwrap(
      request(env("ADD", ["CNI_ARGS": "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p"])))
    XCTAssertEqual(request.args.map(\.key), ["K8S_POD_NAMESPACE", "K8S_POD_NAME"])
    XCTAssertEqual(request.args.map(\.value), ["ns", "p"])
    XCTAssertEqual(request.arg("K8S_POD_NAMESPACE"), "ns")
    XCTAssertEqual(request.arg("K8S_POD_NAME"), "p")
    XCTAssertNil(request.arg("K8S_POD_UID"))
  }

  func testArgsTolerateATrailingSemicolonAndEmptyValues() throws {
    let request = try XCTUnwrap(request(env("ADD", ["CNI_ARGS": "IgnoreUnknown=1;EMPTY=;"])))
    XCTAssertEqual(request.args.map(\.key), ["IgnoreUnknown", "EMPTY"])
    XCTAssertEqual(request.args.map(\.value), ["1", ""])
  }

  func testArgValueMayContainEquals() throws {
    let request = try XCTUnwrap(request(env("ADD", ["CNI_ARGS": "A=b=c"])))
    XCTAssertEqual(request.arg("A"), "b=c")
  }

  func testLaterArgWinsForARepeatedKey() throws {
    let request = try XCTUnwrap(request(env("ADD", ["CNI_ARGS": "A=1;A=2"])))
    XCTAssertEqual(request.arg("A"), "2")
  }

  func testArgWithoutEqualsOrKeyIsCode4() {
    for args in ["K8S_POD_NAME", "A=1;B", "=value"] {
      assertCNIError(
        try CNIRequest.from(environment: env("ADD", ["CNI_ARGS": args])),
        code: .invalidEnvironment, mentioning: ["CNI_ARGS"])
    }
  }

  func testMissingArgsAreEmpty() throws {
    XCTAssertTrue(try XCTUnwrap(request(env("ADD"))).args.isEmpty)
  }

  // MARK: - CNI_PATH

  func testPathIsSplitOnColons() throws {
    let request = try XCTUnwrap(
      request(env("ADD", ["CNI_PATH": "/opt/cni/bin:/usr/libexec/cni::/usr/lib/cni"])))
    XCTAssertEqual(request.path, ["/opt/cni/bin", "/usr/libexec/cni", "/usr/lib/cni"])
  }

  func testPathIsReadForEveryCommand() throws {
    let request = try XCTUnwrap(request(["CNI_COMMAND": "GC", "CNI_PATH": "/a:/b"]))
    XCTAssertEqual(request.path, ["/a", "/b"])
  }

  func testMissingPathIsEmpty() throws {
    XCTAssertEqual(try XCTUnwrap(request(env("ADD", ["CNI_PATH": nil]))).path, [])
  }
}
