/// A strict JSON reader (RFC 8259, as Go's encoding/json reads CNI configs) that keeps the
/// byte range of every value, object key and array element. Chaining edits a conflist as
/// text at these offsets, so every byte it does not own (indentation, key order, number
/// spelling, escapes, line endings) stays exactly as the file had it.
public struct ScannedValue: Sendable {
  public enum Kind: Sendable {
    case object([Member])
    case array([ScannedValue])
    case string(String)
    /// Numbers, `true`, `false` and `null`: never edited, only skipped over.
    case scalar
  }

  public struct Member: Sendable {
    public var key: String
    public var keyRange: Range<Int>
    public var value: ScannedValue
  }

  /// From the first byte of the value to one past its last (`{` … `}`, `"` … `"`).
  public var range: Range<Int>
  public var kind: Kind

  public var members: [Member]? {
    if case .object(let members) = kind { return members }
    return nil
  }

  public var elements: [ScannedValue]? {
    if case .array(let elements) = kind { return elements }
    return nil
  }

  public var stringValue: String? {
    if case .string(let text) = kind { return text }
    return nil
  }

  /// The value of `key` in an object; nil when absent or not an object. Duplicate keys are
  /// refused by the callers that care (Go keeps the last, a human usually means the first).
  public func member(_ key: String) -> ScannedValue? {
    members?.last { $0.key == key }?.value
  }

  public var typeName: String {
    switch kind {
    case .object: "an object"
    case .array: "an array"
    case .string: "a string"
    case .scalar: "a number, boolean or null"
    }
  }
}

/// Why a file could not be read, and where: the byte offset is where reading stopped.
public struct JSONScanError: Error, Equatable, Sendable, CustomStringConvertible {
  public var offset: Int
  public var reason: String

  public var description: String { "byte \(offset): \(reason)" }
}

public enum JSONScanner {
  /// Deeper nesting than any CNI config has; the limit keeps recursion off the stack's edge.
  static let maximumDepth = 512

  /// Reads one JSON value filling all of `bytes` (whitespace around it allowed).
  public static func scan(_ bytes: [UInt8]) throws(JSONScanError) -> ScannedValue {
    var reader = Reader(bytes: bytes)
    reader.skipWhitespace()
    let value = try reader.value(depth: 0)
    reader.skipWhitespace()
    if reader.position < bytes.count {
      throw reader.fail("unexpected data after the end of the top-level value")
    }
    return value
  }

  /// `text` as a JSON string literal, quotes included (for values Junction writes itself).
  public static func quoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case _ where scalar.value < 0x20:
        let hex = String(scalar.value, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out + "\""
  }
}

private struct Reader {
  let bytes: [UInt8]
  var position = 0

  init(bytes: [UInt8]) { self.bytes = bytes }

  func fail(_ reason: String) -> JSONScanError {
    JSONScanError(offset: position, reason: reason)
  }

  var current: UInt8? { position < bytes.count ? bytes[position] : nil }

