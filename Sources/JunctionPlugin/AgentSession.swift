import AgentAPI
import AgentCore
import CNIKit
import Logging
import NetKit

/// The plugin's side of the agent: which socket, how long to wait, and what each failure
/// means in CNI terms. ADD needs the agent (code 11 when it does not answer, before
/// anything is created); DEL never fails for its absence.
struct AgentSession {
  let client: AgentClient

  /// JUNCTION_SOCKET overrides the configured `agentSocket`, for the CLI and the plugin alike.
  init(config: JunctionConfig, environment: [String: String]) {
    let path =
      environment["JUNCTION_SOCKET"].flatMap { $0.isEmpty ? nil : $0 } ?? config.agentSocket
    client = AgentClient(socketPath: path, timeout: config.agentTimeout)
  }

  var socketPath: String { client.socketPath }

  /// The agent's configuration (where its pinned programs are), from the file it publishes
  /// beside its socket, and a connect to prove something listens: no HTTP round trip on
  /// the pod's path. Any failure is transient from the runtime's point of view (the agent
  /// starts after the plugin is installed); nothing has been created yet.
  func requireReady() throws(CNIError) -> AgentConfig {
    let published: AgentConfig?
    do {
      published = try AgentDiscovery.read(socketPath: socketPath)
      try client.probe()
    } catch {
      throw CNIError(
        .tryAgainLater, "the Junction agent is not available",
        details: "\(error); ADD created nothing and can be retried")
    }
    guard let published else {
      throw CNIError(
        .tryAgainLater, "the Junction agent is not running at \(socketPath)",
        details: "it publishes \(AgentDiscovery.path(forSocket: socketPath)) once it listens; "
          + "ADD created nothing and can be retried")
    }
    return published
  }

  func register(_ spec: EndpointSpec) throws(CNIError) {
    do {
      try client.putEndpoint(spec, issuedAt: IssuedAt.now())
    } catch .api(let status, let message) where (400..<500).contains(status) {
      throw CNIError(.agentRejected, "the Junction agent refused endpoint \(spec.id): \(message)")
    } catch {
      throw CNIError(.tryAgainLater, "registering endpoint \(spec.id) failed", details: "\(error)")
    }
  }

  /// True when the agent knew the endpoint; nil when it could not be asked.
  func registered(_ id: String) -> Endpoint?? {
    do {
      return .some(try client.endpoint(id))
    } catch {
      return nil
    }
  }

  // MARK: - What every mode does with the agent

  /// DEL's agent half: tells the agent the endpoint is gone. Whenever the agent did not
  /// carry the deletion out, or may not have (down, no answer in time, a connection closed
  /// without an answer, 503 while it shuts down: `Failure.isRetryable`), the deletion is
  /// queued on disk beside its socket and replayed when it starts (replaying an id it no
  /// longer knows is harmless); only a full or unwritable queue fails DEL (code 11), so
  /// kubelet retries instead of the endpoint leaking.
  func deregister(_ attachment: Attachment, logger: Logger) throws(CNIError) {
    let id = EndpointID.make(containerID: attachment.containerID, ifname: attachment.ifname)
    let issuedAt = IssuedAt.now()
    do {
      let existed = try client.deleteEndpoint(id, issuedAt: issuedAt)
      logger.debug("deregistered", metadata: ["endpoint": "\(id)", "existed": "\(existed)"])
    } catch let failure where failure.isRetryable {
      do {
        try DeleteQueue.enqueue(
          DeleteQueue.Record(
            containerID: attachment.containerID, ifname: attachment.ifname, socket: socketPath,
            issuedAt: issuedAt),
          socketPath: socketPath)
        logger.warning(
          "deregistration not applied; deletion queued for the agent's next start",
          metadata: ["endpoint": "\(id)", "reason": "\(failure)"])
      } catch {
        throw CNIError(
          .tryAgainLater, "the deregistration was not applied and could not be queued",
          details: "\(failure); \(error)")
      }
    } catch {
      // The agent understood and refused (4xx), or cannot be talked to by this caller:
      // nothing a retry fixes, and the pod is going anyway.
      logger.warning(
        "agent refused the deregistration", metadata: ["endpoint": "\(id)", "error": "\(error)"])
    }
  }

