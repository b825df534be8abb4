import AgentCore
import FoundationEssentials
import ServiceCore
import Synchronization

/// The service state on disk, in `<state-dir>/services/`: `snapshot.json`, the open journal
/// segment `journal.jsonl` and, while a compaction runs, the closed segment
/// `journal.closed.jsonl` (the format is ServiceCore's `ServiceJournal`). Unlike endpoint
/// records these outlive a reboot, so every write is durable: a change is one appended
/// journal line and one fdatasync.
///
/// Every `compactionThreshold` changes the journal is folded into a new snapshot without
/// holding up the changes that follow (a snapshot of 10,000 services takes seconds to
/// write): `compactIfDue` only renames the open segment to the closed one (durably) and
/// returns a `Compaction`, which writes the state as of that rename off the caller's
/// critical path, then removes the closed segment. Every file state a crash can leave
/// restores exactly the changes acknowledged, as `load` reads the snapshot, then the closed
/// segment, then the open one, skipping records the snapshot already holds:
/// - before the rename is on disk: the old snapshot and the whole journal under one of
///   its two names;
/// - after it, before the new snapshot's rename: the old snapshot, the closed segment and
///   the open segment's records since;
/// - after the new snapshot, before the closed segment's removal: its records are all at
///   or below the snapshot's sequence, so they are skipped;
/// - after the removal: the new snapshot and the open segment.
/// A new snapshot is written to a temporary file, fsynced, renamed over `snapshot.json` and
/// its directory fsynced (`AtomicFile.write`), so `snapshot.json` is always one whole
/// snapshot. Snapshots are written one at a time and never replace a newer one (see
/// `SnapshotWriter`).
struct ServiceStore {
  let directory: String
  /// Fold the journal into a snapshot once it holds this many records.
  let compactionThreshold: Int
  /// The last change stored.
  private(set) var sequence: UInt64 = 0
  private var recordsSinceSnapshot = 0
  private let writer = SnapshotWriter()

  var snapshotPath: String { PathNames.join(directory, "snapshot.json") }
  var journalPath: String { PathNames.join(directory, "journal.jsonl") }
  var closedJournalPath: String { PathNames.join(directory, "journal.closed.jsonl") }
  /// What versions before the journal wrote; read once, then replaced by a snapshot.
  private var legacyResourcesPath: String { PathNames.join(directory, "resources.yaml") }
  private var legacyIDsPath: String { PathNames.join(directory, "ids.json") }

  init(directory: String, compactionThreshold: Int = ServiceJournal.compactionThreshold) {
    self.directory = directory
    self.compactionThreshold = compactionThreshold
  }

  struct Loaded {
    var resources = ResourceSet()
    var ids = LoadBalancerIDs()
    /// Why a journal segment's last record was dropped, when it was.
    var warning: String?
  }

  /// Reads the stored state and folds any journal into a fresh snapshot, so every start
  /// begins with an empty journal.
  mutating func load() throws -> Loaded {
    var loaded = Loaded()
    let journals = [closedJournalPath, journalPath].filter(AtomicFile.exists)
    if !AtomicFile.exists(snapshotPath), AtomicFile.exists(legacyResourcesPath) {
      try loadLegacy(into: &loaded)
    } else {
      var snapshot: ServiceSnapshot?
      if AtomicFile.exists(snapshotPath) {
        do {
          snapshot = try JSONDecoder().decode(
            ServiceSnapshot.self, from: Data(try AtomicFile.read(snapshotPath, limit: 1 << 30)))
        } catch {
          throw StoredStateError(description: "\(snapshotPath): \(error)")
        }
      }
      // The closed segment (a compaction a crash cut short) comes before the open one.
      var records: [ServiceJournalRecord] = []
      for path in journals {
        let bytes = try AtomicFile.read(path, limit: 1 << 30)
        let parsed = try ServiceJournal.parse(bytes)
        records += parsed.records
        if parsed.validLength < bytes.count {
          loaded.warning =
            "\(path): dropped a torn last record (\(bytes.count - parsed.validLength) bytes): a change that was never acknowledged"
        }
      }
      let restored = try ServiceJournal.restore(snapshot: snapshot, records: records)
      loaded.resources = restored.resources
      loaded.ids = restored.ids
      sequence = restored.sequence
    }
    // Fold a journal (or the old files) into a snapshot now; nothing stored, nothing written.
    if !journals.isEmpty || AtomicFile.exists(legacyResourcesPath) {
      try writeSnapshot(loaded.resources, loaded.ids)
    }
    return loaded
  }

  /// Stores one change durably, before it is programmed.
  mutating func append(_ edits: [ResourceEdit], _ update: ServiceTable.Update) throws {
    try AtomicFile.makeDirectory(directory, mode: 0o700)
    let record = ServiceJournalRecord(sequence: sequence + 1, edits: edits, update: update)
    try AtomicFile.append(to: journalPath) { write in
      try ServiceJournal.encode(record, flushingAt: StoredWriting.chunk, write)
    }
    sequence += 1
    recordsSinceSnapshot += 1
  }

