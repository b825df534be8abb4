import AgentAPI
import AgentCore
import CNIKit

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
      try client.putEndpoint(spec)
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

  static func isUnreachable(_ failure: AgentClient.Failure) -> Bool {
    switch failure {
    case .notRunning, .timedOut, .io: true
    case .permissionDenied, .badResponse, .api: false
    }
  }
}
