import CNIKit

/// The Junction plugin object that `chain` appends: `{"type": "junction", "mode": "chained"}`
/// plus the optional fields a user set. Field order is fixed so the text is reproducible.
public struct JunctionEntry: Equatable, Sendable {
  public var agentSocket: String?
  public var logFile: String?
  public var logLevel: String?

  public init(agentSocket: String? = nil, logFile: String? = nil, logLevel: String? = nil) {
    self.agentSocket = agentSocket
    self.logFile = logFile
    self.logLevel = logLevel
  }

  /// Checks the fields as the plugin itself will (absolute paths, a known log level), so a
  /// typo fails here rather than at every pod's ADD.
  public func validate() throws(ConfigEditError) {
    let members = fields.map { JSONScanner.quoted($0.key) + ": " + $0.value }
    let text =
      "{\"cniVersion\": \"1.0.0\", \"name\": \"check\", " + members.joined(separator: ", ") + "}"
    do {
      _ = try JunctionConfig.parse(Array(text.utf8), for: .del)
    } catch {
      throw ConfigEditError(offset: nil, error.msg)
    }
  }

  /// Key and JSON value text, in the order they are written.
  var fields: [(key: String, value: String)] {
    var fields: [(String, String)] = [("type", "\"junction\""), ("mode", "\"chained\"")]
    if let agentSocket { fields.append(("agentSocket", JSONScanner.quoted(agentSocket))) }
    if let logFile { fields.append(("logFile", JSONScanner.quoted(logFile))) }
    if let logLevel { fields.append(("logLevel", JSONScanner.quoted(logLevel))) }
    return fields
  }
}

/// Why a config cannot be chained or unchained. Nothing is written when one is thrown.
public struct ConfigEditError: Error, Equatable, Sendable, CustomStringConvertible {
  public var offset: Int?
  public var reason: String

  public init(offset: Int?, _ reason: String) {
    self.offset = offset
    self.reason = reason
  }

  init(_ error: JSONScanError) {
    self.init(offset: error.offset, "not valid JSON: \(error.reason)")
  }

  public var description: String {
    offset.map { "byte \($0): \(reason)" } ?? reason
  }
}

/// What an edit decided: new text, or why the text is already as wanted.
public enum EditOutcome: Equatable, Sendable {
  case changed([UInt8])
  case unchanged(String)
}

/// chain/unchain on the text of one config (pure: bytes in, bytes out).
///
/// A conflist gets the Junction object as the last element of `plugins`, written in the
/// style of the element before it (same separator, indentation, line endings, spacing);
/// unchain removes exactly that element and the separator before it, so
/// `unchain(chain(x)) == x` byte for byte. A lone `.conf` becomes a conflist that keeps the
/// original text twice: verbatim as the first plugin (so the runtime runs it) and as a
/// string under `junction.io/original` (so unchain can write the file back exactly).
public enum ConflistEditor {
  public static let originalKey = "junction.io/original"
  public static let convertedFromKey = "junction.io/converted-from"

  // MARK: conflists

  public static func chain(conflist text: [UInt8], entry: JunctionEntry) throws(ConfigEditError)
    -> EditOutcome
  {
    let root = try scanObject(text)
    let (plugins, elements) = try pluginsArray(root)
    try requireChainableVersion(root)
    for (index, element) in elements.enumerated() {
      let type = try pluginType(element, index: index)
      if type == "junction" {
        return .unchanged("already has a junction plugin (plugins[\(index)])")
      }
    }
    guard let last = elements.last else {
      throw ConfigEditError(
        offset: plugins.range.lowerBound,
        "\"plugins\" is empty: there is no plugin for Junction to chain after")
    }
    let separator: [UInt8]
    if elements.count >= 2 {
      separator = Array(text[elements[elements.count - 2].range.upperBound..<last.range.lowerBound])
    } else {
      separator = Array(",".utf8) + text[(plugins.range.lowerBound + 1)..<last.range.lowerBound]
    }
    let rendered = Style(of: last, in: text).render(entry.fields)
    var out = Array(text[..<last.range.upperBound])
    out += separator
    out += Array(rendered.utf8)
    out += text[last.range.upperBound...]
    try verifyChained(out, pluginCount: elements.count + 1)
    return .changed(out)
  }

