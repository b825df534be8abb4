import CNIConfigEditing
import Foundation
import XCTest

/// chain/unchain on the text of configs as real CNIs write them (Fixtures/): the round trip
/// is byte for byte, the chained list is valid with junction last and every other byte of
/// the plugins untouched, both directions are idempotent, and bad files are refused.
final class ConflistEditorTests: XCTestCase {
  func testChainThenUnchainGivesBackEveryFixtureByteForByte() throws {
    for (name, original) in try Fixtures.conflists() {
      let chained = try changed(
        ConflistEditor.chain(conflist: original, entry: JunctionEntry()), name)
      XCTAssertEqual(try changed(ConflistEditor.unchain(conflist: chained), name), original, name)
    }
  }

  func testChainedListIsValidJSONWithJunctionLastAndEverythingElseUntouched() throws {
    let entry = JunctionEntry(agentSocket: "/run/junction/junction.sock", logLevel: "debug")
    for (name, original) in try Fixtures.conflists() {
      let chained = try changed(ConflistEditor.chain(conflist: original, entry: entry), name)
      let before = try XCTUnwrap(
        try JSONSerialization.jsonObject(with: Data(original)) as? [String: Any], name)
      let after = try XCTUnwrap(
        try JSONSerialization.jsonObject(with: Data(chained)) as? [String: Any], name)
      let oldPlugins = try XCTUnwrap(before["plugins"] as? [Any], name)
      let newPlugins = try XCTUnwrap(after["plugins"] as? [Any], name)
      XCTAssertEqual(newPlugins.count, oldPlugins.count + 1, name)
      XCTAssertEqual(
        newPlugins.last as? NSDictionary,
        [
          "type": "junction", "mode": "chained", "agentSocket": "/run/junction/junction.sock",
          "logLevel": "debug",
        ] as NSDictionary, name)
      // Every byte before the insertion point and after it is the original's.
      let oldScan = try JSONScanner.scan(original)
      let lastEnd = try XCTUnwrap(oldScan.member("plugins")?.elements?.last).range.upperBound
      XCTAssertEqual(Array(chained[..<lastEnd]), Array(original[..<lastEnd]), name)
      XCTAssertEqual(
        Array(chained.suffix(original.count - lastEnd)), Array(original[lastEnd...]), name)
      var otherKeysBefore = before
      var otherKeysAfter = after
      otherKeysBefore["plugins"] = nil
      otherKeysAfter["plugins"] = nil
      XCTAssertEqual(otherKeysBefore as NSDictionary, otherKeysAfter as NSDictionary, name)
    }
  }

  func testChainTwiceIsChainOnceAndUnchainOfAPlainListChangesNothing() throws {
    for (name, original) in try Fixtures.conflists() {
      let chained = try changed(
        ConflistEditor.chain(conflist: original, entry: JunctionEntry()), name)
      guard case .unchanged = try ConflistEditor.chain(conflist: chained, entry: JunctionEntry())
      else { return XCTFail("\(name): a second chain changed the file") }
      guard case .unchanged = try ConflistEditor.unchain(conflist: original) else {
        return XCTFail("\(name): unchain of a list without junction changed it")
      }
    }
  }

