import CNIKit
import XCTest

/// Asserts that `expression` throws a `CNIError` with `code` whose message contains every
/// string in `mentioning` (the field or variable the error must name). Returns the error.
@discardableResult
public func assertCNIError<T>(
  _ expression: @autoclosure () throws(CNIError) -> T, code: CNIErrorCode,
  mentioning needles: [String] = [], file: StaticString = #filePath, line: UInt = #line
) -> CNIError? {
  do {
    let value = try expression()
    XCTFail("expected CNI error \(code.rawValue), got \(value)", file: file, line: line)
    return nil
  } catch {
    XCTAssertEqual(
      error.code, code.rawValue, "wrong code for error \"\(error.msg)\"", file: file, line: line)
    for needle in needles {
      XCTAssertTrue(
        error.msg.contains(needle), "\"\(error.msg)\" does not mention \(needle)", file: file,
        line: line)
    }
    return error
  }
}

/// Parses JSON text written in a test; a typo in the test fails loudly.
public func json(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> JSONValue {
  do {
    return try JSONValue.parse(Array(text.utf8))
  } catch {
    XCTFail("test JSON does not parse: \(error)\n\(text)", file: file, line: line)
    return .null
  }
}

/// `IPPrefix("...")!` / `IPAddress("...")!` with a readable failure.
public func prefix(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> IPPrefix {
  guard let value = IPPrefix(text) else {
    XCTFail("\(text) is not a prefix", file: file, line: line)
    return IPPrefix.defaultRoute(ipv4: true)
  }
  return value
}

public func address(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> IPAddress
{
  guard let value = IPAddress(text) else {
    XCTFail("\(text) is not an address", file: file, line: line)
    return IPAddress.any(likeIPv4: true)
  }
  return value
}
