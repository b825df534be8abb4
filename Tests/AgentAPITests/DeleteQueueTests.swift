import AgentAPI
import Foundation
import XCTest

@testable import AgentCore

final class DeleteQueueTests: XCTestCase {
  func testPaths() {
    XCTAssertEqual(
      DeleteQueue.directory(forSocket: "/run/junction/junction.sock"), "/run/junction/delete-queue")
    XCTAssertEqual(
      DeleteQueue.path(forSocket: "/run/junction/junction.sock", id: "abc:eth0"),
      "/run/junction/delete-queue/abc:eth0.json")
    XCTAssertEqual(DeleteQueue.directory(forSocket: "agent.sock"), "./delete-queue")
  }

  func testRecordFormat() throws {
    let record = DeleteQueue.Record(
      containerID: "abc", ifname: "eth0", queuedAt: "2025-01-01T00:00:00.000Z",
      socket: "/run/j.sock")
    XCTAssertEqual(record.id, "abc:eth0")
    let encoded = DeleteQueue.encode(record)
    let object = try JSONSerialization.jsonObject(with: Data(encoded)) as! [String: String]
    XCTAssertEqual(
      object,
      [
        "id": "abc:eth0", "containerID": "abc", "ifname": "eth0",
        "queuedAt": "2025-01-01T00:00:00.000Z",
        "socket": "/run/j.sock",
      ])
    XCTAssertEqual(try DeleteQueue.decode(encoded), record)
    // The minimal format (no socket) is accepted too.
    let minimal = #"{"id":"abc:eth0","containerID":"abc","ifname":"eth0","queuedAt":"x"}"#
    XCTAssertNil(try DeleteQueue.decode(Array(minimal.utf8)).socket)
  }

