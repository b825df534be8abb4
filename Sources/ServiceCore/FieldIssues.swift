/// One problem with one field, named by its full path from the object root
/// ("spec.ports[1].port"), as the Kubernetes API server names it.
public struct FieldIssue: Hashable, Sendable, CustomStringConvertible {
  public let path: String
  public let message: String

  public init(path: String, message: String) {
    self.path = path
    self.message = message
  }

  public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Collects every issue in a document instead of stopping at the first: a user fixing a
/// manifest wants the whole list at once. A class so nested readers share one list; it never
/// leaves the decoding call that created it.
final class IssueSink {
  var issues: [FieldIssue] = []
  func add(_ path: String, _ message: String) {
    issues.append(FieldIssue(path: path, message: message))
  }
}

/// Typed, path-aware reads from one YAML map. A missing or null field reads as nil; a field of
/// the wrong type reads as nil *and* records an issue, so decoding carries on and finds the
/// next problem too.
struct FieldReader {
  let map: [String: YAMLValue]
  let path: String
  let sink: IssueSink

  init(_ map: [String: YAMLValue], path: String, sink: IssueSink) {
    self.map = map
    self.path = path
    self.sink = sink
  }

  func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

  func fail(_ key: String, _ message: String) { sink.add(fieldPath(key), message) }

  private func present(_ key: String) -> YAMLValue? {
    guard let value = map[key], value != .null else { return nil }
    return value
  }

  private func wrongType(_ key: String, _ expected: String, _ value: YAMLValue) {
    fail(key, "must be \(expected), got \(value.typeName) \(value.shortDescription)")
  }

  func string(_ key: String) -> String? {
    guard let value = present(key) else { return nil }
    guard case .string(let text) = value else {
      wrongType(key, "a string", value)
      return nil
    }
    return text
  }

  func int(_ key: String) -> Int? {
    guard let value = present(key) else { return nil }
    guard case .int(let number) = value else {
      wrongType(key, "an integer", value)
      return nil
    }
    return number
  }

  func bool(_ key: String) -> Bool? {
    guard let value = present(key) else { return nil }
    guard case .bool(let flag) = value else {
      wrongType(key, "a boolean", value)
      return nil
    }
    return flag
  }

  func raw(_ key: String) -> YAMLValue? { present(key) }

  func reader(_ key: String) -> FieldReader? {
    guard let value = present(key) else { return nil }
    guard case .map(let child) = value else {
      wrongType(key, "a map", value)
      return nil
    }
    return FieldReader(child, path: fieldPath(key), sink: sink)
  }

  /// The list's items with their paths ("spec.ports[2]").
  func list(_ key: String) -> [(path: String, value: YAMLValue)] {
    guard let value = present(key) else { return [] }
    guard case .list(let items) = value else {
      wrongType(key, "a list", value)
      return []
    }
    return items.enumerated().map { ("\(fieldPath(key))[\($0.offset)]", $0.element) }
  }

  /// Items of a list that must be maps.
  func readers(_ key: String) -> [FieldReader] {
    list(key).compactMap { item in
      guard case .map(let child) = item.value else {
        sink.add(item.path, "must be a map, got \(item.value.typeName)")
        return nil
      }
      return FieldReader(child, path: item.path, sink: sink)
    }
  }

  func strings(_ key: String) -> [(path: String, value: String)] {
    list(key).compactMap { item in
      guard case .string(let text) = item.value else {
        sink.add(
          item.path, "must be a string, got \(item.value.typeName) \(item.value.shortDescription)")
        return nil
      }
      return (item.path, text)
    }
  }

  /// A map of strings (labels, annotations, selector); entries are named `labels["app"]`.
  func stringMap(_ key: String) -> [String: String] {
    guard let value = present(key) else { return [:] }
    guard case .map(let entries) = value else {
      wrongType(key, "a map", value)
      return [:]
    }
    var result: [String: String] = [:]
    for (name, entry) in entries {
      guard case .string(let text) = entry else {
        sink.add(
          "\(fieldPath(key))[\"\(name)\"]",
          "must be a string, got \(entry.typeName) \(entry.shortDescription)")
        continue
      }
      result[name] = text
    }
    return result
  }
}
