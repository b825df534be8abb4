import AgentCore
import Logging

#if canImport(Glibc)
  import Glibc
#endif

/// swift-log handler writing one logfmt line per event to standard error:
/// `ts=2025-11-23T03:00:00.123Z level=info msg="endpoint registered" id=abc:eth0`.
/// Values with spaces, quotes or '=' are quoted, so every line splits back into key=value.
struct LogfmtHandler: LogHandler {
  var metadata: Logger.Metadata = [:]
  var logLevel: Logger.Level
  let label: String

  init(label: String, level: Logger.Level) {
    self.label = label
    self.logLevel = level
  }

  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  func log(event: LogEvent) {
    var fields = metadata
    if let extra = event.metadata { fields.merge(extra) { _, new in new } }
    var line =
      "ts=\(Timestamp.now()) level=\(event.level) logger=\(Self.quote(label)) msg=\(Self.quote("\(event.message)"))"
    for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
      line += " \(key)=\(Self.quote("\(value)"))"
    }
    line += "\n"
    // One write(2) per line, so concurrent events never interleave within a line.
    _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
  }

  static func quote(_ value: String) -> String {
    let needsQuotes =
      value.isEmpty
      || value.unicodeScalars.contains {
        $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\\" || $0.value < 0x20 || $0.value == 0x7F
      }
    guard needsQuotes else { return value }
    var result = "\""
    for scalar in value.unicodeScalars {
      switch scalar {
      case "\"": result += "\\\""
      case "\\": result += "\\\\"
      case "\n": result += "\\n"
      case "\r": result += "\\r"
      case "\t": result += "\\t"
      default:
        if scalar.value < 0x20 || scalar.value == 0x7F {
          result += "\\u{\(String(scalar.value, radix: 16))}"
        } else {
          result.unicodeScalars.append(scalar)
        }
      }
    }
    return result + "\""
  }
}
