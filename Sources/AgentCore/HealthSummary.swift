import AgentAPI

/// The agent's release, reported by /v1/healthz, /v1/config and --version.
public enum AgentVersion {
  public static let current = "0.1.0"
}

/// Builds the /v1/healthz answer from the state of each part.
public enum HealthSummary {
  public static let ok = "ok"
  public static let degraded = "degraded"
  public static let shuttingDown = "shutting-down"

  /// - Parameters:
  ///   - stateProblem: the last state-write failure, nil when writes work.
  ///   - datapathProblem: why a loaded datapath cannot serve new pods (its pins gone), or nil.
  /// - Note: a "socketLB" component, added by the caller, never changes the status
  ///   (`socketLBComponent`).
  public static func make(
    nodeName: String, datapathLoaded: Bool, endpoints: Int, stateProblem: String?,
    shuttingDown: Bool, datapathProblem: String? = nil, version: String = AgentVersion.current
  ) -> Health {
    let components: [String: String] = [
      "api": shuttingDown ? Self.shuttingDown : ok,
      "datapath": datapathLoaded ? datapathProblem.map { "error: \($0)" } ?? ok : "not loaded",
      "state": stateProblem.map { "error: \($0)" } ?? ok,
    ]
    let status =
      shuttingDown ? Self.shuttingDown : components.values.allSatisfy { $0 == ok } ? ok : degraded
    return Health(
      status: status, version: version, nodeName: nodeName, datapathLoaded: datapathLoaded,
      endpoints: endpoints, components: components)
  }
}

extension HealthSummary {
  /// The "kubernetes" component: ok once synced and every request succeeds; otherwise the
  /// one line that says why (the node keeps serving its last-known state meanwhile).
  public static func clusterComponent(_ status: ClusterStatus) -> String {
    if let error = status.lastError {
      let since = status.unreachableSince.map { " (failing since \($0))" } ?? ""
      return "error: \(error)\(since)"
    }
    if let warning = status.serverWarning { return "warning: \(warning)" }
    return status.synced ? ok : "syncing"
  }
}

extension HealthSummary {
  /// The "socketLB" component (with --socket-lb): ok while `cgroupRoot` is still a cgroup2.
  /// Unmounted under the agent, the programs stay attached to the cgroup itself (a BPF link
  /// holds the cgroup, not the mount), so the node's connections are still balanced: a
  /// warning that says so and how to recover, not an error. It does not degrade the status:
  /// pods do not depend on it, and a degraded status fails CNI STATUS (issue 16).
  public static func socketLBComponent(cgroupRoot: String, stillMounted: Bool) -> String {
    if stillMounted { return ok }
    return "warning: the cgroup2 at \(cgroupRoot) is no longer mounted (unmounted under the "
      + "running agent): the socket programs stay attached to its cgroup, so the node's "
      + "connections to services are still balanced; restart the agent to mount it again"
  }
}

/// What reconciliation at start does with one stored endpoint, given what the kernel shows.
public enum ReconcileDecision: Equatable, Sendable {
  case keep
  case remove(reason: String)
  /// Could not tell (a transient error): keep the endpoint and say why.
  case keepUnverified(reason: String)

  public enum NamespaceState: Equatable, Sendable {
    case present
    case missing
    case notANamespace
    case unknown(String)
  }

  public enum LinkState: Equatable, Sendable {
    case present(index: Int)
    case missing
    case unknown(String)
  }

  public static func decide(spec: EndpointSpec, namespace: NamespaceState, link: LinkState) -> Self
  {
    switch namespace {
    case .missing: return .remove(reason: "netns \(spec.netns) no longer exists")
    case .notANamespace: return .remove(reason: "netns \(spec.netns) is not a network namespace")
    case .unknown(let problem): return .keepUnverified(reason: "netns \(spec.netns): \(problem)")
    case .present: break
    }
    switch link {
    case .missing:
      return .remove(reason: "host interface \(spec.hostInterface) no longer exists")
    case .present(let index) where index != spec.hostIfindex:
      return .remove(
        reason:
          "host interface \(spec.hostInterface) is now ifindex \(index), not \(spec.hostIfindex)")
    case .present: return .keep
    case .unknown(let problem):
      return .keepUnverified(reason: "host interface \(spec.hostInterface): \(problem)")
    }
  }
}
