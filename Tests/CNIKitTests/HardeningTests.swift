import CNIKit
import XCTest

/// Inputs found by review that once crashed or slipped through.
final class HardeningTests: XCTestCase {
  func testAnIPAMErrorWithAnAbsurdCodeIsNotTrustedAndDoesNotCrash() {
    XCTAssertNil(CNIError.decode(Array(#"{"code": 1e300, "msg": "x"}"#.utf8)))
    XCTAssertNil(CNIError.decode(Array(#"{"code": 1.5, "msg": "x"}"#.utf8)))
    XCTAssertNil(CNIError.decode(Array(#"{"code": -3, "msg": "x"}"#.utf8)))
    XCTAssertEqual(CNIError.decode(Array(#"{"code": 11, "msg": "busy"}"#.utf8))?.code, 11)
  }

  func testAnInterfaceNameWithANonBreakingSpaceByteIsRefusedAsTheKernelWould() {
    XCTAssertNotNil(Validate.interfaceName("eth-\u{E0}"))  // UTF-8 C3 A0
    XCTAssertNil(Validate.interfaceName("eth-\u{E9}"))  // UTF-8 C3 A9 is fine
  }

  func testSignedNumbersAreNotVersionsOrPrefixLengths() {
    XCTAssertNil(IPPrefix("10.1.2.3/+24"))
    XCTAssertNil(CNIVersion("+1.0.0"))
    XCTAssertNil(CNIVersion("1..0"))
  }

  func testTypeNamesReadAsEnglish() {
    XCTAssertEqual(JSONValue.array([]).typeName, "an array")
    XCTAssertEqual(JSONValue.object([:]).typeName, "an object")
  }
}
