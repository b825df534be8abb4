// libyaml's event API. Yams builds on it but keeps its own event reader private; CYaml is the
// libyaml that Yams compiles in (its own target, pinned with Yams), so no second copy.
import CYaml
import Yams

/// The fast path of `YAMLValue.documents`: libyaml's events straight into `YAMLValue`s, for
/// the YAML that manifests are made of, giving exactly what Yams' `compose_all` followed by
/// `YAMLValue(Node)` gives.
///
/// Why: Yams composes a `Node` tree and, for every mapping, checks for duplicate keys by
/// hashing them, and a key's hash resolves its tag by trying seven regular expressions; every
/// scalar's tag is resolved so again when it becomes a `YAMLValue`. For 10,000 Services × 10
/// backends (13 MB) that was two thirds of an apply (bench/results/cli-apply.md).
///
/// Here a plain scalar is typed by its bytes when the answer is certain from them (`web`,
/// `true`, `80`, `10.0.0.1`) and by the same Yams resolver as before otherwise (`0x1F`,
/// `1e3`, `.inf`, `2001-12-14`, non-ASCII). Everything else that this reader does not model
/// makes it give up, and the caller parses the whole stream with Yams, so the result (or the
/// error message) is Yams' own: explicit tags, anchors and aliases, a key written twice in
/// one mapping (Yams' duplicate check depends on the keys' tags), a non-scalar key, a scalar
/// starting with a byte-order mark, and any syntax error.
enum YAMLEventReader {
  /// Every document's value (empty documents dropped, as `YAMLValue.documents` does), or nil
  /// when the stream needs Yams (see the type).
  static func documents(_ text: String) -> [YAMLValue]? {
    var result: [YAMLValue] = []
    return forEachDocument(text) { result.append($0) } ? result : nil
  }

  /// Hands each document's value to `body` as soon as it is read (empty documents dropped),
  /// so that a caller can decode it and let its tree go before the next one is built; false
  /// when the stream needs Yams, after `body` may have seen the documents before the point
  /// where this reader gave up (the caller then starts again with Yams).
  static func forEachDocument(_ text: String, _ body: (YAMLValue) -> Void) -> Bool {
    var text = text
    text.makeContiguousUTF8()
    return text.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
      let events = EventStream(bytes)
      do {
        try events.forEachDocument(body)
        return true
      } catch {
        return false
      }
    } ?? false
  }

  /// A plain (unquoted, untagged) scalar as YAML 1.1 types it, as Yams' default resolver and
  /// constructor do. Only answers that follow from the bytes alone are taken here (the cases
  /// are argued from `Resolver.Rule`'s patterns: bool, int, float, merge, null, timestamp,
  /// value, first match wins); the rest goes through Yams itself. The fast cases need
  /// printable ASCII, so that no pattern's `$` can match before a line terminator.
  static func plainScalar(_ bytes: UnsafeBufferPointer<UInt8>, _ text: String) -> YAMLValue {
    guard let first = bytes.first else { return .null }  // `key:` with nothing: null
    var printable = true
    var digits = true
    var dots = 0
    for byte in bytes {
      guard byte >= 0x20 && byte <= 0x7E else {
        printable = false
        break
      }
      if byte == UInt8(ascii: ".") { dots += 1 }
      if byte < UInt8(ascii: "0") || byte > UInt8(ascii: "9") { digits = false }
    }
    if printable {
      // No number, timestamp, `.inf`, `~`, `<<` or `=` starts with a letter: only the
      // bool and null words resolve to anything but a string.
      if isLetter(first) { return word(text) }
      // `[1-9][0-9]*` or `0`: the int pattern's decimal form; at most 18 digits fit an Int
      // (longer ones stay strings in Yams' constructor; those go through it below).
      if digits && (first != UInt8(ascii: "0") || bytes.count == 1) && bytes.count <= 18 {
        if let value = Int(text) { return .int(value) }
      }
      // Addresses: no pattern allows two dots (a float or a timestamp has at most one).
      if dots >= 2 { return .string(text) }
    }
    return YAMLValue(Node.scalar(Node.Scalar(text, Tag(.implicit), .plain)))
  }

  private static func isLetter(_ byte: UInt8) -> Bool {
    (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
      || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
  }

  /// The bool and null patterns' words (case as written in the patterns), else a string.
  private static func word(_ text: String) -> YAMLValue {
    switch text {
    case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": .bool(true)
    case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": .bool(false)
    case "null", "Null", "NULL": .null
    default: .string(text)
    }
  }
}

