/// `GET /v1/envoy/configs`: each CiliumEnvoyConfig / Ingress the node's Envoy serves (or
/// refused), for `junctionctl envoy list`.
public struct EnvoyConfigStatus: Codable, Sendable, Hashable {
  /// "CiliumEnvoyConfig", "CiliumClusterwideEnvoyConfig" or "Ingress".
  public var kind: String
  public var namespace: String
  public var name: String
  /// The Services redirected to its listeners: "default/web (80) → :10234".
  public var services: [String]
  /// Qualified listener name → port.
  public var listeners: [String: UInt16]
  /// Whether Envoy accepted the current version.
  public var accepted: Bool
  /// Whether a version of it (the current, or the last accepted one) is being served.
  public var serving: Bool
  /// Envoy's own message (or the translation's) when it was refused.
  public var message: String?
  /// What translation changed or dropped (Cilium-only filters, filled-in typed_config, ports).
  public var notes: [String]

  public init(
    kind: String, namespace: String, name: String, services: [String] = [],
    listeners: [String: UInt16] = [:], accepted: Bool, serving: Bool, message: String? = nil,
    notes: [String] = []
  ) {
    self.kind = kind
    self.namespace = namespace
    self.name = name
    self.services = services
    self.listeners = listeners
    self.accepted = accepted
    self.serving = serving
    self.message = message
    self.notes = notes
  }
}

/// `GET /v1/envoy/configs` answer, with the supervised Envoy's state.
public struct EnvoyListResponse: Codable, Sendable, Hashable {
  /// nil when Envoy is not running (not needed yet, not configured, or restarting).
  public var pid: Int32?
  public var starts: Int
  public var configs: [EnvoyConfigStatus]

  public init(pid: Int32?, starts: Int, configs: [EnvoyConfigStatus]) {
    self.pid = pid
    self.starts = starts
    self.configs = configs
  }
}
