import ServiceCore

/// Envoy resources are kept as `YAMLValue` (what CiliumEnvoyConfig carries) and written as JSON,
/// which Envoy reads for filesystem xDS and bootstraps alike. Keys are sorted so the same
/// resources always give the same bytes (a changed file means a changed config).
public enum EnvoyJSON {
  /// The same writer as the agent's stored documents (`DocumentWriter`). A float JSON cannot
  /// hold (YAML's `.inf`, `.nan`) is written as `null`, which Envoy's validation then refuses
  /// with its own message on that resource.
  public static func encode(_ value: YAMLValue) -> String {
    var out: [UInt8] = []
    DocumentWriter.appendNullingNonFinite(value, to: &out)
    return String(decoding: out, as: UTF8.self)
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
