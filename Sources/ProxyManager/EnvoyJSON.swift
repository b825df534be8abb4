import ServiceCore

/// Envoy resources are kept as `YAMLValue` (what CiliumEnvoyConfig carries) and written as JSON,
/// which Envoy reads for filesystem xDS and bootstraps alike. Keys are sorted so the same
/// resources always give the same bytes (a changed file means a changed config).
public enum EnvoyJSON {
  public static func encode(_ value: YAMLValue) -> String {
    var out = ""
    write(value, into: &out)
    return out
  }

  static func write(_ value: YAMLValue, into out: inout String) {
    switch value {
    case .null: out += "null"
    case .bool(let flag): out += flag ? "true" : "false"
    case .int(let number): out += String(number)
    case .float(let number):
      out += number.isFinite ? String(number) : "null"
    case .string(let text): writeString(text, into: &out)
    case .list(let items):
      out += "["
      for (index, item) in items.enumerated() {
        if index > 0 { out += "," }
        write(item, into: &out)
      }
      out += "]"
    case .map(let map):
      out += "{"
      for (index, key) in map.keys.sorted().enumerated() {
        if index > 0 { out += "," }
        writeString(key, into: &out)
        out += ":"
        write(map[key]!, into: &out)
      }
      out += "}"
    }
  }

  static func writeString(_ text: String, into out: inout String) {
    out += "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      default:
        if scalar.value < 0x20 {
          let hex = String(scalar.value, radix: 16)
          out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    out += "\""
  }
}

/// Small helpers for building and editing Envoy resources in `YAMLValue` form.
extension YAMLValue {
  var mapValue: [String: YAMLValue]? {
    if case .map(let map) = self { return map }
    return nil
  }
  var listValue: [YAMLValue]? {
    if case .list(let items) = self { return items }
    return nil
  }
}

/// FNV-1a 64: stable across runs and machines (Swift's Hasher is seeded per process), for
/// file names and proxy ports derived from resource names.
func stableHash(_ text: String) -> UInt64 {
  var hash: UInt64 = 0xcbf2_9ce4_8422_2325
  for byte in text.utf8 {
    hash ^= UInt64(byte)
    hash = hash &* 0x0000_0100_0000_01b3
  }
  return hash
}
