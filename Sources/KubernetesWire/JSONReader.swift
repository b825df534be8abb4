import CNIKit

/// Reads JSON bytes straight into a `JSONValue`, for LIST pages and watch events.
///
/// `JSONValue.parse` goes through Foundation's `JSONDecoder` and `JSONValue`'s `Codable`
/// conformance, which tries each JSON type in turn through a decoding container: decoding
/// the LIST of 10,000 EndpointSlices took about 4 s of CPU that way (release build, measured
/// with perf, bench/results/k8s-sync.md). This reads each byte once and builds the same
/// values: numbers as `Double`, objects as dictionaries (a repeated key keeps its last
/// value). It is strict about the grammar (RFC 8259): anything else is an error, as it was.
/// Invalid UTF-8 inside a string is replaced (U+FFFD), not refused.
public enum JSONReader {
  public struct Failure: Error, CustomStringConvertible {
    public var offset: Int
    public var reason: String
    public var description: String { "\(reason) at byte \(offset)" }
  }

  /// Nesting deeper than this is refused (a recursion bound; API objects nest a few levels).
  public static let maximumDepth = 512

  public static func parse(_ bytes: [UInt8]) throws(Failure) -> JSONValue {
    try whole(bytes) { (reader) throws(Failure) in try reader.value(depth: 0) }
  }

  /// A LIST body read without keeping its items: the top-level object with every member
  /// but `items`, and the byte range of each of `items`' elements (each parsed once here, so
  /// the whole body is checked, then dropped). nil ranges: no `items` array (absent, null or
  /// another type, left in the members). What lets a LIST of 10,000 objects be turned into
  /// changes a few hundred objects at a time (`ListPage`), never all as trees at once.
  public static func parseList(_ bytes: [UInt8]) throws(Failure) -> (
    members: JSONValue, items: [Range<Int>]?
  ) {
    try whole(bytes) { (reader) throws(Failure) in try reader.listObject() }
  }

  /// The value in `range` of `bytes` (a range `parseList` gave).
  public static func parse(_ bytes: [UInt8], in range: Range<Int>) throws(Failure) -> JSONValue {
    try whole(bytes, in: range) { (reader) throws(Failure) in try reader.value(depth: 1) }
  }

  /// `read` over `bytes[range]` (all of them by default) as one JSON text: blanks around
  /// it, nothing else after it. A failure's offset counts from the start of `bytes`.
  private static func whole<Value>(
    _ bytes: [UInt8], in range: Range<Int>? = nil,
    _ read: (inout Reader) throws(Failure) -> Value
  ) throws(Failure) -> Value {
    let range = range ?? 0..<bytes.count
    let result: Result<Value, Failure> = bytes.withUnsafeBufferPointer { all in
      var reader = Reader(bytes: UnsafeBufferPointer(rebasing: all[range]))
      do throws(Failure) {
        reader.skipSpace()
        let value = try read(&reader)
        reader.skipSpace()
        guard reader.index == range.count else { throw reader.failure("text after the value") }
        return .success(value)
      } catch {
        return .failure(Failure(offset: range.lowerBound + error.offset, reason: error.reason))
      }
    }
    return try result.get()
  }

  private struct Reader {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    func failure(_ reason: String) -> Failure { Failure(offset: index, reason: reason) }

    mutating func skipSpace() {
      while index < bytes.count {
        switch bytes[index] {
        case 0x20, 0x09, 0x0A, 0x0D: index += 1
        default: return
        }
      }
    }

    /// Consumes `byte` (after blanks), or fails.
    mutating func expect(_ byte: UInt8, _ what: String) throws(Failure) {
      skipSpace()
      guard index < bytes.count, bytes[index] == byte else { throw failure("expected \(what)") }
      index += 1
    }

