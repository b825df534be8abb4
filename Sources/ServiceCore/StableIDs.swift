/// What a `StableIDTable` is keyed by: a value in memory, its text on disk.
///
/// Why not the text in memory too: the backend table holds one key per backend, and
/// "10.128.3.7:8080/TCP" is longer than a `String` keeps inline, so 100,000 backends were
/// 100,000 heap strings (≈ 6.4 MiB, bench/results/agent-memory.md) beside the addresses the
/// table already holds, and formatting them was part of every change's planning.
public protocol StableIDKey: Hashable, Sendable {
  /// The key as the stored tables write it.
  var storedText: String { get }
  /// The key a stored table wrote, nil when `text` names none.
  init?(storedText text: String)
}

extension String: StableIDKey {
  public var storedText: String { self }
  public init?(storedText text: String) { self = text }
}

extension L4Address: StableIDKey {
  public var storedText: String { description }
  public init?(storedText text: String) { self.init(description: text) }
}

/// A persisted key → numeric id table. Ids are handed out from a cursor that only moves
/// forward (wrapping to 1 after `maxID`, skipping ids in use), so an id is never reused while
/// its key exists, and a released id comes back only after every other free id has been used:
/// a stale conntrack or reverse-NAT entry naming an old id has as long as possible to expire
/// before that id means something else. Encoded as JSON beside the agent's endpoint state;
/// decoding the saved table on restart gives every frontend and backend the id it had.
public struct StableIDTable<Key: StableIDKey>: Codable, Equatable, Sendable {
  public private(set) var ids: [Key: UInt32]
  /// The next id to try.
  public private(set) var cursor: UInt32
  public let maxID: UInt32
  /// The ids in use (derived from `ids`, not encoded), kept so allocation is O(1) on average
  /// once the cursor has wrapped. Until then every id in use is below `cursor`, so the
  /// cursor's id is free without asking, and the set is not kept (nil): the backend table
  /// (32-bit ids) never wraps in practice, and its set was 1 MiB at 100,000 backends.
  fileprivate var inUse: Set<UInt32>?

  private enum CodingKeys: String, CodingKey { case ids, cursor, maxID }

  public init(maxID: UInt32) {
    precondition(maxID >= 1)
    ids = [:]
    cursor = 1
    self.maxID = maxID
    inUse = nil
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    ids = try Self.keyed(container.decode([String: UInt32].self, forKey: .ids))
    cursor = try container.decode(UInt32.self, forKey: .cursor)
    maxID = try container.decode(UInt32.self, forKey: .maxID)
    let used = Set(ids.values)
    guard used.count == ids.count, used.allSatisfy({ (1...maxID).contains($0) }),
      (1...maxID).contains(cursor)
    else {
      throw DecodingError.dataCorrupted(
        .init(codingPath: [], debugDescription: "id table has duplicate or out-of-range ids"))
    }
    let cursor = cursor
    inUse = used.allSatisfy { $0 < cursor } ? nil : used
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(Self.texts(ids), forKey: .ids)
    try container.encode(cursor, forKey: .cursor)
    try container.encode(maxID, forKey: .maxID)
  }

  public static func == (lhs: StableIDTable, rhs: StableIDTable) -> Bool {
    lhs.ids == rhs.ids && lhs.cursor == rhs.cursor && lhs.maxID == rhs.maxID
  }

  /// `ids` with their keys as stored text.
  static func texts(_ ids: [Key: UInt32]) -> [String: UInt32] {
    Dictionary(uniqueKeysWithValues: ids.map { ($0.key.storedText, $0.value) })
  }

  /// Stored text keys read back; throws for text that names no key, or two texts naming one.
  static func keyed(_ stored: [String: UInt32]) throws -> [Key: UInt32] {
    var ids: [Key: UInt32] = [:]
    ids.reserveCapacity(stored.count)
    for (text, id) in stored {
      guard let key = Key(storedText: text), ids.updateValue(id, forKey: key) == nil else {
        throw DecodingError.dataCorrupted(
          .init(codingPath: [], debugDescription: "id table key \"\(text)\" is not valid"))
      }
    }
    return ids
  }

  public func lookup(_ key: Key) -> UInt32? { ids[key] }

  /// The key's id, allocating one if it has none; nil when every id is taken.
  public mutating func id(for key: Key) -> UInt32? {
    if let existing = ids[key] { return existing }
    guard UInt64(ids.count) < UInt64(maxID) else { return nil }
    var snapshot: Set<UInt32>?
    let previous = cursor
    var candidate = cursor
    while isTaken(candidate, snapshot: &snapshot) {
      candidate = candidate == maxID ? 1 : candidate + 1
    }
    ids[key] = candidate
    inUse?.insert(candidate)
    cursor = candidate == maxID ? 1 : candidate + 1
    keepInUse(ifWrappedFrom: previous, assigned: CollectionOfOne(candidate))
    return candidate
  }

  /// Whether `id` is in use. Without the set, an id at or past the cursor is free, and one
  /// below it is looked up in `snapshot`, made from `ids` the first time it is needed.
  fileprivate func isTaken(_ id: UInt32, snapshot: inout Set<UInt32>?) -> Bool {
    if let inUse { return inUse.contains(id) }
    if id >= cursor { return false }
    if snapshot == nil { snapshot = Set(ids.values) }
    return snapshot!.contains(id)
  }

