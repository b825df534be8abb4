import ServiceCore

/// CiliumEnvoyConfig / CiliumClusterwideEnvoyConfig → stock Envoy resources, the way Cilium's
/// parser reads them (cilium pkg/ciliumenvoyconfig/cec_resource_parser.go):
/// - listener and route names become `<ns>/<config>/<name>`; cluster (and load assignment)
///   names only when they contain no `/`, so `default/echo` names Junction's Service;
/// - listeners without an address get a stable proxy port; all are transparent with the
///   original_dst listener filter; Cilium-only filters are dropped, well-known filters get
///   their typed_config;
/// - every HTTP connection manager reads its routes by RDS (an inline route_config is moved
///   out into its own RDS resource) so a route change reaches open connections at once;
/// - EDS clusters read their own file; `ns/svc` and `ns/svc:port` ones are fed from Junction.
public enum CECTranslation {
  /// The qualified names of the config's listeners that name no address (they need a port).
  public static func unaddressedListeners(_ config: EnvoyConfigResource) -> [String] {
    config.resources.compactMap { resource in
      guard resource["@type"]?.stringValue == TranslationSettings.listenerType,
        resource["address"] == nil, let name = resource["name"]?.stringValue
      else { return nil }
      return qualify(name, config)
    }
  }

  static func qualify(_ name: String, _ config: EnvoyConfigResource) -> String {
    let prefix = config.qualifier + "/"
    return name.hasPrefix(prefix) ? name : prefix + name
  }

  static func qualifyCluster(_ name: String, _ config: EnvoyConfigResource) -> String {
    name.contains("/") ? name : "\(config.qualifier)/\(name)"
  }

  /// Whether a cluster name names a Service ("ns/svc" or "ns/svc:port"): Junction feeds it.
  static func isServiceCluster(_ name: String) -> Bool {
    let parts = name.split(separator: "/", omittingEmptySubsequences: false)
    return parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty
  }

  public static func translate(
    _ config: EnvoyConfigResource, ports: [String: UInt16], settings: TranslationSettings
  ) -> TranslatedConfig {
    let kindName = config.clusterwide ? "CiliumClusterwideEnvoyConfig" : "CiliumEnvoyConfig"
    let key = ResourceKey(
      kind: config.kind, namespace: config.meta.namespace, name: config.meta.name)
    var out = TranslatedConfig(
      owner: "\(kindName) \(config.clusterwide ? config.meta.name : config.qualifier)", key: key)
    var listenerOrder: [String] = []
    for (index, resource) in config.resources.enumerated() {
      guard var map = resource.mapValue, let type = map["@type"]?.stringValue else { continue }
      let label = "resources[\(index)]"
      switch type {
      case TranslationSettings.listenerType:
        let name = qualify(map["name"]?.stringValue ?? "listener\(index)", config)
        map["name"] = .string(name)
        if map["address"] == nil {
          guard let port = ports[name] else {
            out.problems.append("\(label): no free proxy port for listener \(name)")
            continue
          }
          map["address"] = settings.address(port: port)
          out.listenerPorts[name] = port
          out.notes.append("listener \(name): proxy port \(port)")
        } else if let port = map["address"]?["socket_address"]?["port_value"],
          case .int(let number) = port, (1...65535).contains(number)
        {
          out.listenerPorts[name] = UInt16(number)
        }
        map = listener(map, config: config, settings: settings, out: &out)
        listenerOrder.append(name)
        out.listeners.append(.map(map))
      case TranslationSettings.routeType:
        map["name"] = .string(qualify(map["name"]?.stringValue ?? "route\(index)", config))
        out.routes.append(route(.map(map), config: config))
      case TranslationSettings.clusterType:
        let name = qualifyCluster(map["name"]?.stringValue ?? "cluster\(index)", config)
        map["name"] = .string(name)
        out.clusters.append(.map(cluster(map, settings: settings)))
      case TranslationSettings.endpointType:
        let name = qualifyCluster(
          map["cluster_name"]?.stringValue ?? map["name"]?.stringValue ?? "", config)
        map["cluster_name"] = .string(name)
        map["name"] = nil
        out.endpoints[name] = .map(map)
      default:
        // Envoy itself names what it cannot read: the candidate goes to validation as a
        // listener-less static resource would not, so pass unknown types through there.
        out.notes.append(
          "\(label): @type \(type) is not a Listener, RouteConfiguration, Cluster or ClusterLoadAssignment"
        )
        out.listeners.append(.map(map))
      }
    }
    for cluster in out.clusters {
      guard let name = cluster["name"]?.stringValue, cluster["type"]?.stringValue == "EDS",
        out.endpoints[name] == nil
      else { continue }
      if isServiceCluster(name) {
        out.serviceClusters.insert(name)
      } else {
        out.notes.append(
          "cluster \(name): EDS with no ClusterLoadAssignment and no Service of that name; it has no endpoints"
        )
        out.endpoints[name] = .map(["cluster_name": .string(name), "endpoints": .list([])])
      }
    }
    for entry in config.services {
      let listenerName = entry.listener.map { qualify($0, config) } ?? listenerOrder.first
      guard let listenerName, let port = out.listenerPorts[listenerName] else {
        out.problems.append(
          "spec.services \(entry.service): listener \(entry.listener ?? "(first)") is not in spec.resources"
        )
        continue
      }
      out.redirects.append(
        ProxyRedirect(
          service: entry.service, ports: Set(entry.ports), proxyPort: port, owner: out.owner))
    }
    return out
  }

