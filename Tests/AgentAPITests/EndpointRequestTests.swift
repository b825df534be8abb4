import AgentAPI
import XCTest

@testable import AgentCore

final class EndpointRequestTests: XCTestCase {
  private func decodeError(_ body: [UInt8], pathID: String? = nil) -> EndpointRequestError? {
    do {
      _ = try EndpointRequest.decode(body, pathID: pathID)
      return nil
    } catch {
      return error
    }
  }

  func testValidSpecRoundTrips() throws {
    let spec = try EndpointRequest.decode(bytes(sampleObject()), pathID: "ctr1:eth0")
    XCTAssertEqual(spec, sampleSpec())
    XCTAssertEqual(spec.id, "ctr1:eth0")
  }

  func testOptionalFieldsMayBeAbsentOrNull() throws {
    var object = sampleObject()
    for key in ["podNamespace", "podName", "podUID", "podInterfaceIndex", "mac"] {
      object[key] = nil
    }
    object["hostMAC"] = NSNull()
    let spec = try EndpointRequest.decode(bytes(object))
    XCTAssertNil(spec.podName)
    XCTAssertNil(spec.hostMAC)
  }

  func testMalformedJSON() {
    for body in ["{bad", "", "{\"containerID\": ", "nul", "\u{1}"] {
      guard case .malformedJSON = decodeError(Array(body.utf8)) else {
        return XCTFail(
          "\(body): expected malformedJSON, got \(String(describing: decodeError(Array(body.utf8))))"
        )
      }
    }
    XCTAssertTrue(EndpointRequestError.malformedJSON("x").description.hasPrefix("malformed JSON"))
  }

  func testNotAnObject() {
    for body in ["[1,2]", "\"text\"", "42", "null", "true"] {
      XCTAssertEqual(decodeError(Array(body.utf8)), .notAnObject, body)
    }
  }

  func testUnknownFieldsAreAllNamed() {
    var object = sampleObject()
    object["zeta"] = 1
    object["alpha"] = "x"
    let error = decodeError(bytes(object))
    XCTAssertEqual(error, .unknownFields(["alpha", "zeta"]))
    XCTAssertTrue(error!.description.contains("'alpha', 'zeta'"), error!.description)
  }

  func testFieldNamesMatchTheCodableShape() throws {
    // EndpointSpec.fieldNames is what unknown-field detection trusts: it must list every
    // key the encoder writes for a spec with every optional set.
    let object = sampleObject()
    XCTAssertEqual(Set(object.keys), EndpointSpec.fieldNames)
  }

  func testMissingRequiredFields() {
    for field in [
      "containerID", "ifname", "network", "netns", "hostInterface", "hostIfindex", "ips",
    ] {
      var object = sampleObject()
      object[field] = nil
      XCTAssertEqual(decodeError(bytes(object)), .missingField(field), field)
    }
  }

  func testWrongTypesNameTheField() {
    let cases: [(String, Any, String)] = [
      ("hostIfindex", "12", "hostIfindex"),
      ("hostIfindex", 1.5, "hostIfindex"),
      ("hostIfindex", 1e40, "hostIfindex"),
      ("podInterfaceIndex", 2.5, "podInterfaceIndex"),
      ("containerID", 5, "containerID"),
      ("ips", "10.0.0.1/32", "ips"),
      ("ips", ["10.0.0.1/32", 7], "ips[1]"),
      ("mac", ["a"], "mac"),
      ("netns", NSNull(), "netns"),
      ("hostIfindex", true, "hostIfindex"),
    ]
    for (field, value, named) in cases {
      var object = sampleObject()
      object[field] = value
      guard case .wrongType(let reported, _) = decodeError(bytes(object)) else {
        XCTFail("\(field)=\(value): \(String(describing: decodeError(bytes(object))))")
        continue
      }
      XCTAssertEqual(reported, named, "\(field)=\(value)")
    }
    var object = sampleObject()
    object["hostIfindex"] = "12"
    XCTAssertEqual(
      decodeError(bytes(object))?.description, "field 'hostIfindex' must be an integer")
  }