  func testARecordCarriesThePluginsIssuedAtReadingWhenItHasOne() throws {
    let record = DeleteQueue.Record(
      containerID: "abc", ifname: "eth0", queuedAt: "2025-01-01T00:00:00.000Z",
      issuedAt: 18_446_744_073_709_551_615)
    let decoded = try DeleteQueue.decode(DeleteQueue.encode(record))
    XCTAssertEqual(decoded, record)
    XCTAssertEqual(decoded.issuedAt, UInt64.max)
    // Records written before the field existed still read.
    let old = try DeleteQueue.decode(
      Array(#"{"id":"abc:eth0","containerID":"abc","ifname":"eth0","queuedAt":"x"}"#.utf8))
    XCTAssertNil(old.issuedAt)
  }

  func testDecodeRefusesBadRecords() {
    for text in [
      "{", #"{"id":"../x","containerID":"..","ifname":"x","queuedAt":"t"}"#,
      #"{"id":"a:eth0","containerID":"b","ifname":"eth0","queuedAt":"t"}"#,
      #"{"id":"a:eth0","containerID":"a","queuedAt":"t"}"#,
    ] {
      XCTAssertThrowsError(try DeleteQueue.decode(Array(text.utf8)), text)
    }
    XCTAssertThrowsError(try DeleteQueue.decode([UInt8](repeating: 32, count: 5000)))
  }

  func testEnqueueAndList() throws {
    let directory = try temporaryDirectory(self)
    let socket = directory + "/run/agent.sock"
    try DeleteQueue.enqueue(
      DeleteQueue.Record(containerID: "a", ifname: "eth0", socket: socket), socketPath: socket)
    try DeleteQueue.enqueue(
      DeleteQueue.Record(containerID: "b", ifname: "eth0"), socketPath: socket)
    // Re-queueing the same endpoint rewrites its one file.
    try DeleteQueue.enqueue(
      DeleteQueue.Record(containerID: "b", ifname: "eth0"), socketPath: socket)
    try AtomicFile.write(Array("junk".utf8), to: directory + "/run/delete-queue/junk.json")

    var info = stat()
    XCTAssertEqual(stat(directory + "/run/delete-queue", &info), 0)
    XCTAssertEqual(info.st_mode & 0o777, 0o700)

    let entries = try DeleteQueue.entries(socketPath: socket)
    XCTAssertEqual(entries.count, 3)
    let records = entries.compactMap { try? $0.record.get() }
    XCTAssertEqual(records.map(\.id), ["a:eth0", "b:eth0"])
    XCTAssertEqual(records.map(\.socket), [socket, socket], "enqueue stamps the socket")
    XCTAssertTrue(records.allSatisfy { DeleteQueue.belongs($0, toSocket: socket) })
    XCTAssertFalse(
      records.contains { DeleteQueue.belongs($0, toSocket: directory + "/run/other.sock") })
    XCTAssertEqual(
      entries.filter { (try? $0.record.get()) == nil }.map(\.path),
      [directory + "/run/delete-queue/junk.json"])
  }

  func testEnqueueRefusesInvalidRecords() throws {
    let directory = try temporaryDirectory(self)
    XCTAssertThrowsError(
      try DeleteQueue.enqueue(
        DeleteQueue.Record(containerID: "..", ifname: "eth0"), socketPath: directory + "/s"))
    XCTAssertFalse(AtomicFile.exists(directory + "/delete-queue/..:eth0.json"))
  }

  func testBelongs() {
    let record = DeleteQueue.Record(containerID: "a", ifname: "eth0", socket: "/run/a.sock")
    XCTAssertTrue(DeleteQueue.belongs(record, toSocket: "/run/a.sock"))
    XCTAssertFalse(DeleteQueue.belongs(record, toSocket: "/run/b.sock"))
    XCTAssertTrue(
      DeleteQueue.belongs(
        DeleteQueue.Record(containerID: "a", ifname: "eth0"), toSocket: "/run/b.sock"))
  }

  func testTimestampFormat() {
    XCTAssertEqual(Timestamp.format(seconds: 0), "1970-01-01T00:00:00.000Z")
    XCTAssertEqual(
      Timestamp.format(seconds: 1_700_000_000, milliseconds: 7), "2023-11-14T22:13:20.007Z")
    XCTAssertEqual(Timestamp.now().count, 24)
  }

  // MARK: - Replay decisions (issue 16)

  private func record(queuedAt: String) -> DeleteQueue.Record {
    DeleteQueue.Record(containerID: "c1", ifname: "eth0", queuedAt: queuedAt)
  }

  func testADeletionQueuedAfterTheRegistrationDeregisters() {
    XCTAssertEqual(
      DeleteQueue.action(
        for: record(queuedAt: "2026-12-06T08:00:01.000Z"),
        registeredAt: "2026-12-06T08:00:00.500Z", hostInterfaceAttached: true),
      .deregister)
  }

  func testALaterRegistrationOfTheSameAttachmentIsKept() {
    // ADD, DEL (queued: the agent did not answer), then ADD again with the same container
    // and interface: the old deletion must not undo the new attachment.
    XCTAssertEqual(
      DeleteQueue.action(
        for: record(queuedAt: "2026-12-06T08:00:01.000Z"),
        registeredAt: "2026-12-06T08:00:02.000Z", hostInterfaceAttached: true),
      .dropRecord)
  }

  func testALateRegistrationWhoseInterfaceIsGoneOrDetachedDeregisters() {
    // A frozen agent answers its backlog when it thaws: the PUT of an ADD that gave up
    // (and removed the interface, or in chained mode detached the programs from bridge's)
    // lands after the DEL that queued its deletion.
    XCTAssertEqual(
      DeleteQueue.action(
        for: record(queuedAt: "2026-12-06T08:00:01.000Z"),
        registeredAt: "2026-12-06T08:00:02.000Z", hostInterfaceAttached: false),
      .deregister)
  }

  func testNothingRegisteredOnlyDropsTheRecord() {
    XCTAssertEqual(
      DeleteQueue.action(
        for: record(queuedAt: "2026-12-06T08:00:01.000Z"), registeredAt: nil,
        hostInterfaceAttached: false),
      .dropRecord)
  }

  func testThePluginsReadingsDecideWhenBothAreKnown() {
    var late = record(queuedAt: "2026-12-06T08:00:01.000Z")
    late.issuedAt = 2_000
    // The registration's PUT (issued at 1,000) was read after the DEL was queued, and its
    // interface still looks attached (an agent without a datapath cannot tell): the
    // readings say the DEL came later.
    XCTAssertEqual(
      DeleteQueue.action(
        for: late, registeredAt: "2026-12-06T08:00:02.000Z", hostInterfaceAttached: true,
        newestApplied: 1_000),
      .deregister)
    // A registration issued after the DEL (ADD again) stays, whatever the agent's clock.
    XCTAssertEqual(
      DeleteQueue.action(
        for: late, registeredAt: "2026-12-06T08:00:00.000Z", hostInterfaceAttached: false,
        newestApplied: 3_000),
      .dropRecord)
    // Without the registration's reading (an agent restarted since, an older plugin): the
    // timestamps and the interface decide, as before.
    XCTAssertEqual(
      DeleteQueue.action(
        for: late, registeredAt: "2026-12-06T08:00:02.000Z", hostInterfaceAttached: true,
        newestApplied: nil),
      .dropRecord)
    // Nothing registered: nothing to deregister.
    XCTAssertEqual(
      DeleteQueue.action(
        for: late, registeredAt: nil, hostInterfaceAttached: false, newestApplied: 1_000),
      .dropRecord)
  }
}
