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

/// The informer's cache of one collection: the objects as last seen, keyed by namespace/name.
/// A relist is diffed against it, so that deletes missed while disconnected come out as
/// deletes and objects that did not change come out as nothing.
public struct InformerStore: Sendable {
  public private(set) var objects: [ObjectKey: JSONValue] = [:]
  public let resource: APIResource

  public init(resource: APIResource) {
    self.resource = resource
  }

  public var count: Int { objects.count }

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

  /// The whole collection as a (re)list found it → the changes against the cache. Items
  /// without a name are returned in `unnamed` (counted and skipped by the caller).
  public mutating func replace(with items: [JSONValue]) -> (changes: [ObjectChange], unnamed: Int) {
    var fresh: [ObjectKey: JSONValue] = [:]
    var unnamed = 0
    for item in items {
      let object = completed(item)
      guard let key = ObjectKey(of: object) else {
        unnamed += 1
        continue
      }
      fresh[key] = object
    }
    var changes: [ObjectChange] = []
    for key in fresh.keys.sorted() where objects[key] != fresh[key] {
      changes.append(.upsert(key, fresh[key]!))
    }
    for key in objects.keys.sorted() where fresh[key] == nil {
      changes.append(.delete(key, objects[key]!))
    }
    objects = fresh
    return (changes, unnamed)
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
      if objects[key] == object { return nil }
      objects[key] = object
      return .upsert(key, object)
    case .deleted:
      guard let old = objects.removeValue(forKey: key) else { return nil }
      return .delete(key, old)
    case .bookmark, .error:
      return nil
    }
  }
}

extension JSONValue {
  /// `metadata.resourceVersion`.
  public var resourceVersion: String? { self["metadata"]?["resourceVersion"]?.stringValue }
}
