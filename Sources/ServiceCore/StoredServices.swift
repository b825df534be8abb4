import FoundationEssentials

// How the agent's service state is kept on disk (the effects are the agent's ServiceStore):
// a snapshot, `snapshot.json`, which is a `kind: List` of every object as applied (JSON is
// YAML, so `junctionctl apply -f snapshot.json` reads it too) plus the id tables; and a
// journal, `journal.jsonl`, one line per change since the snapshot: the objects stored or
// removed and the id tables' changes. A change costs one appended line and one fdatasync,
// however many services the node holds; the journal is folded into a new snapshot now and
// then (see `ServiceJournal.compactionThreshold`).

extension YAMLValue: Codable {
  // As JSON. YAML's integer/float distinction survives for every value except a float with
  // no fraction (1.0 reads back as the integer 1); no field Junction reads is a float.
  public init(from decoder: any Decoder) throws {
    let container = try decoder.singleValueContainer()
    if container.decodeNil() {
      self = .null
    } else if let value = try? container.decode(String.self) {
      self = .string(value)
    } else if let value = try? container.decode([String: YAMLValue].self) {
      self = .map(value)
    } else if let value = try? container.decode([YAMLValue].self) {
      self = .list(value)
    } else if let value = try? container.decode(Bool.self) {
      self = .bool(value)
    } else if let value = try? container.decode(Int.self) {
      self = .int(value)
    } else {
      self = .float(try container.decode(Double.self))
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    switch self {
    case .null: try container.encodeNil()
    case .bool(let value): try container.encode(value)
    case .int(let value): try container.encode(value)
    case .float(let value): try container.encode(value)
    case .string(let value): try container.encode(value)
    case .list(let items): try container.encode(items)
    case .map(let map): try container.encode(map)
    }
  }
}

extension ResourceKind: Codable {}

extension StableIDDraft: Codable {
  private enum CodingKeys: String, CodingKey { case assigned, released, cursor }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    self.init(cursor: try container.decode(UInt32.self, forKey: .cursor))
    let assigned = try container.decode([String: UInt32].self, forKey: .assigned)
    for (key, id) in try StableIDTable<Key>.keyed(assigned) { assign(key, id) }
    let released = try container.decode([String: UInt32].self, forKey: .released)
    for (key, id) in try StableIDTable<Key>.keyed(released) { markReleased(key, id) }
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(StableIDTable<Key>.texts(assigned), forKey: .assigned)
    try container.encode(StableIDTable<Key>.texts(released), forKey: .released)
    try container.encode(cursor, forKey: .cursor)
  }
}

/// Both id tables' changes in one journal record.
public struct LoadBalancerIDChanges: Codable, Equatable, Sendable {
  public var services: StableIDDraft<FrontendKey>
  public var backends: StableIDDraft<BackendKey>

  public init(services: StableIDDraft<FrontendKey>, backends: StableIDDraft<BackendKey>) {
    self.services = services
    self.backends = backends
  }
}