  func testValueRules() {
    let cases: [(String, Any, String)] = [
      ("containerID", "", "containerID"),
      ("containerID", "-leading", "containerID"),
      ("containerID", "has/slash", "containerID"),
      ("containerID", "a..b", "must not contain"),
      ("ifname", "way-too-long-name0", "ifname"),
      ("ifname", "a:b", "ifname"),
      ("ifname", "..", "ifname"),
      ("ifname", "é0", "the id"),
      ("network", "bad net", "network"),
      ("netns", "relative/path", "netns"),
      ("netns", "", "netns"),
      ("hostInterface", "with space", "hostInterface"),
      ("hostIfindex", 0, "hostIfindex"),
      ("hostIfindex", -3, "hostIfindex"),
      ("hostIfindex", 1 << 40, "hostIfindex"),
      ("podInterfaceIndex", 0, "podInterfaceIndex"),
      ("ips", ["10.0.0.1"], "ips[0]"),
      ("ips", ["10.0.0.1/33"], "ips[0]"),
      ("ips", ["fd00::1/129"], "ips[0]"),
      ("ips", ["10.0.0.1/+8"], "ips[0]"),
      ("ips", ["10.0.0.256/32"], "ips[0]"),
      ("ips", ["10.0.0.1/32", "10.0.0.1/32"], "duplicates"),
      ("ips", ["fd00::5"], "ips[0]"),
      ("ips", ["fd00:::5/128"], "ips[0]"),
      ("ips", ["fd00::g/128"], "ips[0]"),
      ("ips", ["fe80::1%eth0/128"], "ips[0]"),
      ("ips", ["10.0.0.1/32", "fd00::5/128", "fd00:0:0::5/128"], "duplicates"),
      ("mac", "0a:58:0a:f4:01", "mac"),
      ("hostMAC", "zz:58:0a:f4:01:05", "hostMAC"),
      ("podNamespace", "Default", "podNamespace"),
      ("podName", "-x", "podName"),
      ("podUID", "a b", "podUID"),
    ]
    for (field, value, mentioned) in cases {
      var object = sampleObject()
      object[field] = value
      guard case .invalidValues(let problems) = decodeError(bytes(object)) else {
        XCTFail("\(field)=\(value): \(String(describing: decodeError(bytes(object))))")
        continue
      }
      XCTAssertTrue(
        problems.contains { $0.contains(mentioned) },
        "\(field)=\(value): \(problems) lacks \(mentioned)")
    }
  }

  /// netnsCookie is a UInt64 (written as JSON text here: a Double on the way would round
  /// the large ones), absent for older plugins, never 0.
  func testNetnsCookie() throws {
    var without = sampleObject()
    without["netnsCookie"] = nil
    func body(_ value: String) -> [UInt8] {
      Array("{\"netnsCookie\":\(value),".utf8) + bytes(without).dropFirst()
    }
    XCTAssertNil(try EndpointRequest.decode(bytes(without)).netnsCookie)
    XCTAssertEqual(try EndpointRequest.decode(body("4097")).netnsCookie, 4097)
    XCTAssertEqual(
      try EndpointRequest.decode(body("18446744073709551615")).netnsCookie, UInt64.max)
    XCTAssertNil(try EndpointRequest.decode(body("null")).netnsCookie)
    guard case .invalidValues(let problems) = decodeError(body("0")) else {
      return XCTFail("\(String(describing: decodeError(body("0"))))")
    }
    XCTAssertEqual(problems, ["netnsCookie must be between 1 and \(UInt64.max), not 0"])
    for value in ["-1", "1.5", "\"7\"", "18446744073709551616", "1e40", "true"] {
      guard case .wrongType(let field, _) = decodeError(body(value)) else {
        XCTFail("netnsCookie=\(value): \(String(describing: decodeError(body(value))))")
        continue
      }
      XCTAssertEqual(field, "netnsCookie", value)
    }
    // A spec with a cookie survives the trip the endpoint record takes.
    var spec = sampleSpec()
    spec.netnsCookie = UInt64.max - 1
    XCTAssertEqual(
      try JSONDecoder().decode(EndpointSpec.self, from: JSONEncoder().encode(spec)), spec)
  }

  func testDualStackAddressesAreAccepted() throws {
    var object = sampleObject()
    object["ips"] = ["10.240.1.5/32", "fd00:10:240:1::5/128", "::ffff:10.0.0.1/128"]
    let spec = try EndpointRequest.decode(bytes(object))
    XCTAssertEqual(spec.ips, ["10.240.1.5/32", "fd00:10:240:1::5/128", "::ffff:10.0.0.1/128"])
  }

  func testAllValueProblemsAreReportedTogether() {
    var object = sampleObject()
    object["hostIfindex"] = 0
    object["netns"] = "x"
    object["ips"] = ["nope"]
    guard case .invalidValues(let problems) = decodeError(bytes(object)) else { return XCTFail() }
    XCTAssertEqual(problems.count, 3, "\(problems)")
  }

  func testPathIDMustMatchBody() {
    XCTAssertEqual(
      decodeError(bytes(sampleObject()), pathID: "other:eth0"),
      .idMismatch(path: "other:eth0", body: "ctr1:eth0"))
  }

  func testValidationOrderSyntaxThenKeysThenTypes() {
    // Unknown keys are reported before type errors of known keys.
    var object = sampleObject()
    object["hostIfindex"] = "x"
    object["extra"] = 1
    XCTAssertEqual(decodeError(bytes(object)), .unknownFields(["extra"]))
  }

  func testMessagesEscapeControlCharacters() {
    var object = sampleObject()
    object["netns"] = "rel\npath"
    guard case .invalidValues(let problems) = decodeError(bytes(object)) else { return XCTFail() }
    XCTAssertFalse(problems.joined().contains("\n"))
  }
}
