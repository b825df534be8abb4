import AgentCore
import Foundation
import ServiceCore
import XCTest

@testable import JunctionAgent

/// The service store on disk: a compaction closes the journal segment at once and writes
/// the snapshot later, and a crash at any step restores exactly what was stored.
final class ServiceStoreTests: XCTestCase {
  private func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "servicestore-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
  }

  private func service(_ index: Int) -> String {
    """
    apiVersion: v1
    kind: Service
    metadata:
      name: web-\(index)
    spec:
      clusterIP: 10.96.\(index / 250).\(index % 250 + 1)
      ports:
      - port: 80
        targetPort: 8080
    """
  }

  /// Stores and commits one change, as the ServiceManager does.
  private func store(_ yaml: String, in store: inout ServiceStore, _ table: inout ServiceTable)
    throws
  {
    let plan = ApplyPlan(.apply, yaml: yaml)
    let update = try plan.update(for: table)
    try store.append(plan.edits, update)
    table.commit(update)
  }

  /// What a store opened on the files as they are now restores (a crash here, then a
  /// restart); the files themselves are left alone.
  private func restoredAfterCrash(_ directory: String) throws -> (ServiceStore.Loaded, UInt64) {
    let copy = try temporaryDirectory() + "/services"
    try FileManager.default.copyItem(atPath: directory, toPath: copy)
    var store = ServiceStore(directory: copy)
    let loaded = try store.load()
    return (loaded, store.sequence)
  }

  private func assertRestores(
    _ directory: String, _ table: ServiceTable, sequence: UInt64, _ step: String,
    line: UInt = #line
  ) throws {
    let (loaded, restoredSequence) = try restoredAfterCrash(directory)
    XCTAssertEqual(loaded.resources, table.resources, step, line: line)
    XCTAssertEqual(loaded.ids, table.ids, step, line: line)
    XCTAssertEqual(restoredSequence, sequence, step, line: line)
    XCTAssertNil(loaded.warning, step, line: line)
  }

  func testACompactionClosesTheSegmentAndACrashAtEveryStepRestoresWhatWasStored() throws {
    let directory = try temporaryDirectory() + "/services"
    var store = ServiceStore(directory: directory, compactionThreshold: 3)
    _ = try store.load()
    var table = ServiceTable()
    for index in 0..<2 { try self.store(service(index), in: &store, &table) }
    XCTAssertNil(try store.compactIfDue(table.resources, table.ids))
    try self.store(service(2), in: &store, &table)
    let compaction = try XCTUnwrap(try store.compactIfDue(table.resources, table.ids))
    let atSwitch = table

    // The switch wrote no snapshot: the change that follows does not wait for one.
    XCTAssertFalse(AtomicFile.exists(store.snapshotPath))
    XCTAssertTrue(AtomicFile.exists(store.closedJournalPath))
    XCTAssertFalse(AtomicFile.exists(store.journalPath))
    XCTAssertEqual(compaction.sequence, 3)
    XCTAssertEqual(compaction.resources, atSwitch.resources)
    try assertRestores(directory, table, sequence: 3, "after the switch")
    try self.store(service(3), in: &store, &table)
    XCTAssertTrue(AtomicFile.exists(store.journalPath))
    try assertRestores(directory, table, sequence: 4, "a change after the switch")
    // One compaction at a time.
    for index in 4..<7 { try self.store(service(index), in: &store, &table) }
    XCTAssertNil(try store.compactIfDue(table.resources, table.ids))
    try assertRestores(directory, table, sequence: 7, "before the snapshot")

    try compaction.publish()
    let snapshot = try JSONDecoder().decode(
      ServiceSnapshot.self, from: Data(try AtomicFile.read(store.snapshotPath, limit: 1 << 30)))
    XCTAssertEqual(snapshot.junction.sequence, 3)
    XCTAssertEqual(snapshot.items.count, atSwitch.resources.objects.count)
    try assertRestores(directory, table, sequence: 7, "after the snapshot, before the removal")
    try compaction.run()
    XCTAssertFalse(AtomicFile.exists(store.closedJournalPath))
    try assertRestores(directory, table, sequence: 7, "after the removal")

    // The next compaction can start, and the store itself restarts on the same state.
    try self.store(service(7), in: &store, &table)
    XCTAssertNotNil(try store.compactIfDue(table.resources, table.ids))
    var restarted = ServiceStore(directory: directory)
    let loaded = try restarted.load()
    XCTAssertEqual(loaded.resources, table.resources)
    XCTAssertEqual(restarted.sequence, 8)
    XCTAssertFalse(AtomicFile.exists(restarted.closedJournalPath))
    XCTAssertFalse(AtomicFile.exists(restarted.journalPath))
  }

  /// A store with a compaction threshold of 2, two changes stored and the compaction
  /// they made due started (its segment closed, its snapshot not written).
  private func compactionStarted() throws -> (
    String, ServiceStore, ServiceTable, ServiceStore.Compaction
  ) {
    let directory = try temporaryDirectory() + "/services"
    var store = ServiceStore(directory: directory, compactionThreshold: 2)
    _ = try store.load()
    var table = ServiceTable()
    for index in 0..<2 { try self.store(service(index), in: &store, &table) }
    let compaction = try XCTUnwrap(try store.compactIfDue(table.resources, table.ids))
    return (directory, store, table, compaction)
  }

  func testASnapshotRewrittenDuringACompactionIsNotReplacedByTheOlderOne() throws {
    let (directory, started, atSwitch, compaction) = try compactionStarted()
    var store = started
    var table = atSwitch
    try self.store(service(2), in: &store, &table)
    // A change that could not be programmed: the stored state goes back to the table's.
    let plan = ApplyPlan(.apply, yaml: service(3))
    try store.append(plan.edits, try plan.update(for: table))
    try store.rewrite(table.resources, table.ids)
    XCTAssertFalse(AtomicFile.exists(store.closedJournalPath))
    try compaction.run()
    try assertRestores(directory, table, sequence: 4, "after both")
  }

  func testAFailedCompactionIsFoldedByTheNextOne() throws {
    let (directory, started, atSwitch, compaction) = try compactionStarted()
    var store = started
    var table = atSwitch
    // A snapshot that cannot be written: a directory where the file goes.
    try FileManager.default.createDirectory(
      atPath: store.snapshotPath, withIntermediateDirectories: false)
    XCTAssertThrowsError(try compaction.run())
    try FileManager.default.removeItem(atPath: store.snapshotPath)
    try assertRestores(directory, table, sequence: 2, "after the failure")
    for index in 2..<4 { try self.store(service(index), in: &store, &table) }
    XCTAssertNil(try store.compactIfDue(table.resources, table.ids))
    XCTAssertFalse(AtomicFile.exists(store.closedJournalPath))
    XCTAssertFalse(AtomicFile.exists(store.journalPath))
    try assertRestores(directory, table, sequence: 4, "after the slow fold")
  }
}