  static func listener(
    _ input: [String: YAMLValue], config: EnvoyConfigResource, settings: TranslationSettings,
    out: inout TranslatedConfig
  ) -> [String: YAMLValue] {
    var map = input
    let name = map["name"]?.stringValue ?? ""
    if settings.transparent { map["transparent"] = .bool(true) }
    // bpf_sk_assign does not work with SO_REUSEPORT listeners (Cilium sets the same).
    map["enable_reuse_port"] = .bool(false)
    var listenerFilters: [YAMLValue] = []
    var hasOriginalDst = false
    for filter in map["listener_filters"]?.listValue ?? [] {
      guard let filterMap = filter.mapValue else { continue }
      if let note = WellKnownFilters.isCiliumOnly(filterMap) {
        out.notes.append("listener \(name): \(note)")
        continue
      }
      if filterMap["name"]?.stringValue == "envoy.filters.listener.original_dst" {
        hasOriginalDst = true
      }
      listenerFilters.append(.map(WellKnownFilters.filled(filterMap, notes: &out.notes)))
    }
    if !hasOriginalDst {
      listenerFilters.insert(
        .map(
          WellKnownFilters.filled(
            ["name": .string("envoy.filters.listener.original_dst")], notes: &out.notes)),
        at: 0)
    }
    map["listener_filters"] = .list(listenerFilters)
    var chains: [YAMLValue] = []
    for (chainIndex, chain) in (map["filter_chains"]?.listValue ?? []).enumerated() {
      guard var chainMap = chain.mapValue else { continue }
      var filters: [YAMLValue] = []
      for filter in chainMap["filters"]?.listValue ?? [] {
        guard let filterMap = filter.mapValue else { continue }
        if let note = WellKnownFilters.isCiliumOnly(filterMap) {
          out.notes.append("listener \(name): \(note)")
          continue
        }
        var filled = WellKnownFilters.filled(filterMap, notes: &out.notes)
        if var typed = filled["typed_config"]?.mapValue {
          if typed["@type"]?.stringValue == WellKnownFilters.hcmType {
            typed = connectionManager(
              typed, routeName: "\(name)/chain\(chainIndex)", config: config, settings: settings,
              out: &out)
          } else if typed["@type"]?.stringValue?.hasSuffix("tcp_proxy.v3.TcpProxy") == true,
            let cluster = typed["cluster"]?.stringValue
          {
            typed["cluster"] = .string(qualifyCluster(cluster, config))
          }
          filled["typed_config"] = .map(typed)
        }
        filters.append(.map(filled))
      }
      chainMap["filters"] = .list(filters)
      chains.append(.map(chainMap))
    }
    map["filter_chains"] = .list(chains)
    return map
  }

