import AgentAPI

/// What each command shows, as text: the agent's types in, finished output out.
enum Views {
  /// `tcHook`: where the agent attaches its tc programs (GET /v1/config), shown because
  /// Debian 12's tc(8) cannot list the tcx hook; nil when the agent did not say.
  static func status(_ health: Health, tcHook: String? = nil) -> String {
    var text = Output.block(
      [
        ("Status", health.status),
        ("Version", health.version),
        ("Node", health.nodeName),
        ("Datapath loaded", yesNo(health.datapathLoaded)),
      ] + (tcHook.map { [("TC hook", $0)] } ?? []) + [("Endpoints", String(health.endpoints))])
    if health.components.isEmpty {
      return text + "Components:  none reported\n"
    }
    text += "Components:\n"
    text += Output.align(
      health.components.sorted { $0.key < $1.key }.map { ["  \($0.key):", $0.value] })
    if let cluster = health.cluster { text += Self.cluster(cluster) }
    return text
  }

  /// The Kubernetes API the agent follows: the server, each resource's sync state and count,
  /// last event age, relists and errors.
  static func cluster(_ cluster: ClusterStatus) -> String {
    var text = "Kubernetes API:\n"
    var lines: [[String]] = [
      ["  Server:", cluster.server],
      ["  Source:", cluster.source],
    ]
    if let warning = cluster.serverWarning { lines.append(["  Warning:", warning]) }
    lines += [
      ["  Synced:", cluster.synced ? "yes (\(cluster.syncedAt ?? "-"))" : "no"]
    ]
    if let since = cluster.unreachableSince {
      lines.append(["  Failing since:", "\(since) (serving the last-known state)"])
    }
    if let error = cluster.lastError { lines.append(["  Last error:", error]) }
    lines.append(["  Skipped objects:", String(cluster.skippedObjects)])
    lines.append(["  Map writes:", String(cluster.mapWrites)])
    let latency = cluster.programmingLatency
    lines.append([
      "  Programming latency:",
      latency.count == 0
        ? "none yet"
        : "p50 \(milliseconds(latency.p50Milliseconds)), p99 \(milliseconds(latency.p99Milliseconds)) (\(latency.count) changes)",
    ])
    text += Output.align(lines)
    text += Output.align(
      [["  RESOURCE", "STATE", "OBJECTS", "LAST-EVENT", "RELISTS", "ERRORS"]]
        + cluster.resources.map { resource in
          [
            "  " + resource.resource, resource.state, String(resource.objects),
            resource.lastEventAgeSeconds.map { "\(Int($0))s ago" } ?? "-",
            String(resource.relists), String(resource.errors),
          ]
        })
    return text
  }

  private static func milliseconds(_ value: Double?) -> String {
    guard let value else { return "-" }
    return "\((value * 10).rounded() / 10) ms"
  }

  static let endpointColumns = [
    "ID", "POD", "NETWORK", "IPS", "HOST-IF", "IFINDEX", "ATTACHED", "PACKETS", "BYTES",
  ]

  /// One row per endpoint, sorted by id; PACKETS and BYTES are FROM/TO the pod.
  static func endpointTable(_ endpoints: [Endpoint]) -> String {
    let rows = endpoints.sorted { $0.id < $1.id }.map { endpoint -> [String] in
      let spec = endpoint.spec
      let counters = endpoint.counters
      return [
        endpoint.id,
        pod(spec),
        spec.network,
        spec.ips.isEmpty ? "-" : spec.ips.joined(separator: ","),
        spec.hostInterface,
        String(spec.hostIfindex),
        endpoint.datapathAttached.map(yesNo) ?? "-",
        counters.map { "\($0.fromPackets)/\($0.toPackets)" } ?? "-",
        counters.map { "\($0.fromBytes)/\($0.toBytes)" } ?? "-",
      ]
    }
    return Output.table(header: endpointColumns, rows: rows)
  }

  /// Every field of the registration, then what the agent adds to it.
  static func endpointDetail(_ endpoint: Endpoint) -> String {
    let spec = endpoint.spec
    let counters = endpoint.counters
    return Output.block([
      ("ID", endpoint.id),
      ("Container ID", spec.containerID),
      ("Interface", spec.ifname),
      ("Network", spec.network),
      ("Pod namespace", spec.podNamespace ?? "-"),
      ("Pod name", spec.podName ?? "-"),
      ("Pod UID", spec.podUID ?? "-"),
      ("Netns", spec.netns),
      ("Host interface", spec.hostInterface),
      ("Host ifindex", String(spec.hostIfindex)),
      ("Pod ifindex", spec.podInterfaceIndex.map(String.init) ?? "-"),
      ("IPs", spec.ips.isEmpty ? "-" : spec.ips.joined(separator: ", ")),
      ("MAC", spec.mac ?? "-"),
      ("Host MAC", spec.hostMAC ?? "-"),
      ("Created", endpoint.createdAt),
      ("Datapath attached", endpoint.datapathAttached.map(yesNo) ?? "-"),
      ("Packets from pod", counters.map { String($0.fromPackets) } ?? "-"),
      ("Packets to pod", counters.map { String($0.toPackets) } ?? "-"),
      ("Bytes from pod", counters.map { String($0.fromBytes) } ?? "-"),
      ("Bytes to pod", counters.map { String($0.toBytes) } ?? "-"),
    ])
  }