    mutating func value(depth: Int) throws(Failure) -> JSONValue {
      guard depth < JSONReader.maximumDepth else { throw failure("nested too deeply") }
      guard index < bytes.count else { throw failure("unexpected end") }
      switch bytes[index] {
      case UInt8(ascii: "{"): return try object(depth: depth)
      case UInt8(ascii: "["): return try array(depth: depth)
      case UInt8(ascii: "\""): return .string(try string())
      case UInt8(ascii: "t"): return try literal("true", .bool(true))
      case UInt8(ascii: "f"): return try literal("false", .bool(false))
      case UInt8(ascii: "n"): return try literal("null", .null)
      default: return .number(try number())
      }
    }

    mutating func object(depth: Int) throws(Failure) -> JSONValue {
      var members: [String: JSONValue] = [:]
      try forEachMember { (reader, name) throws(Failure) in
        members[name] = try reader.value(depth: depth + 1)
      }
      return .object(members)
    }

    /// `parseList`'s walk: a top-level object whose `items` array is checked item by item
    /// and kept as ranges; any other top-level value is returned whole, without ranges.
    mutating func listObject() throws(Failure) -> (JSONValue, [Range<Int>]?) {
      guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else {
        return (try value(depth: 0), nil)
      }
      var members: [String: JSONValue] = [:]
      var items: [Range<Int>]?
      try forEachMember { (reader, name) throws(Failure) in
        // A repeated key keeps its last value, as `object` does.
        if name == "items", reader.index < reader.bytes.count,
          reader.bytes[reader.index] == UInt8(ascii: "[")
        {
          items = try reader.itemRanges()
          members[name] = nil
        } else {
          members[name] = try reader.value(depth: 1)
          if name == "items" { items = nil }
        }
      }
      return (.object(members), items)
    }

