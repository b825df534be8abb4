import Foundation
import XCTest

@testable import AgentCore

/// Journal records and snapshots are written in pieces: a file gets all of them or, when the
/// producer fails part-way, none (the old file; the journal cut back to where it was).
final class StreamedFileTests: XCTestCase {
  private struct Refused: Error {}

  private func contents(_ path: String) throws -> [UInt8] {
    try AtomicFile.read(path, limit: 1 << 20)
  }

  func testAnAppendInPiecesIsWholeOrCutBack() throws {
    let path = try temporaryDirectory(self) + "/journal.jsonl"
    try AtomicFile.append(Array("one\n".utf8), to: path)
    try AtomicFile.append(to: path) { write in
      try write(Array("tw".utf8))
      try write(Array("o\n".utf8))
    }
    XCTAssertEqual(try contents(path), Array("one\ntwo\n".utf8))
    XCTAssertThrowsError(
      try AtomicFile.append(to: path) { write in
        try write(Array("thr".utf8))
        throw Refused()
      }
    ) { XCTAssertTrue($0 is Refused) }
    // The piece written before the failure is gone: the next record follows "two".
    XCTAssertEqual(try contents(path), Array("one\ntwo\n".utf8))
    try AtomicFile.append(Array("four\n".utf8), to: path)
    XCTAssertEqual(try contents(path), Array("one\ntwo\nfour\n".utf8))
  }

  func testAWriteInPiecesReplacesTheFileOrLeavesIt() throws {
    let directory = try temporaryDirectory(self)
    let path = directory + "/snapshot.json"
    try AtomicFile.write(to: path) { write in
      for piece in ["a", "b", "c"] { try write(Array(piece.utf8)) }
    }
    XCTAssertEqual(try contents(path), Array("abc".utf8))
    XCTAssertThrowsError(
      try AtomicFile.write(to: path) { write in
        try write(Array("xyz".utf8))
        throw Refused()
      })
    XCTAssertEqual(try contents(path), Array("abc".utf8))
    // No temporary file left behind.
    XCTAssertEqual(try AtomicFile.list(directory), ["snapshot.json"])
  }
}
