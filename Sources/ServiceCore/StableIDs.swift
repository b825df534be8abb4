/// A persisted key → numeric id table. Ids are handed out from a cursor that only moves
/// forward (wrapping to 1 after `maxID`, skipping ids in use), so an id is never reused while
/// its key exists, and a released id comes back only after every other free id has been used:
/// a stale conntrack or reverse-NAT entry naming an old id has as long as possible to expire
/// before that id means something else. Encoded as JSON beside the agent's endpoint state;
/// decoding the saved table on restart gives every frontend and backend the id it had.
public struct StableIDTable: Codable, Equatable, Sendable {
  public private(set) var ids: [String: UInt32]
  /// The next id to try.
  public private(set) var cursor: UInt32
  public let maxID: UInt32
  /// Derived from `ids`, kept so allocation is O(1) on average; not encoded.
  private var inUse: Set<UInt32>

  private enum CodingKeys: String, CodingKey { case ids, cursor, maxID }

  public init(maxID: UInt32) {
    precondition(maxID >= 1)
    ids = [:]
    cursor = 1
    self.maxID = maxID
    inUse = []
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    ids = try container.decode([String: UInt32].self, forKey: .ids)
    cursor = try container.decode(UInt32.self, forKey: .cursor)
    maxID = try container.decode(UInt32.self, forKey: .maxID)
    inUse = Set(ids.values)
    guard inUse.count == ids.count, inUse.allSatisfy({ (1...maxID).contains($0) }),
      (1...maxID).contains(cursor)
    else {
      throw DecodingError.dataCorrupted(
        .init(codingPath: [], debugDescription: "id table has duplicate or out-of-range ids"))
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(ids, forKey: .ids)
    try container.encode(cursor, forKey: .cursor)
    try container.encode(maxID, forKey: .maxID)
  }

  public static func == (lhs: StableIDTable, rhs: StableIDTable) -> Bool {
    lhs.ids == rhs.ids && lhs.cursor == rhs.cursor && lhs.maxID == rhs.maxID
  }

  public func lookup(_ key: String) -> UInt32? { ids[key] }

  /// The key's id, allocating one if it has none; nil when every id is taken.
  public mutating func id(for key: String) -> UInt32? {
    if let existing = ids[key] { return existing }
    guard UInt64(inUse.count) < UInt64(maxID) else { return nil }
    var candidate = cursor
    while inUse.contains(candidate) { candidate = candidate == maxID ? 1 : candidate + 1 }
    ids[key] = candidate
    inUse.insert(candidate)
    cursor = candidate == maxID ? 1 : candidate + 1
    return candidate
  }

  /// Releases the ids of keys not in `keys` (their frontends or backends are gone).
  public mutating func retain(only keys: Set<String>) {
    for (key, id) in ids where !keys.contains(key) {
      ids[key] = nil
      inUse.remove(id)
    }
  }
}

/// Reverse-NAT ids, one per frontend (address:port/protocol). 16 bits, like Cilium's
/// `rev_nat_index`, so the datapath can carry it in conntrack entries cheaply; 0 means none.
public struct ServiceIDAllocator: Codable, Equatable, Sendable {
  public static let maxID: UInt32 = 65535
  public var table = StableIDTable(maxID: ServiceIDAllocator.maxID)

  public init() {}

  public mutating func id(for frontend: FrontendKey) -> UInt16? {
    table.id(for: frontend.description).map { UInt16($0) }
  }

  public func lookup(_ frontend: FrontendKey) -> UInt16? {
    table.lookup(frontend.description).map { UInt16($0) }
  }
}

/// Backend ids, one per address:port/protocol, shared by every frontend that uses the backend
/// (a pod behind two services is one backend entry). 32 bits, like Cilium's backend ids.
public struct BackendIDAllocator: Codable, Equatable, Sendable {
  public static let maxID: UInt32 = UInt32.max
  public var table = StableIDTable(maxID: BackendIDAllocator.maxID)

  public init() {}

  public mutating func id(for backend: BackendKey) -> UInt32? {
    table.id(for: backend.description)
  }

  public func lookup(_ backend: BackendKey) -> UInt32? { table.lookup(backend.description) }
}

/// Both tables, persisted together as one JSON file (e.g. `lb-ids.json` in the state dir).
public struct LoadBalancerIDs: Codable, Equatable, Sendable {
  public var services = ServiceIDAllocator()
  public var backends = BackendIDAllocator()

  public init() {}
}
