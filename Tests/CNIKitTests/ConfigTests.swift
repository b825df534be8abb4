import CNIKit
import CNITestSupport
import XCTest

final class ConfigTests: XCTestCase {
  /// A valid native-mode configuration as a JSON object; `changes` overrides (or with
  /// nil, removes) top-level fields.
  private func config(_ changes: [String: JSONValue?] = [:]) -> JSONValue {
    var object: [String: JSONValue] = [
      "cniVersion": "1.1.0", "name": "pods", "type": "junction",
      "ipam": ["type": "host-local", "subnet": "10.1.0.0/24"],
    ]
    for (key, value) in changes { object[key] = value }
    return .object(object)
  }

  private func parse(_ value: JSONValue, for command: CNICommand = .add) throws(CNIError)
    -> JunctionConfig
  {
    try JunctionConfig.parse(value.serialized(), for: command)
  }

  private func parse(text: String, for command: CNICommand = .add) throws(CNIError)
    -> JunctionConfig
  {
    try JunctionConfig.parse(Array(text.utf8), for: command)
  }

  private let prevResult: JSONValue = [
    "cniVersion": "1.1.0",
    "interfaces": [["name": "eth0", "sandbox": "/var/run/netns/pod1"]],
    "ips": [["address": "10.1.0.5/24", "interface": 0]],
  ]

  // MARK: - Decoding

  func testEmptyOrWhitespaceStdinIsCode6() {
    assertCNIError(try parse(text: ""), code: .decodeFailure, mentioning: ["empty"])
    assertCNIError(try parse(text: " \n\t\r\n"), code: .decodeFailure, mentioning: ["empty"])
  }

  func testNonJSONIsCode6() {
    for text in [
      "{", "cniVersion: 1.1.0", "{\"cniVersion\": \"1.1.0\" \"name\": \"pods\"}", "\u{FF}",
    ] {
      assertCNIError(try parse(text: text), code: .decodeFailure, mentioning: ["JSON"])
    }
  }

  func testNonObjectJSONIsCode6() {
    assertCNIError(
      try parse(text: "[{\"cniVersion\": \"1.1.0\"}]"), code: .decodeFailure,
      mentioning: ["object", "array"])
    assertCNIError(try parse(text: "\"pods\""), code: .decodeFailure, mentioning: ["object"])
  }

  // MARK: - Required fields

  func testMissingNameIsCode7() {
    assertCNIError(
      try parse(config(["name": nil])), code: .invalidConfig, mentioning: ["\"name\""])
    assertCNIError(
      try parse(config(["name": ""])), code: .invalidConfig, mentioning: ["\"name\""])
    assertCNIError(
      try parse(config(["name": 5])), code: .invalidConfig, mentioning: ["\"name\""])
  }

  func testBadNameIsCode7() {
    for name: JSONValue in ["a/b", "-pods", "pods net"] {
      assertCNIError(
        try parse(config(["name": name])), code: .invalidConfig, mentioning: ["\"name\""])
    }
  }

  func testMissingTypeIsCode7() {
    assertCNIError(
      try parse(config(["type": nil])), code: .invalidConfig, mentioning: ["\"type\""])
  }

  func testMissingCNIVersionIsCode7() {
    assertCNIError(
      try parse(config(["cniVersion": nil])), code: .invalidConfig, mentioning: ["cniVersion"])
  }

  func testUnsupportedCNIVersionIsCode1() {
    for version: JSONValue in ["9.9.9", "0.2.0", "0.1.0", "1.0", "one"] {
      let error = assertCNIError(
        try parse(config(["cniVersion": version])), code: .incompatibleVersion,
        mentioning: ["cniVersion", version.stringValue!])
      XCTAssertEqual(error?.details, "Junction supports 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0")
    }
  }

