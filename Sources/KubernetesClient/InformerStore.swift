import CNIKit

/// One object's identity in a collection: namespace (empty for cluster-scoped) and name.
public struct ObjectKey: Hashable, Comparable, Sendable, CustomStringConvertible {
  public var namespace: String
  public var name: String

  public init(namespace: String, name: String) {
    self.namespace = namespace
    self.name = name
  }

  public var description: String { namespace.isEmpty ? name : "\(namespace)/\(name)" }

  public static func < (lhs: ObjectKey, rhs: ObjectKey) -> Bool {
    (lhs.namespace, lhs.name) < (rhs.namespace, rhs.name)
  }

  /// The key of an object, or nil when it has no `metadata.name`.
  public init?(of object: JSONValue) {
    guard let name = object["metadata"]?["name"]?.stringValue, !name.isEmpty else { return nil }
    self.init(namespace: object["metadata"]?["namespace"]?.stringValue ?? "", name: name)
  }
}

/// A change the informer passes on: only real ones (an object re-delivered unchanged, by a
/// relist or a resync, is not a change).
public enum ObjectChange: Equatable, Sendable {
  case upsert(ObjectKey, JSONValue)
  /// The last state known (for a delete missed during a disconnect and found by a relist:
  /// the state before the disconnect).
  case delete(ObjectKey, JSONValue)

  public var key: ObjectKey {
    switch self {
    case .upsert(let key, _), .delete(let key, _): key
    }
  }
}

/// The informer's cache of one collection: each object as last seen, keyed by
/// namespace/name. A relist is diffed against it, so that deletes missed while disconnected
/// come out as deletes and objects that did not change come out as nothing.
///
/// It keeps a fingerprint of each object's content and its identity (`kind`, `apiVersion`,
/// and `metadata`'s name, namespace, uid and resourceVersion), not the whole object: the
/// follower keeps what it reads of each object already, and a second whole copy of 10,000
/// Services and their EndpointSlices cost tens of MiB (bench/results/k8s-sync.md). A delete
/// hands on that identity as the last state known.
public struct InformerStore: Sendable {
  struct Entry: Sendable {
    var fingerprint: JSONFingerprint
    var identity: Identity
  }

  /// What a delete hands on: the object's `kind`, `apiVersion` and `metadata`'s name,
  /// namespace, uid and resourceVersion, as a JSON value again (`value`).
  ///
  /// Kept compact, as 20,000 of them are at 10,000 Services: as JSON trees they took three
  /// dictionaries per object (≈ 8 MiB), as six optional JSON values 6 MiB of dictionary
  /// buckets. What an API server sends (kind and apiVersion those of the collection, name
  /// and namespace those of the key, uid and resourceVersion strings) needs only the two
  /// strings; anything else is kept whole, boxed (`Unusual`), so the value handed on is
  /// always the one that came. A uid as API servers write it is 16 bytes (`CompactUID`), not
  /// a 36-character heap string (≈ 1.5 MiB of them at 20,000 objects).
  struct Identity: Sendable {
    var uid: CompactUID?
    var resourceVersion: String?
    var unusual: Unusual?

    /// The six members as they came, for an identity the compact form cannot say.
    final class Unusual: Sendable {
      let kind: JSONValue?
      let apiVersion: JSONValue?
      let name: JSONValue?
      let namespace: JSONValue?
      let uid: JSONValue?
      let resourceVersion: JSONValue?

      init(
        kind: JSONValue?, apiVersion: JSONValue?, name: JSONValue?, namespace: JSONValue?,
        uid: JSONValue?, resourceVersion: JSONValue?
      ) {
        self.kind = kind
        self.apiVersion = apiVersion
        self.name = name
        self.namespace = namespace
        self.uid = uid
        self.resourceVersion = resourceVersion
      }
    }

    /// `object`'s identity; `key` is the key made from it (`ObjectKey(of:)`).
    init(of object: JSONValue, key: ObjectKey, in resource: APIResource) {
      let metadata = object["metadata"]
      let kind = object["kind"]
      let apiVersion = object["apiVersion"]
      let name = metadata?["name"]
      let namespace = metadata?["namespace"]
      let uid = metadata?["uid"]
      let resourceVersion = metadata?["resourceVersion"]
      // The namespace the compact form gives back: the key's, absent for "".
      let keyNamespace: JSONValue? = key.namespace.isEmpty ? nil : .string(key.namespace)
      if kind == .string(resource.kind), apiVersion == .string(resource.apiVersion),
        name == .string(key.name), namespace == keyNamespace,
        uid == nil || uid?.stringValue.flatMap(CompactUID.init) != nil,
        resourceVersion == nil || resourceVersion?.stringValue != nil
      {
        self.uid = uid?.stringValue.flatMap(CompactUID.init)
        self.resourceVersion = resourceVersion?.stringValue
        unusual = nil
      } else {
        unusual = Unusual(
          kind: kind, apiVersion: apiVersion, name: name, namespace: namespace, uid: uid,
          resourceVersion: resourceVersion)
      }
    }