  /// "namespace/name", or "-" when the runtime passed no pod (K8S_POD_* unset).
  static func pod(_ spec: EndpointSpec) -> String {
    guard let name = spec.podName, !name.isEmpty else { return "-" }
    return "\(spec.podNamespace ?? "-")/\(name)"
  }

  static func yesNo(_ value: Bool) -> String { value ? "yes" : "no" }

  /// `service list`: one row per backend, the frontend's columns on its first row only.
  /// Flags: "SNAT" or "DSR" on external frontends (how remote backends are reached), "Local"
  /// under a Local traffic policy, "L7 proxy :PORT" when its connections go to the node's
  /// proxy instead of the backends; a backend on this node is marked "[local]".
  static func serviceTable(_ services: [ServiceStatus]) -> String {
    var rows: [[String]] = []
    for service in services {
      let flags = [
        service.mode, service.trafficPolicy == "Local" ? "Local" : nil,
        service.proxyPort.map { "L7 proxy :\($0)" },
      ]
      let first = [
        "\(service.id)", service.frontend, service.type,
        flags.compactMap { $0 }.joined(separator: ", "),
      ]
      if service.backends.isEmpty {
        rows.append(first + ["(no backends)"])
      }
      for (index, backend) in service.backends.enumerated() {
        var cell = "\(index + 1) => \(backend.address) (\(backend.state))"
        if backend.local == true { cell += " [local]" }
        rows.append((index == 0 ? first : ["", "", "", ""]) + [cell])
      }
    }
    return Output.table(
      header: ["ID", "Frontend", "Service Type", "Flags", "Backend"], rows: rows)
  }

  /// `lrp list`: one block per policy, a line per frontend and per local backend pod.
  static func redirectPolicyTable(_ policies: [RedirectPolicyStatus]) -> String {
    var rows: [[String]] = []
    for policy in policies {
      var first = [
        "\(policy.namespace)/\(policy.name)",
        policy.service.map { "service \($0)" } ?? policy.matcher,
      ]
      var lines: [[String]] = []
      for frontend in policy.frontends {
        lines.append([
          frontend.frontend, frontend.redirected ? "redirected" : "not redirected",
          frontend.backends.isEmpty
            ? "(no local backend)" : frontend.backends.joined(separator: ", "),
        ])
      }
      if lines.isEmpty { lines.append(["(no frontend)", "", ""]) }
      let pods = policy.localBackends.map { "\($0.pod) \($0.address)" }
      for (index, line) in lines.enumerated() {
        rows.append(first + line + [index < pods.count ? pods[index] : ""])
        first = ["", ""]
      }
      for pod in pods.dropFirst(lines.count) { rows.append(["", "", "", "", "", pod]) }
    }
    return Output.table(
      header: ["Policy", "Matcher", "Frontend", "State", "Backends", "Local pods"], rows: rows)
  }

  /// `envoy list`: a line per config, then its services, listeners, message and notes.
  static func envoyTable(_ list: EnvoyListResponse) -> String {
    var rows: [[String]] = []
    for config in list.configs {
      let state =
        config.accepted ? "accepted" : (config.serving ? "refused (previous serving)" : "refused")
      rows.append([
        config.kind, config.namespace.isEmpty ? config.name : "\(config.namespace)/\(config.name)",
        state,
        config.listeners.sorted { $0.key < $1.key }.map { "\($0.key) :\($0.value)" }.joined(
          separator: ", "),
        config.services.joined(separator: ", "),
      ])
      if let message = config.message { rows.append(["", "  envoy: \(message)", "", "", ""]) }
      for note in config.notes { rows.append(["", "  note: \(note)", "", "", ""]) }
    }
    let envoy =
      list.pid.map { "Envoy: pid \($0), started \(list.starts) time(s)\n" }
      ?? "Envoy: not running\n"
    return envoy
      + Output.table(header: ["Kind", "Name", "State", "Listeners", "Services"], rows: rows)
  }
}
