/// The service side of the agent's API: `POST /v1/resources/apply` and
/// `POST /v1/resources/delete` take Kubernetes YAML (as `kubectl get -o yaml` prints it),
/// `GET /v1/services` lists the frontends the node programs.

/// What an apply or delete did (200) or why nothing was done (400: `errors`, with field
/// paths; the agent's state is then exactly as before).
public struct ResourceChange: Codable, Equatable, Sendable {
  /// "Service default/web", one per object applied or deleted.
  public var changed: [String]
  /// Objects of kinds the agent does not handle, reported and left alone.
  public var skipped: [String]
  public var notes: [String]
  public var errors: [String]
  /// For clients that read only an APIErrorBody on a 4xx.
  public var error: String?

  public init(
    changed: [String] = [], skipped: [String] = [], notes: [String] = [], errors: [String] = [],
    error: String? = nil
  ) {
    self.changed = changed
    self.skipped = skipped
    self.notes = notes
    self.errors = errors
    self.error = error
  }
}

/// One frontend and its backends, as `junctionctl service list` shows them.
public struct ServiceStatus: Codable, Equatable, Sendable {
  public struct Backend: Codable, Equatable, Sendable {
    public var id: UInt32
    /// "10.0.0.1:80/TCP".
    public var address: String
    /// "active", "terminating", "excluded" or "not-preferred".
    public var state: String
    /// A pod on this node (nil from agents that predate it).
    public var local: Bool?

    public init(id: UInt32, address: String, state: String, local: Bool? = nil) {
      self.id = id
      self.address = address
      self.state = state
      self.local = local
    }
  }

  /// The frontend's id (the datapath's reverse-NAT id), stable across updates and restarts.
  public var id: Int
  /// "10.96.0.10:80/TCP".
  public var frontend: String
  /// "ClusterIP", "NodePort", "ExternalIPs" or "LoadBalancer".
  public var type: String
  /// "namespace/name" and the port's name.
  public var service: String
  public var portName: String
  public var backends: [Backend]
  /// ClientIP session affinity timeout in seconds; nil without affinity.
  public var affinityTimeout: Int?
  /// "random" or "maglev".
  public var algorithm: String
  /// External frontends only (NodePort, ExternalIPs, LoadBalancer): how remote backends are
  /// reached, "SNAT" or "DSR" (from --lb-mode and the protocol). Nil for ClusterIP.
  public var mode: String?
  /// "Local" when externalTrafficPolicy (external frontends) or internalTrafficPolicy
  /// (ClusterIP) is Local: only this node's backends are listed and used. "Cluster"
  /// otherwise (nil from agents that predate it).
  public var trafficPolicy: String?
  /// The node's L7 proxy listener port when this frontend's connections go to the proxy
  /// (a CiliumEnvoyConfig, an Ingress, or --proxy-redirect) instead of `backends`.
  public var proxyPort: Int?

  public init(
    id: Int, frontend: String, type: String, service: String, portName: String,
    backends: [Backend], affinityTimeout: Int?, algorithm: String, mode: String? = nil,
    trafficPolicy: String? = nil, proxyPort: Int? = nil
  ) {
    self.proxyPort = proxyPort
    self.mode = mode
    self.trafficPolicy = trafficPolicy
    self.id = id
    self.frontend = frontend
    self.type = type
    self.service = service
    self.portName = portName
    self.backends = backends
    self.affinityTimeout = affinityTimeout
    self.algorithm = algorithm
  }
}