/// The stream needs Yams (see `YAMLEventReader`).
private struct NeedsYams: Error {}

/// One libyaml parser over UTF-8 bytes that outlive it, and the event it last produced.
private final class EventStream {
  private let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
  private let event = UnsafeMutablePointer<yaml_event_t>.allocate(capacity: 1)
  private var holdsEvent = false

  init(_ bytes: UnsafeBufferPointer<UInt8>) {
    yaml_parser_initialize(parser)
    yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING)
    yaml_parser_set_input_string(parser, bytes.baseAddress, bytes.count)
  }

  deinit {
    if holdsEvent { yaml_event_delete(event) }
    yaml_parser_delete(parser)
    parser.deallocate()
    event.deallocate()
  }

  private func next() throws(NeedsYams) {
    if holdsEvent {
      yaml_event_delete(event)
      holdsEvent = false
    }
    // A syntax error: Yams reads the stream again and words the message.
    guard yaml_parser_parse(parser, event) == 1 else { throw NeedsYams() }
    holdsEvent = true
  }

  private var type: yaml_event_type_t { event.pointee.type }

  func forEachDocument(_ body: (YAMLValue) -> Void) throws(NeedsYams) {
    try next()  // stream start
    while true {
      try next()  // document start, or the stream's end
      if type == YAML_STREAM_END_EVENT { return }
      try next()
      let value = try node()
      try next()  // document end
      if case .null = value { continue }
      body(value)
    }
  }

  /// The node whose first event is the current one; on return, its last event is.
  private func node() throws(NeedsYams) -> YAMLValue {
    switch type {
    case YAML_SCALAR_EVENT:
      return try scalar()
    case YAML_SEQUENCE_START_EVENT:
      let start = event.pointee.data.sequence_start
      guard start.anchor == nil, start.tag == nil else { throw NeedsYams() }
      var items: [YAMLValue] = []
      try next()
      while type != YAML_SEQUENCE_END_EVENT {
        items.append(try node())
        try next()
      }
      return .list(items)
    case YAML_MAPPING_START_EVENT:
      let start = event.pointee.data.mapping_start
      guard start.anchor == nil, start.tag == nil else { throw NeedsYams() }
      var map: [String: YAMLValue] = [:]
      try next()
      while type != YAML_MAPPING_END_EVENT {
        guard type == YAML_SCALAR_EVENT, case .some(let key) = try keyText() else {
          throw NeedsYams()
        }
        try next()
        let value = try node()
        // The same text twice: Yams refuses it or not depending on both keys' tags.
        if map.updateValue(value, forKey: key) != nil { throw NeedsYams() }
        try next()
      }
      return .map(map)
    default:
      // An alias (anchors are not modelled here).
      throw NeedsYams()
    }
  }

  /// The current scalar event's bytes, if it has no anchor or tag and does not start with a
  /// byte-order mark (which a String conversion might treat apart).
  private func scalarBytes() throws(NeedsYams) -> UnsafeBufferPointer<UInt8> {
    let data = event.pointee.data.scalar
    guard data.anchor == nil, data.tag == nil else { throw NeedsYams() }
    let bytes = UnsafeBufferPointer(start: data.value, count: data.length)
    if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF {
      throw NeedsYams()
    }
    return bytes
  }

  /// A mapping key's text (`YAMLValue(Node)` keys a map by the key scalar's text, whatever
  /// its type).
  private func keyText() throws(NeedsYams) -> String? {
    let bytes = try scalarBytes()
    return String(decoding: bytes, as: UTF8.self)
  }

  private func scalar() throws(NeedsYams) -> YAMLValue {
    let data = event.pointee.data.scalar
    let bytes = try scalarBytes()
    let text = String(decoding: bytes, as: UTF8.self)
    // Untagged: quoted and block scalars are strings; plain ones are typed by their text.
    if data.quoted_implicit == 1 { return .string(text) }
    guard data.style == YAML_PLAIN_SCALAR_STYLE, data.plain_implicit == 1 else {
      throw NeedsYams()
    }
    return YAMLEventReader.plainScalar(bytes, text)
  }
}