  /// Stores `resources` and `ids` as a new snapshot that also covers every change
  /// journaled so far: after a change was journaled but could not be programmed, this puts
  /// the stored state back to what the maps hold. Waits for a compaction's write under way.
  mutating func rewrite(_ resources: ResourceSet, _ ids: LoadBalancerIDs) throws {
    try writeSnapshot(resources, ids)
  }

  /// When the journal has grown long enough, closes its segment and returns the compaction
  /// that folds it into a snapshot of `resources` and `ids` (the state after every change
  /// stored so far), for the caller to run off its critical path. Nil when not due, or
  /// while an earlier compaction has not finished.
  mutating func compactIfDue(_ resources: ResourceSet, _ ids: LoadBalancerIDs) throws
    -> Compaction?
  {
    guard recordsSinceSnapshot >= compactionThreshold, writer.begin() else { return nil }
    var started = false
    defer { if !started { writer.end() } }
    if AtomicFile.exists(closedJournalPath) {
      // An earlier compaction failed and left its segment: fold both here, the slow way.
      try writeSnapshot(resources, ids)
      return nil
    }
    // Durable before the next change is appended (to a new `journal.jsonl`).
    try AtomicFile.rename(journalPath, to: closedJournalPath)
    recordsSinceSnapshot = 0
    started = true
    return Compaction(
      resources: resources, ids: ids, sequence: sequence, snapshotPath: snapshotPath,
      closedJournalPath: closedJournalPath, writer: writer)
  }

  /// Writes a snapshot of the state after every change stored so far and removes every
  /// journal segment, synchronously.
  private mutating func writeSnapshot(_ resources: ResourceSet, _ ids: LoadBalancerIDs) throws {
    try AtomicFile.makeDirectory(directory, mode: 0o700)
    try writer.publish(resources, ids, sequence: sequence, to: snapshotPath) {
      for path in [journalPath, closedJournalPath, legacyResourcesPath, legacyIDsPath] {
        _ = try AtomicFile.remove(path)
      }
    }
    recordsSinceSnapshot = 0
  }

  /// A closed journal segment to fold into a snapshot: `run` it once, anywhere (the
  /// resources and ids are copy-on-write values, so holding them costs nothing).
  struct Compaction: Sendable {
    let resources: ResourceSet
    let ids: LoadBalancerIDs
    /// The last change the snapshot holds: the last record of the closed segment.
    let sequence: UInt64
    fileprivate let snapshotPath: String
    fileprivate let closedJournalPath: String
    fileprivate let writer: SnapshotWriter

    /// Encodes and publishes the snapshot, then removes the closed segment. On failure the
    /// segment stays and the next compaction folds it (it is still read on load).
    func run() throws {
      defer { writer.end() }
      try publish()
      try removeClosedSegment()
    }

    /// The snapshot, durably under `snapshot.json`; nothing when a newer one is there.
    func publish() throws {
      try writer.publish(resources, ids, sequence: sequence, to: snapshotPath) {}
    }

    func removeClosedSegment() throws {
      // A snapshot as new as this one is on disk, or a rewrite removed the segment already.
      _ = try AtomicFile.remove(closedJournalPath)
    }
  }

  private func loadLegacy(into loaded: inout Loaded) throws {
    let yaml = String(
      decoding: try AtomicFile.read(legacyResourcesPath, limit: 1 << 30), as: UTF8.self)
    do {
      loaded.resources = try ApplyPlan(.apply, yaml: yaml).result(applyingTo: ResourceSet())
    } catch {
      throw StoredStateError(description: "\(legacyResourcesPath): \(error)")
    }
    if AtomicFile.exists(legacyIDsPath) {
      loaded.ids = try JSONDecoder().decode(
        LoadBalancerIDs.self, from: Data(try AtomicFile.read(legacyIDsPath, limit: 1 << 30)))
    }
  }
}

/// Serializes snapshot writes between the store and a compaction running elsewhere: one
/// compaction at a time, and a snapshot never replaces a newer one (a rewrite after a
/// failed programming can publish while a compaction is still encoding an older state).
final class SnapshotWriter: Sendable {
  private let compacting = Atomic<Bool>(false)
  /// The sequence of the snapshot on disk, guarded while a snapshot is written.
  private let published = Mutex<UInt64?>(nil)

  /// Starts a compaction; false while one is under way.
  func begin() -> Bool {
    compacting.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing)
      .exchanged
  }

  func end() { compacting.store(false, ordering: .releasing) }

  /// Writes the snapshot of `resources` and `ids` (the state up to `sequence`) to `path`
  /// unless a newer snapshot is there, then runs `after` (removing what it covers), all
  /// under the lock. Encoded while it is written, never whole in memory (`StoredWriting`).
  func publish(
    _ resources: ResourceSet, _ ids: LoadBalancerIDs, sequence: UInt64, to path: String,
    after: () throws -> Void
  ) throws {
    let snapshot = ServiceSnapshot(resources: resources, ids: ids, sequence: sequence)
    try published.withLock { published in
      if let published, published > sequence { return }
      try AtomicFile.write(to: path) { write in
        try snapshot.encode(flushingAt: StoredWriting.chunk, write)
      }
      published = sequence
      try after()
    }
  }
}