  mutating func skipWhitespace() {
    while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
      position += 1
    }
  }

  func describeCurrent() -> String {
    guard let byte = current else { return "the end of the file" }
    if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
    return "byte 0x" + String(byte, radix: 16)
  }

  mutating func value(depth: Int) throws(JSONScanError) -> ScannedValue {
    guard depth < JSONScanner.maximumDepth else {
      throw fail("nested deeper than \(JSONScanner.maximumDepth) levels")
    }
    let start = position
    switch current {
    case UInt8(ascii: "{"):
      return try object(depth: depth)
    case UInt8(ascii: "["):
      return try array(depth: depth)
    case UInt8(ascii: "\""):
      let text = try string()
      return ScannedValue(range: start..<position, kind: .string(text))
    case UInt8(ascii: "t"):
      try literal("true")
    case UInt8(ascii: "f"):
      try literal("false")
    case UInt8(ascii: "n"):
      try literal("null")
    case nil:
      throw fail("unexpected end of the file where a value was expected (truncated?)")
    case .some(let byte)
    where byte == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte):
      try number()
    default:
      throw fail("expected a value, found \(describeCurrent())")
    }
    return ScannedValue(range: start..<position, kind: .scalar)
  }

  mutating func object(depth: Int) throws(JSONScanError) -> ScannedValue {
    let start = position
    position += 1
    var members: [ScannedValue.Member] = []
    skipWhitespace()
    if current == UInt8(ascii: "}") {
      position += 1
      return ScannedValue(range: start..<position, kind: .object(members))
    }
    while true {
      skipWhitespace()
      guard current == UInt8(ascii: "\"") else {
        if current == nil { throw fail("the file ends inside an object (truncated?)") }
        throw fail("expected a quoted key, found \(describeCurrent())")
      }
      let keyStart = position
      let key = try string()
      let keyRange = keyStart..<position
      skipWhitespace()
      guard current == UInt8(ascii: ":") else {
        if current == nil { throw fail("the file ends inside an object (truncated?)") }
        throw fail("expected ':' after the key \"\(key)\", found \(describeCurrent())")
      }
      position += 1
      skipWhitespace()
      let value = try value(depth: depth + 1)
      members.append(ScannedValue.Member(key: key, keyRange: keyRange, value: value))
      skipWhitespace()
      switch current {
      case UInt8(ascii: ","):
        position += 1
      case UInt8(ascii: "}"):
        position += 1
        return ScannedValue(range: start..<position, kind: .object(members))
      case nil:
        throw fail("the file ends inside an object (truncated?)")
      default:
        throw fail("expected ',' or '}' in an object, found \(describeCurrent())")
      }
    }
  }

  mutating func array(depth: Int) throws(JSONScanError) -> ScannedValue {
    let start = position
    position += 1
    var elements: [ScannedValue] = []
    skipWhitespace()
    if current == UInt8(ascii: "]") {
      position += 1
      return ScannedValue(range: start..<position, kind: .array(elements))
    }
    while true {
      skipWhitespace()
      elements.append(try value(depth: depth + 1))
      skipWhitespace()
      switch current {
      case UInt8(ascii: ","):
        position += 1
      case UInt8(ascii: "]"):
        position += 1
        return ScannedValue(range: start..<position, kind: .array(elements))
      case nil:
        throw fail("the file ends inside an array (truncated?)")
      default:
        throw fail("expected ',' or ']' in an array, found \(describeCurrent())")
      }
    }
  }

  /// A string literal at `position` (on its opening quote), decoded.
  mutating func string() throws(JSONScanError) -> String {
    position += 1
    var scalars: [UInt8] = []
    while true {
      guard let byte = current else { throw fail("the file ends inside a string (truncated?)") }
      switch byte {
      case UInt8(ascii: "\""):
        position += 1
        return String(decoding: scalars, as: UTF8.self)
      case UInt8(ascii: "\\"):
        position += 1
        guard let escape = current else {
          throw fail("the file ends inside a string (truncated?)")
        }
        switch escape {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scalars.append(escape)
        case UInt8(ascii: "b"): scalars.append(0x08)
        case UInt8(ascii: "f"): scalars.append(0x0C)
        case UInt8(ascii: "n"): scalars.append(0x0A)
        case UInt8(ascii: "r"): scalars.append(0x0D)
        case UInt8(ascii: "t"): scalars.append(0x09)
        case UInt8(ascii: "u"):
          var code: UInt32 = 0
          for _ in 0..<4 {
            position += 1
            guard let digit = current.flatMap({ hexValue($0) }) else {
              throw fail("\\u must be followed by four hex digits")
            }
            code = code * 16 + digit
          }
          // Lone surrogates decode to U+FFFD, as Go does; pairs are joined.
          var scalar = Unicode.Scalar(code)
          if (0xD800..<0xDC00).contains(code), position + 6 < bytes.count,
            bytes[position + 1] == UInt8(ascii: "\\"), bytes[position + 2] == UInt8(ascii: "u")
          {
            var low: UInt32 = 0
            var valid = true
            for index in 3...6 {
              if let digit = hexValue(bytes[position + index]) {
                low = low * 16 + digit
              } else {
                valid = false
              }
            }
            if valid, (0xDC00..<0xE000).contains(low) {
              scalar = Unicode.Scalar(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
              position += 6
            }
          }
          scalars.append(contentsOf: Array(String(scalar ?? "\u{FFFD}").utf8))
        default:
          throw fail("invalid escape \\\(Character(Unicode.Scalar(escape)))")
        }
        position += 1
      case 0x00..<0x20:
        throw fail("control character 0x\(String(byte, radix: 16)) inside a string")
      default:
        scalars.append(byte)
        position += 1
      }
    }
  }

  mutating func literal(_ word: String) throws(JSONScanError) {
    for expected in word.utf8 {
      guard current == expected else {
        if current == nil { throw fail("the file ends inside \(word) (truncated?)") }
        throw fail("expected \(word), found \(describeCurrent())")
      }
      position += 1
    }
  }

  mutating func number() throws(JSONScanError) {
    if current == UInt8(ascii: "-") { position += 1 }
    if current == UInt8(ascii: "0") {
      position += 1
    } else {
      guard try digits() > 0 else { throw fail("a number needs digits") }
    }
    if current == UInt8(ascii: ".") {
      position += 1
      guard try digits() > 0 else { throw fail("a number needs digits after '.'") }
    }
    if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
      position += 1
      if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
      guard try digits() > 0 else { throw fail("a number needs digits in its exponent") }
    }
  }

  mutating func digits() throws(JSONScanError) -> Int {
    var count = 0
    while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
      position += 1
      count += 1
    }
    return count
  }

  func hexValue(_ byte: UInt8) -> UInt32? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
    default: nil
    }
  }
}
