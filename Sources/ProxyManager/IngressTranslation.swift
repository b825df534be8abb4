import ServiceCore

/// Ingress → one Envoy listener with its routes, as Cilium's dedicated mode does it: a
/// LoadBalancer Service `junction-ingress-<name>` whose traffic is redirected to the listener.
/// Routes: per host a virtual host ("*" for rules without one); Exact first, then
/// ImplementationSpecific (a regex), then Prefix longest first; the default backend last.
/// TLS: a filter chain per `spec.tls` entry matched by SNI, certificates inline from the
/// `kubernetes.io/tls` Secret.
public enum IngressTranslation {
  public static func serviceName(_ ingress: IngressResource) -> String {
    "junction-ingress-\(ingress.meta.name)"
  }

  public static func listenerName(_ ingress: IngressResource) -> String {
    "\(ingress.meta.namespace)/\(ingress.meta.name)/ingress"
  }

  public static func translate(
    _ ingress: IngressResource, secrets: [NamespacedName: TLSSecret], port: UInt16,
    settings: TranslationSettings
  ) -> TranslatedConfig {
    let key = ResourceKey(
      kind: .ingress, namespace: ingress.meta.namespace, name: ingress.meta.name)
    var out = TranslatedConfig(owner: "Ingress \(ingress.meta.namespacedName)", key: key)
    let namespace = ingress.meta.namespace
    let listener = listenerName(ingress)
    let routeName = "\(namespace)/\(ingress.meta.name)/routes"
    func clusterName(_ backend: IngressBackend) -> String {
      "\(namespace)/\(backend.service):\(backend.port.description)"
    }
    var clusters: Set<String> = []
    func routeAction(_ backend: IngressBackend) -> YAMLValue {
      let name = clusterName(backend)
      clusters.insert(name)
      return .map(["cluster": .string(name)])
    }
    // Hosts in rule order, "*" for rules without one; the default backend joins each.
    var hosts: [String] = []
    var routesByHost: [String: [(rank: Int, length: Int, route: YAMLValue)]] = [:]
    for rule in ingress.rules {
      let host = rule.host ?? "*"
      if !hosts.contains(host) { hosts.append(host) }
      for path in rule.paths {
        let match: YAMLValue
        let rank: Int
        switch path.pathType {
        case .exact:
          match = .map(["path": .string(path.path)])
          rank = 0
        case .implementationSpecific:
          match = .map(["safe_regex": .map(["regex": .string(path.path)])])
          rank = 1
        case .prefix:
          var trimmed = path.path
          while trimmed.hasSuffix("/") { trimmed.removeLast() }
          // Ingress Prefix matches whole path elements: /foo matches /foo and /foo/x, not /foobar.
          match =
            trimmed.isEmpty
            ? .map(["prefix": .string("/")]) : .map(["path_separated_prefix": .string(trimmed)])
          rank = 2
        }
        routesByHost[host, default: []].append(
          (rank, path.path.count, .map(["match": match, "route": routeAction(path.backend)])))
      }
    }
    if hosts.isEmpty || ingress.defaultBackend != nil, !hosts.contains("*") { hosts.append("*") }
    var virtualHosts: [YAMLValue] = []
    for host in hosts {
      var routes = (routesByHost[host] ?? []).enumerated().sorted { a, b in
        if a.element.rank != b.element.rank { return a.element.rank < b.element.rank }
        if a.element.rank == 2 && a.element.length != b.element.length {
          return a.element.length > b.element.length
        }
        return a.offset < b.offset
      }.map(\.element.route)
      if let fallback = ingress.defaultBackend {
        routes.append(
          .map(["match": .map(["prefix": .string("/")]), "route": routeAction(fallback)]))
      }
      virtualHosts.append(
        .map([
          "name": .string(host == "*" ? "default" : host),
          "domains": .list(host == "*" ? [.string("*")] : [.string(host), .string("\(host):*")]),
          "routes": .list(routes),
        ]))
    }
    out.routes.append(
      .map([
        "@type": .string(TranslationSettings.routeType), "name": .string(routeName),
        "virtual_hosts": .list(virtualHosts),
      ]))
    let hcm: YAMLValue = .map([
      "name": .string(WellKnownFilters.hcmName),
      "typed_config": .map([
        "@type": .string(WellKnownFilters.hcmType),
        "stat_prefix": .string(listener),
        "use_remote_address": .bool(true),
        "rds": .map([
          "route_config_name": .string(routeName),
          "config_source": settings.layout.configSource(settings.layout.rdsPath(routeName)),
        ]),
        "http_filters": .list([
          .map([
            "name": .string("envoy.filters.http.router"),
            "typed_config": .map([
              "@type": .string("type.googleapis.com/envoy.extensions.filters.http.router.v3.Router")
            ]),
          ])
        ]),
        "access_log": settings.accessLog,
      ]),
    ])
    var chains: [YAMLValue] = []
    for tls in ingress.tls {
      guard let secret = secrets[NamespacedName(namespace: namespace, name: tls.secretName)] else {
        out.notes.append(
          "tls: Secret \(namespace)/\(tls.secretName) (kubernetes.io/tls) not found; HTTPS for \(tls.hosts.joined(separator: ",")) is not served"
        )
        continue
      }
      var chain: [String: YAMLValue] = [
        "filters": .list([hcm]),
        "transport_socket": .map([
          "name": .string("envoy.transport_sockets.tls"),
          "typed_config": .map([
            "@type": .string(
              "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"),
            "common_tls_context": .map([
              "tls_certificates": .list([
                .map([
                  "certificate_chain": .map(["inline_string": .string(secret.certificatePEM)]),
                  "private_key": .map(["inline_string": .string(secret.privateKeyPEM)]),
                ])
              ])
            ]),
          ]),
        ]),
      ]
      var match: [String: YAMLValue] = ["transport_protocol": .string("tls")]
      if !tls.hosts.isEmpty { match["server_names"] = .list(tls.hosts.map(YAMLValue.string)) }
      chain["filter_chain_match"] = .map(match)
      chains.append(.map(chain))
    }
    // Plain HTTP: the chain for everything that is not TLS.
    chains.append(.map(["filters": .list([hcm])]))
    var listenerFilters: [YAMLValue] = [
      .map(
        WellKnownFilters.filled(
          ["name": .string("envoy.filters.listener.original_dst")], notes: &out.notes))
    ]
    if chains.count > 1 {
      listenerFilters.append(
        .map(
          WellKnownFilters.filled(
            ["name": .string("envoy.filters.listener.tls_inspector")], notes: &out.notes)))
    }
    var listenerMap: [String: YAMLValue] = [
      "@type": .string(TranslationSettings.listenerType),
      "name": .string(listener),
      "address": settings.address(port: port),
      "enable_reuse_port": .bool(false),
      "listener_filters": .list(listenerFilters),
      "filter_chains": .list(chains),
    ]
    if settings.transparent { listenerMap["transparent"] = .bool(true) }
    out.listeners.append(.map(listenerMap))
    out.listenerPorts[listener] = port
    for name in clusters.sorted() {
      out.clusters.append(
        .map([
          "@type": .string(TranslationSettings.clusterType),
          "name": .string(name), "type": .string("EDS"), "connect_timeout": .string("5s"),
          "lb_policy": .string("ROUND_ROBIN"),
          "eds_cluster_config": .map([
            "service_name": .string(name),
            "eds_config": settings.layout.configSource(settings.layout.edsPath(name)),
          ]),
        ]))
      out.serviceClusters.insert(name)
    }
    out.notes = out.notes.filter {
      !$0.hasSuffix("filled in (OriginalDst)") && !$0.hasSuffix("filled in (TlsInspector)")
    }
    // The generated LoadBalancer Service (dedicated mode) and its redirect to the listener.
    let servicePorts = IngressPublishing.servicePorts(ingress)
    var meta = ObjectMeta(name: serviceName(ingress), namespace: namespace)
    meta.labels["ingress.junction.io/name"] = ingress.meta.name
    out.generatedService = Service(meta: meta, type: .loadBalancer, ports: servicePorts)
    out.generatedServiceDocument = serviceDocument(ingress, ports: servicePorts)
    out.redirects.append(
      ProxyRedirect(
        service: meta.namespacedName, ports: Set(servicePorts.map(\.port)), proxyPort: port,
        owner: out.owner))
    return out
  }

  /// The generated Service as a document (what the agent stores with it).
  static func serviceDocument(_ ingress: IngressResource, ports: [ServicePort]) -> YAMLValue {
    var document: [String: YAMLValue] = [
      "apiVersion": .string("v1"), "kind": .string("Service"),
      "metadata": .map([
        "name": .string(serviceName(ingress)), "namespace": .string(ingress.meta.namespace),
        "labels": .map(["ingress.junction.io/name": .string(ingress.meta.name)]),
      ]),
      "spec": .map([
        "type": .string("LoadBalancer"),
        "ports": .list(
          ports.map {
            .map([
              "name": .string($0.name), "port": .int(Int($0.port)), "protocol": .string("TCP"),
            ])
          }),
      ]),
    ]
    if !ingress.loadBalancerIPs.isEmpty {
      document["status"] = .map([
        "loadBalancer": .map([
          "ingress": .list(ingress.loadBalancerIPs.map { .map(["ip": .string($0)]) })
        ])
      ])
    }
    return .map(document)
  }
}