  func testEverySupportedVersionParses() throws {
    for version in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
      XCTAssertEqual(
        try parse(config(["cniVersion": .string(version)])).cniVersion.description, version)
    }
  }

  // MARK: - Junction's fields

  func testMisspeltModeIsCode7AndListsTheModes() {
    assertCNIError(
      try parse(config(["mode": "nativ"])), code: .invalidConfig,
      mentioning: ["\"mode\"", "\"native\"", "\"chained\"", "nativ"])
  }

  func testMTUOutOfRangeOrNotANumberIsCode7() {
    for mtu: JSONValue in [10, 67, 65536, 70000, "1500", .number(1500.5), true] {
      assertCNIError(
        try parse(config(["mtu": mtu])), code: .invalidConfig, mentioning: ["\"mtu\""])
    }
  }

  func testMTUBoundsAreAccepted() throws {
    XCTAssertEqual(try parse(config(["mtu": 68])).mtu, 68)
    XCTAssertEqual(try parse(config(["mtu": 65535])).mtu, 65535)
    XCTAssertEqual(try parse(config(["mtu": 9000])).mtu, 9000)
  }

  func testRelativeLogFileIsCode7() {
    assertCNIError(
      try parse(config(["logFile": "var/log/junction.log"])), code: .invalidConfig,
      mentioning: ["\"logFile\""])
  }

  func testRelativeAgentSocketIsCode7() {
    assertCNIError(
      try parse(config(["agentSocket": "junction.sock"])), code: .invalidConfig,
      mentioning: ["\"agentSocket\""])
  }

  func testUnknownLogLevelIsCode7() {
    assertCNIError(
      try parse(config(["logLevel": "verbose"])), code: .invalidConfig,
      mentioning: ["\"logLevel\"", "debug", "verbose"])
  }

  func testDefaults() throws {
    let parsed = try parse(config())
    XCTAssertEqual(parsed.cniVersion, .v110)
    XCTAssertEqual(parsed.name, "pods")
    XCTAssertEqual(parsed.type, "junction")
    XCTAssertEqual(parsed.mode, .native)
    XCTAssertEqual(parsed.mtu, 1500)
    XCTAssertEqual(parsed.agentSocket, "/run/junction/junction.sock")
    XCTAssertEqual(parsed.logLevel, .info)
    XCTAssertNil(parsed.logFile)
    XCTAssertEqual(parsed.ipamType, "host-local")
    XCTAssertNil(parsed.dns)
    XCTAssertNil(parsed.prevResult)
    XCTAssertNil(parsed.validAttachments)
    XCTAssertEqual(parsed.raw, config())
  }

  func testEveryFieldIsRead() throws {
    let parsed = try parse(
      config([
        "mode": "native", "mtu": 9000, "agentSocket": "/run/j.sock",
        "logFile": "/var/log/junction-cni.log", "logLevel": "debug",
        "dns": ["nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]],
      ]))
    XCTAssertEqual(parsed.mtu, 9000)
    XCTAssertEqual(parsed.agentSocket, "/run/j.sock")
    XCTAssertEqual(parsed.logFile, "/var/log/junction-cni.log")
    XCTAssertEqual(parsed.logLevel, .debug)
    XCTAssertEqual(
      parsed.dns, CNIResult.DNS(nameservers: ["10.96.0.10"], search: ["svc.cluster.local"]))
  }

  // MARK: - IPAM and mode

  func testNativeModeWithoutIPAMIsCode7() {
    for command in [CNICommand.add, .del, .check] {
      assertCNIError(
        try parse(config(["ipam": nil]), for: command), code: .invalidConfig,
        mentioning: ["\"ipam\""])
    }
  }

  func testChainedModeNeedsNoIPAM() throws {
    let parsed = try parse(config(["mode": "chained", "ipam": nil, "prevResult": prevResult]))
    XCTAssertEqual(parsed.mode, .chained)
    XCTAssertNil(parsed.ipamType)
  }

  func testIPAMWithoutTypeIsCode7() {
    assertCNIError(
      try parse(config(["ipam": ["subnet": "10.1.0.0/24"]])), code: .invalidConfig,
      mentioning: ["\"ipam.type\""])
  }

  func testIPAMTypeThatIsAPathIsCode7() {
    assertCNIError(
      try parse(config(["ipam": ["type": "../host-local"]])), code: .invalidConfig,
      mentioning: ["\"ipam.type\""])
  }

  func testIPAMThatIsNotAnObjectIsCode7() {
    assertCNIError(
      try parse(config(["ipam": "host-local"])), code: .invalidConfig, mentioning: ["\"ipam\""])
  }

  // MARK: - host-local ranges (dual-stack)

  private func hostLocal(_ fields: [String: JSONValue]) -> JSONValue {
    var ipam: [String: JSONValue] = ["type": "host-local"]
    for (key, value) in fields { ipam[key] = value }
    return config(["ipam": .object(ipam)])
  }

  func testDualStackRangesAndRoutesParse() throws {
    let parsed = try parse(
      hostLocal([
        "ranges": [
          [["subnet": "10.1.0.0/24", "gateway": "10.1.0.1"]],
          [
            [
              "subnet": "fd00:10:1::/64", "rangeStart": "fd00:10:1::10",
              "rangeEnd": "fd00:10:1::ff",
            ]
          ],
        ],
        "routes": [["dst": "0.0.0.0/0"], ["dst": "::/0", "gw": "fd00:10:1::1"]],
      ]))
    XCTAssertEqual(parsed.ipamType, "host-local")
  }

  func testRangeSetMixingFamiliesIsCode7() {
    assertCNIError(
      try parse(
        hostLocal(["ranges": [[["subnet": "10.1.0.0/24"], ["subnet": "fd00:10:1::/64"]]]])),
      code: .invalidConfig, mentioning: ["\"ipam.ranges[0]\"", "mixes IPv4 and IPv6", "[["])
  }

  func testRangeAddressOfTheOtherFamilyOrOutsideTheSubnetIsCode7() {
    assertCNIError(
      try parse(
        hostLocal([
          "ranges": [
            [["subnet": "10.1.0.0/24"]], [["subnet": "fd00::/64", "gateway": "10.1.0.1"]],
          ]
        ])),
      code: .invalidConfig, mentioning: ["\"ipam.ranges[1][0].gateway\"", "IPv4", "fd00::/64"])
    assertCNIError(
      try parse(hostLocal(["ranges": [[["subnet": "fd00::/64", "rangeEnd": "fd01::9"]]]])),
      code: .invalidConfig, mentioning: ["\"ipam.ranges[0][0].rangeEnd\"", "outside"])
    assertCNIError(
      try parse(hostLocal(["subnet": "fd00::/64", "gateway": "fd00:1::1"])),
      code: .invalidConfig, mentioning: ["\"ipam.gateway\"", "outside"])
  }

  func testMalformedRangesAreCode7() {
    assertCNIError(
      try parse(hostLocal(["ranges": [[["subnet": "fd00::/129"]]]])), code: .invalidConfig,
      mentioning: ["\"ipam.ranges[0][0].subnet\""])
    assertCNIError(
      try parse(hostLocal(["ranges": [["subnet": "fd00::/64"]]])), code: .invalidConfig,
      mentioning: ["\"ipam.ranges[0]\"", "range set"])
    assertCNIError(
      try parse(hostLocal(["ranges": [[]]])), code: .invalidConfig,
      mentioning: ["\"ipam.ranges[0]\""])
  }

  func testRouteViaAGatewayOfTheOtherFamilyIsCode7() {
    assertCNIError(
      try parse(
        hostLocal([
          "ranges": [[["subnet": "fd00::/64"]]], "routes": [["dst": "::/0", "gw": "10.1.0.1"]],
        ])),
      code: .invalidConfig, mentioning: ["\"ipam.routes[0].gw\"", "::/0"])
  }

  func testRangesAreJudgedOnlyOnAddAndOnlyForHostLocal() throws {
    let mixed: JSONValue = [[["subnet": "10.1.0.0/24"], ["subnet": "fd00::/64"]]]
    // DEL must release what an older, looser config allocated.
    _ = try parse(hostLocal(["ranges": mixed]), for: .del)
    // Another IPAM plugin's "ranges" may mean something else.
    _ = try parse(config(["ipam": ["type": "whereabouts", "ranges": mixed]]))
  }

  // MARK: - prevResult

  func testNativeAddWithPrevResultIsCode7() {
    assertCNIError(
      try parse(config(["prevResult": prevResult])), code: .invalidConfig,
      mentioning: ["\"prevResult\"", "chained"])
  }

  func testNativeCheckAndDelAcceptPrevResult() throws {
    for command in [CNICommand.check, .del] {
      let parsed = try parse(config(["prevResult": prevResult]), for: command)
      XCTAssertEqual(parsed.prevResult?.ips.first?.address, prefix("10.1.0.5/24"))
    }
  }

  func testChainedAddWithoutPrevResultIsCode7() {
    assertCNIError(
      try parse(config(["mode": "chained"])), code: .invalidConfig, mentioning: ["\"prevResult\""])
    assertCNIError(
      try parse(config(["mode": "chained", "prevResult": .null])), code: .invalidConfig,
      mentioning: ["\"prevResult\""])
  }

  func testChainedAddReadsPrevResult() throws {
    let parsed = try parse(config(["mode": "chained", "prevResult": prevResult]))
    XCTAssertEqual(
      parsed.prevResult,
      CNIResult(
        interfaces: [.init(name: "eth0", sandbox: "/var/run/netns/pod1")],
        ips: [.init(address: prefix("10.1.0.5/24"), interface: 0)]))
  }

  func testInvalidPrevResultIsCode7NamingTheField() {
    let bad: JSONValue = ["cniVersion": "1.1.0", "ips": [["address": "10.1.0.500/24"]]]
    assertCNIError(
      try parse(config(["mode": "chained", "prevResult": bad])), code: .invalidConfig,
      mentioning: ["prevResult", "ips[0].address"])
  }

  // MARK: - GC

  func testGCReadsBothAttachmentKeys() throws {
    let parsed = try parse(
      config([
        "cni.dev/attachments": [["containerID": "a1", "ifname": "eth0"]],
        "cni.dev/valid-attachments": [
          ["containerID": "b2", "ifname": "eth0"], ["containerID": "b2", "ifname": "net1"],
        ],
      ]), for: .gc)
    XCTAssertEqual(
      parsed.validAttachments,
      [
        Attachment(containerID: "a1", ifname: "eth0"),
        Attachment(containerID: "b2", ifname: "eth0"),
        Attachment(containerID: "b2", ifname: "net1"),
      ])
  }

  func testGCReadsEitherKeyAlone() throws {
    for key in ["cni.dev/attachments", "cni.dev/valid-attachments"] {
      let parsed = try parse(config([key: [["containerID": "a1", "ifname": "eth0"]]]), for: .gc)
      XCTAssertEqual(parsed.validAttachments, [Attachment(containerID: "a1", ifname: "eth0")])
    }
  }

  func testGCWithAnEmptyListHasNoValidAttachments() throws {
    XCTAssertEqual(
      try parse(config(["cni.dev/valid-attachments": []]), for: .gc).validAttachments, [])
  }

  func testGCAttachmentWithoutIfnameIsCode7() {
    assertCNIError(
      try parse(config(["cni.dev/valid-attachments": [["containerID": "a1"]]]), for: .gc),
      code: .invalidConfig, mentioning: ["cni.dev/valid-attachments[0].ifname"])
  }

  // MARK: - raw(withVersion:)

  func testRawWithVersionChangesOnlyCNIVersion() throws {
    let original = config(["mtu": 9000, "runtimeConfig": ["portMappings": []], "args": ["x": 1]])
    let parsed = try parse(original)
    let downgraded = parsed.raw(withVersion: .v100)
    XCTAssertEqual(downgraded["cniVersion"], "1.0.0")
    var expected = try XCTUnwrap(original.objectValue)
    expected["cniVersion"] = "1.0.0"
    XCTAssertEqual(downgraded, .object(expected))
    XCTAssertEqual(parsed.raw, original, "the parsed config keeps its own raw object")
  }
}
