import ServiceCore

/// Filters stock Envoy 1.40 only finds by their typed_config type URL (name-based lookup is
/// gone): a CiliumEnvoyConfig copied from Cilium's docs names the router without one. And the
/// filters only cilium-envoy has, which are dropped with a note.
enum WellKnownFilters {
  static let hcmName = "envoy.filters.network.http_connection_manager"
  static let hcmType =
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"

  /// Filter name → the type URL of its config, for the filters commonly named without one.
  static let typeURLs: [String: String] = [
    hcmName: hcmType,
    "envoy.filters.network.tcp_proxy":
      "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
    "envoy.filters.http.router":
      "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
    "envoy.filters.http.cors": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors",
    "envoy.filters.http.grpc_web":
      "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb",
    "envoy.filters.listener.original_dst":
      "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
    "envoy.filters.listener.tls_inspector":
      "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
    "envoy.filters.listener.http_inspector":
      "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector",
  ]

  /// cilium-envoy's own filters: what each did, and what Junction does instead.
  static let ciliumOnly: [String: String] = [
    "cilium.bpf_metadata":
      "cilium.bpf_metadata (Cilium-only) dropped: the original destination comes from the original_dst listener filter",
    "cilium.network": "cilium.network (Cilium-only) dropped: no L7 policy in Junction yet",
    "cilium.l7policy": "cilium.l7policy (Cilium-only) dropped: no L7 policy in Junction yet",
    "cilium.tls_wrapper": "cilium.tls_wrapper (Cilium-only) dropped",
  ]

  static func isCiliumOnly(_ filter: [String: YAMLValue]) -> String? {
    if let name = filter["name"]?.stringValue, let note = ciliumOnly[name] { return note }
    if let type = filter["typed_config"]?["@type"]?.stringValue, type.contains("cilium.") {
      return "\(filter["name"]?.stringValue ?? type) (Cilium-only, \(type)) dropped"
    }
    return nil
  }

  /// The filter with a typed_config filled in when it has none and its name is known.
  static func filled(_ filter: [String: YAMLValue], notes: inout [String]) -> [String: YAMLValue] {
    guard filter["typed_config"] == nil, let name = filter["name"]?.stringValue,
      let type = typeURLs[name]
    else { return filter }
    var result = filter
    result["typed_config"] = .map(["@type": .string(type)])
    notes.append("\(name): typed_config filled in (\(type.split(separator: ".").last ?? ""))")
    return result
  }
}
