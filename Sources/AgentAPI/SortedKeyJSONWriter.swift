/// JSON written straight into bytes, exactly as Foundation's JSONEncoder with `.sortedKeys`
/// writes it (no whitespace, nil members left out, "/" escaped as "\/"): for the API's
/// large bodies (GET /v1/flows lines, GET /v1/services), where JSONEncoder's boxing of every
/// value cost a flow follower its speed and the agent tens of MiB per listing. The caller
/// writes members in sorted key order; each encoder's tests compare it with JSONEncoder.
public struct SortedKeyJSONWriter {
  public var out: [UInt8]
  /// Whether the open object or array has no member yet.
  private var first = true

  public init(out: [UInt8] = []) {
    self.out = out
  }

  public mutating func open() {
    out.append(UInt8(ascii: "{"))
    first = true
  }

  public mutating func close() {
    out.append(UInt8(ascii: "}"))
    first = false
  }

  public mutating func openArray() {
    out.append(UInt8(ascii: "["))
    first = true
  }

  public mutating func closeArray() {
    out.append(UInt8(ascii: "]"))
    first = false
  }

  /// Before an array's next element.
  public mutating func element() {
    if !first { out.append(UInt8(ascii: ",")) }
    first = false
  }

  /// A member whose value is an array, `write` writing each item (an object, usually).
  public mutating func array<Item>(
    _ name: StaticString, _ items: some Sequence<Item>, _ write: (inout Self, Item) -> Void
  ) {
    key(name)
    openArray()
    for item in items {
      element()
      write(&self, item)
    }
    closeArray()
  }

  /// An object: `{`, the members `write` writes (in sorted key order), `}`.
  public mutating func object(_ write: (inout Self) -> Void) {
    open()
    write(&self)
    close()
  }

  /// A member's key (plain ASCII: nothing to escape); its value comes next.
  public mutating func key(_ name: StaticString) {
    if !first { out.append(UInt8(ascii: ",")) }
    first = false
    out.append(UInt8(ascii: "\""))
    name.withUTF8Buffer { out.append(contentsOf: $0) }
    out.append(UInt8(ascii: "\""))
    out.append(UInt8(ascii: ":"))
  }

  public mutating func string(_ name: StaticString, _ value: String?) {
    guard let value else { return }
    key(name)
    Self.string(value, to: &out)
  }

  public mutating func strings(_ name: StaticString, _ values: [String]?) {
    guard let values else { return }
    key(name)
    out.append(UInt8(ascii: "["))
    for (index, value) in values.enumerated() {
      if index > 0 { out.append(UInt8(ascii: ",")) }
      Self.string(value, to: &out)
    }
    out.append(UInt8(ascii: "]"))
  }

  public mutating func number(_ name: StaticString, _ value: (some BinaryInteger)?) {
    guard let value else { return }
    key(name)
    out.append(contentsOf: String(value).utf8)
  }

  public mutating func bool(_ name: StaticString, _ value: Bool?) {
    guard let value else { return }
    key(name)
    out.append(contentsOf: (value ? "true" : "false").utf8)
  }

  /// A JSON string, escaped as JSONEncoder does (without `.withoutEscapingSlashes`).
  public static func string(_ value: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    for byte in value.utf8 {
      switch byte {
      case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
      case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
      case UInt8(ascii: "/"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "/")])
      case 0x08: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
      case 0x0C: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
      case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
      case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
      case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
      case 0..<0x20:
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        out.append(contentsOf: [
          UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
          hex[Int(byte >> 4)], hex[Int(byte & 0xF)],
        ])
      default: out.append(byte)
      }
    }
    out.append(UInt8(ascii: "\""))
  }
}