    func value(key: ObjectKey, in resource: APIResource) -> JSONValue {
      var identity: [String: JSONValue] = [:]
      var metadata: [String: JSONValue] = [:]
      if let unusual {
        identity["kind"] = unusual.kind ?? .string(resource.kind)
        identity["apiVersion"] = unusual.apiVersion ?? .string(resource.apiVersion)
        metadata["name"] = unusual.name
        metadata["namespace"] = unusual.namespace
        metadata["uid"] = unusual.uid
        metadata["resourceVersion"] = unusual.resourceVersion
      } else {
        identity["kind"] = .string(resource.kind)
        identity["apiVersion"] = .string(resource.apiVersion)
        metadata["name"] = .string(key.name)
        metadata["namespace"] = key.namespace.isEmpty ? nil : .string(key.namespace)
        metadata["uid"] = uid.map { .string($0.text) }
        metadata["resourceVersion"] = resourceVersion.map(JSONValue.string)
      }
      identity["metadata"] = .object(metadata)
      return .object(identity)
    }
  }

  private var entries: [ObjectKey: Entry] = [:]
  public let resource: APIResource

  public init(resource: APIResource) {
    self.resource = resource
  }

  public var count: Int { entries.count }

  /// A LIST's items do not carry `kind`/`apiVersion` (only the List does): put them back, so
  /// that every object handed on is whole.
  public func completed(_ object: JSONValue) -> JSONValue {
    guard case .object(var members) = object else { return object }
    if members["kind"]?.stringValue?.isEmpty ?? true { members["kind"] = .string(resource.kind) }
    if members["apiVersion"]?.stringValue?.isEmpty ?? true {
      members["apiVersion"] = .string(resource.apiVersion)
    }
    return .object(members)
  }

  /// A (re)list under way: the entries of the pages seen so far. The cache changes only
  /// when it is finished (`finish`), so a list that fails part-way leaves it as it was.
  public struct Relist: Sendable {
    fileprivate var fresh: [ObjectKey: Entry] = [:]
    /// Items without a name (counted and skipped by the caller).
    public fileprivate(set) var unnamed = 0

    public init() {}
  }

  /// One page of a (re)list → the upserts of the objects that differ from the cache, in
  /// key order. Page by page, so that a list of 10,000 objects is never held whole: each
  /// page's objects are handed on, and can be let go, before the next page is read.
  public func changes(inPage items: [JSONValue], relist: inout Relist) -> [ObjectChange] {
    var upserts: [(key: ObjectKey, object: JSONValue)] = []
    for item in items {
      let object = completed(item)
      guard let key = ObjectKey(of: object) else {
        relist.unnamed += 1
        continue
      }
      let entry = self.entry(object, key: key)
      relist.fresh[key] = entry
      if entries[key]?.fingerprint != entry.fingerprint { upserts.append((key, object)) }
    }
    return upserts.sorted { $0.key < $1.key }.map { .upsert($0.key, $0.object) }
  }

  /// The end of a (re)list: the deletes of the cached objects it did not find, and the
  /// cache becomes what it found.
  public mutating func finish(_ relist: Relist) -> [ObjectChange] {
    let deletes = entries.keys.sorted().filter { relist.fresh[$0] == nil }.map {
      ObjectChange.delete($0, entries[$0]!.identity.value(key: $0, in: resource))
    }
    entries = relist.fresh
    return deletes
  }

  /// The whole collection as a (re)list found it → the changes against the cache. Items
  /// without a name are returned in `unnamed` (counted and skipped by the caller).
  public mutating func replace(with items: [JSONValue]) -> (changes: [ObjectChange], unnamed: Int) {
    var relist = Relist()
    let upserts = changes(inPage: items, relist: &relist)
    return (upserts + finish(relist), relist.unnamed)
  }

  /// One ADDED/MODIFIED/DELETED event → its change, nil when it changes nothing. Throws for
  /// an object without a name.
  public mutating func apply(_ event: WatchEvent) throws(APIError) -> ObjectChange? {
    let object = completed(event.object)
    guard let key = ObjectKey(of: object) else {
      throw .malformed(detail: "\(event.type.rawValue) \(resource.kind) without metadata.name")
    }
    switch event.type {
    case .added, .modified:
      let entry = self.entry(object, key: key)
      if entries[key]?.fingerprint == entry.fingerprint { return nil }
      entries[key] = entry
      return .upsert(key, object)
    case .deleted:
      guard let old = entries.removeValue(forKey: key) else { return nil }
      return .delete(key, old.identity.value(key: key, in: resource))
    case .bookmark, .error:
      return nil
    }
  }

  func entry(_ object: JSONValue, key: ObjectKey) -> Entry {
    Entry(
      fingerprint: JSONFingerprint(object), identity: Identity(of: object, key: key, in: resource))
  }
}

