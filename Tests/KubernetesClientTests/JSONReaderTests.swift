import CNIKit
import XCTest

@testable import KubernetesClient

final class JSONReaderTests: XCTestCase {
  /// The reader builds what Foundation's decoder built through `JSONValue`'s Codable.
  func testReadsWhatTheFoundationDecoderReads() throws {
    let texts = [
      #"{"kind":"EndpointSliceList","metadata":{"resourceVersion":"12","continue":""},"items":[]}"#,
      #" { "a" : [ 1 , -2.5e3 , 0 , -0 , 1E2, 12345678901234567890, 0.1 ] , "b" : null , "c" : true , "d" : false } "#,
      #"{"s":"tab\tnew\nquote\" slash\/ back\\ \u00e9 \ud83d\ude00 é 😀","empty":"","nested":[[[{}]]]}"#,
      #"[{"x":{"y":{"z":[1,2,{"w":"v"}]}}},"x",3]"#,
      #""just a string""#, "42", "null",
    ]
    for text in texts {
      let bytes = Array(text.utf8)
      XCTAssertEqual(try JSONReader.parse(bytes), try JSONValue.parse(bytes), text)
    }
  }

  func testRefusesWhatIsNotJSON() {
    let texts = [
      "", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "01", "1.", ".5", "-", "1e",
      "tru", "nul", "\"unterminated", "\"bad \\x escape\"", "\"\\ud83d alone\"", "\"\\u12\"",
      "[1] [2]", "{\"a\":1}}", "\"control \u{01} char\"", "NaN",
    ]
    for text in texts {
      XCTAssertThrowsError(try JSONReader.parse(Array(text.utf8)), text)
    }
  }

  /// Found by fuzz/run.sh k8s-api: a number past Double's range became an infinity, which
  /// `serialized()` cannot write (the whole document came out as `null`). Refused now, as
  /// Foundation's decoder refuses it; the largest finite numbers still read and write back.
  func testRefusesANumberPastDoublesRange() throws {
    let texts = [
      "1e999", "-1E400", #"{"code":1e309}"#, "[0, 2.5e+308]",
      String(repeating: "9", count: 400),
    ]
    for text in texts {
      XCTAssertThrowsError(try JSONReader.parse(Array(text.utf8)), text)
      XCTAssertThrowsError(try JSONValue.parse(Array(text.utf8)), text)
    }
    for text in ["1.7976931348623157e308", "-1.7976931348623157E+308", "4.9e-324", "1e-999"] {
      let value = try JSONReader.parse(Array(text.utf8))
      XCTAssertEqual(try JSONReader.parse(value.serialized()), value, text)
    }
  }

  func testRefusesNestingBeyondTheBound() {
    let deep =
      String(repeating: "[", count: JSONReader.maximumDepth + 1)
      + String(repeating: "]", count: JSONReader.maximumDepth + 1)
    XCTAssertThrowsError(try JSONReader.parse(Array(deep.utf8)))
    let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
    XCTAssertNoThrow(try JSONReader.parse(Array(fine.utf8)))
  }

  /// The informer's store compares fingerprints: equal content (members in any order) is
  /// equal, any change of content is not.
  func testFingerprintsFollowContent() throws {
    let a = try JSONReader.parse(Array(#"{"a":1,"b":["x","y"],"c":{"d":null}}"#.utf8))
    let reordered = try JSONReader.parse(Array(#"{"c":{"d":null},"b":["x","y"],"a":1}"#.utf8))
    XCTAssertEqual(JSONFingerprint(a), JSONFingerprint(reordered))
    let others = [
      #"{"a":2,"b":["x","y"],"c":{"d":null}}"#, #"{"a":1,"b":["y","x"],"c":{"d":null}}"#,
      #"{"a":1,"b":["x","y"],"c":{"d":false}}"#, #"{"a":1,"b":["x","y"],"c":{}}"#,
      #"{"a":1,"b":["x","y"],"c":{"e":null}}"#, #"{"a":"1","b":["x","y"],"c":{"d":null}}"#,
      #"{"a":1,"b":["xy"],"c":{"d":null}}"#, #"{"b":1,"a":["x","y"],"c":{"d":null}}"#,
    ]
    for text in others {
      XCTAssertNotEqual(
        JSONFingerprint(a), JSONFingerprint(try JSONReader.parse(Array(text.utf8))), text)
    }
  }
}
