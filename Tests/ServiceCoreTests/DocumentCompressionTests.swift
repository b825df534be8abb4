import XCTest

@testable import ServiceCore

/// The agent keeps documents deflated; what it writes and reads back must be the JSON itself.
final class DocumentCompressionTests: XCTestCase {
  private func json(_ value: YAMLValue) throws -> [UInt8] {
    var bytes: [UInt8] = []
    try DocumentWriter.append(value, to: &bytes)
    return bytes
  }

  private func slice(_ name: String, endpoints: Int) -> YAMLValue {
    .map([
      "apiVersion": .string("discovery.k8s.io/v1"), "kind": .string("EndpointSlice"),
      "addressType": .string("IPv4"),
      "metadata": .map([
        "name": .string(name), "namespace": .string("shop"),
        "labels": .map(["kubernetes.io/service-name": .string("web")]),
      ]),
      "ports": .list([.map(["name": .string("http"), "port": .int(8080)])]),
      "endpoints": .list(
        (0..<endpoints).map { index in
          .map([
            "addresses": .list([.string("10.128.\(index / 250).\(index % 250 + 1)")]),
            "conditions": .map(["ready": .bool(true)]),
            "nodeName": .string("node-\(index % 7)"),
            "targetRef": .map([
              "kind": .string("Pod"), "name": .string("web-5d8f7c9b4-\(index)x"),
              "namespace": .string("shop"),
            ]),
          ])
        }),
    ])
  }

  func testWhatIsWrittenIsTheJSONItself() throws {
    let documents: [YAMLValue] = [
      slice("web-abc", endpoints: 10),
      // Larger than the 4 KiB window: matches reach back only as far as the window.
      slice("web-big", endpoints: 400),
      .map([:]),
      .map(["kind": .string("Service"), "note": .string("ünïcode \"quoted\" \\ slash/ \n")]),
      .map(["list": .list([.null, .int(-7), .float(1.5), .bool(false)])]),
    ]
    for value in documents {
      let document = StoredDocument(value)
      var written: [UInt8] = [UInt8]("prefix".utf8)
      try document.append(to: &written)
      XCTAssertEqual(written, [UInt8]("prefix".utf8) + (try json(value)))
      XCTAssertEqual(try document.value, value)
      // The same document twice is the same value (deflate is deterministic).
      XCTAssertEqual(StoredDocument(value), document)
    }
    XCTAssertNotEqual(
      StoredDocument(slice("a", endpoints: 3)), StoredDocument(slice("b", endpoints: 3)))
  }

  /// The point of it: an EndpointSlice of 10 endpoints keeps a fraction of its JSON.
  func testASliceKeepsAFractionOfItsBytes() throws {
    let bytes = try json(slice("web-abc", endpoints: 10))
    let deflated = try XCTUnwrap(DocumentCompression.deflate(bytes))
    XCTAssertLessThan(deflated.count * 4, bytes.count, "\(deflated.count) of \(bytes.count) bytes")
    var inflated: [UInt8] = []
    XCTAssertTrue(DocumentCompression.inflate(deflated, size: bytes.count, appendingTo: &inflated))
    XCTAssertEqual(inflated, bytes)
    // A wrong size is refused, and leaves the output as it was.
    var out: [UInt8] = [1, 2]
    XCTAssertFalse(DocumentCompression.inflate(deflated, size: bytes.count + 1, appendingTo: &out))
    XCTAssertEqual(out, [1, 2])
  }

  func testTheDictionaryFitsTheWindow() {
    XCTAssertLessThanOrEqual(DocumentCompression.dictionary.count, 4096)
  }
}