/// A 128-bit digest of a JSON value's content, the same for equal values (object members in
/// any order) and different, but for a collision of chance (about 2^-128 per pair), for
/// different ones. Seeded with constants, not per process, so it is reproducible.
/// A uid in the form API servers write it, a lowercase UUID ("0b6f2d84-5d1e-4a5c-9f0e-
/// 6a1e2c3d4e5f"), as its 128 bits; `text` gives the same characters back. Any other text is
/// not one (nil), so nothing is lost by keeping a uid this way.
struct CompactUID: Hashable, Sendable {
  var high: UInt64
  var low: UInt64

  /// Where the four hyphens are; every other character is a lowercase hex digit.
  private static func isHyphen(at position: Int) -> Bool {
    position == 8 || position == 13 || position == 18 || position == 23
  }

  init?(_ text: String) {
    var high: UInt64 = 0
    var low: UInt64 = 0
    var digits = 0
    var position = 0
    for byte in text.utf8 {
      defer { position += 1 }
      if Self.isHyphen(at: position) {
        guard byte == UInt8(ascii: "-") else { return nil }
        continue
      }
      let value: UInt8
      switch byte {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0")
      case UInt8(ascii: "a")...UInt8(ascii: "f"): value = byte - UInt8(ascii: "a") + 10
      default: return nil
      }
      guard digits < 32 else { return nil }
      if digits < 16 {
        high = high << 4 | UInt64(value)
      } else {
        low = low << 4 | UInt64(value)
      }
      digits += 1
    }
    guard position == 36, digits == 32 else { return nil }
    self.high = high
    self.low = low
  }

  var text: String {
    let hex = Array("0123456789abcdef".utf8)
    var bytes: [UInt8] = []
    bytes.reserveCapacity(36)
    for index in 0..<32 {
      if Self.isHyphen(at: bytes.count) { bytes.append(UInt8(ascii: "-")) }
      let word = index < 16 ? high : low
      let shift = UInt64(60 - 4 * (index % 16))
      bytes.append(hex[Int(word >> shift & 0xF)])
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}

struct JSONFingerprint: Equatable, Sendable {
  var high: UInt64
  var low: UInt64

  init(_ value: JSONValue) {
    let (high, low) = Self.digest(value)
    self.high = high
    self.low = low
  }

  /// splitmix64's finalizer: every input bit moves every output bit.
  static func mix(_ value: UInt64) -> UInt64 {
    var z = value &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Two independent 64-bit lanes (different seeds) of the same construction.
  static func digest(_ value: JSONValue) -> (UInt64, UInt64) {
    switch value {
    case .null: return (mix(1), mix(101))
    case .bool(let flag): return (mix(flag ? 2 : 3), mix(flag ? 102 : 103))
    case .number(let number): return combine(4, (number == 0 ? 0 : number).bitPattern)
    case .string(let text): return bytes(5, text)
    case .array(let items):
      var high = mix(6)
      var low = mix(106)
      for item in items {
        // In order: each step mixes the running value with the next item.
        let (h, l) = digest(item)
        high = mix(high ^ h)
        low = mix(low &+ l)
      }
      return (mix(high ^ UInt64(items.count)), mix(low ^ UInt64(items.count)))
    case .object(let members):
      // Members in any order: a sum of each member's digest (a dictionary has no order).
      var high: UInt64 = 0
      var low: UInt64 = 0
      for (key, member) in members {
        let (kh, kl) = bytes(7, key)
        let (vh, vl) = digest(member)
        high = high &+ mix(kh ^ (vh &* 3))
        low = low &+ mix(kl &+ (vl &* 5))
      }
      return (
        mix(high ^ mix(8) ^ UInt64(members.count)), mix(low ^ mix(108) ^ UInt64(members.count))
      )
    }
  }

  static func combine(_ tag: UInt64, _ bits: UInt64) -> (UInt64, UInt64) {
    (mix(mix(tag) ^ bits), mix(mix(tag &+ 100) &+ bits))
  }

  static func bytes(_ tag: UInt64, _ text: String) -> (UInt64, UInt64) {
    var high = mix(tag)
    var low = mix(tag &+ 100)
    var text = text
    text.withUTF8 { buffer in
      var index = 0
      while index < buffer.count {
        // Eight bytes at a time, then the length, so "a" and "a\0" differ.
        var word: UInt64 = 0
        for offset in 0..<min(8, buffer.count - index) {
          word |= UInt64(buffer[index + offset]) << (8 * UInt64(offset))
        }
        high = mix(high ^ word)
        low = mix(low &+ word &+ 0x5851_F42D_4C95_7F2D)
        index += 8
      }
    }
    let count = UInt64(text.utf8.count)
    return (mix(high ^ count), mix(low &+ count))
  }
}

extension JSONValue {
  /// `metadata.resourceVersion`.
  public var resourceVersion: String? { self["metadata"]?["resourceVersion"]?.stringValue }
}