    /// Walks the object at `index`: `member` gets each member's name with the reader at its
    /// value, which it must read.
    mutating func forEachMember(
      _ member: (inout Reader, String) throws(Failure) -> Void
    ) throws(Failure) {
      index += 1
      skipSpace()
      if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
        index += 1
        return
      }
      while true {
        skipSpace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
          throw failure("expected a member name")
        }
        let name = try string()
        try expect(UInt8(ascii: ":"), "':'")
        skipSpace()
        try member(&self, name)
        if try closes(UInt8(ascii: "}"), "an object") { return }
      }
    }

    /// The `items` array's elements, each parsed (to check it) and dropped.
    mutating func itemRanges() throws(Failure) -> [Range<Int>] {
      index += 1
      var ranges: [Range<Int>] = []
      skipSpace()
      if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
        index += 1
        return ranges
      }
      while true {
        skipSpace()
        let start = index
        _ = try value(depth: 2)
        ranges.append(start..<index)
        if try closes(UInt8(ascii: "]"), "an array") { return ranges }
      }
    }

    mutating func array(depth: Int) throws(Failure) -> JSONValue {
      index += 1
      var items: [JSONValue] = []
      skipSpace()
      if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
        index += 1
        return .array(items)
      }
      while true {
        skipSpace()
        items.append(try value(depth: depth + 1))
        if try closes(UInt8(ascii: "]"), "an array") { return .array(items) }
      }
    }

    /// After an object's member or an array's item: true past the `closing` bracket, false
    /// past a ','; anything else fails at that byte (`container` names it in the reason).
    mutating func closes(_ closing: UInt8, _ container: String) throws(Failure) -> Bool {
      skipSpace()
      guard index < bytes.count else { throw failure("unexpected end in \(container)") }
      let next = bytes[index]
      if next == closing {
        index += 1
        return true
      }
      guard next == UInt8(ascii: ",") else {
        throw failure("expected ',' or '\(Character(Unicode.Scalar(closing)))'")
      }
      index += 1
      return false
    }

    mutating func literal(_ word: StaticString, _ value: JSONValue) throws(Failure) -> JSONValue {
      let count = word.utf8CodeUnitCount
      guard index + count <= bytes.count else { throw failure("unexpected end") }
      for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] {
        throw failure("unknown literal")
      }
      index += count
      return value
    }

    /// At the opening quote; returns the string and leaves `index` after the closing one.
    mutating func string() throws(Failure) -> String {
      index += 1
      let start = index
      // Most strings (names, addresses, labels) have no escape: one scan, one copy.
      while index < bytes.count {
        let byte = bytes[index]
        if byte == UInt8(ascii: "\"") {
          let text = String(
            decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
          index += 1
          return text
        }
        if byte == UInt8(ascii: "\\") { break }
        guard byte >= 0x20 else { throw failure("control character in a string") }
        index += 1
      }
      var text = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
      while index < bytes.count {
        let byte = bytes[index]
        if byte == UInt8(ascii: "\"") {
          index += 1
          return String(decoding: text, as: UTF8.self)
        }
        guard byte >= 0x20 else { throw failure("control character in a string") }
        index += 1
        guard byte == UInt8(ascii: "\\") else {
          text.append(byte)
          continue
        }
        guard index < bytes.count else { break }
        let escape = bytes[index]
        index += 1
        switch escape {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(escape)
        case UInt8(ascii: "b"): text.append(0x08)
        case UInt8(ascii: "f"): text.append(0x0C)
        case UInt8(ascii: "n"): text.append(0x0A)
        case UInt8(ascii: "r"): text.append(0x0D)
        case UInt8(ascii: "t"): text.append(0x09)
        case UInt8(ascii: "u"):
          var scalar = try hex4()
          if (0xD800..<0xDC00).contains(scalar) {
            // A UTF-16 surrogate pair: the low half must follow as another \u escape.
            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
              bytes[index + 1] == UInt8(ascii: "u")
            else { throw failure("unpaired surrogate") }
            index += 2
            let low = try hex4()
            guard (0xDC00..<0xE000).contains(low) else { throw failure("unpaired surrogate") }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
          } else if (0xDC00..<0xE000).contains(scalar) {
            throw failure("unpaired surrogate")
          }
          text.append(contentsOf: String(Unicode.Scalar(scalar)!).utf8)
        default:
          index -= 1
          throw failure("unknown escape")
        }
      }
      throw failure("unterminated string")
    }

    mutating func hex4() throws(Failure) -> UInt32 {
      guard index + 4 <= bytes.count else { throw failure("short \\u escape") }
      var value: UInt32 = 0
      for _ in 0..<4 {
        let byte = bytes[index]
        let digit: UInt32
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
        default: throw failure("bad \\u escape")
        }
        value = value * 16 + digit
        index += 1
      }
      return value
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    mutating func number() throws(Failure) -> Double {
      let start = index
      var negative = false
      if index < bytes.count, bytes[index] == UInt8(ascii: "-") {
        negative = true
        index += 1
      }
      guard index < bytes.count, isDigit(bytes[index]) else {
        throw failure("unexpected character")
      }
      var integer = 0
      var digits = 0
      if bytes[index] == UInt8(ascii: "0") {
        index += 1
      } else {
        while index < bytes.count, isDigit(bytes[index]) {
          if digits < 18 { integer = integer * 10 + Int(bytes[index] - UInt8(ascii: "0")) }
          digits += 1
          index += 1
        }
      }
      var simple = digits <= 15
      if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
        simple = false
        index += 1
        guard index < bytes.count, isDigit(bytes[index]) else { throw failure("bad number") }
        while index < bytes.count, isDigit(bytes[index]) { index += 1 }
      }
      if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")
      {
        simple = false
        index += 1
        if index < bytes.count,
          bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")
        {
          index += 1
        }
        guard index < bytes.count, isDigit(bytes[index]) else { throw failure("bad number") }
        while index < bytes.count, isDigit(bytes[index]) { index += 1 }
      }
      // Integers of up to 15 digits are exact as a Double; the rest goes to the correctly
      // rounding conversion.
      if simple { return negative ? -Double(integer) : Double(integer) }
      let text = String(
        decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
      // Past Double's range the conversion gives an infinity, which no JSON writer (the
      // agent's, the API server's) can write back: refused, as JSONDecoder refuses it
      // (found by fuzz/run.sh k8s-api).
      guard let value = Double(text) else { throw failure("bad number") }
      guard value.isFinite else { throw failure("number out of range") }
      return value
    }

    func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
  }
}
