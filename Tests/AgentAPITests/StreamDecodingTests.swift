import XCTest

@testable import AgentAPI

/// The client side of a streamed answer (GET /v1/flows?follow=true): chunked transfer
/// coding and NDJSON lines, fed in arbitrary pieces as they come off the socket.
final class StreamDecodingTests: XCTestCase {
  func testChunksAndLinesSurviveAnySplit() {
    func chunk(_ text: String, _ extensions: String = "") -> String {
      String(text.utf8.count, radix: 16) + extensions + "\r\n" + text + "\r\n"
    }
    let wire = Array(
      (chunk("{\"a\":1") + chunk("}\n{\"b\":2}\n") + chunk("x\ny", ";ext=1") + "0\r\n\r\n").utf8)
    for pieceSize in 1...wire.count {
      var decoder = ChunkedDecoder()
      var splitter = LineSplitter()
      var lines: [String] = []
      var start = 0
      while start < wire.count {
        let end = min(start + pieceSize, wire.count)
        let payload = decoder.feed(Array(wire[start..<end]))
        lines += splitter.feed(payload).map { String(decoding: $0, as: UTF8.self) }
        start = end
      }
      XCTAssertTrue(decoder.isDone, "piece size \(pieceSize)")
      XCTAssertEqual(lines, ["{\"a\":1}", "{\"b\":2}", "x"], "piece size \(pieceSize)")
    }
  }
}
