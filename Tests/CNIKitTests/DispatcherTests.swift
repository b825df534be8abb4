import CNIKit
import CNITestSupport
import XCTest

final class DispatcherTests: XCTestCase {
  /// What the fake plugin saw.
  private final class Recorder {
    var madeWith: [JunctionConfig] = []
    var calls: [String] = []
    var requests: [CNIRequest] = []
    var validAttachments: [Attachment]?
  }

  /// A plugin that records each call and answers with `result` or throws `error`.
  private struct FakePlugin: CNIPlugin {
    let recorder: Recorder
    var result = CNIResult()
    var error: CNIError?

    private func record(_ call: String, _ request: CNIRequest) throws(CNIError) {
      recorder.calls.append(call)
      recorder.requests.append(request)
      if let error { throw error }
    }

    func add(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError) -> CNIResult {
      try record("ADD", request)
      return result
    }

    func del(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError) {
      try record("DEL", request)
    }

    func check(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError) {
      try record("CHECK", request)
    }

    func gc(_ request: CNIRequest, _ config: JunctionConfig, valid: [Attachment]) throws(CNIError) {
      recorder.validAttachments = valid
      try record("GC", request)
    }

    func status(_ request: CNIRequest, _ config: JunctionConfig) throws(CNIError) {
      try record("STATUS", request)
    }
  }

  private var recorder = Recorder()

  override func setUp() {
    recorder = Recorder()
  }

  private func environment(_ command: String) -> [String: String] {
    [
      "CNI_COMMAND": command, "CNI_CONTAINERID": "abc123", "CNI_NETNS": "/var/run/netns/pod1",
      "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin",
    ]
  }

  private func config(_ version: String, _ extra: [String: JSONValue] = [:]) -> [UInt8] {
    var object: [String: JSONValue] = [
      "cniVersion": .string(version), "name": "pods", "type": "junction",
      "ipam": ["type": "host-local"],
    ]
    object.merge(extra) { _, new in new }
    return JSONValue.object(object).serialized()
  }

  private func run(
    _ environment: [String: String], _ stdin: [UInt8], result: CNIResult = CNIResult(),
    error: CNIError? = nil
  ) -> CNIResponse {
    CNIDispatcher.run(environment: environment, stdin: stdin) { config in
      recorder.madeWith.append(config)
      return FakePlugin(recorder: recorder, result: result, error: error)
    }
  }

  /// The response's stdout as JSON, after checking it is one line ending in a newline.
  private func output(_ response: CNIResponse, file: StaticString = #filePath, line: UInt = #line)
    -> JSONValue
  {
    XCTAssertEqual(response.stdout.last, 0x0A, "stdout ends with a newline", file: file, line: line)
    XCTAssertEqual(
      response.stdout.filter { $0 == 0x0A }.count, 1, "stdout is one line", file: file, line: line)
    do {
      return try JSONValue.parse(response.stdout)
    } catch {
      XCTFail(
        "stdout is not JSON: \(String(decoding: response.stdout, as: UTF8.self))", file: file,
        line: line)
      return .null
    }
  }

  private let supportedList: JSONValue = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]

  // MARK: - VERSION