  /// Starts keeping the set when ids in use may now be at or past the cursor: it moved back
  /// from `previous` (it wrapped), or one of the ids just `assigned` is not below it.
  fileprivate mutating func keepInUse(
    ifWrappedFrom previous: UInt32, assigned: some Sequence<UInt32>
  ) {
    guard inUse == nil else { return }
    let cursor = cursor
    if cursor < previous || assigned.contains(where: { $0 >= cursor }) {
      inUse = Set(ids.values)
    }
  }

  /// Releases the ids of keys not in `keys` (their frontends or backends are gone).
  public mutating func retain(only keys: Set<Key>) {
    for (key, id) in ids where !keys.contains(key) {
      ids[key] = nil
      inUse?.remove(id)
    }
  }
}

/// Changes to a `StableIDTable` worked out without touching it (so a change that is then
/// refused, or fails to persist, leaves the table as it was), applied with `apply(_:)`.
/// Releases take effect on apply: an id released here is not handed out again in the same
/// draft, exactly as the cursor would have skipped it.
public struct StableIDDraft<Key: StableIDKey>: Equatable, Sendable {
  public fileprivate(set) var assigned: [Key: UInt32] = [:]
  public fileprivate(set) var released: [Key: UInt32] = [:]
  public fileprivate(set) var cursor: UInt32
  /// The values of `assigned`, for O(1) "is this id free".
  fileprivate var assignedIDs: Set<UInt32> = []
  /// The table's ids in use, made if the draft's cursor wraps while the table keeps no set.
  fileprivate var tableInUse: Set<UInt32>?

  init(cursor: UInt32) { self.cursor = cursor }

  /// For decoding a stored draft.
  mutating func assign(_ key: Key, _ id: UInt32) {
    assigned[key] = id
    assignedIDs.insert(id)
  }

  mutating func markReleased(_ key: Key, _ id: UInt32) { released[key] = id }

  public var isEmpty: Bool { assigned.isEmpty && released.isEmpty }
}

extension StableIDTable {
  public func draft() -> StableIDDraft<Key> { StableIDDraft(cursor: cursor) }

  /// The key's id as the draft stands, allocating one if it has none; nil when every id is
  /// taken.
  public func id(for key: Key, in draft: inout StableIDDraft<Key>) -> UInt32? {
    if let existing = draft.released.removeValue(forKey: key) { return existing }
    if let existing = ids[key] ?? draft.assigned[key] { return existing }
    guard UInt64(ids.count + draft.assigned.count) < UInt64(maxID) else { return nil }
    var candidate = draft.cursor
    while isTaken(candidate, snapshot: &draft.tableInUse)
      || draft.assignedIDs.contains(candidate)
    {
      candidate = candidate == maxID ? 1 : candidate + 1
    }
    draft.assigned[key] = candidate
    draft.assignedIDs.insert(candidate)
    draft.cursor = candidate == maxID ? 1 : candidate + 1
    return candidate
  }

  public func release(_ key: Key, in draft: inout StableIDDraft<Key>) {
    if let id = draft.assigned.removeValue(forKey: key) {
      draft.assignedIDs.remove(id)
      return
    }
    if let id = ids[key] { draft.released[key] = id }
  }

  public mutating func apply(_ draft: StableIDDraft<Key>) {
    // Grown once to its final size, not by doubling with the old table alive at each step.
    ids.reserveCapacity(ids.count + draft.assigned.count)
    inUse?.reserveCapacity(ids.count + draft.assigned.count)
    for (key, id) in draft.released {
      ids[key] = nil
      inUse?.remove(id)
    }
    for (key, id) in draft.assigned {
      ids[key] = id
      inUse?.insert(id)
    }
    let previous = cursor
    cursor = draft.cursor
    keepInUse(ifWrappedFrom: previous, assigned: draft.assigned.values)
  }
}

/// Reverse-NAT ids, one per frontend (address:port/protocol). 16 bits, like Cilium's
/// `rev_nat_index`, so the datapath can carry it in conntrack entries cheaply; 0 means none.
public struct ServiceIDAllocator: Codable, Equatable, Sendable {
  public static let maxID: UInt32 = 65535
  public var table = StableIDTable<FrontendKey>(maxID: ServiceIDAllocator.maxID)

  public init() {}

  public mutating func id(for frontend: FrontendKey) -> UInt16? {
    table.id(for: frontend).map { UInt16($0) }
  }

  public func lookup(_ frontend: FrontendKey) -> UInt16? {
    table.lookup(frontend).map { UInt16($0) }
  }
}

/// Backend ids, one per address:port/protocol, shared by every frontend that uses the backend
/// (a pod behind two services is one backend entry). 32 bits, like Cilium's backend ids.
public struct BackendIDAllocator: Codable, Equatable, Sendable {
  public static let maxID: UInt32 = UInt32.max
  public var table = StableIDTable<BackendKey>(maxID: BackendIDAllocator.maxID)

  public init() {}

  public mutating func id(for backend: BackendKey) -> UInt32? {
    table.id(for: backend)
  }

  public func lookup(_ backend: BackendKey) -> UInt32? { table.lookup(backend) }
}

/// Both tables, persisted together as one JSON file (e.g. `lb-ids.json` in the state dir).
public struct LoadBalancerIDs: Codable, Equatable, Sendable {
  public var services = ServiceIDAllocator()
  public var backends = BackendIDAllocator()

  public init() {}
}