  static func connectionManager(
    _ input: [String: YAMLValue], routeName: String, config: EnvoyConfigResource,
    settings: TranslationSettings, out: inout TranslatedConfig
  ) -> [String: YAMLValue] {
    var hcm = input
    var httpFilters: [YAMLValue] = []
    for filter in hcm["http_filters"]?.listValue ?? [] {
      guard let filterMap = filter.mapValue else { continue }
      if let note = WellKnownFilters.isCiliumOnly(filterMap) {
        out.notes.append("http filter: \(note)")
        continue
      }
      httpFilters.append(.map(WellKnownFilters.filled(filterMap, notes: &out.notes)))
    }
    if httpFilters.isEmpty {
      httpFilters.append(
        .map(
          WellKnownFilters.filled(["name": .string("envoy.filters.http.router")], notes: &out.notes)
        ))
    }
    hcm["http_filters"] = .list(httpFilters)
    if hcm["stat_prefix"] == nil { hcm["stat_prefix"] = .string(routeName) }
    if var rds = hcm["rds"]?.mapValue {
      let name = qualify(rds["route_config_name"]?.stringValue ?? routeName, config)
      rds["route_config_name"] = .string(name)
      rds["config_source"] = settings.layout.configSource(settings.layout.rdsPath(name))
      hcm["rds"] = .map(rds)
    } else if var inline = hcm["route_config"]?.mapValue {
      // Moved out to RDS: an RDS change reaches keep-alive connections at once, an inline
      // (listener) change only after the old connections drain.
      let name = qualify(inline["name"]?.stringValue ?? routeName, config)
      inline["name"] = .string(name)
      inline["@type"] = .string(TranslationSettings.routeType)
      out.routes.append(route(.map(inline), config: config))
      out.notes.append("route_config \(name): moved from the listener into its own RDS resource")
      hcm["route_config"] = nil
      hcm["rds"] = .map([
        "route_config_name": .string(name),
        "config_source": settings.layout.configSource(settings.layout.rdsPath(name)),
      ])
    }
    var logs = hcm["access_log"]?.listValue ?? []
    logs.append(contentsOf: settings.accessLog.listValue ?? [])
    hcm["access_log"] = .list(logs)
    return hcm
  }

  /// Cluster references inside routes qualified like the clusters themselves.
  static func route(_ value: YAMLValue, config: EnvoyConfigResource) -> YAMLValue {
    func walk(_ value: YAMLValue, parentKey: String?) -> YAMLValue {
      switch value {
      case .map(var map):
        for (key, child) in map {
          if key == "cluster", let name = child.stringValue {
            map[key] = .string(qualifyCluster(name, config))
          } else if key == "name", parentKey == "clusters", let name = child.stringValue {
            map[key] = .string(qualifyCluster(name, config))
          } else {
            map[key] = walk(child, parentKey: key)
          }
        }
        return .map(map)
      case .list(let items):
        return .list(items.map { walk($0, parentKey: parentKey) })
      default:
        return value
      }
    }
    return walk(value, parentKey: nil)
  }

  static func cluster(_ input: [String: YAMLValue], settings: TranslationSettings)
    -> [String: YAMLValue]
  {
    var map = input
    guard map["type"]?.stringValue == "EDS", let name = map["name"]?.stringValue else { return map }
    var eds = map["eds_cluster_config"]?.mapValue ?? [:]
    let serviceName = eds["service_name"]?.stringValue ?? name
    eds["service_name"] = .string(serviceName)
    eds["eds_config"] = settings.layout.configSource(settings.layout.edsPath(serviceName))
    map["eds_cluster_config"] = .map(eds)
    return map
  }
}
