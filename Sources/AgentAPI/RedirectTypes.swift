/// `GET /v1/lrp`: the Local Redirect Policies the node holds, as `junctionctl lrp list`
/// shows them.
public struct RedirectPolicyStatus: Codable, Equatable, Sendable {
  public struct Frontend: Codable, Equatable, Sendable {
    /// "10.96.0.10:53/UDP".
    public var frontend: String
    /// The policy holds the frontend now; false when no selected pod is ready on this node
    /// (the Service keeps the frontend, or the address is not served) or another owner has
    /// it.
    public var redirected: Bool
    /// The local backends it redirects to, "10.240.1.5:53/UDP".
    public var backends: [String]

    public init(frontend: String, redirected: Bool, backends: [String]) {
      self.frontend = frontend
      self.redirected = redirected
      self.backends = backends
    }
  }

  public struct LocalBackend: Codable, Equatable, Sendable {
    /// "namespace/name" of the pod.
    public var pod: String
    public var address: String

    public init(pod: String, address: String) {
      self.pod = pod
      self.address = address
    }
  }

  /// "LocalRedirectPolicy" or "CiliumLocalRedirectPolicy".
  public var kind: String
  public var namespace: String
  public var name: String
  /// "service" or "address".
  public var matcher: String
  /// "namespace/name" of a service matcher's Service.
  public var service: String?
  public var skipRedirectFromBackend: Bool
  public var frontends: [Frontend]
  /// This node's ready pods the policy selects.
  public var localBackends: [LocalBackend]
  public var notes: [String]

  public init(
    kind: String, namespace: String, name: String, matcher: String, service: String?,
    skipRedirectFromBackend: Bool, frontends: [Frontend], localBackends: [LocalBackend],
    notes: [String]
  ) {
    self.kind = kind
    self.namespace = namespace
    self.name = name
    self.matcher = matcher
    self.service = service
    self.skipRedirectFromBackend = skipRedirectFromBackend
    self.frontends = frontends
    self.localBackends = localBackends
    self.notes = notes
  }
}