  /// Drops the counter entry of a host link that no longer runs the endpoint programs (the
  /// link deleted, or in chained mode the programs detached), in the agent's pinned map
  /// (found through the config the agent publishes), best effort. The agent forgets the
  /// entry of an endpoint it deregisters, but not of one it never registered (an ADD that
  /// failed or was killed between attaching the programs and registering), whose veth can
  /// still have counted packets; its periodic sweep would, later.
  func forgetCounters(hostIfindex: Int32) {
    guard case .some(.some(let published)) = try? AgentDiscovery.read(socketPath: socketPath)
    else { return }
    EndpointPrograms.forgetCounters(hostIfindex: hostIfindex, bpfFS: published.bpfFS)
  }

  /// CHECK's agent half: the endpoint is registered, and both programs are attached to
  /// `hostLink` (nil when the caller already reported it missing).
  func datapathProblems(_ attachment: Attachment, hostLink: LinkInfo?) -> [String] {
    let id = EndpointID.make(containerID: attachment.containerID, ifname: attachment.ifname)
    let agentConfig: AgentConfig
    do {
      agentConfig = try requireReady()
      guard let endpoint = try client.endpoint(id) else {
        return ["endpoint \(id) is not registered with the agent"]
      }
      if let hostLink, endpoint.spec.hostIfindex != Int(hostLink.index) {
        return [
          "endpoint \(id) is registered on ifindex \(endpoint.spec.hostIfindex), "
            + "but its host interface \(hostLink.name) is ifindex \(hostLink.index)"
        ]
      }
    } catch {
      return ["cannot ask the agent: \(error)"]
    }
    guard let hostLink else { return [] }
    do {
      return try EndpointPrograms.open(agentConfig).problems(
        hostIfindex: hostLink.index, hostName: hostLink.name)
    } catch {
      return [error.msg]
    }
  }

  /// GC's agent half: every endpoint of `network` whose attachment is not in `keep` is
  /// passed to `release` (a mode's own cleanup, which reports a failure or nil), then
  /// deregistered. Keeps going past failures and returns them all.
  func removeStale(
    network: String, keep: Set<Attachment>, logger: Logger,
    release: (EndpointSpec) -> String? = { _ in nil }
  ) -> [String] {
    let endpoints: [Endpoint]
    do {
      endpoints = try client.endpoints()
    } catch {
      return ["listing the agent's endpoints: \(error)"]
    }
    var failures: [String] = []
    for endpoint in endpoints where endpoint.spec.network == network {
      let attachment = Attachment(
        containerID: endpoint.spec.containerID, ifname: endpoint.spec.ifname)
      guard !keep.contains(attachment) else { continue }
      if let failure = release(endpoint.spec) { failures.append(failure) }
      do {
        try client.deleteEndpoint(endpoint.id, issuedAt: IssuedAt.now())
        logger.info("GC deregistered a stale endpoint", metadata: ["endpoint": "\(endpoint.id)"])
      } catch {
        failures.append("endpoint \(endpoint.id): \(error)")
      }
    }
    return failures
  }

  /// STATUS's agent half: the agent answers, is healthy, and has its datapath loaded
  /// (code 50 otherwise).
  func requireHealthy() throws(CNIError) {
    let health: Health
    do {
      health = try client.health()
    } catch {
      throw CNIError(
        .pluginNotAvailable, "the Junction agent is not available", details: "\(error)")
    }
    guard health.status == "ok", health.datapathLoaded else {
      throw CNIError(
        .pluginNotAvailable, "the Junction agent is \(health.status)",
        details: "datapath loaded: \(health.datapathLoaded); parts: "
          + health.components.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(
            separator: ", "))
    }
  }
}