extension LoadBalancerIDChanges {
  /// As `JSONEncoder` writes it (keys sorted), directly: the initial sync's record assigns
  /// 110,000 ids, which took `JSONEncoder` a sixth of the sync's CPU time.
  func appendJSON(to out: inout [UInt8]) {
    out.append(contentsOf: #"{"backends":"#.utf8)
    Self.append(backends, to: &out)
    out.append(contentsOf: #","services":"#.utf8)
    Self.append(services, to: &out)
    out.append(UInt8(ascii: "}"))
  }

  private static func append(_ draft: StableIDDraft<L4Address>, to out: inout [UInt8]) {
    func table(_ ids: [L4Address: UInt32]) {
      out.append(UInt8(ascii: "{"))
      // Sorted by their text, as `JSONEncoder` sorts keys.
      let entries = ids.map { (text: $0.key.storedText, id: $0.value) }.sorted { $0.text < $1.text }
      for (index, entry) in entries.enumerated() {
        if index > 0 { out.append(UInt8(ascii: ",")) }
        DocumentWriter.appendString(entry.text, to: &out)
        out.append(UInt8(ascii: ":"))
        out.append(contentsOf: String(entry.id).utf8)
      }
      out.append(UInt8(ascii: "}"))
    }
    out.append(contentsOf: #"{"assigned":"#.utf8)
    table(draft.assigned)
    out.append(contentsOf: #","cursor":\#(draft.cursor),"released":"#.utf8)
    table(draft.released)
    out.append(UInt8(ascii: "}"))
  }
}

extension LoadBalancerIDs {
  public mutating func apply(_ changes: LoadBalancerIDChanges) {
    services.table.apply(changes.services)
    backends.table.apply(changes.backends)
  }
}

/// One change, as the journal stores it.
public struct ServiceJournalRecord: Codable, Equatable, Sendable {
  /// Counts up from the snapshot's; records at or below the snapshot's are already in it.
  public var sequence: UInt64
  /// The documents stored (their objects replace any of the same kind/namespace/name).
  public var stored: [StoredDocument]
  public var removed: [ResourceKey]
  public var ids: LoadBalancerIDChanges

  public init(
    sequence: UInt64, stored: [StoredDocument], removed: [ResourceKey], ids: LoadBalancerIDChanges
  ) {
    self.sequence = sequence
    self.stored = stored
    self.removed = removed
    self.ids = ids
  }

  /// The record for a prepared table update made of `edits`.
  public init(sequence: UInt64, edits: [ResourceEdit], update: ServiceTable.Update) {
    var stored: [StoredDocument] = []
    var removed: [ResourceKey] = []
    for edit in edits {
      switch edit {
      case .upsert(_, let document): if let document { stored.append(document) }
      case .remove(let key): removed.append(key)
      }
    }
    self.init(sequence: sequence, stored: stored, removed: removed, ids: update.idChanges)
  }
}

/// How the journal records and snapshots are written: in pieces of about `chunk` bytes
/// (`StoredWriting.chunk`), each document inflated into the piece as it is written. Whole,
/// a 10,000-Service record or snapshot was one 14–30 MB buffer on top of everything else
/// alive at that moment: the apply's peak (bench/results/agent-memory.md).
public enum StoredWriting {
  public static let chunk = 1 << 20

  /// An empty buffer with room for a piece and the document that ends it.
  static func buffer(_ chunk: Int) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(chunk == .max ? 1 << 16 : chunk + (1 << 16))
    return out
  }
}

/// `snapshot.json`: a `kind: List` of the stored objects, plus what only the agent reads.
public struct ServiceSnapshot: Codable, Equatable, Sendable {
  public var apiVersion = "v1"
  public var kind = "List"
  public var items: [StoredDocument]
  public var junction: Header

  public struct Header: Codable, Equatable, Sendable {
    /// The last journal record folded into this snapshot.
    public var sequence: UInt64
    public var ids: LoadBalancerIDs
  }

  public init(resources: ResourceSet, ids: LoadBalancerIDs, sequence: UInt64) {
    items = resources.objects.keys.sorted().compactMap { resources.documents[$0] }
    junction = Header(sequence: sequence, ids: ids)
  }

  /// As `JSONEncoder` would write it (keys sorted), the items written by `DocumentWriter`.
  public func encoded() throws -> [UInt8] {
    var bytes: [UInt8] = []
    try encode(flushingAt: .max) { bytes.append(contentsOf: $0) }
    return bytes
  }

  /// `encoded()` handed to `write` in pieces of about `chunk` bytes (`StoredWriting`).
  public func encode(flushingAt chunk: Int, _ write: ([UInt8]) throws -> Void) throws {
    var out = StoredWriting.buffer(chunk)
    out.append(contentsOf: #"{"apiVersion":"#.utf8)
    DocumentWriter.appendString(apiVersion, to: &out)
    out.append(contentsOf: #","items":"#.utf8)
    try DocumentWriter.appendList(items, to: &out, flushingAt: chunk, write)
    out.append(contentsOf: #","junction":"#.utf8)
    try DocumentWriter.appendEncoded(junction, to: &out)
    out.append(contentsOf: #","kind":"#.utf8)
    DocumentWriter.appendString(kind, to: &out)
    out.append(UInt8(ascii: "}"))
    try write(out)
  }
}

/// Why the stored state cannot be read (the agent refuses to start on it rather than
/// silently forget services).
public struct StoredStateError: Error, Sendable, CustomStringConvertible {
  public let description: String

  public init(description: String) { self.description = description }
}

public enum ServiceJournal {
  /// Fold the journal into a new snapshot once it holds this many records.
  public static let compactionThreshold = 1000

  /// The journal's records, in order. A last line without its newline, or that does not
  /// parse, is a record torn by a crash while it was appended: its change was never
  /// acknowledged, so it is dropped (`validLength` is where the good records end). Any other
  /// line that does not parse is corruption.
  public static func parse(_ bytes: [UInt8]) throws(StoredStateError) -> (
    records: [ServiceJournalRecord], validLength: Int
  ) {
    var records: [ServiceJournalRecord] = []
    var start = 0
    var lineNumber = 0
    let decoder = JSONDecoder()
    while start < bytes.count {
      lineNumber += 1
      guard let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) else { break }
      do {
        records.append(
          try decoder.decode(ServiceJournalRecord.self, from: Data(bytes[start..<end])))
      } catch {
        if end + 1 == bytes.count { break }
        throw StoredStateError(description: "journal line \(lineNumber) is damaged: \(error)")
      }
      start = end + 1
    }
    return (records, start)
  }

  /// One line: the record as `JSONEncoder` would write it (keys sorted), the documents
  /// written by `DocumentWriter` (see there why).
  public static func encode(_ record: ServiceJournalRecord) throws -> [UInt8] {
    var bytes: [UInt8] = []
    try encode(record, flushingAt: .max) { bytes.append(contentsOf: $0) }
    return bytes
  }

  /// `encode(_:)` handed to `write` in pieces of about `chunk` bytes (`StoredWriting`).
  public static func encode(
    _ record: ServiceJournalRecord, flushingAt chunk: Int, _ write: ([UInt8]) throws -> Void
  ) throws {
    var out = StoredWriting.buffer(chunk)
    out.append(contentsOf: #"{"ids":"#.utf8)
    record.ids.appendJSON(to: &out)
    out.append(contentsOf: #","removed":"#.utf8)
    try DocumentWriter.appendEncoded(record.removed, to: &out)
    out.append(contentsOf: #","sequence":\#(record.sequence),"stored":"#.utf8)
    try DocumentWriter.appendList(record.stored, to: &out, flushingAt: chunk, write)
    out.append(contentsOf: "}\n".utf8)
    try write(out)
  }

  /// The objects and ids after the snapshot and the records that follow it.
  public static func restore(snapshot: ServiceSnapshot?, records: [ServiceJournalRecord])
    throws(StoredStateError) -> (resources: ResourceSet, ids: LoadBalancerIDs, sequence: UInt64)
  {
    var resources = ResourceSet()
    var ids = snapshot?.junction.ids ?? LoadBalancerIDs()
    var sequence = snapshot?.junction.sequence ?? 0
    func store(_ documents: [StoredDocument], _ origin: String) throws(StoredStateError) {
      let decoded = ResourceDecoder.decode(stored: documents)
      if let problem = decoded.problems.first {
        throw StoredStateError(description: "\(origin): \(problem)")
      }
      for (resource, document) in zip(decoded.resources, decoded.documents) {
        resources.upsert(resource, document: document)
      }
    }
    if let snapshot { try store(snapshot.items, "snapshot") }
    for record in records where record.sequence > sequence {
      guard record.sequence == sequence + 1 else {
        throw StoredStateError(
          description: "journal skips from change \(sequence) to \(record.sequence)")
      }
      try store(record.stored, "journal change \(record.sequence)")
      for key in record.removed { resources.remove(key) }
      ids.apply(record.ids)
      sequence = record.sequence
    }
    return (resources, ids, sequence)
  }
}
