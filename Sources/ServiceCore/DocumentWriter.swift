import FoundationEssentials

/// Stored documents as compact JSON, written directly rather than through `JSONEncoder`.
///
/// A journal record or a snapshot is mostly documents: the initial sync from the API server
/// stores 20,000 of them (10,000 Services and their EndpointSlices) in one record, which
/// `JSONEncoder` took about 2 s of CPU to encode (release build, perf; bench/results/
/// k8s-sync.md), building a whole second tree on the way. This writes the same JSON (keys
/// sorted, slashes unescaped), which `YAMLValue`'s `Decodable` reads back to the same value.
public enum DocumentWriter {
  /// Appends `value` as JSON. Throws for a float that JSON cannot hold (infinity, NaN), as
  /// `JSONEncoder` does.
  public static func append(_ value: YAMLValue, to out: inout [UInt8]) throws {
    try append(value, to: &out, nonFiniteAsNull: false)
  }

  /// Appends `value` as JSON, a float JSON cannot hold as `null` (never throws then).
  public static func appendNullingNonFinite(_ value: YAMLValue, to out: inout [UInt8]) {
    try? append(value, to: &out, nonFiniteAsNull: true)
  }

  private static func append(_ value: YAMLValue, to out: inout [UInt8], nonFiniteAsNull: Bool)
    throws
  {
    switch value {
    case .null: out.append(contentsOf: "null".utf8)
    case .bool(let flag): out.append(contentsOf: (flag ? "true" : "false").utf8)
    case .int(let number): out.append(contentsOf: String(number).utf8)
    case .float(let number):
      guard number.isFinite else {
        if nonFiniteAsNull {
          out.append(contentsOf: "null".utf8)
          return
        }
        throw EncodingError.invalidValue(
          number, .init(codingPath: [], debugDescription: "\(number) is not a JSON number"))
      }
      out.append(contentsOf: number.description.utf8)
    case .string(let text): appendString(text, to: &out)
    case .list(let items):
      out.append(UInt8(ascii: "["))
      for (index, item) in items.enumerated() {
        if index > 0 { out.append(UInt8(ascii: ",")) }
        try append(item, to: &out, nonFiniteAsNull: nonFiniteAsNull)
      }
      out.append(UInt8(ascii: "]"))
    case .map(let members):
      out.append(UInt8(ascii: "{"))
      for (index, key) in members.keys.sorted().enumerated() {
        if index > 0 { out.append(UInt8(ascii: ",")) }
        appendString(key, to: &out)
        out.append(UInt8(ascii: ":"))
        try append(members[key]!, to: &out, nonFiniteAsNull: nonFiniteAsNull)
      }
      out.append(UInt8(ascii: "}"))
    }
  }

  /// `[doc,doc,...]`.
  public static func appendList(_ documents: [YAMLValue], to out: inout [UInt8]) throws {
    try append(.list(documents), to: &out)
  }

  /// `[doc,doc,...]` of stored documents: the same bytes as of their trees, concatenated.
  public static func appendList(_ documents: [StoredDocument], to out: inout [UInt8]) throws {
    try appendList(documents, to: &out, flushingAt: .max) { _ in }
  }

  /// The same, handing `out` to `flush` and emptying it whenever it holds `chunk` bytes or
  /// more: a list of every object is written out in pieces, never held whole.
  static func appendList(
    _ documents: [StoredDocument], to out: inout [UInt8], flushingAt chunk: Int,
    _ flush: ([UInt8]) throws -> Void
  ) throws {
    out.append(UInt8(ascii: "["))
    for (index, document) in documents.enumerated() {
      if index > 0 { out.append(UInt8(ascii: ",")) }
      try document.append(to: &out)
      if out.count >= chunk {
        try flush(out)
        out.removeAll(keepingCapacity: true)
      }
    }
    out.append(UInt8(ascii: "]"))
  }

  /// Appends `value` as `JSONEncoder` writes it (keys sorted, slashes unescaped).
  static func appendEncoded<T: Encodable>(_ value: T, to out: inout [UInt8]) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    out.append(contentsOf: try encoder.encode(value))
  }

  static func appendString(_ text: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
      case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
      case 0x0A: out.append(contentsOf: #"\n"#.utf8)
      case 0x0D: out.append(contentsOf: #"\r"#.utf8)
      case 0x09: out.append(contentsOf: #"\t"#.utf8)
      case 0x08: out.append(contentsOf: #"\b"#.utf8)
      case 0x0C: out.append(contentsOf: #"\f"#.utf8)
      case 0..<0x20:
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        out.append(contentsOf: #"\u00"#.utf8)
        out.append(hex[Int(byte >> 4)])
        out.append(hex[Int(byte & 0xF)])
      default: out.append(byte)
      }
    }
    out.append(UInt8(ascii: "\""))
  }
}
