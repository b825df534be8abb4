import FoundationEssentials

/// Rendering that knows nothing about the agent: aligned tables, key/value blocks, JSON.
enum Output {
  /// Columns as wide as their widest cell, left-aligned, two spaces apart; one line per row,
  /// each ending in a newline, no trailing spaces. Widths count Characters, so an ASCII table
  /// (all the agent reports) lines up exactly.
  static func table(header: [String], rows: [[String]]) -> String {
    align([header] + rows)
  }

  /// "Key:  value" lines with the values lined up, as `table` aligns columns.
  static func block(_ pairs: [(key: String, value: String)]) -> String {
    align(pairs.map { ["\($0.key):", $0.value] })
  }

  /// `table` without a header.
  static func align(_ lines: [[String]]) -> String {
    let columns = lines.map(\.count).max() ?? 0
    var widths = [Int](repeating: 0, count: columns)
    for line in lines {
      for (index, cell) in line.enumerated() { widths[index] = max(widths[index], cell.count) }
    }
    var text = ""
    for line in lines {
      var rendered = ""
      for (index, cell) in line.enumerated() {
        if index > 0 { rendered += "  " }
        rendered += cell
        if index < line.count - 1 {
          rendered += String(repeating: " ", count: widths[index] - cell.count)
        }
      }
      text += rendered + "\n"
    }
    return text
  }

  /// Pretty JSON with sorted keys, without a trailing newline. Empty arrays and objects are
  /// written `[]` and `{}` (the encoder puts a blank line inside them; a raw newline in JSON
  /// text is always formatting, never inside a string, so this cannot touch a value).
  static func json<Value: Encodable>(_ value: Value) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
      .replacing(#/\[\n\n *\]/#, with: "[]")
      .replacing(#/\{\n\n *\}/#, with: "{}")
  }
}
