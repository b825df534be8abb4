import ServiceCore

/// Envoy bootstraps: the live one (admin on a Unix socket, LDS and CDS from files) and the
/// validation one a candidate config is checked with (`envoy --mode validate`) before any of it
/// reaches the live Envoy.
public enum Bootstrap {
  public static func live(nodeID: String, adminSocket: String, layout: XDSLayout) -> String {
    EnvoyJSON.encode(
      .map([
        "node": .map(["id": .string(nodeID), "cluster": .string("junction")]),
        "admin": .map(["address": .map(["pipe": .map(["path": .string(adminSocket)])])]),
        "dynamic_resources": .map([
          "lds_config": layout.configSource(layout.ldsPath),
          "cds_config": layout.configSource(layout.cdsPath),
        ]),
      ]))
  }

  /// The candidate as static resources: routes inline in their connection managers (RDS
  /// sources cannot be followed in validate mode), EDS clusters with their endpoints inline.
  /// `endpoints` are the assignments the config will get (its own and Junction's).
  public static func validation(
    _ config: TranslatedConfig, endpoints: [String: YAMLValue]
  ) -> String {
    var routes: [String: YAMLValue] = [:]
    for route in config.routes {
      guard var map = route.mapValue, let name = map["name"]?.stringValue else { continue }
      map["@type"] = nil
      // RDS routes are not checked against the clusters that exist (validate_clusters
      // defaults to false for RDS); mirror that for the inline copy.
      map["validate_clusters"] = .bool(false)
      routes[name] = .map(map)
    }
    let listeners = config.listeners.map { listener -> YAMLValue in
      guard var map = listener.mapValue else { return listener }
      if map["@type"]?.stringValue == TranslationSettings.listenerType { map["@type"] = nil }
      return inlineRoutes(.map(map), routes: routes)
    }
    let clusters = config.clusters.map { cluster -> YAMLValue in
      guard var map = cluster.mapValue else { return cluster }
      map["@type"] = nil
      if map["type"]?.stringValue == "EDS", let name = map["name"]?.stringValue {
        let service = map["eds_cluster_config"]?["service_name"]?.stringValue ?? name
        map["type"] = .string("STATIC")
        map["eds_cluster_config"] = nil
        var assignment = endpoints[service]?.mapValue ?? ["endpoints": .list([])]
        assignment["cluster_name"] = .string(name)
        map["load_assignment"] = .map(assignment)
      }
      return .map(map)
    }
    return EnvoyJSON.encode(
      .map([
        "node": .map(["id": .string("junction-validate"), "cluster": .string("junction")]),
        "static_resources": .map(["listeners": .list(listeners), "clusters": .list(clusters)]),
      ]))
  }

  static func inlineRoutes(_ value: YAMLValue, routes: [String: YAMLValue]) -> YAMLValue {
    switch value {
    case .map(var map):
      if let rds = map["rds"]?.mapValue, let name = rds["route_config_name"]?.stringValue {
        map["rds"] = nil
        map["route_config"] = routes[name] ?? .map(["name": .string(name)])
        return .map(map)
      }
      for (key, child) in map { map[key] = inlineRoutes(child, routes: routes) }
      return .map(map)
    case .list(let items):
      return .list(items.map { inlineRoutes($0, routes: routes) })
    default:
      return value
    }
  }
}
