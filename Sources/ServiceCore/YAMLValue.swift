import Yams

/// A parsed YAML value, detached from Yams so the rest of the module (and its callers) never
/// depend on the parser's types. Scalars keep the type YAML 1.1 resolution gave them, the same
/// rules `kubectl` applies (sigs.k8s.io/yaml): `port: 80` is an integer, `port: "80"` a string,
/// `clusterIP: None` a string. That distinction matters for `targetPort`, which is an
/// int-or-string.
///
/// Not `indirect`: lists and maps hold their elements in their own storage already, and an
/// indirect enum puts every value, each string and number too, in a heap box of its own,
/// which for the 20,000 documents of 10,000 Services was millions of allocations.
public enum YAMLValue: Hashable, Sendable {
  case null
  case bool(Bool)
  case int(Int)
  case float(Double)
  case string(String)
  case list([YAMLValue])
  case map([String: YAMLValue])

  /// The YAML type name, for "must be an integer, got string" messages.
  public var typeName: String {
    switch self {
    case .null: "null"
    case .bool: "boolean"
    case .int: "integer"
    case .float: "number"
    case .string: "string"
    case .list: "list"
    case .map: "map"
    }
  }

  /// The value as the user wrote it, short, for messages.
  public var shortDescription: String {
    switch self {
    case .null: "null"
    case .bool(let value): String(value)
    case .int(let value): String(value)
    case .float(let value): String(value)
    case .string(let value): "\"\(value)\""
    case .list: "a list"
    case .map: "a map"
    }
  }

  public subscript(key: String) -> YAMLValue? {
    if case .map(let map) = self { return map[key] }
    return nil
  }

  public var stringValue: String? {
    if case .string(let text) = self { return text }
    return nil
  }
}

/// Why the YAML text itself could not be read (before any Kubernetes meaning is looked at).
public struct YAMLSyntaxError: Error, Sendable, CustomStringConvertible {
  public let description: String
}

extension YAMLValue {
  /// Every document of a (possibly multi-document, `---`-separated) YAML stream. Empty
  /// documents (a leading `---`, a trailing comment) are dropped, as kubectl drops them.
  public static func documents(_ text: String) throws(YAMLSyntaxError) -> [YAMLValue] {
    // The common case without Yams' Node tree (same result; see YAMLEventReader).
    if let documents = YAMLEventReader.documents(text) { return documents }
    return try documentsWithYams(text)
  }

  /// The whole stream through Yams: tags, anchors, aliases, duplicate keys and syntax errors
  /// (public for junction-bench's comparison of both paths).
  public static func documentsWithYams(_ text: String) throws(YAMLSyntaxError) -> [YAMLValue] {
    do {
      var result: [YAMLValue] = []
      // The sequence stops at a syntax error and keeps it, rather than throwing it.
      var documents = try Yams.compose_all(yaml: text)
      while let node = documents.next() {
        let value = YAMLValue(node)
        if value != .null { result.append(value) }
      }
      if let error = documents.error { throw error }
      return result
    } catch {
      throw YAMLSyntaxError(description: "YAML syntax error: \(error)")
    }
  }

  init(_ node: Node) {
    switch node {
    case .scalar(let scalar):
      // The resolved tag; Yams keeps its name internal, its description is the tag URI.
      switch node.tag.description {
      case Tag.Name.null.rawValue: self = .null
      case Tag.Name.bool.rawValue: self = node.bool.map(YAMLValue.bool) ?? .string(scalar.string)
      // An integer too large for Int stays a string: the field check then names it.
      case Tag.Name.int.rawValue: self = node.int.map(YAMLValue.int) ?? .string(scalar.string)
      case Tag.Name.float.rawValue:
        self = node.float.map(YAMLValue.float) ?? .string(scalar.string)
      // Timestamps, binary and anything else stay text: no Kubernetes field we read is typed so.
      default: self = .string(scalar.string)
      }
    case .sequence(let sequence):
      self = .list(sequence.map(YAMLValue.init))
    case .mapping(let mapping):
      var map: [String: YAMLValue] = [:]
      for (key, value) in mapping {
        // Kubernetes objects only have string keys; a non-string key is kept by its text.
        let name = key.scalar?.string ?? "\(key)"
        map[name] = YAMLValue(value)
      }
      self = .map(map)
    case .alias:
      // compose_all resolves aliases into their targets; an unresolved one reads as absent.
      self = .null
    }
  }
}