  public static func unchain(conflist text: [UInt8]) throws(ConfigEditError) -> EditOutcome {
    var current = text
    var removed = 0
    // One element at a time, rescanning after each, so offsets are never stale.
    while true {
      let root = try scanObject(current)
      let (_, elements) = try pluginsArray(root)
      var junctionIndexes: [Int] = []
      for (index, element) in elements.enumerated()
      where try pluginType(element, index: index) == "junction" {
        junctionIndexes.append(index)
      }
      guard let index = junctionIndexes.last else { break }
      // Native mode (the default) creates the pod's interface: removing it would leave a
      // network that gives pods none. That list is Junction's own, not one it joined.
      if elements[index].member("mode")?.stringValue != "chained" {
        throw ConfigEditError(
          offset: elements[index].range.lowerBound,
          "plugins[\(index)] is Junction in native mode, which creates the pod interface: this "
            + "is Junction's own network, not one it is chained into; remove the file instead")
      }
      if junctionIndexes.count == elements.count {
        throw ConfigEditError(
          offset: elements[index].range.lowerBound,
          "junction is the only plugin: this is Junction's own network, not one it is chained "
            + "into; remove the file instead")
      }
      let cut: Range<Int>
      if index > 0 {
        cut = elements[index - 1].range.upperBound..<elements[index].range.upperBound
      } else {
        cut = elements[0].range.lowerBound..<elements[1].range.lowerBound
      }
      current.removeSubrange(cut)
      removed += 1
    }
    return removed == 0 ? .unchanged("has no junction plugin") : .changed(current)
  }

  // MARK: lone .conf files

  /// The conflist that replaces the lone config `text` (from the file named `fileName`).
  public static func convert(conf text: [UInt8], fileName: String, entry: JunctionEntry)
    throws(ConfigEditError) -> [UInt8]
  {
    let root = try scanObject(text)
    if root.member("plugins") != nil, root.member("type") == nil {
      throw ConfigEditError(
        offset: root.range.lowerBound,
        "this .conf holds a plugin list: rename it to .conflist (as libcni expects) first")
    }
    guard let type = root.member("type")?.stringValue, !type.isEmpty else {
      throw ConfigEditError(
        offset: root.range.lowerBound, "a lone network config needs a \"type\" string")
    }
    if type == "junction" {
      throw ConfigEditError(
        offset: root.member("type")?.range.lowerBound,
        "this is Junction's own config, there is nothing to chain after")
    }
    guard let name = root.member("name"), name.stringValue != nil else {
      throw ConfigEditError(offset: root.range.lowerBound, "the config has no \"name\" string")
    }
    try requireChainableVersion(root)
    let version = root.member("cniVersion")!

    let object = String(decoding: text[root.range], as: UTF8.self)
    let original = String(decoding: text, as: UTF8.self)
    let junction = Style.converted.render(entry.fields)
    let lines = [
      "{",
      "  \"cniVersion\": \(String(decoding: text[version.range], as: UTF8.self)),",
      "  \"name\": \(String(decoding: text[name.range], as: UTF8.self)),",
      "  \"plugins\": [",
      "    \(object),",
      "    \(junction)",
      "  ],",
      "  \(JSONScanner.quoted(convertedFromKey)): \(JSONScanner.quoted(fileName)),",
      "  \(JSONScanner.quoted(originalKey)): \(JSONScanner.quoted(original))",
      "}",
      "",
    ]
    let out = Array(lines.joined(separator: "\n").utf8)
    try verifyChained(out, pluginCount: 2)
    // The original must come back exactly; a file that is not valid UTF-8 would not.
    guard try restoredConf(out)?.bytes == text else {
      throw ConfigEditError(
        offset: nil, "the file is not valid UTF-8 and could not be kept byte for byte")
    }
    return out
  }

  /// The file a converted conflist came from and its exact bytes; nil for any other list.
  public static func restoredConf(_ conflist: [UInt8]) throws(ConfigEditError)
    -> (fileName: String, bytes: [UInt8])?
  {
    let root = try scanObject(conflist)
    guard let original = root.member(originalKey) else { return nil }
    guard let text = original.stringValue,
      let fileName = root.member(convertedFromKey)?.stringValue
    else {
      throw ConfigEditError(
        offset: original.range.lowerBound,
        "\"\(originalKey)\" and \"\(convertedFromKey)\" must both be strings")
    }
    guard !fileName.isEmpty, !fileName.contains("/"), fileName != ".", fileName != ".." else {
      throw ConfigEditError(
        offset: root.member(convertedFromKey)?.range.lowerBound,
        "\"\(convertedFromKey)\" must be a plain file name, got \"\(fileName)\"")
    }
    return (fileName, Array(text.utf8))
  }

  // MARK: checks shared by both