  /// The inserted element reads like its neighbour: same indentation, separator, spacing.
  func testInsertedElementFollowsTheNeighboursStyle() throws {
    let flannel = try Fixtures.bytes("10-flannel.conflist")
    let chained = try changed(ConflistEditor.chain(conflist: flannel, entry: JunctionEntry()), "")
    XCTAssertTrue(
      String(decoding: chained, as: UTF8.self).hasSuffix(
        """
              "capabilities": {
                "portMappings": true
              }
            },
            {
              "type": "junction",
              "mode": "chained"
            }
          ]
        }

        """))

    let compact = try Fixtures.bytes("40-compact.conflist")
    let compactChained = try changed(
      ConflistEditor.chain(conflist: compact, entry: JunctionEntry()), "")
    XCTAssertTrue(
      String(decoding: compactChained, as: UTF8.self).hasSuffix(
        #"{"portMappings":true}},{"type":"junction","mode":"chained"}]}"#))

    let tabs = try Fixtures.bytes("20-tabs.conflist")
    let tabsChained = try changed(ConflistEditor.chain(conflist: tabs, entry: JunctionEntry()), "")
    XCTAssertTrue(
      String(decoding: tabsChained, as: UTF8.self).contains(
        "\t\t},\n\t\t{\n\t\t\t\"type\": \"junction\",\n\t\t\t\"mode\": \"chained\"\n\t\t}\n\t]"))

    // CRLF stays CRLF: no bare LF appears.
    let crlf = try Fixtures.bytes("30-crlf.conflist")
    let crlfChained = try changed(ConflistEditor.chain(conflist: crlf, entry: JunctionEntry()), "")
    for (index, byte) in crlfChained.enumerated() where byte == 0x0A {
      XCTAssertEqual(crlfChained[index - 1], 0x0D, "bare LF at byte \(index)")
    }

    // A single plugin: the separator comes from the text after '['.
    let single = try Fixtures.bytes("50-single-plugin.conflist")
    let singleChained = try changed(
      ConflistEditor.chain(conflist: single, entry: JunctionEntry()), "")
    XCTAssertTrue(
      String(decoding: singleChained, as: UTF8.self).contains(
        #""ipam": {"type": "dhcp"}}, {"type": "junction", "mode": "chained"} ]}"#))
  }

  func testUnchainRemovesJunctionWhereverItIsButRefusesItsOwnNetwork() throws {
    let middle = Array(
      #"{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "a"}, {"type": "junction", "mode": "chained"}, {"type": "b"}]}"#
        .utf8)
    XCTAssertEqual(
      try changed(ConflistEditor.unchain(conflist: middle), ""),
      Array(
        #"{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "a"}, {"type": "b"}]}"#.utf8))
    let first = Array(
      #"{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "junction", "mode": "chained"}, {"type": "b"}]}"#
        .utf8)
    XCTAssertEqual(
      try changed(ConflistEditor.unchain(conflist: first), ""),
      Array(#"{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "b"}]}"#.utf8))
    let alone = Array(
      #"{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "junction", "mode": "chained"}]}"#
        .utf8)
    XCTAssertThrowsError(try ConflistEditor.unchain(conflist: alone)) { error in
      XCTAssertTrue("\(error)".contains("only plugin"), "\(error)")
    }
    let native = try Data(
      contentsOf: Fixtures.repoRoot.appendingPathComponent("cni-conf/10-junction-native.conflist"))
    XCTAssertThrowsError(try ConflistEditor.unchain(conflist: Array(native))) { error in
      XCTAssertTrue("\(error)".contains("native mode"), "\(error)")
    }
  }

  func testALoneConfBecomesAListKeepingItsTextAndComesBackExactly() throws {
    for name in ["10-mynet.conf", "60-crlf.conf"] {
      let original = try Fixtures.bytes(name)
      let list = try ConflistEditor.convert(conf: original, fileName: name, entry: JunctionEntry())
      let parsed = try XCTUnwrap(
        try JSONSerialization.jsonObject(with: Data(list)) as? [String: Any], name)
      let conf = try XCTUnwrap(
        try JSONSerialization.jsonObject(with: Data(original)) as? [String: Any], name)
      XCTAssertEqual(parsed["name"] as? String, conf["name"] as? String, name)
      XCTAssertEqual(parsed["cniVersion"] as? String, conf["cniVersion"] as? String, name)
      let plugins = try XCTUnwrap(parsed["plugins"] as? [[String: Any]], name)
      XCTAssertEqual(plugins.count, 2, name)
      XCTAssertEqual(plugins[0] as NSDictionary, conf as NSDictionary, name)
      XCTAssertEqual(plugins[1] as NSDictionary, ["type": "junction", "mode": "chained"], name)
      let restored = try XCTUnwrap(try ConflistEditor.restoredConf(list), name)
      XCTAssertEqual(restored.fileName, name)
      XCTAssertEqual(restored.bytes, original, name)
      // A second chain of the list changes nothing.
      guard case .unchanged = try ConflistEditor.chain(conflist: list, entry: JunctionEntry())
      else { return XCTFail("\(name): chain of the converted list changed it") }
    }
  }

  func testTruncatedFilesAreRefusedWithTheOffsetWhereReadingStopped() throws {
    for (name, original) in try Fixtures.conflists() {
      let end = try XCTUnwrap(original.lastIndex(of: UInt8(ascii: "}")))
      for length in [0, 1, end / 2, end] {
        XCTAssertThrowsError(
          try ConflistEditor.chain(conflist: Array(original[..<length]), entry: JunctionEntry()),
          "\(name) cut at \(length)"
        ) { error in
          let refusal = error as? ConfigEditError
          XCTAssertNotNil(refusal?.offset, "\(name) cut at \(length)")
          XCTAssertLessThanOrEqual(refusal?.offset ?? .max, length)
          XCTAssertTrue("\(error)".contains("not valid JSON"), "\(error)")
        }
      }
    }
    XCTAssertThrowsError(
      try ConflistEditor.chain(
        conflist: Array(#"{"name": "x", "plugins": [{"type": "a"}"#.utf8), entry: JunctionEntry())
    ) { error in
      XCTAssertEqual(
        error as? ConfigEditError,
        ConfigEditError(offset: 39, "not valid JSON: the file ends inside an array (truncated?)"))
    }
  }

  func testFilesThatCannotBeChainedAreRefusedWithAReason() {
    let cases: [(String, String, Int?)] = [
      (#"["a"]"#, "must be a JSON object, this is an array", 0),
      (#"{"cniVersion": "1.0.0", "name": "x"}"#, #"no "plugins" array"#, 0),
      (#"{"cniVersion": "1.0.0", "plugins": {"type": "a"}}"#, "must be an array", 35),
      (#"{"cniVersion": "1.0.0", "plugins": []}"#, "is empty", 35),
      (
        #"{"cniVersion": "1.0.0", "plugins": [{"type": "a"}, 3]}"#, "plugins[1] must be an object",
        51
      ),
      (#"{"cniVersion": "1.0.0", "plugins": [{"ipam": {}}]}"#, #"plugins[0] has no "type""#, 36),
      (
        #"{"cniVersion": "0.2.0", "plugins": [{"type": "a"}]}"#,
        #"cniVersion "0.2.0" cannot chain"#, 15
      ),
      (#"{"plugins": [{"type": "a"}]}"#, #"no "cniVersion""#, 0),
      (#"{"plugins": [], "plugins": [{"type": "a"}]}"#, "appears twice", 16),
      (#"{"cniVersion": "1.0.0", "plugins": [{"type": "a"}]} x"#, "after the end", 52),
      (#"{"cniVersion": "1.0.0", "plugins": [{"type": "a",}]}"#, "expected a quoted key", 49),
      (
        "{\"cniVersion\": \"1.0.0\", \"plugins\": [{\"type\": \"a\u{1}\"}]}", "control character",
        47
      ),
      (#"{"cniVersion": "1.0.0", "plugins": [{"type": 01}]}"#, "expected ',' or '}'", 46),
    ]
    for (text, reason, offset) in cases {
      XCTAssertThrowsError(
        try ConflistEditor.chain(conflist: Array(text.utf8), entry: JunctionEntry()), text
      ) { error in
        XCTAssertTrue("\(error)".contains(reason), "\(text): \(error)")
        XCTAssertEqual((error as? ConfigEditError)?.offset, offset, "\(text): \(error)")
      }
    }
    let confCases: [(String, String)] = [
      (#"{"cniVersion": "0.2.0", "name": "x", "type": "bridge"}"#, "cannot chain"),
      (#"{"cniVersion": "1.0.0", "name": "x", "plugins": []}"#, "rename it to .conflist"),
      (#"{"cniVersion": "1.0.0", "name": "x", "type": "junction"}"#, "Junction's own"),
      (#"{"cniVersion": "1.0.0", "type": "bridge"}"#, #"no "name""#),
    ]
    for (text, reason) in confCases {
      XCTAssertThrowsError(
        try ConflistEditor.convert(
          conf: Array(text.utf8), fileName: "x.conf", entry: JunctionEntry())
      ) { error in
        XCTAssertTrue("\(error)".contains(reason), "\(text): \(error)")
      }
    }
  }

  func testEntryFieldsAreCheckedAsThePluginChecksThem() {
    XCTAssertNoThrow(
      try JunctionEntry(agentSocket: "/run/j.sock", logFile: "/var/log/j.log", logLevel: "info")
        .validate())
    XCTAssertThrowsError(try JunctionEntry(agentSocket: "run/j.sock").validate()) { error in
      XCTAssertTrue("\(error)".contains("agentSocket"), "\(error)")
    }
    XCTAssertThrowsError(try JunctionEntry(logLevel: "loud").validate()) { error in
      XCTAssertTrue("\(error)".contains("logLevel"), "\(error)")
    }
  }

  func testScannerKeepsOffsetsAndDecodesStrings() throws {
    let text = Array(#" {"a\u00e9\n": [1, -2.5e3, true, null], "b": "x\"y"} "#.utf8)
    let root = try JSONScanner.scan(text)
    XCTAssertEqual(root.range, 1..<(text.count - 1))
    let members = try XCTUnwrap(root.members)
    XCTAssertEqual(members.map(\.key), ["a\u{e9}\n", "b"])
    XCTAssertEqual(members[0].value.elements?.count, 4)
    XCTAssertEqual(members[1].value.stringValue, "x\"y")
    XCTAssertEqual(
      String(decoding: text[members[1].value.range], as: UTF8.self), #""x\"y""#)
    XCTAssertEqual(JSONScanner.quoted("a\"b\\c\n\u{1}"), #""a\"b\\c\n\u0001""#)
  }

  /// The chained examples in cni-conf/ with Junction last are exactly what chain makes of
  /// the CNI's own list: unchain, then chain with the same options, gives the file back
  /// byte for byte. The native ones cannot be unchained.
  func testChainedExamplesAreWhatChainProduces() throws {
    let directory = Fixtures.repoRoot.appendingPathComponent("cni-conf")
    var checked = 0
    for name in try FileManager.default.contentsOfDirectory(atPath: directory.path)
    where name.hasSuffix(".conflist") {
      let text = Array(try Data(contentsOf: directory.appendingPathComponent(name)))
      let junction = try XCTUnwrap(
        try JSONScanner.scan(text).member("plugins")?.elements?.last, name)
      guard junction.member("type")?.stringValue == "junction" else { continue }
      guard junction.member("mode")?.stringValue == "chained" else {
        XCTAssertThrowsError(try ConflistEditor.unchain(conflist: text), name)
        continue
      }
      let known: Set<String> = ["type", "mode", "agentSocket", "logFile", "logLevel"]
      guard Set(junction.members?.map(\.key) ?? []).isSubset(of: known) else { continue }
      let entry = JunctionEntry(
        agentSocket: junction.member("agentSocket")?.stringValue,
        logFile: junction.member("logFile")?.stringValue,
        logLevel: junction.member("logLevel")?.stringValue)
      let plain = try changed(ConflistEditor.unchain(conflist: text), name)
      XCTAssertEqual(
        try changed(ConflistEditor.chain(conflist: plain, entry: entry), name), text, name)
      checked += 1
    }
    XCTAssertGreaterThanOrEqual(checked, 3, "flannel, calico and aws examples at least")
  }

  private func changed(_ outcome: EditOutcome, _ name: String) throws -> [UInt8] {
    guard case .changed(let bytes) = outcome else {
      XCTFail("\(name): expected a change, got \(outcome)")
      throw CancellationError()
    }
    return bytes
  }
}

enum Fixtures {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures")
  static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

  static func bytes(_ name: String) throws -> [UInt8] {
    Array(try Data(contentsOf: directory.appendingPathComponent(name)))
  }

  /// Every .conflist fixture, by name.
  static func conflists() throws -> [(String, [UInt8])] {
    let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
      .filter { $0.hasSuffix(".conflist") }.sorted()
    XCTAssertGreaterThanOrEqual(names.count, 8)
    return try names.map { ($0, try bytes($0)) }
  }
}
