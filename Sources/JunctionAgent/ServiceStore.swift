import AgentCore
import FoundationEssentials
import ServiceCore

/// The service state on disk, in `<state-dir>/services/`: `snapshot.json` and `journal.jsonl`
/// (the format is ServiceCore's `ServiceJournal`). Unlike endpoint records these outlive a
/// reboot, so every write is durable: a change is one appended journal line and one
/// fdatasync; every `ServiceJournal.compactionThreshold` changes the journal is folded into a
/// new snapshot (written atomically, then the journal is emptied; a crash in between is
/// harmless, the records are skipped by their sequence numbers).
struct ServiceStore {
  let directory: String
  /// The last change stored.
  private(set) var sequence: UInt64 = 0
  private var recordsSinceSnapshot = 0

  var snapshotPath: String { PathNames.join(directory, "snapshot.json") }
  var journalPath: String { PathNames.join(directory, "journal.jsonl") }
  /// What versions before the journal wrote; read once, then replaced by a snapshot.
  private var legacyResourcesPath: String { PathNames.join(directory, "resources.yaml") }
  private var legacyIDsPath: String { PathNames.join(directory, "ids.json") }

  init(directory: String) { self.directory = directory }

  struct Loaded {
    var resources = ResourceSet()
    var ids = LoadBalancerIDs()
    /// Why the journal's last record was dropped, when it was.
    var warning: String?
  }

  /// Reads the stored state and folds any journal into a fresh snapshot, so every start
  /// begins with an empty journal.
  mutating func load() throws -> Loaded {
    var loaded = Loaded()
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
      var records: [ServiceJournalRecord] = []
      if AtomicFile.exists(journalPath) {
        let bytes = try AtomicFile.read(journalPath, limit: 1 << 30)
        let parsed = try ServiceJournal.parse(bytes)
        records = parsed.records
        if parsed.validLength < bytes.count {
          loaded.warning =
            "\(journalPath): dropped a torn last record (\(bytes.count - parsed.validLength) bytes): a change that was never acknowledged"
        }
      }
      let restored = try ServiceJournal.restore(snapshot: snapshot, records: records)
      loaded.resources = restored.resources
      loaded.ids = restored.ids
      sequence = restored.sequence
    }
    // Fold a journal (or the old files) into a snapshot now; nothing stored, nothing written.
    if AtomicFile.exists(journalPath) || AtomicFile.exists(legacyResourcesPath) {
      try writeSnapshot(loaded.resources, loaded.ids)
    }
    return loaded
  }

  /// Stores one change durably, before it is programmed.
  mutating func append(_ edits: [ResourceEdit], _ update: ServiceTable.Update) throws {
    try AtomicFile.makeDirectory(directory, mode: 0o700)
    let record = ServiceJournalRecord(sequence: sequence + 1, edits: edits, update: update)
    try AtomicFile.append(try ServiceJournal.encode(record), to: journalPath)
    sequence += 1
    recordsSinceSnapshot += 1
  }

  /// Stores `resources` and `ids` as a new snapshot that also covers every change
  /// journaled so far: after a change was journaled but could not be programmed, this puts
  /// the stored state back to what the maps hold.
  mutating func rewrite(_ resources: ResourceSet, _ ids: LoadBalancerIDs) throws {
    try writeSnapshot(resources, ids)
  }

  /// Folds the journal into a new snapshot when it has grown long enough.
  mutating func compactIfDue(_ resources: ResourceSet, _ ids: LoadBalancerIDs) throws {
    guard recordsSinceSnapshot >= ServiceJournal.compactionThreshold else { return }
    try writeSnapshot(resources, ids)
  }

  private mutating func writeSnapshot(_ resources: ResourceSet, _ ids: LoadBalancerIDs) throws {
    try AtomicFile.makeDirectory(directory, mode: 0o700)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let snapshot = ServiceSnapshot(resources: resources, ids: ids, sequence: sequence)
    try AtomicFile.write(Array(try encoder.encode(snapshot)), to: snapshotPath)
    _ = try AtomicFile.remove(journalPath)
    for legacy in [legacyResourcesPath, legacyIDsPath] { _ = try AtomicFile.remove(legacy) }
    recordsSinceSnapshot = 0
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
