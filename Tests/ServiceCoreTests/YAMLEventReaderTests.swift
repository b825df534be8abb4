import XCTest

@testable import ServiceCore

/// The event reader (the fast path of `YAMLValue.documents`) against Yams' own composition:
/// the same values for what it reads itself, and a hand-over (nil) for what it leaves to Yams.
final class YAMLEventReaderTests: XCTestCase {
  /// Both paths agree on `text`; `fast` says whether the event reader must read it itself.
  private func assertSame(
    _ text: String, fast: Bool = true, file: StaticString = #filePath, line: UInt = #line
  ) {
    let viaYams = Result { () throws(YAMLSyntaxError) in try YAMLValue.documentsWithYams(text) }
    let viaEvents = YAMLEventReader.documents(text)
    if fast {
      XCTAssertNotNil(viaEvents, "handed to Yams: \(text)", file: file, line: line)
    } else {
      XCTAssertNil(viaEvents, "read without Yams: \(text)", file: file, line: line)
    }
    let viaDocuments = Result { () throws(YAMLSyntaxError) in try YAMLValue.documents(text) }
    switch (viaYams, viaDocuments) {
    case (.success(let expected), .success(let got)):
      XCTAssertEqual(got, expected, text, file: file, line: line)
      if let viaEvents { XCTAssertEqual(viaEvents, expected, text, file: file, line: line) }
    case (.failure(let expected), .failure(let got)):
      XCTAssertEqual(got.description, expected.description, file: file, line: line)
    default:
      XCTFail("\(text): Yams \(viaYams), documents \(viaDocuments)", file: file, line: line)
    }
  }

  /// Plain scalars of every type, each also quoted (always a string), as a value and in a list.
  func testPlainAndQuotedScalarsTypeAsYamsTypesThem() {
    let scalars = [
      "web", "80", "0", "8080", "-1", "+1", "007", "089", "0x1F", "0o17", "0b101", "1_000",
      "1:30", "190:20:30", "123456789012345678", "1234567890123456789", "99999999999999999999",
      "1.5", "1e3", "1.5e3", ".5", "6.8523015e+5", ".inf", "-.Inf", "1.", "1.2.3",
      "10.96.0.1", "10.0.0.1:80", "fd00::1", "true", "True", "TRUE", "tRue", "yes", "Yes", "no",
      "NO", "on", "Off", "y", "n", "false", "null", "Null", "NULL", "nul", "~", "<<", "=",
      "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10", "a b", "web-1",
      "discovery.k8s.io/v1", "TCP", "None", "é", "ünïcödé", "-x", "_x", "x_1", "3.3.3.3.3",
    ]
    for scalar in scalars {
      assertSame("key: \(scalar)\n")
      assertSame("- \(scalar)\n- '\(scalar)'\n- \"\(scalar)\"\n")
      assertSame("{\"key\": \"\(scalar)\"}")
    }
    assertSame("key:\n")
    assertSame("key: ''\n")
    assertSame("key: |\n  80\n")
    assertSame("key: >-\n  true\n")
    assertSame("key: a\n  b\n  80\n")
    // NaN is not equal to itself: checked by hand (through Yams' resolver, as before).
    guard case .map(let nan)? = try? YAMLValue.documents("key: .NaN").first,
      case .float(let value)? = nan["key"]
    else { return XCTFail(".NaN is not a float") }
    XCTAssertTrue(value.isNaN)
    XCTAssertEqual(try YAMLValue.documents("port: 80"), [.map(["port": .int(80)])])
    XCTAssertEqual(try YAMLValue.documents("port: '80'"), [.map(["port": .string("80")])])
    XCTAssertEqual(try YAMLValue.documents("ready: yes"), [.map(["ready": .bool(true)])])
    XCTAssertEqual(try YAMLValue.documents("ready: \"yes\""), [.map(["ready": .string("yes")])])
  }

  func testMultiDocumentStreams() {
    assertSame("a: 1\n---\nb: 2\n")
    assertSame("---\na: 1\n---\n---\n# only a comment\n---\nb: [1, two]\n...\n")
    assertSame("")
    assertSame("# nothing\n")
    assertSame("--- 80\n--- text\n--- ~\n")
    XCTAssertEqual(try YAMLValue.documents("---\n---\na: 1\n").count, 1)
  }

  func testJSONInput() {
    assertSame(
      """
      {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": {}},
       "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 9090, "targetPort": 9100}],
       "clusterIP": "10.96.0.1", "publishNotReadyAddresses": false, "x": null, "f": 1.5,
       "e": 1e3, "n": -7, "l": []}}
      """)
    assertSame("[1, \"1\", true, \"true\", null, \"null\", {}, []]")
  }

  func testNestingAndKeys() {
    assertSame("a:\n  b:\n    - c: 1\n      d: [x, {e: f}]\n    - []\n  g: {}\n")
    assertSame("80: a\ntrue: b\n~: c\n'': d\n")
    // A key's type does not make it another map key: the text is the key.
    assertSame("\"80\": a\nx: 1\n")
  }

  /// What the reader leaves to Yams gives Yams' result (or error) all the same.
  func testWhatGoesToYams() {
    // Anchors and aliases.
    assertSame("base: &b {port: 80}\nother: *b\n", fast: false)
    assertSame("a: &x 1\nb: *x\n", fast: false)
    assertSame("- &l [1, 2]\n- *l\n", fast: false)
    assertSame("a: *undefined\n", fast: false)
    // Merge keys: no anchor, no alias, read as a plain key (as YAMLValue(Node) does).
    assertSame("<<: {a: 1}\nb: 2\n")
    // Explicit tags.
    assertSame("port: !!str 80\n", fast: false)
    assertSame("port: !!int \"80\"\n", fast: false)
    assertSame("port: !custom 80\n", fast: false)
    assertSame("m: !!map {a: 1}\n", fast: false)
    assertSame("s: !!seq [1]\n", fast: false)
    assertSame("! 80\n", fast: false)
    // Duplicate keys: an error when the tags match, the later value when they do not.
    assertSame("a: 1\na: 2\n", fast: false)
    assertSame("80: a\n\"80\": b\n", fast: false)
    assertSame("true: a\n\"true\": b\n", fast: false)
    // Keys that are not scalars.
    assertSame("? [a, b]\n: c\n", fast: false)
    assertSame("? {a: 1}\n: c\n", fast: false)
    // Syntax errors: Yams words them.
    assertSame("a: [1, 2\n", fast: false)
    assertSame("a: b: c\n", fast: false)
    assertSame("a: 1\n b: 2\n- c\n", fast: false)
    assertSame("\ta: 1\n", fast: false)
    assertSame("a: 1\n---\n[\n", fast: false)
    // A byte-order mark starting a scalar.
    assertSame("a: \"\u{FEFF}x\"\n", fast: false)
  }

  func testAByteOrderMarkBeforeTheStream() {
    assertSame("\u{FEFF}a: 1\n")
  }
}