  func testVersionEchoesTheCallersVersionAndListsWhatJunctionSpeaks() {
    for version in ["0.3.1", "1.0.0", "1.1.0"] {
      let response = run(["CNI_COMMAND": "VERSION"], Array(#"{"cniVersion": "\#(version)"}"#.utf8))
      XCTAssertEqual(response.exitCode, 0)
      XCTAssertEqual(
        output(response), ["cniVersion": .string(version), "supportedVersions": supportedList])
    }
    XCTAssertTrue(recorder.madeWith.isEmpty, "VERSION makes no plugin")
  }

  func testVersionWithEmptyStdinAnswers110() {
    let response = run(["CNI_COMMAND": "VERSION"], [])
    XCTAssertEqual(response.exitCode, 0)
    XCTAssertEqual(output(response), ["cniVersion": "1.1.0", "supportedVersions": supportedList])
    XCTAssertEqual(
      String(decoding: response.stdout, as: UTF8.self),
      #"{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}"#
        + "\n")
  }

  func testVersionIgnoresTheOtherVariables() {
    // VERSION needs no container id or netns, and a bad one is not its concern.
    let response = run(["CNI_COMMAND": "VERSION", "CNI_CONTAINERID": "a/b"], config("1.0.0"))
    XCTAssertEqual(response.exitCode, 0)
    XCTAssertEqual(output(response)["cniVersion"], "1.0.0")
  }

  // MARK: - Version gates

  func testCheckBelow040IsCode1AndThePluginIsNotCalled() {
    for version in ["0.3.0", "0.3.1"] {
      let response = run(environment("CHECK"), config(version))
      XCTAssertEqual(response.exitCode, 1)
      let reply = output(response)
      XCTAssertEqual(reply["code"], 1)
      XCTAssertEqual(reply["cniVersion"], .string(version))
      XCTAssertTrue(reply["msg"]?.stringValue?.contains("CHECK") == true)
    }
    XCTAssertTrue(recorder.madeWith.isEmpty)
    XCTAssertTrue(recorder.calls.isEmpty)
  }

  func testCheckFrom040CallsThePlugin() {
    let response = run(environment("CHECK"), config("0.4.0"))
    XCTAssertEqual(response.exitCode, 0)
    XCTAssertEqual(response.stdout, [], "success without a result prints nothing")
    XCTAssertEqual(recorder.calls, ["CHECK"])
  }

  func testGCAndStatusBelow110AreCode1() {
    for command in ["GC", "STATUS"] {
      for version in ["0.4.0", "1.0.0"] {
        let response = run(["CNI_COMMAND": command], config(version))
        XCTAssertEqual(response.exitCode, 1)
        let reply = output(response)
        XCTAssertEqual(reply["code"], 1, "\(command) at \(version)")
        XCTAssertEqual(reply["cniVersion"], .string(version))
        XCTAssertTrue(reply["msg"]?.stringValue?.contains(command) == true)
      }
    }
    XCTAssertTrue(recorder.calls.isEmpty)
  }

  func testStatusAt110CallsThePlugin() {
    let response = run(["CNI_COMMAND": "STATUS"], config("1.1.0"))
    XCTAssertEqual(response.exitCode, 0)
    XCTAssertEqual(response.stdout, [], "success without a result prints nothing")
    XCTAssertEqual(recorder.calls, ["STATUS"])
  }

  // MARK: - ADD

  private let podResult = CNIResult(
    interfaces: [
      .init(name: "jnc1050df138a67", mac: "02:00:00:00:00:01", mtu: 1500),
      .init(name: "eth0", mac: "02:00:00:00:00:02", mtu: 1500, sandbox: "/var/run/netns/pod1"),
    ],
    ips: [.init(address: prefix("10.1.0.5/32"), gateway: address("169.254.1.1"), interface: 1)],
    routes: [.init(dst: prefix("0.0.0.0/0"), gw: address("169.254.1.1"), priority: 10)])

  func testAddPrintsTheResultInTheConfigsVersion() {
    for version in CNIVersion.supported {
      let response = run(environment("ADD"), config(version.description), result: podResult)
      XCTAssertEqual(response.exitCode, 0)
      XCTAssertEqual(output(response), podResult.json(for: version), "cniVersion \(version)")
    }
    XCTAssertEqual(recorder.calls, Array(repeating: "ADD", count: 5))
  }

  func testAddOutputBytes() {
    let response = run(environment("ADD"), config("0.3.1"), result: podResult)
    XCTAssertEqual(
      String(decoding: response.stdout, as: UTF8.self),
      #"{"cniVersion":"0.3.1","dns":{},"interfaces":[{"mac":"02:00:00:00:00:01","name":"jnc1050df138a67"},{"mac":"02:00:00:00:00:02","name":"eth0","sandbox":"/var/run/netns/pod1"}],"ips":[{"address":"10.1.0.5/32","gateway":"169.254.1.1","interface":1,"version":"4"}],"routes":[{"dst":"0.0.0.0/0","gw":"169.254.1.1"}]}"#
        + "\n")
  }

  func testAddHandsThePluginTheValidatedRequestAndConfig() throws {
    var env = environment("ADD")
    env["CNI_ARGS"] = "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p"
    _ = run(env, config("1.1.0", ["mtu": 9000]))
    let request = try XCTUnwrap(recorder.requests.first)
    XCTAssertEqual(request.attachment, Attachment(containerID: "abc123", ifname: "eth0"))
    XCTAssertEqual(request.netns, "/var/run/netns/pod1")
    XCTAssertEqual(request.arg("K8S_POD_NAME"), "p")
    XCTAssertEqual(recorder.madeWith.map(\.mtu), [9000])
  }

  // MARK: - Errors

  func testPluginErrorIsJSONOnStdoutWithExitCode1() {
    let error = CNIError(.checkMismatch, "eth0 is down", details: "link state DOWN")
    let response = run(environment("ADD"), config("1.0.0"), error: error)
    XCTAssertEqual(response.exitCode, 1)
    XCTAssertEqual(
      output(response),
      ["cniVersion": "1.0.0", "code": 105, "msg": "eth0 is down", "details": "link state DOWN"])
    XCTAssertEqual(
      String(decoding: response.stdout, as: UTF8.self),
      #"{"cniVersion":"1.0.0","code":105,"details":"link state DOWN","msg":"eth0 is down"}"# + "\n")
  }

  func testErrorWithoutDetailsLeavesDetailsOut() {
    let response = run(environment("DEL"), config("0.4.0"), error: CNIError(.tryAgainLater, "busy"))
    XCTAssertEqual(response.exitCode, 1)
    XCTAssertEqual(output(response), ["cniVersion": "0.4.0", "code": 11, "msg": "busy"])
  }

  func testEnvironmentErrorAnswersInTheStdinsVersion() {
    var env = environment("ADD")
    env["CNI_CONTAINERID"] = nil
    let response = run(env, config("0.4.0"))
    XCTAssertEqual(response.exitCode, 1)
    let reply = output(response)
    XCTAssertEqual(reply["cniVersion"], "0.4.0")
    XCTAssertEqual(reply["code"], 4)
    XCTAssertTrue(reply["msg"]?.stringValue?.contains("CNI_CONTAINERID") == true)
    XCTAssertTrue(recorder.madeWith.isEmpty)
  }

  func testConfigErrorAnswersInTheStdinsVersion() {
    let response = run(environment("ADD"), config("0.3.1", ["mtu": 10]))
    XCTAssertEqual(response.exitCode, 1)
    let reply = output(response)
    XCTAssertEqual(reply["cniVersion"], "0.3.1")
    XCTAssertEqual(reply["code"], 7)
    XCTAssertTrue(reply["msg"]?.stringValue?.contains("mtu") == true)
    XCTAssertTrue(recorder.madeWith.isEmpty)
  }

  func testEarlyErrorWithAnUnsupportedOrMissingVersionAnswersIn110() {
    for stdin in [config("0.2.0"), config("9.9.9"), [], Array("not json".utf8)] {
      let response = run(environment("ADD"), stdin)
      XCTAssertEqual(response.exitCode, 1)
      XCTAssertEqual(output(response)["cniVersion"], "1.1.0")
    }
  }

  func testUnsupportedConfigVersionIsCode1() {
    let response = run(environment("ADD"), config("0.2.0"))
    XCTAssertEqual(output(response)["code"], 1)
  }

  func testMissingCommandIsCode4() {
    let response = run([:], config("1.1.0"))
    XCTAssertEqual(response.exitCode, 1)
    XCTAssertEqual(output(response)["code"], 4)
  }

  // MARK: - DEL and GC

  func testDelSucceedsWithEmptyStdout() {
    var env = environment("DEL")
    env["CNI_NETNS"] = nil
    let response = run(env, config("1.1.0"))
    XCTAssertEqual(response.exitCode, 0)
    XCTAssertEqual(response.stdout, [], "success without a result prints nothing")
    XCTAssertEqual(recorder.calls, ["DEL"])
    XCTAssertEqual(recorder.requests.first?.netns, "")
  }

  func testGCPassesValidAttachmentsThrough() {
    let stdin = config(
      "1.1.0",
      [
        "cni.dev/valid-attachments": [
          ["containerID": "abc123", "ifname": "eth0"], ["containerID": "def456", "ifname": "net1"],
        ]
      ])
    let response = run(["CNI_COMMAND": "GC"], stdin)
    XCTAssertEqual(response.exitCode, 0)
    XCTAssertEqual(response.stdout, [], "success without a result prints nothing")
    XCTAssertEqual(recorder.calls, ["GC"])
    XCTAssertEqual(
      recorder.validAttachments,
      [
        Attachment(containerID: "abc123", ifname: "eth0"),
        Attachment(containerID: "def456", ifname: "net1"),
      ])
  }

  func testGCWithoutAListPassesAnEmptyOne() {
    _ = run(["CNI_COMMAND": "GC"], config("1.1.0"))
    XCTAssertEqual(recorder.validAttachments, [])
  }
}
