import ServiceCore

/// One CiliumEnvoyConfig or Ingress turned into stock Envoy resources (pure output of the
/// translators; the manager validates, serves and lists it).
public struct TranslatedConfig: Sendable, Hashable {
  /// "CiliumEnvoyConfig default/envoy-lb-listener", "Ingress default/web".
  public var owner: String
  public var key: ResourceKey
  public var listeners: [YAMLValue] = []
  public var routes: [YAMLValue] = []
  public var clusters: [YAMLValue] = []
  /// ClusterLoadAssignments the config carries itself (by cluster name).
  public var endpoints: [String: YAMLValue] = [:]
  /// Cluster names whose endpoints come from Junction's Service backends ("ns/svc", "ns/svc:80").
  public var serviceClusters: Set<String> = []
  public var redirects: [ProxyRedirect] = []
  /// Qualified listener name → port.
  public var listenerPorts: [String: UInt16] = [:]
  /// What translation changed or dropped, shown on the resource.
  public var notes: [String] = []
  /// Why it cannot be served at all (before Envoy is asked).
  public var problems: [String] = []
  /// A Service to create for it (an Ingress's LoadBalancer Service), nil for a CEC.
  public var generatedService: Service?
  public var generatedServiceDocument: YAMLValue?

  public init(owner: String, key: ResourceKey) {
    self.owner = owner
    self.key = key
  }

  /// Everything that goes to Envoy, for change detection and validation caching.
  public var fingerprint: String {
    EnvoyJSON.encode(
      .list([
        .list(listeners), .list(routes), .list(clusters),
        .map(endpoints), .list(serviceClusters.sorted().map(YAMLValue.string)),
      ]))
  }
}

/// How translated listeners are bound and logged.
public struct TranslationSettings: Sendable, Hashable {
  public var layout: XDSLayout
  /// Where listeners without an address bind (0.0.0.0 on a node; tests use 127.0.0.1).
  public var listenAddress: String
  /// `transparent: true` (IP_TRANSPARENT): needed for connections handed over with
  /// bpf_sk_assign, whose destination is the Service address, not a local one.
  public var transparent: Bool

  public init(layout: XDSLayout, listenAddress: String = "0.0.0.0", transparent: Bool = true) {
    self.layout = layout
    self.listenAddress = listenAddress
    self.transparent = transparent
  }

  static let listenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"
  static let routeType = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
  static let clusterType = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
  static let endpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"

  /// The JSON access log every HTTP connection manager gets: one line per request, read back
  /// by the agent as an L7 flow.
  var accessLog: YAMLValue {
    .list([
      .map([
        "name": .string("envoy.access_loggers.file"),
        "typed_config": .map([
          "@type": .string(
            "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"),
          "path": .string(layout.accessLogPath),
          "log_format": .map([
            "json_format": .map([
              "start_time": .string("%START_TIME%"),
              "method": .string("%REQ(:METHOD)%"),
              "path": .string("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
              "authority": .string("%REQ(:AUTHORITY)%"),
              "protocol": .string("%PROTOCOL%"),
              "response_code": .string("%RESPONSE_CODE%"),
              "response_flags": .string("%RESPONSE_FLAGS%"),
              "duration_ms": .string("%DURATION%"),
              "upstream_host": .string("%UPSTREAM_HOST%"),
              "upstream_cluster": .string("%UPSTREAM_CLUSTER%"),
              "downstream_remote": .string("%DOWNSTREAM_REMOTE_ADDRESS%"),
              "downstream_local": .string("%DOWNSTREAM_LOCAL_ADDRESS%"),
              "route_name": .string("%ROUTE_NAME%"),
            ])
          ]),
        ]),
      ])
    ])
  }

  /// The listener address for a port.
  func address(port: UInt16) -> YAMLValue {
    .map([
      "socket_address": .map([
        "address": .string(listenAddress), "port_value": .int(Int(port)),
      ])
    ])
  }
}
