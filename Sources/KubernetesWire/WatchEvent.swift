import CNIKit

/// One event of a WATCH stream.
public struct WatchEvent: Equatable, Sendable {
  public enum Kind: String, Sendable {
    case added = "ADDED"
    case modified = "MODIFIED"
    case deleted = "DELETED"
    case bookmark = "BOOKMARK"
    case error = "ERROR"
  }
  public var type: Kind
  public var object: JSONValue

  public init(type: Kind, object: JSONValue) {
    self.type = type
    self.object = object
  }

  /// `{"type": ..., "object": {...}}`, or why it is not one.
  public static func decode(_ bytes: [UInt8]) throws(APIError) -> WatchEvent {
    let value: JSONValue
    do {
      value = try JSONReader.parse(bytes)
    } catch {
      throw .malformed(
        detail: "watch event is not JSON: \(String(decoding: bytes.prefix(120), as: UTF8.self))")
    }
    guard let typeText = value["type"]?.stringValue, let type = Kind(rawValue: typeText) else {
      throw .malformed(detail: "watch event without a known type")
    }
    return WatchEvent(type: type, object: value["object"] ?? .null)
  }
}

/// Splits a watch body into its JSON objects. The server writes concatenated objects
/// (newline-terminated in practice) in chunks that need not line up with them, so this reads
/// by brace depth, minding strings and escapes, and keeps a partial object for the next chunk.
/// Anything else between objects (a stray line that is not an object) comes out as one
/// element per line, which `WatchEvent.decode` rejects: the watch ends and resumes, instead of
/// a stray quote or brace throwing the depth count off for the rest of the stream.
public struct JSONStreamSplitter: Sendable {
  private var buffer: [UInt8] = []
  private var scanned = 0
  private var depth = 0
  private var inString = false
  private var escaped = false
  private var start: Int?

  public init() {}

  /// Bytes still held (a partial object or line).
  public var pendingCount: Int { buffer.count }

  public mutating func feed(_ bytes: some Sequence<UInt8>) -> [[UInt8]] {
    buffer.append(contentsOf: bytes)
    var out: [[UInt8]] = []
    var consumed = 0
    var index = scanned
    while index < buffer.count {
      let byte = buffer[index]
      if depth == 0 {
        if byte == UInt8(ascii: "{") {
          start = index
          depth = 1
        } else if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n")
          || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\t")
        {
          consumed = index + 1  // whitespace between objects
        } else {
          // Not an object: the rest of its line, once the line is whole.
          guard let end = buffer[index...].firstIndex(of: UInt8(ascii: "\n")) else { break }
          out.append(Array(buffer[index..<end]))
          consumed = end + 1
          index = end
        }
      } else if inString {
        if escaped {
          escaped = false
        } else if byte == UInt8(ascii: "\\") {
          escaped = true
        } else if byte == UInt8(ascii: "\"") {
          inString = false
        }
      } else if byte == UInt8(ascii: "\"") {
        inString = true
      } else if byte == UInt8(ascii: "{") {
        depth += 1
      } else if byte == UInt8(ascii: "}") {
        depth -= 1
        if depth == 0, let begin = start {
          out.append(Array(buffer[begin...index]))
          start = nil
          consumed = index + 1
        }
      }
      index += 1
    }
    if consumed > 0 {
      buffer.removeFirst(consumed)
      if let begin = start { start = begin - consumed }
    }
    // A partial line is scanned again when more comes; a partial object goes on from here.
    scanned = depth == 0 ? 0 : buffer.count
    return out
  }
}