  static func scanObject(_ text: [UInt8]) throws(ConfigEditError) -> ScannedValue {
    let root: ScannedValue
    do {
      root = try JSONScanner.scan(text)
    } catch {
      throw ConfigEditError(error)
    }
    guard let members = root.members else {
      throw ConfigEditError(
        offset: root.range.lowerBound,
        "a network config must be a JSON object, this is \(root.typeName)")
    }
    var seen: Set<String> = []
    for member in members where ["plugins", "type", "name", "cniVersion"].contains(member.key) {
      if !seen.insert(member.key).inserted {
        throw ConfigEditError(
          offset: member.keyRange.lowerBound,
          "the key \"\(member.key)\" appears twice; which one counts is ambiguous")
      }
    }
    return root
  }

  static func pluginsArray(_ root: ScannedValue) throws(ConfigEditError)
    -> (ScannedValue, [ScannedValue])
  {
    guard let plugins = root.member("plugins") else {
      throw ConfigEditError(
        offset: root.range.lowerBound, "the config has no \"plugins\" array (is it a lone .conf?)")
    }
    guard let elements = plugins.elements else {
      throw ConfigEditError(
        offset: plugins.range.lowerBound, "\"plugins\" must be an array, it is \(plugins.typeName)")
    }
    return (plugins, elements)
  }

  static func pluginType(_ element: ScannedValue, index: Int) throws(ConfigEditError) -> String {
    guard element.members != nil else {
      throw ConfigEditError(
        offset: element.range.lowerBound,
        "plugins[\(index)] must be an object, it is \(element.typeName)")
    }
    guard let type = element.member("type")?.stringValue, !type.isEmpty else {
      throw ConfigEditError(
        offset: element.range.lowerBound, "plugins[\(index)] has no \"type\" string")
    }
    return type
  }

  /// Chaining needs `prevResult`, which exists from 0.3.0, and a version Junction speaks.
  static func requireChainableVersion(_ root: ScannedValue) throws(ConfigEditError) {
    guard let field = root.member("cniVersion"), let text = field.stringValue else {
      throw ConfigEditError(
        offset: root.range.lowerBound,
        "the config has no \"cniVersion\" string (chaining needs 0.3.0 or later)")
    }
    let offered = root.member("cniVersions")?.elements?.compactMap(\.stringValue) ?? []
    guard CNIVersion.select(cniVersion: text, cniVersions: offered) != nil else {
      throw ConfigEditError(
        offset: field.range.lowerBound,
        "cniVersion \"\(text)\" cannot chain Junction: it speaks "
          + CNIVersion.supported.map(\.description).joined(separator: ", "))
    }
  }

  /// The edit must leave valid JSON with junction last and `count` plugins: a last guard
  /// before anything is written.
  static func verifyChained(_ text: [UInt8], pluginCount: Int) throws(ConfigEditError) {
    let root = try scanObject(text)
    let (_, elements) = try pluginsArray(root)
    guard elements.count == pluginCount,
      try pluginType(elements[pluginCount - 1], index: pluginCount - 1) == "junction"
    else {
      throw ConfigEditError(offset: nil, "internal error: the chained text did not check out")
    }
  }
}

/// How the element before ours is written, so ours reads like its neighbours: the text
/// between `{` and the first key, between a key and its value, between members, and
/// before `}` (which carries newline, indentation and CRLF when the file has them).
struct Style {
  var open: String
  var colon: String
  var between: String
  var close: String

  static let converted = Style(open: "\n      ", colon: ": ", between: ",\n      ", close: "\n    ")
  static let oneLine = Style(open: "", colon: ": ", between: ", ", close: "")

  init(open: String, colon: String, between: String, close: String) {
    self.open = open
    self.colon = colon
    self.between = between
    self.close = close
  }

  init(of element: ScannedValue, in text: [UInt8]) {
    guard let members = element.members, let first = members.first, let last = members.last
    else {
      self = .oneLine
      return
    }
    func slice(_ range: Range<Int>) -> String { String(decoding: text[range], as: UTF8.self) }
    open = slice((element.range.lowerBound + 1)..<first.keyRange.lowerBound)
    colon = slice(first.keyRange.upperBound..<first.value.range.lowerBound)
    close = slice(last.value.range.upperBound..<(element.range.upperBound - 1))
    between =
      members.count >= 2
      ? slice(first.value.range.upperBound..<members[1].keyRange.lowerBound) : "," + open
  }

  func render(_ fields: [(key: String, value: String)]) -> String {
    "{" + open
      + fields.map { JSONScanner.quoted($0.key) + colon + $0.value }.joined(separator: between)
      + close + "}"
  }
}
